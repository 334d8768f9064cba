/**
 * The shapes the language server sends (docs/lsp.md), and checked parsers for
 * them: a server of another version must produce a clear error, not a
 * `TypeError` deep in a view. Pure.
 */

import { SERVER_COMMANDS } from './constants';

export type ServerState = 'idle' | 'indexing' | 'optimizing' | 'converged' | 'error';
export const SERVER_STATES: readonly string[] = ['idle', 'indexing', 'optimizing', 'converged', 'error'];

/** The `funcforge/status` notification. */
export interface Status {
  state: ServerState;
  message?: string;
  bestScore?: number;
  bestN?: number;
  step?: number;
  proposals?: number;
  executionAllowed?: boolean;
  /** Where tool code runs: `bwrap`, or `process (weaker: no OS sandbox)` when opted in. */
  sandbox?: string;
}

export interface ToolEntry {
  name: string;
  uri: string;
  /** The `def` line, 1-based (as `FunctionSpec.location`). */
  line: number;
  calls: number;
  errors: number;
  errorRate: number;
  passRate?: number;
}

export interface ProposalEntry {
  id: string;
  title: string;
  status: string;
  summary: string;
  functions: string[];
  created?: string;
}

export interface VersionEntry {
  commit: string;
  short: string;
  subject: string;
  step?: number;
  optimizer: boolean;
  score?: number;
  n?: number;
  isBest: boolean;
  isHead: boolean;
}

export interface History {
  versions: VersionEntry[];
  best: VersionEntry | null;
}

export interface PreviewFile {
  uri: string;
  path: string;
  oldText: string;
  newText: string;
}

export interface ProposalPreview {
  id: string;
  title: string;
  summary: string;
  files: PreviewFile[];
}

export interface ApplyResult {
  commit: string;
  files: string[];
  /** Open files whose buffer equals the committed text: the client may save them. */
  saveable: string[];
  /** Another click had applied it already: nothing was done. */
  already: boolean;
}

/** A reply that does not have the documented shape. */
export class ProtocolError extends Error {
  constructor(what: string, problem: string) {
    super(`unexpected reply to ${what}: ${problem}`);
    this.name = 'ProtocolError';
  }
}

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function obj(value: unknown, what: string, where: string): Obj {
  if (!isObj(value)) {
    throw new ProtocolError(what, `${where} is not an object`);
  }
  return value;
}

function str(o: Obj, key: string, what: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string') {
    throw new ProtocolError(what, `${where}.${key} is not a string`);
  }
  return v;
}

function optStr(o: Obj, key: string): string | undefined {
  const v = o[key];
  return typeof v === 'string' ? v : undefined;
}

function num(o: Obj, key: string, what: string, where: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new ProtocolError(what, `${where}.${key} is not a number`);
  }
  return v;
}

function optNum(o: Obj, key: string): number | undefined {
  const v = o[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function arr(o: Obj, key: string, what: string, where: string): unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) {
    throw new ProtocolError(what, `${where}.${key} is not a list`);
  }
  return v;
}

function strings(o: Obj, key: string, what: string, where: string): string[] {
  return arr(o, key, what, where).map((item, i) => {
    if (typeof item !== 'string') {
      throw new ProtocolError(what, `${where}.${key}[${i}] is not a string`);
    }
    return item;
  });
}

export function parseStatus(value: unknown): Status {
  const what = 'funcforge/status';
  const o = obj(value, what, 'params');
  const state = str(o, 'state', what, 'params');
  if (!SERVER_STATES.includes(state)) {
    throw new ProtocolError(what, `unknown state "${state}"`);
  }
  const status: Status = { state: state as ServerState };
  const message = optStr(o, 'message');
  if (message !== undefined && message.length > 0) status.message = message;
  const bestScore = optNum(o, 'bestScore');
  if (bestScore !== undefined) status.bestScore = bestScore;
  const bestN = optNum(o, 'bestN');
  if (bestN !== undefined) status.bestN = bestN;
  const step = optNum(o, 'step');
  if (step !== undefined) status.step = step;
  const proposals = optNum(o, 'proposals');
  if (proposals !== undefined) status.proposals = proposals;
  if (typeof o.executionAllowed === 'boolean') status.executionAllowed = o.executionAllowed;
  if (typeof o.sandbox === 'string') status.sandbox = o.sandbox;
  return status;
}

export function parseTools(value: unknown): ToolEntry[] {
  const what = 'funcforge.tools';
  const o = obj(value, what, 'result');
  return arr(o, 'tools', what, 'result').map((item, i) => {
    const where = `tools[${i}]`;
    const t = obj(item, what, where);
    const entry: ToolEntry = {
      name: str(t, 'name', what, where),
      uri: str(t, 'uri', what, where),
      line: num(t, 'line', what, where),
      calls: num(t, 'calls', what, where),
      errors: num(t, 'errors', what, where),
      errorRate: num(t, 'errorRate', what, where),
    };
    const passRate = optNum(t, 'passRate');
    if (passRate !== undefined) entry.passRate = passRate;
    return entry;
  });
}

export function parseProposals(value: unknown): ProposalEntry[] {
  const what = 'funcforge.proposals';
  const o = obj(value, what, 'result');
  return arr(o, 'proposals', what, 'result').map((item, i) => {
    const where = `proposals[${i}]`;
    const p = obj(item, what, where);
    const entry: ProposalEntry = {
      id: str(p, 'id', what, where),
      title: str(p, 'title', what, where),
      status: str(p, 'status', what, where),
      summary: optStr(p, 'summary') ?? '',
      functions: Array.isArray(p.functions) ? strings(p, 'functions', what, where) : [],
    };
    const created = optStr(p, 'created');
    if (created !== undefined) entry.created = created;
    return entry;
  });
}

