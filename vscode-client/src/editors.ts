/**
 * After the server wrote and committed a proposal's files: an open editor that
 * is dirty only because the code action's edit already put the same text in
 * it is reverted to the file on disk, so nothing is left unsaved. An editor
 * with other unsaved changes is left alone, with a warning.
 */

import * as vscode from 'vscode';
import { resolveFileRef } from './fileRefs';
import type { ApplyResult } from './protocol';

function sameText(a: string, b: string): boolean {
  return a.replace(/\r\n/g, '\n') === b.replace(/\r\n/g, '\n');
}

function toUri(ref: string, root: vscode.Uri | undefined): vscode.Uri {
  const resolved = resolveFileRef(ref, root?.fsPath);
  return resolved.kind === 'uri' ? vscode.Uri.parse(resolved.uri) : vscode.Uri.file(resolved.path);
}

/** Reverts open editors of `files` whose unsaved text equals what is now on disk. */
export async function syncEditorsWithDisk(
  files: readonly string[],
  root: vscode.Uri | undefined,
  log: vscode.LogOutputChannel,
): Promise<void> {
  const previous = vscode.window.activeTextEditor;
  let moved = false;
  for (const ref of files) {
    const uri = toUri(ref, root);
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    if (doc === undefined || !doc.isDirty) {
      continue;
    }
    const disk = new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
    if (sameText(doc.getText(), disk)) {
      await vscode.window.showTextDocument(doc, { preview: false, preserveFocus: false });
      await vscode.commands.executeCommand('workbench.action.files.revert');
      moved = true;
      log.info(`reloaded ${uri.fsPath} from disk (it already held the applied proposal)`);
    } else {
      log.info(
        `${uri.fsPath}: the editor (${doc.getText().length} chars, version ${doc.version}) differs from disk (${disk.length} chars)`,
      );
      void vscode.window.showWarningMessage(
        `${vscode.workspace.asRelativePath(uri)} has unsaved changes besides the applied proposal; ` +
          'the committed file on disk holds only the proposal. Save or revert the editor yourself.',
      );
    }
  }
  if (
    moved &&
    previous !== undefined &&
    previous.document.uri.toString() !== vscode.window.activeTextEditor?.document.uri.toString()
  ) {
    await vscode.window.showTextDocument(previous.document, previous.viewColumn);
  }
}

/** The after-apply hook: report the commit and bring the editors in line with disk. */
export function afterApply(
  root: () => vscode.Uri | undefined,
  log: vscode.LogOutputChannel,
): (result: ApplyResult) => Promise<void> {
  return async (result) => {
    await syncEditorsWithDisk(result.files, root(), log);
    const files = result.files.map((f) => vscode.workspace.asRelativePath(toUri(f, root()))).join(', ');
    void vscode.window.showInformationMessage(
      `funcforge: applied as commit ${result.commit.slice(0, 7)}${files ? ` (${files})` : ''}.`,
    );
  };
}
