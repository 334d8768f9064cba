/**
 * Reads the `funcforge.*` settings into the options the language server takes
 * (docs/lsp.md, "Settings"): variable substitution, validation, and the rule
 * that execution is allowed only in a trusted workspace. Pure, so it is tested
 * without VS Code.
 */

/** Setting keys under `funcforge.` that this extension reads. */
export const SETTING_KEYS = [
  'python',
  'model',
  'baseUrl',
  'allowExecution',
  'tools',
  'traces',
  'llm',
  'errorRateWarning',
  'sandbox',
] as const;

export type SettingKey = (typeof SETTING_KEYS)[number];

/** Settings as VS Code hands them over: anything may have the wrong type. */
export type RawSettings = Partial<Record<SettingKey, unknown>>;

/** What `${...}` variables expand to. */
export interface VariableContext {
  workspaceFolder?: string;
  userHome?: string;
  env: Readonly<Record<string, string | undefined>>;
}

/** Settings after substitution and validation; unset keys are left out. */
export interface ResolvedSettings {
  python?: string;
  model?: string;
  baseUrl?: string;
  /** The setting itself; see `executionAllowed` for the effective value. */
  allowExecution: boolean;
  tools?: string[];
  traces?: string[];
  llm?: string;
  errorRateWarning?: number;
  /** `process` opts into the weaker process sandbox (docs/sandbox.md). */
  sandbox?: 'bwrap' | 'process';
  /** One line per ignored value, naming the setting. */
  problems: string[];
}

/** The options object of docs/lsp.md: `initializationOptions` and `workspace/configuration`. */
export interface ServerSettings {
  allowExecution: boolean;
  model?: string;
  baseUrl?: string;
  tools?: string[];
  traces?: string[];
  llm?: string;
  errorRateWarning?: number;
  sandbox?: 'bwrap' | 'process';
}

const VARIABLE = /\$\{([^}]*)\}/g;

/**
 * Expands `${workspaceFolder}`, `${workspaceFolderBasename}`, `${userHome}`,
 * `${env:NAME}` and a leading `~`. Unknown or unavailable variables are kept
 * as written and reported through `problems`.
 */
export function substituteVariables(
  value: string,
  ctx: VariableContext,
  problems: string[] = [],
  where = 'setting',
): string {
  let out = value.replace(VARIABLE, (whole: string, name: string) => {
    if (name === 'workspaceFolder' && ctx.workspaceFolder !== undefined) {
      return ctx.workspaceFolder;
    }
    if (name === 'workspaceFolderBasename' && ctx.workspaceFolder !== undefined) {
      return basename(ctx.workspaceFolder);
    }
    if (name === 'userHome' && ctx.userHome !== undefined) {
      return ctx.userHome;
    }
    if (name.startsWith('env:')) {
      return ctx.env[name.slice(4)] ?? '';
    }
    problems.push(`${where}: cannot expand ${whole}`);
    return whole;
  });
  if (ctx.userHome !== undefined && (out === '~' || out.startsWith('~/'))) {
    out = ctx.userHome + out.slice(1);
  }
  return out;
}

function basename(path: string): string {
  const parts = path.split(/[\\/]/).filter((p) => p.length > 0);
  return parts.length > 0 ? parts[parts.length - 1] : path;
}

/** A glob given as `${workspaceFolder}/x/*.py` becomes `x/*.py`: the server wants relative globs. */
export function relativeGlob(glob: string, workspaceFolder: string | undefined): string {
  if (workspaceFolder === undefined) {
    return glob;
  }
  const folder = workspaceFolder.replace(/[\\/]+$/, '');
  for (const sep of ['/', '\\']) {
    if (glob.startsWith(folder + sep)) {
      return glob.slice(folder.length + 1);
    }
  }
  return glob;
}

function optionalString(raw: unknown, key: SettingKey, problems: string[]): string | undefined {
  if (raw === undefined || raw === null) {
    return undefined;
  }
  if (typeof raw !== 'string') {
    problems.push(`funcforge.${key}: expected a string, got ${typeName(raw)}; ignored`);
    return undefined;
  }
  const trimmed = raw.trim();
  return trimmed.length > 0 ? trimmed : undefined;
}

function optionalGlobs(
  raw: unknown,
  key: SettingKey,
  ctx: VariableContext,
  problems: string[],
): string[] | undefined {
  if (raw === undefined || raw === null) {
    return undefined;
  }
  if (!Array.isArray(raw)) {
    problems.push(`funcforge.${key}: expected a list of globs, got ${typeName(raw)}; ignored`);
    return undefined;
  }
  const globs: string[] = [];
  raw.forEach((item: unknown, index: number) => {
    if (typeof item !== 'string' || item.trim().length === 0) {
      problems.push(`funcforge.${key}[${index}]: expected a non-empty string; ignored`);
      return;
    }
    const expanded = substituteVariables(item.trim(), ctx, problems, `funcforge.${key}`);
    globs.push(relativeGlob(expanded, ctx.workspaceFolder));
  });
  return globs.length > 0 ? globs : undefined;
}

