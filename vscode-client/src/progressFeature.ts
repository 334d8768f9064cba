/**
 * Shows the server's `$/progress` with a Cancel button. vscode-languageclient
 * 9 shows server progress only in the status bar (`ProgressLocation.Window`),
 * which has no Cancel button; this feature, registered after the built-in one,
 * takes over `window/workDoneProgress/create` and shows a cancellable progress
 * as a notification whose Cancel sends `window/workDoneProgress/cancel`.
 * It also follows tokens the client itself hands out (`workDoneToken`).
 */

import * as vscode from 'vscode';
import type { BaseLanguageClient, FeatureState, StaticFeature } from 'vscode-languageclient';
import {
  type ClientCapabilities,
  type ProgressToken,
  type WorkDoneProgressBegin,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
} from 'vscode-languageclient';
import { PercentageTracker } from './progressMath';

/** One progress token's UI, from `begin` to `end` (or until disposed). */
export class ProgressPart implements vscode.Disposable {
  private readonly tracker = new PercentageTracker();
  private subscription: vscode.Disposable | undefined;
  private progress: vscode.Progress<{ message?: string; increment?: number }> | undefined;
  private finish: (() => void) | undefined;
  private started = false;
  private ended = false;

  constructor(
    private readonly client: BaseLanguageClient,
    readonly token: ProgressToken,
    private readonly log: vscode.LogOutputChannel,
    private readonly onEnd: (part: ProgressPart) => void,
  ) {
    this.subscription = client.onProgress(WorkDoneProgress.type, token, (value) => {
      switch (value.kind) {
        case 'begin':
          this.begin(value);
          break;
        case 'report':
          this.report(value.percentage, value.message);
          break;
        case 'end':
          this.dispose();
          break;
      }
    });
  }

  private begin(value: WorkDoneProgressBegin): void {
    if (this.started || this.ended) {
      return;
    }
    this.started = true;
    const cancellable = value.cancellable === true;
    const title = /^funcforge\b/i.test(value.title) ? value.title : `funcforge: ${value.title}`;
    void vscode.window.withProgress(
      {
        location: cancellable ? vscode.ProgressLocation.Notification : vscode.ProgressLocation.Window,
        title,
        cancellable,
      },
      (progress, cancel) => {
        if (this.ended) {
          return Promise.resolve();
        }
        this.progress = progress;
        cancel.onCancellationRequested(() => {
          this.log.info(`cancel requested for "${value.title}" (progress token ${String(this.token)})`);
          this.client
            .sendNotification(WorkDoneProgressCancelNotification.type, { token: this.token })
            .catch((error: unknown) => this.log.warn(`could not send the cancel: ${String(error)}`));
        });
        this.report(value.percentage, value.message);
        return new Promise<void>((resolve) => {
          this.finish = resolve;
        });
      },
    );
  }

  private report(percentage: number | undefined, message: string | undefined): void {
    this.progress?.report(this.tracker.step(percentage, message));
  }

  dispose(): void {
    if (this.ended) {
      return;
    }
    this.ended = true;
    this.subscription?.dispose();
    this.subscription = undefined;
    this.progress = undefined;
    this.finish?.();
    this.finish = undefined;
    this.onEnd(this);
  }
}

export class NotificationProgressFeature implements StaticFeature {
  private readonly parts = new Set<ProgressPart>();

  constructor(
    private readonly client: BaseLanguageClient,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  getState(): FeatureState {
    return { kind: 'static' };
  }

  fillClientCapabilities(capabilities: ClientCapabilities): void {
    capabilities.window = capabilities.window ?? {};
    capabilities.window.workDoneProgress = true;
  }

  initialize(): void {
    // Runs after the built-in ProgressFeature's initialize, so this handler replaces its own.
    this.client.onRequest(WorkDoneProgressCreateRequest.type, (params) => {
      this.track(params.token);
    });
  }

  /** Shows progress reported on `token`; dispose the part when its request is over. */
  track(token: ProgressToken): ProgressPart {
    const part = new ProgressPart(this.client, token, this.log, (p) => this.parts.delete(p));
    this.parts.add(part);
    return part;
  }

  clear(): void {
    for (const part of [...this.parts]) {
      part.dispose();
    }
    this.parts.clear();
  }
}
