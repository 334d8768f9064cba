import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMMANDS, CONTEXT_VALUES } from '../src/constants';
import type { ToolEntry, VersionEntry } from '../src/protocol';
import {
  formatPercent,
  historyDocument,
  historyNodes,
  messageNode,
  proposalNodes,
  toolNodes,
} from '../src/treeNodes';

const tool = (name: string, calls: number, errors: number, line = 1): ToolEntry => ({
  name,
  uri: `file:///w/tools/${name}.py`,
  line,
  calls,
  errors,
  errorRate: calls === 0 ? 0 : errors / calls,
});

describe('tool items', () => {
  it('sorts by error rate and shows calls and error rate', () => {
    const nodes = toolNodes([
      tool('ok', 50, 0),
      tool('convert_units', 40, 12, 7),
      tool('unused', 0, 0),
      tool('flaky', 100, 5),
    ]);
    assert.deepEqual(
      nodes.map((n) => [n.label, n.description, n.icon?.id]),
      [
        ['convert_units', '40 calls · 30% errors', 'warning'],
        ['flaky', '100 calls · 5% errors', 'info'],
        ['ok', '50 calls · 0% errors', 'pass'],
        ['unused', 'no logged calls', 'circle-outline'],
      ],
    );
    const first = nodes[0];
    assert.equal(first.contextValue, CONTEXT_VALUES.tool);
    assert.equal(first.toolName, 'convert_units');
    assert.deepEqual(first.command, {
      command: COMMANDS.openTool,
      title: 'Open function',
      arguments: ['file:///w/tools/convert_units.py', 7],
    });
    assert.match(first.tooltip ?? '', /12 of 40 logged calls failed/);
  });

  it('uses the warning threshold it is given', () => {
    assert.equal(toolNodes([tool('flaky', 100, 5)], 0.05)[0].icon?.id, 'warning');
  });

  it('formats percentages', () => {
    assert.equal(formatPercent(0.3), '30%');
    assert.equal(formatPercent(0.001), '<1%');
    assert.equal(formatPercent(0), '0%');
    assert.equal(formatPercent(1), '100%');
  });
});

describe('proposal items', () => {
  it('puts pending proposals first, newest first, and previews on click', () => {
    const nodes = proposalNodes([
      {
        id: 'old',
        title: 'revise a',
        status: 'applied',
        summary: '',
        functions: ['a'],
        created: '2026-11-20T10:00:00Z',
      },
      {
        id: 'p1',
        title: 'revise b',
        status: 'pending',
        summary: 'fixes 11/12',
        functions: ['b'],
        created: '2026-11-21T10:00:00Z',
      },
      {
        id: 'p2',
        title: 'add c',
        status: 'pending',
        summary: '',
        functions: ['c', 'd'],
        created: '2026-11-22T10:00:00Z',
      },
    ]);
    assert.deepEqual(
      nodes.map((n) => [n.label, n.description, n.contextValue, n.proposalId]),
      [
        ['add c', 'pending · c, d', CONTEXT_VALUES.proposalPending, 'p2'],
        ['revise b', 'pending · b', CONTEXT_VALUES.proposalPending, 'p1'],
        ['revise a', 'applied · a', CONTEXT_VALUES.proposalOther, 'old'],
      ],
    );
    assert.deepEqual(nodes[1].command, {
      command: COMMANDS.previewProposal,
      title: 'Preview proposal',
      arguments: [{ id: 'p1' }],
    });
    assert.match(nodes[1].tooltip ?? '', /fixes 11\/12/);
  });
});

describe('history items and document', () => {
  const v = (over: Partial<VersionEntry>): VersionEntry => ({
    commit: 'a1b2c3d4e5',
    short: 'a1b2c3d',
    subject: 'funcforge: revise convert_units',
    optimizer: true,
    isBest: false,
    isHead: false,
    ...over,
  });
  const history = {
    versions: [
      v({ commit: 'ccc', short: 'ccc', step: 4, score: 0.6, n: 40, isHead: true }),
      v({ commit: 'bbb', short: 'bbb', step: 3, score: 0.78, n: 120, isBest: true }),
      v({ commit: 'aaa', short: 'aaa', subject: 'initial tools', optimizer: false }),
    ],
    best: v({ commit: 'bbb', short: 'bbb', score: 0.78, n: 120, isBest: true }),
  };

  it('marks best and HEAD and allows roll-back everywhere but HEAD', () => {
    const nodes = historyNodes(history);
    assert.deepEqual(
      nodes.map((n) => [n.label, n.description, n.contextValue, n.icon?.id, n.commit]),
      [
        [
          'ccc funcforge: revise convert_units',
          '0.60 (n=40) · HEAD',
          CONTEXT_VALUES.versionHead,
          'beaker',
          'ccc',
        ],
        [
          'bbb funcforge: revise convert_units',
          '0.78 (n=120) · best',
          CONTEXT_VALUES.version,
          'star-full',
          'bbb',
        ],
        ['aaa initial tools', 'no score yet', CONTEXT_VALUES.version, 'git-commit', 'aaa'],
      ],
    );
  });

  it('renders a table', () => {
    const text = historyDocument(history);
    assert.match(text, /^best: bbb 0\.78 \(n=120\)$/m);
    const rows = text.split('\n').slice(4, 7);
    assert.deepEqual(rows, [
      'HEAD  ccc  step 4  0.60 (n=40)   funcforge: revise convert_units',
      'best  bbb  step 3  0.78 (n=120)  funcforge: revise convert_units',
      '      aaa          -             initial tools',
    ]);
    const both = historyDocument({
      versions: [v({ short: 'x', isHead: true, isBest: true, score: 1, n: 2 })],
      best: null,
    });
    assert.match(both, /^HEAD,best  x  1\.00 \(n=2\)  funcforge: revise convert_units$/m);
    assert.match(historyDocument({ versions: [], best: null }), /No versions yet/);
  });

  it('builds message items', () => {
    const node = messageNode('error', 'server not running', {
      command: COMMANDS.showLogs,
      title: 'Show logs',
      arguments: [],
    });
    assert.equal(node.key, 'message:error');
    assert.equal(node.contextValue, CONTEXT_VALUES.message);
    assert.equal(node.command?.command, COMMANDS.showLogs);
  });
});
