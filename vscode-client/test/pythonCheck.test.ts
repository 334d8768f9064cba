// Real interpreters and real folders: the checks the extension runs before it starts the server.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { funcforgeCheckout, importProblem } from '../src/pythonCheck';

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

  it('runs in the given folder with the given environment', async () => {
    writeFileSync(path.join(root, 'local_mod_ff.py'), 'import os\nassert os.environ["FF_MARK"] == "1"\n');
    assert.equal(
      await importProblem('python3', 'local_mod_ff', root, { ...process.env, FF_MARK: '1' }),
      undefined,
    );
    assert.match(
      (await importProblem('python3', 'local_mod_ff', root, { ...process.env, FF_MARK: '0' })) ?? '',
      /AssertionError/,
    );
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
