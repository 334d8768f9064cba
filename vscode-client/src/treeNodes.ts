/**
 * The funcforge views' items, built from the server's JSON: labels,
 * descriptions, icons, context values (for the menus) and click commands.
 * Pure: `views.ts` turns these into `vscode.TreeItem`s.
 */

import { COMMANDS, CONTEXT_VALUES } from './constants';
import type { History, ProposalEntry, ToolEntry, VersionEntry } from './protocol';
import { formatScoreN, plural } from './statusText';

export interface NodeCommand {
  command: string;
  title: string;
  arguments: unknown[];
}

export interface NodeSpec {
  /** Unique within its view; stable across refreshes so selection survives. */
  key: string;
  label: string;
  description?: string;
  /** Markdown. */
  tooltip?: string;
  icon?: { id: string; color?: string };
  contextValue: string;
  command?: NodeCommand;
  /** Set on proposal items: menu commands receive the node and read it. */
  proposalId?: string;
  /** Set on history items. */
  commit?: string;
  /** Set on tool items. */
  toolName?: string;
}

/** The default of `error_rate_warning` in the server's configuration. */
export const DEFAULT_ERROR_RATE_WARNING = 0.2;

/** "30%", "<1%" for small non-zero rates, "0%". */
export function formatPercent(rate: number): string {
  if (rate > 0 && rate < 0.005) {
    return '<1%';
  }
  return `${Math.round(rate * 100)}%`;
}

export function toolNodes(
  tools: readonly ToolEntry[],
  errorRateWarning = DEFAULT_ERROR_RATE_WARNING,
): NodeSpec[] {
  const sorted = [...tools].sort(
    (a, b) => b.errorRate - a.errorRate || b.calls - a.calls || a.name.localeCompare(b.name),
  );
  return sorted.map((tool) => {
    let description: string;
    let icon: NodeSpec['icon'];
    if (tool.calls === 0) {
      description = 'no logged calls';
      icon = { id: 'circle-outline' };
    } else {
      description = `${plural(tool.calls, 'call')} · ${formatPercent(tool.errorRate)} errors`;
      if (tool.errors > 0 && tool.errorRate >= errorRateWarning) {
        icon = { id: 'warning', color: 'list.warningForeground' };
      } else if (tool.errors > 0) {
        icon = { id: 'info' };
      } else {
        icon = { id: 'pass', color: 'testing.iconPassed' };
      }
    }
    const lines = [`**${tool.name}**`, '', `${tool.errors} of ${plural(tool.calls, 'logged call')} failed`];
    if (tool.passRate !== undefined) {
      lines.push(`Tasks using it passed: ${formatPercent(tool.passRate)}`);
    }
    return {
      key: `tool:${tool.name}`,
      label: tool.name,
      description,
      tooltip: lines.join('\n\n'),
      icon,
      contextValue: CONTEXT_VALUES.tool,
      command: { command: COMMANDS.openTool, title: 'Open function', arguments: [tool.uri, tool.line] },
      toolName: tool.name,
    };
  });
}

const PROPOSAL_ICONS: Record<string, NodeSpec['icon']> = {
  pending: { id: 'lightbulb', color: 'editorLightBulb.foreground' },
  applied: { id: 'check' },
  rejected: { id: 'close' },
};

export function proposalNodes(proposals: readonly ProposalEntry[]): NodeSpec[] {
  const rank = (p: ProposalEntry): number => (p.status === 'pending' ? 0 : 1);
  const sorted = [...proposals].sort(
    (a, b) =>
      rank(a) - rank(b) || (b.created ?? '').localeCompare(a.created ?? '') || a.id.localeCompare(b.id),
  );
  return sorted.map((p) => {
    const pending = p.status === 'pending';
    const description = [p.status, p.functions.join(', ')].filter((s) => s.length > 0).join(' · ');
    const tooltip = [`**${p.title}**`];
    if (p.summary.length > 0) tooltip.push(p.summary);
    tooltip.push(`Proposal ${p.id}${p.created ? `, ${p.created}` : ''}`);
    return {
      key: `proposal:${p.id}`,
      label: p.title,
      description,
      tooltip: tooltip.join('\n\n'),
      icon: PROPOSAL_ICONS[p.status] ?? { id: 'circle-outline' },
      contextValue: pending ? CONTEXT_VALUES.proposalPending : CONTEXT_VALUES.proposalOther,
      command: { command: COMMANDS.previewProposal, title: 'Preview proposal', arguments: [{ id: p.id }] },
      proposalId: p.id,
    };
  });
}

/** "0.78 (n=120) · best · HEAD". */
export function versionDescription(v: VersionEntry): string {
  const parts: string[] = [];
  const score = formatScoreN(v.score, v.n);
  parts.push(score ?? 'no score yet');
  if (v.isBest) parts.push('best');
  if (v.isHead) parts.push('HEAD');
  return parts.join(' · ');
}

export function historyNodes(history: History): NodeSpec[] {
  return history.versions.map((v) => {
    const tooltip = [`**${v.short}** ${v.subject}`, `commit ${v.commit}`];
    if (v.step !== undefined) tooltip.push(`optimizer step ${v.step}`);
    tooltip.push(`score ${formatScoreN(v.score, v.n) ?? 'not measured yet'}`);
    if (!v.isHead)
      tooltip.push('Right-click: roll back to here (git revert of the optimizer commits after it).');
    let icon: NodeSpec['icon'];
    if (v.isBest) icon = { id: 'star-full', color: 'charts.yellow' };
    else if (v.optimizer) icon = { id: 'beaker' };
    else icon = { id: 'git-commit' };
    return {
      key: `version:${v.commit}`,
      label: `${v.short} ${v.subject}`,
      description: versionDescription(v),
      tooltip: tooltip.join('\n\n'),
      icon,
      contextValue: v.isHead ? CONTEXT_VALUES.versionHead : CONTEXT_VALUES.version,
      commit: v.commit,
    };
  });
}

/** A one-line item saying why a view is empty or failed, optionally clickable. */
export function messageNode(key: string, text: string, command?: NodeCommand): NodeSpec {
  const node: NodeSpec = {
    key: `message:${key}`,
    label: text,
    icon: { id: 'info' },
    contextValue: CONTEXT_VALUES.message,
  };
  if (command !== undefined) node.command = command;
  return node;
}

/** The "Show history" document: a plain-text table, newest first, as the server lists it. */
export function historyDocument(history: History): string {
  const lines = ['funcforge history (optimizer commits and per-version scores)', ''];
  if (history.best !== null) {
    lines.push(
      `best: ${history.best.short} ${formatScoreN(history.best.score, history.best.n) ?? ''}`.trimEnd(),
      '',
    );
  }
  if (history.versions.length === 0) {
    lines.push('No versions yet: accept a proposal to make the first optimizer commit.');
    return lines.join('\n') + '\n';
  }
  const rows = history.versions.map((v) => [
    [v.isHead ? 'HEAD' : '', v.isBest ? 'best' : ''].filter((m) => m.length > 0).join(','),
    v.short,
    v.step === undefined ? '' : `step ${v.step}`,
    formatScoreN(v.score, v.n) ?? '-',
    v.subject,
  ]);
  const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c].length)));
  const columns = [0, 1, 2, 3].filter((c) => widths[c] > 0);
  for (const r of rows) {
    lines.push([...columns.map((c) => r[c].padEnd(widths[c])), r[4]].join('  '));
  }
  return lines.join('\n') + '\n';
}
