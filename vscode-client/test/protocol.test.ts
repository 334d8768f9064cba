import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  commitOf,
  functionNameOf,
  parseApplyResult,
  parseHistory,
  parseOptimizeResult,
  parsePreview,
  parseProposals,
  parseRollbackResult,
  parseStatus,
  parseTools,
  proposalIdOf,
  ProtocolError,
  resultMessage,
  withShowsResults,
} from '../src/protocol';

describe('parseStatus', () => {
  it('reads the documented notification', () => {
    assert.deepEqual(
      parseStatus({
        state: 'idle',
        message: '',
        bestScore: 0.78,
        bestN: 120,
        step: 3,
        proposals: 1,
        executionAllowed: true,
        extra: 'ignored',
      }),
      { state: 'idle', bestScore: 0.78, bestN: 120, step: 3, proposals: 1, executionAllowed: true },
    );
  });

  it('keeps only well-typed optional fields', () => {
    assert.deepEqual(
      parseStatus({ state: 'optimizing', message: 'step 2', bestScore: null, proposals: '1' }),
      {
        state: 'optimizing',
        message: 'step 2',
      },
    );
  });

  it('rejects unknown states and non-objects with a clear message', () => {
    assert.throws(() => parseStatus({ state: 'sleeping' }), {
      name: 'ProtocolError',
      message: 'unexpected reply to funcforge/status: unknown state "sleeping"',
    });
    assert.throws(() => parseStatus([]), ProtocolError);
    assert.throws(() => parseStatus({}), /params\.state is not a string/);
  });
});

describe('command results', () => {
  it('parses funcforge.tools and names a bad field', () => {
    const tools = parseTools({
      tools: [
        {
          name: 'convert_units',
          uri: 'file:///w/tools/u.py',
          line: 12,
          calls: 40,
          errors: 12,
          errorRate: 0.3,
          passRate: 0.7,
        },
      ],
    });
    assert.deepEqual(tools, [
      {
        name: 'convert_units',
        uri: 'file:///w/tools/u.py',
        line: 12,
        calls: 40,
        errors: 12,
        errorRate: 0.3,
        passRate: 0.7,
      },
    ]);
    assert.throws(
      () => parseTools({ tools: [{ name: 'a', uri: 'u', line: '3', calls: 0, errors: 0, errorRate: 0 }] }),
      { message: 'unexpected reply to funcforge.tools: tools[0].line is not a number' },
    );
    assert.throws(() => parseTools({}), /result\.tools is not a list/);
  });

  it('parses funcforge.proposals with optional fields defaulted', () => {
    assert.deepEqual(
      parseProposals({ proposals: [{ id: '2f1c9e', title: 'revise convert_units', status: 'pending' }] }),
      [{ id: '2f1c9e', title: 'revise convert_units', status: 'pending', summary: '', functions: [] }],
    );
    assert.throws(
      () => parseProposals({ proposals: [{ id: 'a', title: 't', status: 'pending', functions: [1] }] }),
      /proposals\[0\]\.functions\[0\] is not a string/,
    );
  });

  it('parses funcforge.history, with or without a best version', () => {
    const v = {
      commit: 'a1b2c3d4e5f6',
      short: 'a1b2c3d',
      subject: 'funcforge: revise convert_units',
      step: 3,
      optimizer: true,
      score: 0.78,
      n: 120,
      isBest: true,
      isHead: false,
    };
    assert.deepEqual(parseHistory({ versions: [v], best: v }), { versions: [v], best: v });
    const bare = parseHistory({ versions: [{ commit: 'ffffffffff', score: null }], best: null });
    assert.deepEqual(bare, {
      versions: [
        {
          commit: 'ffffffffff',
          short: 'fffffff',
          subject: '',
          optimizer: false,
          isBest: false,
          isHead: false,
        },
      ],
      best: null,
    });
  });

  it('parses previews, apply, optimize and rollback results', () => {
    const file = { uri: 'file:///w/tools/u.py', path: 'tools/u.py', oldText: 'a\n', newText: 'b\n' };
    assert.deepEqual(parsePreview({ id: 'p1', title: 't', summary: 's', files: [file] }), {
      id: 'p1',
      title: 't',
      summary: 's',
      files: [file],
    });
    assert.throws(
      () => parsePreview({ id: 'p1', files: [{ ...file, newText: undefined }] }),
      /files\[0\]\.newText/,
    );
    assert.deepEqual(parseApplyResult({ commit: 'abc', files: ['tools/u.py'] }), {
      commit: 'abc',
      files: ['tools/u.py'],
      saveable: [],
      already: false,
    });
    assert.deepEqual(
      parseApplyResult({ commit: 'abc', files: ['tools/u.py'], saveable: ['tools/u.py'], already: true }),
      { commit: 'abc', files: ['tools/u.py'], saveable: ['tools/u.py'], already: true },
    );
    assert.deepEqual(parseOptimizeResult({ proposals: ['p1', 'p2'] }), ['p1', 'p2']);
    assert.deepEqual(parseRollbackResult({ commits: [] }), []);
    assert.throws(() => parseOptimizeResult(null), /result is not an object/);
  });
});

