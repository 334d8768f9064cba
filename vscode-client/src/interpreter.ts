/**
 * Which Python runs the language server, and what to tell the user when
 * funcforge is not importable there. Pure: the caller asks the Python
 * extension and the file system, this module decides.
 */

export type InterpreterSource = 'setting' | 'python-extension' | 'default';

export interface InterpreterChoice {
  command: string;
  source: InterpreterSource;
  /** Why a candidate was passed over (logged), if one was. */
  note?: string;
}

export interface InterpreterInputs {
  /** `funcforge.python`, already expanded. */
  setting?: string;
  /** The Python extension's active interpreter, when that extension is installed. */
  pythonExtension?: string;
  trusted: boolean;
  /** Absolute paths of the workspace folders. */
  workspaceFolders: readonly string[];
}

export const DEFAULT_PYTHON = 'python3';

/** True when `file` is `folder` or lies inside it (either path separator). */
export function isInside(file: string, folder: string): boolean {
  const norm = (p: string): string => p.replace(/\\/g, '/').replace(/\/+$/, '');
  const f = norm(file);
  const d = norm(folder);
  return f === d || f.startsWith(d + '/');
}

/**
 * The setting wins, then the Python extension's environment, then `python3`.
 * In an untrusted workspace an interpreter inside the workspace (say
 * `.venv/bin/python`) is workspace code, so it is passed over there.
 */
export function chooseInterpreter(inputs: InterpreterInputs): InterpreterChoice {
  if (inputs.setting !== undefined && inputs.setting.length > 0) {
    return { command: inputs.setting, source: 'setting' };
  }
  const fromExtension = inputs.pythonExtension;
  if (fromExtension !== undefined && fromExtension.length > 0) {
    const inWorkspace = inputs.workspaceFolders.some((folder) => isInside(fromExtension, folder));
    if (inputs.trusted || !inWorkspace) {
      return { command: fromExtension, source: 'python-extension' };
    }
    return {
      command: DEFAULT_PYTHON,
      source: 'default',
      note: `not using ${fromExtension} from the Python extension: it lies inside an untrusted workspace`,
    };
  }
  return { command: DEFAULT_PYTHON, source: 'default' };
}

/** Quotes one word for a POSIX shell, or for PowerShell when `windows`. */
export function shellQuote(word: string, windows = false): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) {
    return word;
  }
  if (windows) {
    return `'${word.replace(/'/g, "''")}'`;
  }
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** True when a pyproject.toml's text declares the project `funcforge` itself. */
export function isFuncforgePyproject(text: string): boolean {
  let inProject = false;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line.startsWith('[')) {
      inProject = line === '[project]';
      continue;
    }
    if (inProject && /^name\s*=\s*["']funcforge["']\s*(#.*)?$/.test(line)) {
      return true;
    }
  }
  return false;
}

/**
 * The command that makes funcforge importable by `python`: an editable install
 * of the funcforge checkout when the workspace is inside one, else from PyPI.
 */
export function installCommand(python: string, repoRoot?: string, windows = false): string {
  const target = repoRoot !== undefined ? `-e ${shellQuote(repoRoot, windows)}` : 'funcforge';
  const quoted = shellQuote(python, windows);
  // PowerShell runs a quoted program name only after the call operator.
  const program = windows && quoted !== python ? `& ${quoted}` : quoted;
  return `${program} -m pip install ${target}`;
}

/** The message shown when `import funcforge` fails. */
export function notImportableMessage(
  python: string,
  source: InterpreterSource,
  detail: string,
  install: string,
): string {
  const from =
    source === 'setting'
      ? ' (from the setting funcforge.python)'
      : source === 'python-extension'
        ? " (the Python extension's active environment)"
        : '';
  const why = detail.length > 0 ? `: ${detail}` : '';
  return `funcforge is not importable by ${python}${from}${why}. Run: ${install}`;
}

/** Last non-empty line of a process's stderr (the exception of a failed import). */
export function lastLine(text: string): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return lines.length > 0 ? lines[lines.length - 1] : '';
}
