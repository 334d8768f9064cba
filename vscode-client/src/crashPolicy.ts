/**
 * What to do when the server process dies, and what to say about it: a
 * restart budget (a few restarts within a window, then give up) and the tail
 * of the process's stderr for the message. Pure.
 */

import { lastLine } from './interpreter';

/** Allows `max` restarts within `windowMs`; more than that means the server is broken. */
export class RestartBudget {
  private readonly restarts: number[] = [];

  constructor(
    readonly max = 4,
    readonly windowMs = 3 * 60 * 1000,
  ) {}

  /** Records a crash at `now` and says whether to restart. */
  allow(now: number): boolean {
    while (this.restarts.length > 0 && now - this.restarts[0] > this.windowMs) {
      this.restarts.shift();
    }
    if (this.restarts.length >= this.max) {
      return false;
    }
    this.restarts.push(now);
    return true;
  }
}

/** Keeps the last `limit` characters a process wrote to stderr. */
export class StderrTail {
  private text = '';

  constructor(private readonly limit = 4096) {}

  push(chunk: string): void {
    this.text = (this.text + chunk).slice(-this.limit);
  }

  /** The last non-empty line (usually the exception), or ''. */
  lastLine(): string {
    return lastLine(this.text);
  }
}

/** The message for a server process that exited before or while serving. */
export function exitMessage(
  phase: 'start-up' | 'running',
  code: number | null | undefined,
  signal: string | null | undefined,
  stderrLine: string,
): string {
  const how =
    code !== null && code !== undefined
      ? `with code ${code}`
      : signal
        ? `on signal ${signal}`
        : 'unexpectedly';
  const when = phase === 'start-up' ? 'during start-up' : 'while running';
  return `the funcforge server exited ${how} ${when}${stderrLine ? `: ${stderrLine}` : ''}. See "funcforge: Show logs".`;
}
