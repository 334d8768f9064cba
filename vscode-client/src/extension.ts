/**
 * The funcforge extension's entry point: wires the server manager, the views,
 * the status bar, the preview documents and the commands, and decides when the
 * server (re)starts.
 */

import * as vscode from 'vscode';
import { shouldAutoStart, type WorkspaceSigns } from './autostart';
import { registerCommands } from './commands';
import {
  API_KEY_SECRET,
  CONFIG_SECTION,
  HISTORY_SCHEME,
  PROPOSAL_SCHEME,
  SERVER_COMMANDS,
} from './constants';
import { debounce } from './debounce';
import { afterApply } from './editors';
import { ProposalPreviewProvider } from './proposalPreview';
import { parseHistory } from './protocol';
import { onDidChangeInterpreter } from './pythonExtension';
import { ServerManager } from './server';
import { SETTING_KEYS } from './settings';
import { registerStatusBar } from './statusBar';
import { historyDocument } from './treeNodes';
import { registerViews } from './views';

let server: ServerManager | undefined;

/** Serves the "Show history" document from `funcforge.history`. */
class HistoryDocumentProvider implements vscode.TextDocumentContentProvider {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  constructor(private readonly manager: ServerManager) {}

  async provideTextDocumentContent(): Promise<string> {
    return historyDocument(parseHistory(await this.manager.execute(SERVER_COMMANDS.history)));
  }

  invalidate(): void {
    for (const doc of vscode.workspace.textDocuments) {
      if (doc.uri.scheme === HISTORY_SCHEME) {
        this.changed.fire(doc.uri);
      }
    }
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

/** What the first workspace folder says about using funcforge. */
async function workspaceSigns(folder: vscode.WorkspaceFolder): Promise<WorkspaceSigns> {
  const at = (name: string): vscode.Uri => vscode.Uri.joinPath(folder.uri, name);
  let pyproject: string | undefined;
  try {
    pyproject = new TextDecoder().decode(await vscode.workspace.fs.readFile(at('pyproject.toml')));
  } catch {
    pyproject = undefined;
  }
  const config = vscode.workspace.getConfiguration(CONFIG_SECTION, folder.uri);
  const hasSettings = SETTING_KEYS.some((key) => {
    const inspected = config.inspect(key);
    return inspected?.workspaceValue !== undefined || inspected?.workspaceFolderValue !== undefined;
  });
  const traces = await vscode.workspace.findFiles(
    new vscode.RelativePattern(folder, 'traces/**/*.jsonl'),
    null,
    1,
  );
  return {
    hasFuncforgeToml: await exists(at('funcforge.toml')),
    hasStateDir: await exists(at('.funcforge')),
    hasDefaultLayout: traces.length > 0 && (await exists(at('tools'))),
    pyproject,
    hasSettings,
  };
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel('funcforge', { log: true });
  const manager = new ServerManager(context.secrets, log);
  server = manager;
  const subs = context.subscriptions;
  subs.push(log, manager);

  const previews = new ProposalPreviewProvider(manager);
  const history = new HistoryDocumentProvider(manager);
  subs.push(
    previews,
    vscode.workspace.registerTextDocumentContentProvider(PROPOSAL_SCHEME, previews),
    vscode.workspace.registerTextDocumentContentProvider(HISTORY_SCHEME, history),
  );
  const refreshViews = registerViews(manager, subs);
  registerStatusBar(manager, subs);
  manager.onDidApply(afterApply(() => manager.folder?.uri, log));
  registerCommands({ server: manager, previews, secrets: context.secrets, log, refreshViews }, subs);

  const onStatus = debounce(() => {
    refreshViews();
    previews.invalidate();
    history.invalidate();
  }, 300);
  subs.push(
    manager.onDidReceiveStatus(() => onStatus()),
    { dispose: () => onStatus.cancel() },
  );

  // Restarts: settings, the API key, the Python extension's interpreter, trust.
  let reason = '';
  const restartSoon = debounce(() => {
    if (manager.phase !== 'stopped' || manager.failure !== undefined) {
      void manager.restart(reason);
    }
  }, 500);
  const requestRestart = (why: string): void => {
    reason = why;
    restartSoon();
  };
  subs.push(
    { dispose: () => restartSoon.cancel() },
    vscode.workspace.onDidChangeConfiguration((event) => {
      const changed = SETTING_KEYS.filter((key) => event.affectsConfiguration(`${CONFIG_SECTION}.${key}`));
      if (changed.length > 0) {
        requestRestart(`settings changed (${changed.map((k) => `funcforge.${k}`).join(', ')})`);
      }
    }),
    context.secrets.onDidChange((event) => {
      if (event.key === API_KEY_SECRET) {
        requestRestart('the API key changed');
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      requestRestart('the workspace is now trusted: execution allowed');
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => requestRestart('the workspace folders changed')),
  );
  void onDidChangeInterpreter(() => {
    if (vscode.workspace.getConfiguration(CONFIG_SECTION).get<string>('python', '').trim() === '') {
      requestRestart("the Python extension's interpreter changed");
    }
  }, log).then((disposable) => disposable && subs.push(disposable));

  // In Restricted Mode, say once why proposals are not replay-checked.
  let toldUntrusted = false;
  subs.push(
    manager.onDidChangeState(() => {
      if (manager.phase === 'running' && !vscode.workspace.isTrusted && !toldUntrusted) {
        toldUntrusted = true;
        void vscode.window
          .showInformationMessage(
            'funcforge runs in Restricted Mode: it will not run workspace code (no replay check of proposals) ' +
              'until you trust this workspace.',
            'Manage Workspace Trust',
          )
          .then((picked) => picked && vscode.commands.executeCommand('workbench.trust.manage'));
      }
    }),
  );

  const folder = manager.folder;
  if (folder !== undefined && shouldAutoStart(await workspaceSigns(folder))) {
    void manager.start();
  } else {
    log.info('this workspace does not look like a funcforge workspace; the server starts on first use');
  }
}

export async function deactivate(): Promise<void> {
  const manager = server;
  server = undefined;
  if (manager !== undefined) {
    await manager.stop();
  }
}
