/**
 * The status bar item's text and tooltip from the last `funcforge/status`
 * notification and the client's own state. Pure.
 */

import type { Status } from './protocol';

/** The client's side of things: is a server process up at all? */
export type ClientPhase = 'starting' | 'running' | 'stopped' | 'failed';

export interface StatusView {
  text: string;
  tooltip: string;
  /** `error` and `warning` colour the item's background. */
  severity: 'normal' | 'warning' | 'error';
}

export interface StatusInputs {
  phase: ClientPhase;
  status?: Status;
  /** Why execution is off, when the client turned it off (trust or setting). */
  executionOffReason?: string;
  /** Why the server is not running (for `failed`). */
  failure?: string;
}

/** `0.78` for a score; two decimals, as the server prints them in commits. */
export function formatScore(score: number): string {
  return score.toFixed(2);
}

/** "0.78 (n=120)", or "0.78" when n is unknown. */
export function formatScoreN(score: number | undefined, n: number | undefined): string | undefined {
  if (score === undefined) {
    return undefined;
  }
  return n === undefined ? formatScore(score) : `${formatScore(score)} (n=${n})`;
}

export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

const ICONS: Record<string, string> = {
  idle: '$(beaker)',
  indexing: '$(sync~spin)',
  optimizing: '$(loading~spin)',
  converged: '$(pass)',
  error: '$(error)',
  starting: '$(sync~spin)',
  stopped: '$(circle-slash)',
  failed: '$(error)',
};

export function formatStatus(inputs: StatusInputs): StatusView {
  const tooltip: string[] = [];
  if (inputs.phase === 'failed' || inputs.phase === 'stopped') {
    const word = inputs.phase === 'failed' ? 'not running' : 'stopped';
    if (inputs.failure !== undefined) tooltip.push(inputs.failure);
    tooltip.push('Click for the funcforge logs; run "funcforge: Restart server" to try again.');
    return {
      text: `${ICONS[inputs.phase]} funcforge: ${word}`,
      tooltip: tooltip.join('\n'),
      severity: inputs.phase === 'failed' ? 'error' : 'warning',
    };
  }
  const status = inputs.status;
  if (inputs.phase === 'starting') {
    return {
      text: `${ICONS.starting} funcforge: starting`,
      tooltip: 'The funcforge language server is starting.',
      severity: 'normal',
    };
  }
  if (status === undefined) {
    return {
      text: `${ICONS.idle} funcforge: running`,
      tooltip: 'The funcforge language server is running; it has not reported its state yet.',
      severity: 'normal',
    };
  }

  const parts = [`${ICONS[status.state]} funcforge: ${status.state}`];
  const best = formatScoreN(status.bestScore, status.bestN);
  if (best !== undefined) {
    parts.push(`best ${best}`);
  }
  if (status.proposals !== undefined && status.proposals > 0) {
    parts.push(plural(status.proposals, 'proposal'));
  }

  tooltip.push(`funcforge is ${status.state}${status.message ? `: ${status.message}` : ''}`);
  if (status.step !== undefined) tooltip.push(`Optimizer step ${status.step}`);
  if (best !== undefined) tooltip.push(`Best version's score ${best}`);
  if (status.proposals !== undefined) {
    tooltip.push(`${plural(status.proposals, 'pending proposal')}`);
  }

  const weakSandbox = status.sandbox !== undefined && status.sandbox.startsWith('process');
  if (weakSandbox) {
    parts.push('$(warning) sandbox: process (weaker)');
    tooltip.push(
      'Tool code runs in the weaker process sandbox (sandbox = "process"): no OS sandbox, ' +
        'it can read your files. Install bubblewrap and remove the setting to use it.',
    );
  }
  const executionOff = inputs.executionOffReason !== undefined || status.executionAllowed === false;
  if (executionOff) {
    parts.push('$(shield) execution off');
    const reason = inputs.executionOffReason ?? 'the server has execution turned off';
    tooltip.push(`Execution is off: ${reason}. Proposals are not replay-checked against logged calls.`);
  }
  return {
    text: parts.join(' · '),
    tooltip: tooltip.join('\n'),
    severity: status.state === 'error' ? 'error' : weakSandbox ? 'warning' : 'normal',
  };
}
