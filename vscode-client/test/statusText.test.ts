import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatScore, formatScoreN, formatStatus, plural } from '../src/statusText';

describe('status bar text', () => {
  it('shows state, best score and proposals', () => {
    const view = formatStatus({
      phase: 'running',
      status: { state: 'idle', bestScore: 0.781, bestN: 120, step: 3, proposals: 2, executionAllowed: true },
    });
    assert.equal(view.text, '$(beaker) funcforge: idle · best 0.78 (n=120) · 2 proposals');
    assert.equal(view.severity, 'normal');
    assert.match(view.tooltip, /Optimizer step 3/);
    assert.match(view.tooltip, /2 pending proposals/);
  });

  it('leaves out what the server did not send', () => {
    const view = formatStatus({
      phase: 'running',
      status: { state: 'optimizing', message: 'asking the model' },
    });
    assert.equal(view.text, '$(loading~spin) funcforge: optimizing');
    assert.match(view.tooltip, /^funcforge is optimizing: asking the model/);
  });

  it('says why execution is off', () => {
    const view = formatStatus({
      phase: 'running',
      status: { state: 'idle', proposals: 1, executionAllowed: false },
      executionOffReason: 'this workspace is not trusted (Restricted Mode)',
    });
    assert.equal(view.text, '$(beaker) funcforge: idle · 1 proposal · $(shield) execution off');
    assert.match(view.tooltip, /Execution is off: this workspace is not trusted \(Restricted Mode\)\./);
    const serverSide = formatStatus({ phase: 'running', status: { state: 'idle', executionAllowed: false } });
    assert.match(serverSide.tooltip, /Execution is off: the server has execution turned off/);
  });

  it('names the weaker process sandbox', () => {
    const weak = formatStatus({
      phase: 'running',
      status: { state: 'idle', sandbox: 'process (weaker: no OS sandbox)' },
    });
    assert.equal(weak.text, '$(beaker) funcforge: idle · $(warning) sandbox: process (weaker)');
    assert.equal(weak.severity, 'warning');
    assert.match(weak.tooltip, /weaker process sandbox/);
    const strong = formatStatus({ phase: 'running', status: { state: 'idle', sandbox: 'bwrap' } });
    assert.equal(strong.text, '$(beaker) funcforge: idle');
    assert.equal(strong.severity, 'normal');
  });

  it('shows starting, failed and error states', () => {
    assert.equal(formatStatus({ phase: 'starting' }).text, '$(sync~spin) funcforge: starting');
    assert.equal(formatStatus({ phase: 'running' }).text, '$(beaker) funcforge: running');
    const failed = formatStatus({ phase: 'failed', failure: 'funcforge is not importable by python3' });
    assert.equal(failed.text, '$(error) funcforge: not running');
    assert.equal(failed.severity, 'error');
    assert.match(failed.tooltip, /^funcforge is not importable by python3\n/);
    assert.equal(formatStatus({ phase: 'running', status: { state: 'error' } }).severity, 'error');
    assert.equal(formatStatus({ phase: 'stopped' }).severity, 'warning');
  });

  it('formats scores and counts', () => {
    assert.equal(formatScore(1), '1.00');
    assert.equal(formatScoreN(0.5, undefined), '0.50');
    assert.equal(formatScoreN(undefined, 3), undefined);
    assert.equal(plural(1, 'call'), '1 call');
    assert.equal(plural(0, 'call'), '0 calls');
  });
});
