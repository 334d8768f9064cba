import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  chooseInterpreter,
  DEFAULT_PYTHON,
  installCommand,
  isFuncforgePyproject,
  isInside,
  lastLine,
  notImportableMessage,
  shellQuote,
} from '../src/interpreter';

describe('chooseInterpreter', () => {
  const folders = ['/work/agent'];

  it('prefers the setting, then the Python extension, then python3', () => {
    assert.deepEqual(
      chooseInterpreter({
        setting: '/opt/py',
        pythonExtension: '/usr/bin/python3.11',
        trusted: true,
        workspaceFolders: folders,
      }),
      { command: '/opt/py', source: 'setting' },
    );
    assert.deepEqual(
      chooseInterpreter({ pythonExtension: '/usr/bin/python3.11', trusted: true, workspaceFolders: folders }),
      { command: '/usr/bin/python3.11', source: 'python-extension' },
    );
    assert.deepEqual(chooseInterpreter({ trusted: true, workspaceFolders: folders }), {
      command: DEFAULT_PYTHON,
      source: 'default',
    });
    assert.equal(
      chooseInterpreter({ setting: '', trusted: true, workspaceFolders: folders }).source,
      'default',
    );
  });

  it('passes over an interpreter inside an untrusted workspace', () => {
    const choice = chooseInterpreter({
      pythonExtension: '/work/agent/.venv/bin/python',
      trusted: false,
      workspaceFolders: folders,
    });
    assert.equal(choice.command, DEFAULT_PYTHON);
    assert.match(choice.note ?? '', /untrusted/);
    assert.equal(
      chooseInterpreter({
        pythonExtension: '/work/agent/.venv/bin/python',
        trusted: true,
        workspaceFolders: folders,
      }).command,
      '/work/agent/.venv/bin/python',
    );
    assert.equal(
      chooseInterpreter({
        pythonExtension: '/work/agent2/bin/python',
        trusted: false,
        workspaceFolders: folders,
      }).command,
      '/work/agent2/bin/python',
    );
  });

  it('isInside compares whole path segments', () => {
    assert.equal(isInside('/work/agent/x', '/work/agent'), true);
    assert.equal(isInside('/work/agent', '/work/agent/'), true);
    assert.equal(isInside('/work/agentx/y', '/work/agent'), false);
    assert.equal(isInside('C:\\w\\a\\python.exe', 'C:\\w\\a'), true);
  });
});

describe('install command', () => {
  it('quotes only what needs quoting', () => {
    assert.equal(shellQuote('/usr/bin/python3'), '/usr/bin/python3');
    assert.equal(shellQuote('/opt/my py/python'), "'/opt/my py/python'");
    assert.equal(shellQuote("/it's/python"), "'/it'\\''s/python'");
    assert.equal(shellQuote("C:\\it's\\python.exe", true), "'C:\\it''s\\python.exe'");
  });

  it('installs from PyPI, or the checkout in editable mode', () => {
    assert.equal(installCommand('python3'), 'python3 -m pip install funcforge');
    assert.equal(
      installCommand('/opt/my py/python', '/src/funcforge'),
      "'/opt/my py/python' -m pip install -e /src/funcforge",
    );
    assert.equal(
      installCommand('C:\\Program Files\\Python\\python.exe', undefined, true),
      "& 'C:\\Program Files\\Python\\python.exe' -m pip install funcforge",
    );
  });

  it('recognises the funcforge project itself', () => {
    assert.equal(isFuncforgePyproject('[project]\nname = "funcforge"\nversion = "0.1.0"\n'), true);
    assert.equal(isFuncforgePyproject("[project]\nname='funcforge'  # us\n"), true);
    assert.equal(isFuncforgePyproject('[project]\nname = "my-agent"\n[tool.x]\nname = "funcforge"\n'), false);
    assert.equal(isFuncforgePyproject('[tool.funcforge]\ntools = ["t/*.py"]\n'), false);
  });

  it('says exactly what to run', () => {
    assert.equal(
      notImportableMessage(
        '/opt/py',
        'setting',
        "ModuleNotFoundError: No module named 'funcforge'",
        '/opt/py -m pip install funcforge',
      ),
      "funcforge is not importable by /opt/py (from the setting funcforge.python): ModuleNotFoundError: No module named 'funcforge'. Run: /opt/py -m pip install funcforge",
    );
    assert.equal(
      notImportableMessage('python3', 'default', '', 'python3 -m pip install funcforge'),
      'funcforge is not importable by python3. Run: python3 -m pip install funcforge',
    );
  });

  it('takes the last line of a traceback', () => {
    assert.equal(
      lastLine('Traceback (most recent call last):\n  File "<string>", line 1\nModuleNotFoundError: x\n\n'),
      'ModuleNotFoundError: x',
    );
    assert.equal(lastLine('  \n'), '');
  });
});
