// Real interpreters and real folders: the checks the extension runs before it starts the server.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { funcforgeCheckout, importProblem, isolatedCode, moduleArgs } from '../src/pythonCheck';

const root = mkdtempSync(path.join(tmpdir(), 'funcforge-vscode-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('importProblem', () => {
  it('is silent when the module imports', async () => {
    assert.equal(await importProblem('python3', 'json', root, process.env), undefined);
  });

  it("names the exception when it does not (that's what the user is told)", async () => {
    assert.equal(
      await importProblem('python3', 'funcforge_no_such_module', root, process.env),
      "ModuleNotFoundError: No module named 'funcforge_no_such_module'",
    );
  });

  it('reports a missing interpreter', async () => {
    const missing = path.join(root, 'no', 'python');
    assert.equal(await importProblem(missing, 'json', root, process.env), `${missing} was not found`);
  });

  it('runs with the given environment', async () => {
    const envCheck = 'import os; assert os.environ["FF_MARK"] == "1"';
    assert.equal(await importProblem('python3', 'json', root, { ...process.env, FF_MARK: '1' }), undefined);
    const out = execFileSync('python3', ['-c', isolatedCode(envCheck)], {
      env: { ...process.env, FF_MARK: '1' },
    });
    assert.equal(String(out), '');
  });

  it("never imports a file of the folder it runs in (a workspace's json.py or contextlib.py)", async () => {
    const hostile = mkdtempSync(path.join(root, 'hostile-'));
    const marker = path.join(hostile, 'ran');
    for (const name of ['json', 'contextlib', 'runpy', 'funcforge_local_mod']) {
      writeFileSync(
        path.join(hostile, `${name}.py`),
        `open(${JSON.stringify(marker)}, "w").write("${name}")\n`,
      );
    }
    assert.equal(await importProblem('python3', 'json', hostile, process.env), undefined);
    assert.match(
      (await importProblem('python3', 'funcforge_local_mod', hostile, process.env)) ?? '',
      /ModuleNotFoundError/,
    );
    // The server's command line: `python -m json.tool` run the same way, in that folder.
    const out = execFileSync('python3', moduleArgs('json.tool'), { cwd: hostile, input: '{"a": 1}' });
    assert.match(String(out), /"a": 1/);
    assert.equal(existsSync(marker), false);
  });
});

describe('funcforgeCheckout', () => {
  it('finds the funcforge project above a sample workspace', async () => {
    const repo = path.join(root, 'repo');
    const sample = path.join(repo, 'samples', 'math-tools');
    mkdirSync(sample, { recursive: true });
    writeFileSync(path.join(repo, 'pyproject.toml'), '[project]\nname = "funcforge"\n');
    writeFileSync(path.join(sample, 'pyproject.toml'), '[project]\nname = "math-tools"\n[tool.funcforge]\n');
    assert.equal(await funcforgeCheckout(sample), repo);
    assert.equal(await funcforgeCheckout(repo), repo);
  });

  it('finds nothing outside one', async () => {
    const other = path.join(root, 'other', 'agent');
    mkdirSync(other, { recursive: true });
    assert.equal(await funcforgeCheckout(other), undefined);
  });
});
