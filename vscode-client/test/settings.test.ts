import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  configurationItem,
  executionState,
  relativeGlob,
  resolveSettings,
  serverSettings,
  substituteVariables,
  type VariableContext,
} from '../src/settings';

const ctx: VariableContext = {
  workspaceFolder: '/home/ada/agent',
  userHome: '/home/ada',
  env: { VENV: '/opt/venv', EMPTY: '' },
};

describe('substituteVariables', () => {
  it('expands the workspace folder, its basename, the home folder and env variables', () => {
    assert.equal(
      substituteVariables('${workspaceFolder}/.venv/bin/python', ctx),
      '/home/ada/agent/.venv/bin/python',
    );
    assert.equal(substituteVariables('${workspaceFolderBasename}', ctx), 'agent');
    assert.equal(substituteVariables('${userHome}/py', ctx), '/home/ada/py');
    assert.equal(substituteVariables('${env:VENV}/bin/python', ctx), '/opt/venv/bin/python');
    assert.equal(substituteVariables('${env:MISSING}x', ctx), 'x');
  });

  it('expands a leading ~ only', () => {
    assert.equal(substituteVariables('~/venv/bin/python', ctx), '/home/ada/venv/bin/python');
    assert.equal(substituteVariables('~', ctx), '/home/ada');
    assert.equal(substituteVariables('/a/~/b', ctx), '/a/~/b');
    assert.equal(substituteVariables('~other/x', ctx), '~other/x');
  });

  it('keeps and reports variables it cannot expand', () => {
    const problems: string[] = [];
    const out = substituteVariables(
      '${config:x}/${workspaceFolder}',
      { env: {} },
      problems,
      'funcforge.python',
    );
    assert.equal(out, '${config:x}/${workspaceFolder}');
    assert.deepEqual(problems, [
      'funcforge.python: cannot expand ${config:x}',
      'funcforge.python: cannot expand ${workspaceFolder}',
    ]);
  });
});

describe('relativeGlob', () => {
  it('strips the workspace folder from an absolute glob inside it', () => {
    assert.equal(relativeGlob('/home/ada/agent/tools/**/*.py', '/home/ada/agent'), 'tools/**/*.py');
    assert.equal(relativeGlob('/home/ada/agent/tools/*.py', '/home/ada/agent/'), 'tools/*.py');
    assert.equal(relativeGlob('C:\\w\\tools\\*.py', 'C:\\w'), 'tools\\*.py');
  });

  it('leaves other globs alone', () => {
    assert.equal(relativeGlob('/home/ada/agent2/t.py', '/home/ada/agent'), '/home/ada/agent2/t.py');
    assert.equal(relativeGlob('tools/*.py', '/home/ada/agent'), 'tools/*.py');
    assert.equal(relativeGlob('tools/*.py', undefined), 'tools/*.py');
  });
});

describe('resolveSettings', () => {
  it('uses defaults when nothing is set', () => {
    const s = resolveSettings({}, ctx);
    assert.deepEqual(s, { allowExecution: true, problems: [] });
  });

  it('treats empty strings and lists as unset', () => {
    const s = resolveSettings({ python: '  ', model: '', baseUrl: '', tools: [], traces: [], llm: '' }, ctx);
    assert.deepEqual(s, { allowExecution: true, problems: [] });
  });

  it('resolves every key', () => {
    const s = resolveSettings(
      {
        python: '${workspaceFolder}/.venv/bin/python',
        model: ' gpt-4o-mini ',
        baseUrl: 'http://127.0.0.1:8000/v1',
        allowExecution: false,
        tools: ['${workspaceFolder}/tools/**/*.py', 'extra/*.py'],
        traces: ['logs/*.jsonl'],
        llm: 'replay:${workspaceFolder}/t.jsonl',
        errorRateWarning: 0.35,
      },
      ctx,
    );
    assert.deepEqual(s, {
      python: '/home/ada/agent/.venv/bin/python',
      model: 'gpt-4o-mini',
      baseUrl: 'http://127.0.0.1:8000/v1',
      allowExecution: false,
      tools: ['tools/**/*.py', 'extra/*.py'],
      traces: ['logs/*.jsonl'],
      llm: 'replay:/home/ada/agent/t.jsonl',
      errorRateWarning: 0.35,
      problems: [],
    });
  });

  it('drops values of the wrong type and says which setting', () => {
    const s = resolveSettings(
      {
        python: 3,
        allowExecution: 'yes',
        tools: 'tools/*.py',
        traces: ['ok/*.jsonl', 7, ''],
        errorRateWarning: 2,
      },
      ctx,
    );
    assert.equal(s.python, undefined);
    assert.equal(s.allowExecution, true);
    assert.equal(s.tools, undefined);
    assert.deepEqual(s.traces, ['ok/*.jsonl']);
    assert.equal(s.errorRateWarning, undefined);
    assert.deepEqual(s.problems, [
      'funcforge.python: expected a string, got number; ignored',
      'funcforge.allowExecution: expected true or false, got string; using true',
      'funcforge.tools: expected a list of globs, got string; ignored',
      'funcforge.traces[1]: expected a non-empty string; ignored',
      'funcforge.traces[2]: expected a non-empty string; ignored',
      'funcforge.errorRateWarning: expected a number from 0 to 1; ignored',
    ]);
  });

  it('rejects a base URL that is not http(s) and an llm that is not replay:FILE', () => {
    const s = resolveSettings({ baseUrl: 'file:///etc/passwd', llm: 'openai' }, ctx);
    assert.equal(s.baseUrl, undefined);
    assert.equal(s.llm, undefined);
    assert.deepEqual(s.problems, [
      'funcforge.baseUrl: "file:///etc/passwd" is not an http(s) URL; ignored',
      'funcforge.llm: "openai" is not of the form replay:FILE; ignored',
    ]);
  });
});

describe('execution and the server options', () => {
  const on = resolveSettings({ model: 'm' }, ctx);
  const off = resolveSettings({ allowExecution: false }, ctx);

  it('allows execution only in a trusted workspace with the setting on', () => {
    assert.deepEqual(executionState(on, true), { allowed: true });
    const untrusted = executionState(on, false);
    assert.equal(untrusted.allowed, false);
    assert.match(untrusted.reason ?? '', /not trusted/);
    const disabled = executionState(off, true);
    assert.equal(disabled.allowed, false);
    assert.match(disabled.reason ?? '', /funcforge\.allowExecution is false/);
  });

  it('hands over only the keys that are set, with allowExecution tied to trust', () => {
    assert.deepEqual(serverSettings(on, true), { allowExecution: true, model: 'm' });
    assert.deepEqual(serverSettings(on, false), { allowExecution: false, model: 'm' });
    assert.deepEqual(serverSettings(off, true), { allowExecution: false });
  });

  it('answers workspace/configuration for its own section only', () => {
    const opts = serverSettings(on, false);
    assert.deepEqual(configurationItem('funcforge', opts), { ours: true, value: opts });
    assert.deepEqual(configurationItem('funcforge.allowExecution', opts), { ours: true, value: false });
    assert.deepEqual(configurationItem('funcforge.baseUrl', opts), { ours: true, value: null });
    assert.deepEqual(configurationItem('python', opts), { ours: false });
    assert.deepEqual(configurationItem(undefined, opts), { ours: false });
  });
});
