/**
 * The commands of the palette, the views' menus and the editor's context menu.
 * Each one works with an argument (from a menu or a code action) or asks with
 * a quick pick; server errors become one-line messages with a "Show logs" button.
 */

import * as vscode from 'vscode';
import { API_KEY_ENV, API_KEY_SECRET, COMMANDS, HISTORY_SCHEME, SERVER_COMMANDS } from './constants';
import { functionAtCursor } from './functionAtCursor';
import type { ProposalPreviewProvider } from './proposalPreview';
import {
  commitOf,
  functionNameOf,
  parseHistory,
  parseProposals,
  parseRollbackResult,
  parseTools,
  type ProposalEntry,
  proposalIdOf,
} from './protocol';
import { ServerUnavailable, type ServerManager, showCommandError } from './server';
import { formatScoreN, plural } from './statusText';
import { versionDescription } from './treeNodes';

export const HISTORY_URI = vscode.Uri.from({ scheme: HISTORY_SCHEME, path: '/funcforge history' });

interface Deps {
  server: ServerManager;
  previews: ProposalPreviewProvider;
  secrets: vscode.SecretStorage;
  log: vscode.LogOutputChannel;
  refreshViews: () => void;
}

type Handler = (...args: unknown[]) => Promise<void>;

function guarded(deps: Deps, name: string, handler: Handler): Handler {
  return async (...args) => {
    try {
      await handler(...args);
    } catch (error) {
      if (error instanceof ServerUnavailable) {
        await deps.server.showFailure(error);
        return;
      }
      await showCommandError(deps.log, name, error);
    }
  };
}

async function listProposals(server: ServerManager): Promise<ProposalEntry[]> {
  return parseProposals(await server.execute(SERVER_COMMANDS.proposals));
}

interface ProposalItem extends vscode.QuickPickItem {
  proposal: ProposalEntry;
}

/** Asks for a proposal; pending ones only unless `all`. */
async function pickProposal(
  server: ServerManager,
  placeHolder: string,
  all = false,
): Promise<ProposalEntry | undefined> {
  const proposals = (await listProposals(server)).filter((p) => all || p.status === 'pending');
  if (proposals.length === 0) {
    void vscode.window.showInformationMessage(
      all
        ? 'funcforge: no proposals yet. Run "funcforge: Optimize workspace".'
        : 'funcforge: no pending proposals.',
    );
    return undefined;
  }
  proposals.sort((a, b) => Number(b.status === 'pending') - Number(a.status === 'pending'));
  const items: ProposalItem[] = proposals.map((p) => ({
    label: p.title,
    description: [p.id, p.status, p.functions.join(', ')].filter((s) => s.length > 0).join(' · '),
    detail: p.summary || undefined,
    proposal: p,
  }));
  return (
    await vscode.window.showQuickPick(items, { placeHolder, matchOnDescription: true, matchOnDetail: true })
  )?.proposal;
}

async function proposalId(
  server: ServerManager,
  arg: unknown,
  placeHolder: string,
): Promise<string | undefined> {
  return proposalIdOf(arg) ?? (await pickProposal(server, placeHolder))?.id;
}

/** One optimizer step; the server's result message (with Preview) is the one message. */
async function optimize(deps: Deps, functionName?: string): Promise<void> {
  await deps.server.optimize(functionName);
  deps.refreshViews();
}

async function functionFromEditor(server: ServerManager): Promise<string | undefined> {
  const tools = parseTools(await server.execute(SERVER_COMMANDS.tools));
  const editor = vscode.window.activeTextEditor;
  if (editor !== undefined) {
    const position = editor.selection.active;
    const range = editor.document.getWordRangeAtPosition(position);
    const name = functionAtCursor(tools, {
      uri: editor.document.uri.toString(),
      line: position.line + 1,
      word: range !== undefined ? editor.document.getText(range) : undefined,
    });
    if (name !== undefined) {
      return name;
    }
  }
  if (tools.length === 0) {
    void vscode.window.showInformationMessage(
      'funcforge: the server found no tool functions in this workspace.',
    );
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    tools.map((t) => ({ label: t.name, description: `${plural(t.calls, 'call')}, ${t.errors} failed` })),
    { placeHolder: 'Optimize which function?' },
  );
  return picked?.label;
}

interface RollbackItem extends vscode.QuickPickItem {
  target: { to: string } | { best: true };
}

