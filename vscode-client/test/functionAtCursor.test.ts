import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { functionAtCursor, sameUri } from '../src/functionAtCursor';
import type { ToolEntry } from '../src/protocol';

const at = (name: string, uri: string, line: number): ToolEntry => ({
  name,
  uri,
  line,
  calls: 1,
  errors: 0,
  errorRate: 0,
});
const units = 'file:///w/tools/units.py';
const tools = [
  at('convert_units', units, 5),
  at('parse_unit', units, 20),
  at('evaluate', 'file:///w/tools/math.py', 1),
];

describe('the function under the cursor', () => {
  it('prefers a tool named by the word at the cursor', () => {
    assert.equal(functionAtCursor(tools, { uri: units, line: 30, word: 'evaluate' }), 'evaluate');
  });

  it('else takes the nearest tool defined at or above the cursor in this file', () => {
    assert.equal(functionAtCursor(tools, { uri: units, line: 5, word: 'def' }), 'convert_units');
    assert.equal(functionAtCursor(tools, { uri: units, line: 19 }), 'convert_units');
    assert.equal(functionAtCursor(tools, { uri: units, line: 25, word: 'x' }), 'parse_unit');
  });

  it('gives up above the first tool of a file the server knows', () => {
    assert.equal(functionAtCursor(tools, { uri: units, line: 2, word: 'import' }), undefined);
  });

  it('falls back to the word in a file the server knows no tool in', () => {
    assert.equal(functionAtCursor(tools, { uri: 'file:///w/other.py', line: 3, word: 'helper' }), 'helper');
    assert.equal(functionAtCursor(tools, { uri: 'file:///w/other.py', line: 3, word: '3.14' }), undefined);
    assert.equal(functionAtCursor([], { uri: 'file:///w/other.py', line: 3 }), undefined);
  });

  it('matches URIs spelled differently by VS Code and the server', () => {
    assert.equal(sameUri('file:///c%3A/w/t.py', 'file:///c:/w/t.py'), true);
    assert.equal(sameUri('file:///w/my%20t.py', 'file:///w/my t.py'), true);
    assert.equal(sameUri('file:///w/a.py', 'file:///w/b.py'), false);
    assert.equal(
      functionAtCursor([at('f', 'file:///w/my t.py', 1)], { uri: 'file:///w/my%20t.py', line: 4 }),
      'f',
    );
  });
});
