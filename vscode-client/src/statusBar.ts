/** The status bar item: state, best score and pending proposals, from `funcforge/status`. */

import * as vscode from 'vscode';
import { COMMANDS, VIEW_CONTAINER } from './constants';
import type { ServerManager } from './server';
import { formatStatus } from './statusText';

export function registerStatusBar(server: ServerManager, subscriptions: vscode.Disposable[]): void {
  const item = vscode.window.createStatusBarItem('funcforge.status', vscode.StatusBarAlignment.Left, 50);
  item.name = 'funcforge';
  let shown = false;
  const update = (): void => {
    // Until the server is first asked for, a workspace that does not use funcforge shows nothing.
    shown = shown || server.phase !== 'stopped';
    if (!shown) {
      item.hide();
      return;
    }
    const view = formatStatus({
      phase: server.phase,
      status: server.status,
      executionOffReason: server.executionOffReason,
      failure: server.failure,
    });
    item.text = view.text;
    item.tooltip = view.tooltip;
    item.backgroundColor =
      view.severity === 'normal'
        ? undefined
        : new vscode.ThemeColor(`statusBarItem.${view.severity}Background`);
    item.command =
      server.phase === 'failed' || server.phase === 'stopped'
        ? COMMANDS.showLogs
        : `workbench.view.extension.${VIEW_CONTAINER}`;
    item.show();
  };
  update();
  subscriptions.push(item, server.onDidChangeState(update));
}