function typeName(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  return Array.isArray(value) ? 'a list' : typeof value;
}

/** Validates and expands the raw settings. Never throws: bad values are dropped and reported. */
export function resolveSettings(raw: RawSettings, ctx: VariableContext): ResolvedSettings {
  const problems: string[] = [];
  const resolved: ResolvedSettings = { allowExecution: true, problems };

  const python = optionalString(raw.python, 'python', problems);
  if (python !== undefined) {
    resolved.python = substituteVariables(python, ctx, problems, 'funcforge.python');
  }

  const model = optionalString(raw.model, 'model', problems);
  if (model !== undefined) {
    resolved.model = model;
  }

  const baseUrl = optionalString(raw.baseUrl, 'baseUrl', problems);
  if (baseUrl !== undefined) {
    const expanded = substituteVariables(baseUrl, ctx, problems, 'funcforge.baseUrl');
    if (isHttpUrl(expanded)) {
      resolved.baseUrl = expanded;
    } else {
      problems.push(`funcforge.baseUrl: "${expanded}" is not an http(s) URL; ignored`);
    }
  }

  if (raw.allowExecution !== undefined && raw.allowExecution !== null) {
    if (typeof raw.allowExecution === 'boolean') {
      resolved.allowExecution = raw.allowExecution;
    } else {
      problems.push(
        `funcforge.allowExecution: expected true or false, got ${typeName(raw.allowExecution)}; using true`,
      );
    }
  }

  const tools = optionalGlobs(raw.tools, 'tools', ctx, problems);
  if (tools !== undefined) {
    resolved.tools = tools;
  }
  const traces = optionalGlobs(raw.traces, 'traces', ctx, problems);
  if (traces !== undefined) {
    resolved.traces = traces;
  }

  const llm = optionalString(raw.llm, 'llm', problems);
  if (llm !== undefined) {
    const match = /^replay:(.+)$/.exec(llm);
    if (match === null) {
      problems.push(`funcforge.llm: "${llm}" is not of the form replay:FILE; ignored`);
    } else {
      resolved.llm = 'replay:' + substituteVariables(match[1], ctx, problems, 'funcforge.llm');
    }
  }

  const rate = raw.errorRateWarning;
  if (rate !== undefined && rate !== null) {
    if (typeof rate === 'number' && Number.isFinite(rate) && rate >= 0 && rate <= 1) {
      resolved.errorRateWarning = rate;
    } else {
      problems.push('funcforge.errorRateWarning: expected a number from 0 to 1; ignored');
    }
  }

  const sandbox = optionalString(raw.sandbox, 'sandbox', problems);
  if (sandbox === 'bwrap' || sandbox === 'process') {
    resolved.sandbox = sandbox;
  } else if (sandbox !== undefined && sandbox !== '') {
    problems.push(`funcforge.sandbox: "${sandbox}" is not bwrap or process; ignored`);
  }
  return resolved;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/** Whether the server may run workspace code, and why not when it may not. */
export interface ExecutionState {
  allowed: boolean;
  reason?: string;
}

export function executionState(settings: ResolvedSettings, trusted: boolean): ExecutionState {
  if (!trusted) {
    return {
      allowed: false,
      reason:
        'this workspace is not trusted (Restricted Mode); trust it to let funcforge run the replay check',
    };
  }
  if (!settings.allowExecution) {
    return { allowed: false, reason: 'the setting funcforge.allowExecution is false' };
  }
  return { allowed: true };
}

/** The object handed to the server; keys the user did not set are left out so workspace files decide. */
export function serverSettings(settings: ResolvedSettings, trusted: boolean): ServerSettings {
  const out: ServerSettings = { allowExecution: executionState(settings, trusted).allowed };
  if (settings.model !== undefined) out.model = settings.model;
  if (settings.baseUrl !== undefined) out.baseUrl = settings.baseUrl;
  if (settings.tools !== undefined) out.tools = [...settings.tools];
  if (settings.traces !== undefined) out.traces = [...settings.traces];
  if (settings.llm !== undefined) out.llm = settings.llm;
  if (settings.errorRateWarning !== undefined) out.errorRateWarning = settings.errorRateWarning;
  if (settings.sandbox !== undefined) out.sandbox = settings.sandbox;
  return out;
}

/**
 * Answers a `workspace/configuration` item: the whole options object for the
 * section `funcforge`, one value for `funcforge.<key>`, and `undefined` for
 * sections that are not ours (the caller then asks VS Code).
 */
export function configurationItem(
  section: string | undefined,
  settings: ServerSettings,
): { ours: boolean; value?: unknown } {
  if (section === 'funcforge') {
    return { ours: true, value: settings };
  }
  if (section !== undefined && section.startsWith('funcforge.')) {
    const key = section.slice('funcforge.'.length) as keyof ServerSettings;
    return { ours: true, value: settings[key] ?? null };
  }
  return { ours: false };
}
