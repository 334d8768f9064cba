/**
 * Checks run before the server starts, with real subprocesses and files:
 * is funcforge importable by the chosen interpreter, and is the workspace
 * inside a funcforge checkout (then `pip install -e` is the fix)? Node only,
 * no `vscode`, so the tests run them for real.
 */

import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { isFuncforgePyproject, lastLine } from './interpreter';

/** The funcforge checkout that contains `folder`, if any (for `pip install -e`). */
export async function funcforgeCheckout(folder: string): Promise<string | undefined> {
  let dir = folder;
  for (let depth = 0; depth < 12; depth++) {
    try {
      const text = await fs.readFile(path.join(dir, 'pyproject.toml'), 'utf8');
      if (isFuncforgePyproject(text)) {
        return dir;
      }
    } catch {
      // no pyproject.toml here: keep walking up
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      break;
    }
    dir = parent;
  }
  return undefined;
}

/**
 * Python code for `python -c` that first takes the current folder off the
 * import path (what `-P` does on Python 3.11+, here for 3.10 too), then runs
 * `code`. The server and the checks run in the workspace folder, and a file
 * there named like a module (`contextlib.py`, `funcforge.py`) must never be
 * imported: opening a repository would run its code. Only `sys`, built in,
 * is imported before the path is cleaned.
 */
export function isolatedCode(code: string): string {
  return `import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; ${code}`;
}

/** Arguments that run `python -m <module> <args>` without the current folder on the import path. */
export function moduleArgs(module: string, ...args: string[]): string[] {
  return [
    '-c',
    isolatedCode(
      `import runpy; runpy.run_module(${JSON.stringify(module)}, run_name='__main__', alter_sys=True)`,
    ),
    ...args,
  ];
}

/**
 * Runs `python -c "import <module>"` (the current folder off the import path);
 * resolves to why it failed (the exception's last line, or that the
 * interpreter is missing), or `undefined`.
 */
export function importProblem(
  python: string,
  module: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      python,
      ['-c', isolatedCode(`import ${module}`)],
      { cwd, env, timeout: 60_000 },
      (error, _stdout, stderr) => {
        if (error === null) {
          resolve(undefined);
        } else if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          resolve(`${python} was not found`);
        } else {
          resolve(lastLine(String(stderr)) || error.message);
        }
      },
    );
  });
}
