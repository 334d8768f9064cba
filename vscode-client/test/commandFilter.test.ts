import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitServerCommands } from '../src/commandFilter';
import { COMMANDS, SERVER_COMMANDS } from '../src/constants';

describe('server commands the client registers', () => {
  it('keeps the server commands and drops ids this extension registers itself', () => {
    const listed = [...Object.values(SERVER_COMMANDS), COMMANDS.previewProposal];
    const { keep, dropped } = splitServerCommands(listed, Object.values(COMMANDS));
    assert.deepEqual(keep, Object.values(SERVER_COMMANDS));
    assert.deepEqual(dropped, [COMMANDS.previewProposal]);
  });

  it('leaves a list without clashes alone', () => {
    assert.deepEqual(splitServerCommands(['a', 'b'], ['c']), { keep: ['a', 'b'], dropped: [] });
  });
});
