/** A client feature that keeps the server from registering command ids the extension owns. */

import type * as vscode from 'vscode';
import type { FeatureState, ServerCapabilities, StaticFeature } from 'vscode-languageclient';
import { splitServerCommands } from './commandFilter';
import { COMMANDS } from './constants';

/**
 * Before any feature initializes, removes from the server's command list the
 * ids this extension registers itself (see commandFilter.ts).
 */
export class ClientCommandsGuard implements StaticFeature {
  constructor(private readonly log: vscode.LogOutputChannel) {}

  getState(): FeatureState {
    return { kind: 'static' };
  }

  fillClientCapabilities(): void {}

  preInitialize(capabilities: ServerCapabilities): void {
    const provider = capabilities.executeCommandProvider;
    if (provider === undefined) {
      return;
    }
    const { keep, dropped } = splitServerCommands(provider.commands, Object.values(COMMANDS));
    if (dropped.length > 0) {
      this.log.warn(
        `the server lists commands the client handles itself; ignoring them: ${dropped.join(', ')}`,
      );
      provider.commands = keep;
    }
  }

  initialize(): void {}

  clear(): void {}
}
