/**
 * The funcforge views (activity bar container): Tools, Proposals, History.
 * Each asks the server when VS Code wants its items; `refresh()` runs on every
 * `funcforge/status` notification.
 */

import * as vscode from 'vscode';
import { COMMANDS, SERVER_COMMANDS, VIEWS } from './constants';
import { parseHistory, parseProposals, parseTools } from './protocol';
import { errorMessage, type ServerManager } from './server';
import { historyNodes, messageNode, type NodeSpec, proposalNodes, toolNodes } from './treeNodes';

function toTreeItem(node: NodeSpec): vscode.TreeItem {
  const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
  item.id = node.key;
  item.description = node.description;
  if (node.tooltip !== undefined) {
    item.tooltip = new vscode.MarkdownString(node.tooltip);
  }
  if (node.icon !== undefined) {
    item.iconPath = new vscode.ThemeIcon(
      node.icon.id,
      node.icon.color !== undefined ? new vscode.ThemeColor(node.icon.color) : undefined,
    );
  }
  item.contextValue = node.contextValue;
  if (node.command !== undefined) {
    item.command = {
      command: node.command.command,
      title: node.command.title,
      arguments: node.command.arguments,
    };
  }
  return item;
}

abstract class ServerView implements vscode.TreeDataProvider<NodeSpec> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(protected readonly server: ServerManager) {}

  refresh(): void {
    this.changed.fire();
  }

  getTreeItem(node: NodeSpec): vscode.TreeItem {
    return toTreeItem(node);
  }

  async getChildren(node?: NodeSpec): Promise<NodeSpec[]> {
    if (node !== undefined) {
      return [];
    }
    try {
      return await this.nodes();
    } catch (error) {
      return [
        messageNode('error', errorMessage(error), {
          command: COMMANDS.showLogs,
          title: 'Show logs',
          arguments: [],
        }),
      ];
    }
  }

  protected abstract nodes(): Promise<NodeSpec[]>;

  dispose(): void {
    this.changed.dispose();
  }
}

class ToolsView extends ServerView {
  protected async nodes(): Promise<NodeSpec[]> {
    const tools = parseTools(await this.server.execute(SERVER_COMMANDS.tools));
    return toolNodes(tools);
  }
}

class ProposalsView extends ServerView {
  protected async nodes(): Promise<NodeSpec[]> {
    return proposalNodes(parseProposals(await this.server.execute(SERVER_COMMANDS.proposals)));
  }
}

class HistoryView extends ServerView {
  protected async nodes(): Promise<NodeSpec[]> {
    return historyNodes(parseHistory(await this.server.execute(SERVER_COMMANDS.history)));
  }
}

/** Registers the three views; the returned function refreshes all of them. */
export function registerViews(server: ServerManager, subscriptions: vscode.Disposable[]): () => void {
  const views: ServerView[] = [new ToolsView(server), new ProposalsView(server), new HistoryView(server)];
  const ids = [VIEWS.tools, VIEWS.proposals, VIEWS.history];
  views.forEach((view, i) => {
    subscriptions.push(
      view,
      vscode.window.createTreeView(ids[i], { treeDataProvider: view, showCollapseAll: false }),
    );
  });
  return () => views.forEach((v) => v.refresh());
}
