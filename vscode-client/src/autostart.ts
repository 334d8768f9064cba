/**
 * Whether to start the server as soon as the extension activates: only in a
 * workspace that uses funcforge, so a Python project without it gets no
 * error about a missing package. Commands and views start it on demand. Pure.
 */

export interface WorkspaceSigns {
  hasFuncforgeToml: boolean;
  hasStateDir: boolean;
  /** Trace files where the default globs look (`traces/**\/*.jsonl`) next to a `tools/` folder. */
  hasDefaultLayout: boolean;
  /** pyproject.toml's text, when there is one. */
  pyproject?: string;
  /** Whether any funcforge.* setting is set for this workspace or user. */
  hasSettings: boolean;
}

export function pyprojectUsesFuncforge(text: string): boolean {
  return /^\s*\[tool\.funcforge(\.[A-Za-z0-9_-]+)?\]\s*(#.*)?$/m.test(text);
}

export function shouldAutoStart(signs: WorkspaceSigns): boolean {
  return (
    signs.hasFuncforgeToml ||
    signs.hasStateDir ||
    signs.hasDefaultLayout ||
    signs.hasSettings ||
    (signs.pyproject !== undefined && pyprojectUsesFuncforge(signs.pyproject))
  );
}
