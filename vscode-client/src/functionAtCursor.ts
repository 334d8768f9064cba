/**
 * "Optimize this function": which tool the cursor is in. The server's
 * `funcforge.tools` gives each tool's file and `def` line; the word at the
 * cursor is the fallback when the server knows no tool in this file. Pure.
 */

import type { ToolEntry } from './protocol';

export interface CursorContext {
  /** The document's URI as a string (`uri.toString()`). */
  uri: string;
  /** 1-based line of the cursor. */
  line: number;
  /** The identifier under the cursor, if any. */
  word?: string;
}

/** Compares two URIs the way VS Code and a Python server may spell them (`%3A` vs `:`). */
export function sameUri(a: string, b: string): boolean {
  const norm = (u: string): string => {
    try {
      return decodeURIComponent(u).replace(/\/+$/, '');
    } catch {
      return u;
    }
  };
  return norm(a) === norm(b);
}

/**
 * The tool named by the word at the cursor; else the nearest tool defined at or
 * above the cursor in this file; else the word itself (the server says if it
 * is no tool); else nothing.
 */
export function functionAtCursor(tools: readonly ToolEntry[], cursor: CursorContext): string | undefined {
  const word =
    cursor.word !== undefined && /^[A-Za-z_][A-Za-z0-9_]*$/.test(cursor.word) ? cursor.word : undefined;
  if (word !== undefined && tools.some((t) => t.name === word)) {
    return word;
  }
  const here = tools.filter((t) => sameUri(t.uri, cursor.uri) && t.line <= cursor.line);
  if (here.length > 0) {
    return here.reduce((best, t) => (t.line > best.line ? t : best)).name;
  }
  const inFile = tools.some((t) => sameUri(t.uri, cursor.uri));
  return inFile ? undefined : word;
}
