// The client is built against docs/lsp.md: when the documented surface
// changes, this test says where the client has to follow.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { SERVER_COMMANDS, STATUS_NOTIFICATION } from '../src/constants';
import { parseStatus, SERVER_STATES, SHOWS_RESULTS } from '../src/protocol';
import { resolveSettings, SETTING_KEYS, serverSettings } from '../src/settings';

const doc = readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'lsp.md'), 'utf8');

function section(title: string): string {
  const start = doc.indexOf(`## ${title}`);
  assert.ok(start >= 0, `docs/lsp.md has a section "${title}"`);
  const end = doc.indexOf('\n## ', start + 3);
  return doc.slice(start, end < 0 ? undefined : end);
}

/** First-column code spans of a markdown table's rows. */
function tableKeys(text: string): string[] {
  return [...text.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);
}

describe('docs/lsp.md', () => {
  it('documents the server commands the client calls', () => {
    assert.deepEqual(tableKeys(section('Commands')).sort(), Object.values(SERVER_COMMANDS).sort());
  });

  it('documents the settings the client hands over', () => {
    const documented = tableKeys(section('Settings')).sort();
    const sent = SETTING_KEYS.filter((k) => k !== 'python').sort();
    assert.deepEqual(documented, sent);
    const all = serverSettings(
      resolveSettings(
        {
          model: 'm',
          baseUrl: 'http://127.0.0.1:1',
          tools: ['t'],
          traces: ['r'],
          llm: 'replay:f',
          errorRateWarning: 0.1,
          sandbox: 'process',
        },
        { env: {} },
      ),
      true,
    );
    assert.deepEqual(Object.keys(all).sort(), documented);
  });

  it('documents the status notification the client reads', () => {
    const text = section(`Notification \`${STATUS_NOTIFICATION}\` (server -> client)`);
    const json = /```json\n([\s\S]*?)```/.exec(text);
    assert.ok(json, 'the section has a JSON example');
    const example = JSON.parse(json[1]) as { state: string };
    assert.deepEqual(example.state.split(' | '), [...SERVER_STATES]);
    const status = parseStatus({ ...example, state: 'idle' });
    assert.deepEqual(status, {
      state: 'idle',
      message: 'optional text',
      bestScore: 0.78,
      bestN: 120,
      step: 3,
      proposals: 1,
      executionAllowed: true,
      sandbox: 'bwrap',
    });
  });

  it('documents the capability that leaves result messages to the client', () => {
    const json = /```json\n([\s\S]*?)```/.exec(section('Messages'));
    assert.ok(json, 'the section has a JSON example');
    assert.deepEqual(JSON.parse(json[1]), { experimental: SHOWS_RESULTS });
  });

  it('names the client-side preview command the code action uses', () => {
    assert.match(section('Code actions'), /command `funcforge\.previewProposal`, handled by the client/);
  });
});
