/** The `funcforge.*` settings of a folder, as VS Code resolves them (trust applied), resolved. */

import * as os from 'node:os';
import * as vscode from 'vscode';
import { CONFIG_SECTION } from './constants';
import { type RawSettings, resolveSettings, type ResolvedSettings, SETTING_KEYS } from './settings';

/** Reads `funcforge.*` for `folder` as VS Code resolves it (trust already applied). */
export function readRawSettings(folder: vscode.WorkspaceFolder | undefined): RawSettings {
  const config = vscode.workspace.getConfiguration(CONFIG_SECTION, folder?.uri);
  const raw: RawSettings = {};
  for (const key of SETTING_KEYS) {
    raw[key] = config.get<unknown>(key);
  }
  return raw;
}

export function currentSettings(folder: vscode.WorkspaceFolder | undefined): ResolvedSettings {
  return resolveSettings(readRawSettings(folder), {
    workspaceFolder: folder?.uri.fsPath,
    userHome: os.homedir(),
    env: process.env,
  });
}