function parseVersion(item: unknown, what: string, where: string): VersionEntry {
  const v = obj(item, what, where);
  const commit = str(v, 'commit', what, where);
  const entry: VersionEntry = {
    commit,
    short: optStr(v, 'short') ?? commit.slice(0, 7),
    subject: optStr(v, 'subject') ?? '',
    optimizer: v.optimizer === true,
    isBest: v.isBest === true,
    isHead: v.isHead === true,
  };
  const step = optNum(v, 'step');
  if (step !== undefined) entry.step = step;
  const score = optNum(v, 'score');
  if (score !== undefined) entry.score = score;
  const n = optNum(v, 'n');
  if (n !== undefined) entry.n = n;
  return entry;
}

export function parseHistory(value: unknown): History {
  const what = 'funcforge.history';
  const o = obj(value, what, 'result');
  const versions = arr(o, 'versions', what, 'result').map((item, i) =>
    parseVersion(item, what, `versions[${i}]`),
  );
  const best = o.best === null || o.best === undefined ? null : parseVersion(o.best, what, 'best');
  return { versions, best };
}

export function parsePreview(value: unknown): ProposalPreview {
  const what = 'funcforge.proposalPreview';
  const o = obj(value, what, 'result');
  return {
    id: str(o, 'id', what, 'result'),
    title: optStr(o, 'title') ?? '',
    summary: optStr(o, 'summary') ?? '',
    files: arr(o, 'files', what, 'result').map((item, i) => {
      const where = `files[${i}]`;
      const f = obj(item, what, where);
      return {
        uri: str(f, 'uri', what, where),
        path: str(f, 'path', what, where),
        oldText: str(f, 'oldText', what, where),
        newText: str(f, 'newText', what, where),
      };
    }),
  };
}

export function parseApplyResult(value: unknown): ApplyResult {
  const what = 'funcforge.applyProposal';
  const o = obj(value, what, 'result');
  return {
    commit: str(o, 'commit', what, 'result'),
    files: strings(o, 'files', what, 'result'),
    saveable: o.saveable === undefined ? [] : strings(o, 'saveable', what, 'result'),
    already: o.already === true,
  };
}

export function parseOptimizeResult(value: unknown): string[] {
  const what = 'funcforge.optimize';
  return strings(obj(value, what, 'result'), 'proposals', what, 'result');
}

export function parseRollbackResult(value: unknown): string[] {
  const what = 'funcforge.rollback';
  return strings(obj(value, what, 'result'), 'commits', what, 'result');
}

/** A button offered with an action's message. */
export type ResultAction = { title: 'Preview'; proposal: string } | { title: 'Show proposals' };

/** The one message of a server command's result, as the extension shows it. */
export interface ResultMessage {
  text: string;
  level: 'error' | 'warning' | 'info';
  actions: ResultAction[];
}

/**
 * The `message` an action's result carries (docs/lsp.md "Messages"): the
 * server does not show it to a client that declares `showsResults`, so the
 * extension shows it, with buttons. `undefined` for results without one.
 */
export function resultMessage(command: string, value: unknown): ResultMessage | undefined {
  if (!isObj(value) || typeof value.message !== 'string' || value.message.length === 0) {
    return undefined;
  }
  const type = value.messageType;
  const level = type === 1 ? 'error' : type === 2 ? 'warning' : 'info';
  const actions: ResultAction[] = [];
  const proposals = value.proposals;
  if (command === SERVER_COMMANDS.optimize && Array.isArray(proposals) && typeof proposals[0] === 'string') {
    actions.push({ title: 'Preview', proposal: proposals[0] }, { title: 'Show proposals' });
  }
  return { text: value.message, level, actions };
}

/** The client capability saying the extension shows results itself (docs/lsp.md "Messages"). */
export const SHOWS_RESULTS = { funcforge: { showsResults: true } } as const;

/** `experimental` with `SHOWS_RESULTS` added, other entries kept. */
export function withShowsResults(experimental: unknown): Record<string, unknown> {
  return { ...(isObj(experimental) ? experimental : {}), ...SHOWS_RESULTS };
}

/**
 * The proposal id in a command argument: `"2f1c9e"`, `{id: "2f1c9e"}`, or a
 * tree node carrying `proposalId`. Code actions and menus pass all three.
 */
export function proposalIdOf(arg: unknown): string | undefined {
  if (typeof arg === 'string' && arg.length > 0) {
    return arg;
  }
  if (isObj(arg)) {
    for (const key of ['id', 'proposalId']) {
      const v = arg[key];
      if (typeof v === 'string' && v.length > 0) {
        return v;
      }
    }
  }
  return undefined;
}

/** The commit in a command argument: a sha string, `{commit}`, or `{to}`. */
export function commitOf(arg: unknown): string | undefined {
  if (typeof arg === 'string' && arg.length > 0) {
    return arg;
  }
  if (isObj(arg)) {
    for (const key of ['commit', 'to']) {
      const v = arg[key];
      if (typeof v === 'string' && v.length > 0) {
        return v;
      }
    }
  }
  return undefined;
}

/** The function in a command argument: a name, `{function}`, or a tool node (`toolName`). */
export function functionNameOf(arg: unknown): string | undefined {
  if (typeof arg === 'string' && arg.length > 0) {
    return arg;
  }
  if (isObj(arg)) {
    for (const key of ['function', 'toolName']) {
      const v = arg[key];
      if (typeof v === 'string' && v.length > 0) {
        return v;
      }
    }
  }
  return undefined;
}