async function rollBack(deps: Deps, arg: unknown): Promise<void> {
  let target: RollbackItem['target'] | undefined;
  let label: string;
  const commit = commitOf(arg);
  if (commit !== undefined) {
    target = { to: commit };
    label = commit.slice(0, 7);
  } else {
    const history = parseHistory(await deps.server.execute(SERVER_COMMANDS.history));
    const items: RollbackItem[] = [];
    if (history.best !== null && !history.best.isHead) {
      items.push({
        label: '$(star-full) Roll back to the best version',
        description: `${history.best.short} ${formatScoreN(history.best.score, history.best.n) ?? ''}`.trim(),
        target: { best: true },
      });
    }
    for (const v of history.versions) {
      if (!v.isHead) {
        items.push({
          label: `${v.short} ${v.subject}`,
          description: versionDescription(v),
          target: { to: v.commit },
        });
      }
    }
    if (items.length === 0) {
      void vscode.window.showInformationMessage('funcforge: nothing to roll back to (no earlier version).');
      return;
    }
    const picked = await vscode.window.showQuickPick(items, { placeHolder: 'Roll back to which version?' });
    if (picked === undefined) {
      return;
    }
    target = picked.target;
    label = 'best' in target ? 'the best version' : target.to.slice(0, 7);
  }
  const confirm = await vscode.window.showWarningMessage(
    `Roll back to ${label}?`,
    {
      modal: true,
      detail: 'funcforge reverts the optimizer commits after it with git revert; no history is rewritten.',
    },
    'Roll back',
  );
  if (confirm !== 'Roll back') {
    return;
  }
  parseRollbackResult(await deps.server.execute(SERVER_COMMANDS.rollback, target)); // says what it did
  deps.refreshViews();
}

async function showProposals(deps: Deps): Promise<void> {
  const proposal = await pickProposal(deps.server, 'funcforge proposals', true);
  if (proposal === undefined) {
    return;
  }
  const actions = proposal.status === 'pending' ? ['Preview', 'Apply', 'Reject'] : ['Preview'];
  const action = await vscode.window.showQuickPick(actions, {
    placeHolder: `${proposal.title} (${proposal.id})`,
  });
  if (action === 'Preview') {
    await deps.previews.open(proposal.id);
  } else if (action === 'Apply') {
    await deps.server.apply(proposal.id);
    deps.refreshViews();
  } else if (action === 'Reject') {
    await reject(deps, proposal.id);
  }
}

async function reject(deps: Deps, id: string): Promise<void> {
  await deps.server.execute(SERVER_COMMANDS.rejectProposal, { id }); // says what it did
  deps.refreshViews();
}

export function registerCommands(deps: Deps, subscriptions: vscode.Disposable[]): void {
  const { server, previews, secrets, log } = deps;
  const handlers: Record<string, Handler> = {
    [COMMANDS.optimizeWorkspace]: () => optimize(deps),
    [COMMANDS.optimizeFunction]: async (arg) => {
      const name = functionNameOf(arg) ?? (await functionFromEditor(server));
      if (name !== undefined) {
        await optimize(deps, name);
      }
    },
    [COMMANDS.showProposals]: () => showProposals(deps),
    [COMMANDS.previewProposal]: async (arg) => {
      const id = await proposalId(server, arg, 'Preview which proposal?');
      if (id !== undefined) {
        await previews.open(id);
      }
    },
    [COMMANDS.apply]: async (arg) => {
      const id = await proposalId(server, arg, 'Apply which proposal?');
      if (id !== undefined) {
        await server.apply(id);
        deps.refreshViews();
      }
    },
    [COMMANDS.reject]: async (arg) => {
      const id = await proposalId(server, arg, 'Reject which proposal?');
      if (id !== undefined) {
        await reject(deps, id);
      }
    },
    [COMMANDS.rollBackTo]: (arg) => rollBack(deps, arg),
    [COMMANDS.showHistory]: async () => {
      const doc = await vscode.workspace.openTextDocument(HISTORY_URI);
      await vscode.window.showTextDocument(doc, { preview: true });
    },
    [COMMANDS.restartServer]: () => server.restart('requested by the user'),
    [COMMANDS.showLogs]: async () => log.show(),
    [COMMANDS.setApiKey]: async () => {
      const key = await vscode.window.showInputBox({
        title: 'funcforge: API key of the OpenAI-compatible endpoint',
        prompt: `Kept in VS Code's secret storage and handed to the funcforge server as ${API_KEY_ENV}; never written to settings.`,
        password: true,
        ignoreFocusOut: true,
        validateInput: (value) => (value.trim().length > 0 ? undefined : 'Enter a key, or press Escape.'),
      });
      if (key !== undefined && key.trim().length > 0) {
        await secrets.store(API_KEY_SECRET, key.trim());
        void vscode.window.showInformationMessage('funcforge: API key saved; the server restarts with it.');
      }
    },
    [COMMANDS.clearApiKey]: async () => {
      await secrets.delete(API_KEY_SECRET);
      void vscode.window.showInformationMessage(
        'funcforge: API key removed; the server restarts without it.',
      );
    },
    [COMMANDS.refreshViews]: async () => deps.refreshViews(),
    [COMMANDS.openTool]: async (uri, line) => {
      if (typeof uri !== 'string') {
        return;
      }
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(uri));
      const at = new vscode.Position(Math.max(0, (typeof line === 'number' ? line : 1) - 1), 0);
      await vscode.window.showTextDocument(doc, { selection: new vscode.Range(at, at) });
    },
  };
  for (const [id, handler] of Object.entries(handlers)) {
    subscriptions.push(vscode.commands.registerCommand(id, guarded(deps, id, handler)));
  }
}
