/**
 * Proposal previews: a read-only document per file and side on the
 * `funcforge-proposal:` scheme, filled from `funcforge.proposalPreview`, and
 * `vscode.diff` between the file on disk and the proposal's new text.
 */

import * as vscode from 'vscode';
import { PROPOSAL_SCHEME, SERVER_COMMANDS } from './constants';
import { decodePreviewQuery, encodePreviewUri, type PreviewSide } from './previewUri';
import { parsePreview, type PreviewFile, type ProposalPreview } from './protocol';
import type { ServerManager } from './server';

export class ProposalPreviewProvider implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly cache = new Map<string, Promise<ProposalPreview>>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  constructor(private readonly server: ServerManager) {}

  private preview(id: string): Promise<ProposalPreview> {
    let cached = this.cache.get(id);
    if (cached === undefined) {
      cached = this.server.execute(SERVER_COMMANDS.proposalPreview, { id }).then(parsePreview);
      cached.catch(() => this.cache.delete(id));
      this.cache.set(id, cached);
    }
    return cached;
  }

  /** Forgets cached previews and tells open preview documents to reload. */
  invalidate(): void {
    this.cache.clear();
    for (const doc of vscode.workspace.textDocuments) {
      if (doc.uri.scheme === PROPOSAL_SCHEME) {
        this.changed.fire(doc.uri);
      }
    }
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const ref = decodePreviewQuery(uri.query);
    if (ref === undefined) {
      throw new Error(`not a funcforge proposal URI: ${uri.toString()}`);
    }
    const preview = await this.preview(ref.id);
    const file = preview.files.find((f) => f.path === ref.path);
    if (file === undefined) {
      return `(proposal ${ref.id} no longer changes ${ref.path})\n`;
    }
    return ref.side === 'new' ? file.newText : file.oldText;
  }

  static uri(id: string, file: PreviewFile, side: PreviewSide): vscode.Uri {
    return vscode.Uri.from(encodePreviewUri({ id, path: file.path, side }));
  }

  /** Opens one diff per file the proposal changes. */
  async open(id: string): Promise<void> {
    this.cache.delete(id);
    const preview = await this.preview(id);
    if (preview.files.length === 0) {
      void vscode.window.showInformationMessage(`funcforge: proposal ${id} changes no file.`);
      return;
    }
    for (const file of preview.files) {
      const onDisk = vscode.Uri.parse(file.uri);
      const left = (await exists(onDisk)) ? onDisk : ProposalPreviewProvider.uri(id, file, 'old');
      const right = ProposalPreviewProvider.uri(id, file, 'new');
      const name = file.path.split(/[\\/]/).pop() ?? file.path;
      const title = `${name} ↔ funcforge proposal ${id}${preview.title ? `: ${preview.title}` : ''}`;
      await vscode.commands.executeCommand('vscode.diff', left, right, title, {
        preview: preview.files.length === 1,
      });
    }
    if (preview.summary.length > 0) {
      vscode.window.setStatusBarMessage(`funcforge proposal ${id}: ${preview.summary}`, 15_000);
    }
  }

  dispose(): void {
    this.changed.dispose();
  }
}

async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    await vscode.workspace.fs.stat(uri);
    return true;
  } catch {
    return false;
  }
}
