/**
 * LSP `$/progress` reports carry an absolute percentage; VS Code's progress
 * API wants increments. This turns one into the other (never backwards). Pure.
 */

export interface ProgressStep {
  message?: string;
  increment?: number;
}

export class PercentageTracker {
  private reported = 0;

  /** The step to hand to `progress.report` for an LSP report. */
  step(percentage: number | undefined, message: string | undefined): ProgressStep {
    const step: ProgressStep = {};
    if (message !== undefined) step.message = message;
    if (typeof percentage === 'number' && Number.isFinite(percentage)) {
      const target = Math.max(0, Math.min(percentage, 100));
      const delta = Math.max(0, target - this.reported);
      this.reported += delta;
      if (delta > 0) step.increment = delta;
    }
    return step;
  }

  get total(): number {
    return this.reported;
  }
}

let counter = 0;

/** A fresh work-done token for a request this client makes. */
export function newProgressToken(prefix = 'funcforge'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}
