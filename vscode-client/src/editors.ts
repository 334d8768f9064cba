/**
 * After the server committed a proposal: the server never writes a file that is open
 * in an editor (the editor's buffer is the user's), it puts the change into the buffer
 * instead. A buffer that now holds exactly the committed text (no other unsaved edits)
 * is saved here, so Apply leaves nothing unsaved; a buffer with the user's other
 * unsaved edits is left unsaved, as the user left it. The server shows the one message.
 */

import * as vscode from 'vscode';
import { resolveFileRef } from './fileRefs';
import type { ApplyResult } from './protocol';

function toUri(ref: string, root: vscode.Uri | undefined): vscode.Uri {
  const resolved = resolveFileRef(ref, root?.fsPath);
  return resolved.kind === 'uri' ? vscode.Uri.parse(resolved.uri) : vscode.Uri.file(resolved.path);
}

/** Saves the open, dirty documents of `files` (those the server found equal to the commit). */
export async function saveCommitted(
  files: readonly string[],
  root: vscode.Uri | undefined,
  log: vscode.LogOutputChannel,
): Promise<void> {
  for (const ref of files) {
    const uri = toUri(ref, root);
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    if (doc === undefined || !doc.isDirty) {
      continue;
    }
    if (await doc.save()) {
      log.info(`saved ${uri.fsPath}: it holds exactly the committed proposal`);
    }
  }
}

/** The after-apply hook: save the buffers that hold exactly the commit. */
export function afterApply(
  root: () => vscode.Uri | undefined,
  log: vscode.LogOutputChannel,
): (result: ApplyResult) => Promise<void> {
  return async (result) => {
    await saveCommitted(result.saveable, root(), log);
  };
}