describe('command arguments', () => {
  it('finds a proposal id in a string, {id} or a tree node', () => {
    assert.equal(proposalIdOf('2f1c9e'), '2f1c9e');
    assert.equal(proposalIdOf({ id: '2f1c9e' }), '2f1c9e');
    assert.equal(proposalIdOf({ key: 'proposal:x', proposalId: 'x' }), 'x');
    assert.equal(proposalIdOf(undefined), undefined);
    assert.equal(proposalIdOf(''), undefined);
    assert.equal(proposalIdOf({ id: 3 }), undefined);
  });

  it('finds a commit and a function name', () => {
    assert.equal(commitOf({ key: 'version:abc', commit: 'abc' }), 'abc');
    assert.equal(commitOf({ to: 'def' }), 'def');
    assert.equal(commitOf({}), undefined);
    assert.equal(functionNameOf('convert_units'), 'convert_units');
    assert.equal(functionNameOf({ function: 'f' }), 'f');
    assert.equal(functionNameOf({ toolName: 'g', label: 'g' }), 'g');
    assert.equal(functionNameOf(42), undefined);
  });
});

describe('resultMessage', () => {
  it("offers Preview and Show proposals with Optimize's message when it proposed", () => {
    assert.deepEqual(
      resultMessage('funcforge.optimize', {
        proposals: ['p1'],
        notes: [],
        message: 'funcforge: proposed revise f (proposal p1; not replay-checked)',
        messageType: 3,
      }),
      {
        text: 'funcforge: proposed revise f (proposal p1; not replay-checked)',
        level: 'info',
        actions: [{ title: 'Preview', proposal: 'p1' }, { title: 'Show proposals' }],
      },
    );
  });

  it('shows a warning without buttons when nothing was proposed', () => {
    assert.deepEqual(
      resultMessage('funcforge.optimize', { proposals: [], message: 'funcforge: nothing', messageType: 2 }),
      { text: 'funcforge: nothing', level: 'warning', actions: [] },
    );
  });

  it('reads the other actions without buttons', () => {
    const applied = { commit: 'abc', files: [], saveable: [], message: 'funcforge: committed abc (x)' };
    assert.deepEqual(resultMessage('funcforge.applyProposal', applied), {
      text: 'funcforge: committed abc (x)',
      level: 'info',
      actions: [],
    });
    assert.equal(
      resultMessage('funcforge.rollback', { commits: ['a'], message: 'm', messageType: 1 })?.level,
      'error',
    );
  });

  it('is undefined for results without a message', () => {
    assert.equal(resultMessage('funcforge.tools', { tools: [] }), undefined);
    assert.equal(resultMessage('funcforge.optimize', { proposals: [], message: '' }), undefined);
    assert.equal(resultMessage('funcforge.optimize', null), undefined);
    assert.equal(resultMessage('funcforge.optimize', { message: 3 }), undefined);
  });
});

describe('withShowsResults', () => {
  it('declares showsResults and keeps other experimental entries', () => {
    assert.deepEqual(withShowsResults(undefined), { funcforge: { showsResults: true } });
    assert.deepEqual(withShowsResults({ other: 1 }), { other: 1, funcforge: { showsResults: true } });
  });
});
