/**
 * Names shared by the extension's modules and its package.json: command ids,
 * view ids, URI schemes, and the language server's own command names
 * (docs/lsp.md). Pure: no `vscode` import, so the tests can check them.
 */

/** Commands the language server handles (`workspace/executeCommand`), from docs/lsp.md. */
export const SERVER_COMMANDS = {
  optimize: 'funcforge.optimize',
  applyProposal: 'funcforge.applyProposal',
  rejectProposal: 'funcforge.rejectProposal',
  rollback: 'funcforge.rollback',
  history: 'funcforge.history',
  proposals: 'funcforge.proposals',
  proposalPreview: 'funcforge.proposalPreview',
  tools: 'funcforge.tools',
  pinCall: 'funcforge.pinCall',
} as const;

/** The server -> client notification carrying the optimizer's state. */
export const STATUS_NOTIFICATION = 'funcforge/status';

/**
 * Commands this extension contributes. vscode-languageclient registers a VS Code
 * command for each server command under the server's own id, so none of these
 * may reuse a server command's id.
 */
export const COMMANDS = {
  optimizeWorkspace: 'funcforge.optimizeWorkspace',
  optimizeFunction: 'funcforge.optimizeFunction',
  showProposals: 'funcforge.showProposals',
  /** Also the command of the server's "Preview funcforge proposal" code action. */
  previewProposal: 'funcforge.previewProposal',
  apply: 'funcforge.apply',
  reject: 'funcforge.reject',
  rollBackTo: 'funcforge.rollBackTo',
  showHistory: 'funcforge.showHistory',
  restartServer: 'funcforge.restartServer',
  showLogs: 'funcforge.showLogs',
  setApiKey: 'funcforge.setApiKey',
  clearApiKey: 'funcforge.clearApiKey',
  refreshViews: 'funcforge.refreshViews',
  /** Internal: opens a tool's source at its line (tree item click). */
  openTool: 'funcforge.openTool',
} as const;

/** Commands that only the views use; they are hidden from the command palette. */
export const INTERNAL_COMMANDS: readonly string[] = [COMMANDS.openTool];

export const VIEW_CONTAINER = 'funcforge';
export const VIEWS = {
  tools: 'funcforge.tools',
  proposals: 'funcforge.proposals',
  history: 'funcforge.history',
} as const;

/** Tree item context values (package.json menus match on them). */
export const CONTEXT_VALUES = {
  tool: 'funcforge.tool',
  proposalPending: 'funcforge.proposal.pending',
  proposalOther: 'funcforge.proposal',
  version: 'funcforge.version',
  versionHead: 'funcforge.version.head',
  message: 'funcforge.message',
} as const;

export const PROPOSAL_SCHEME = 'funcforge-proposal';
export const HISTORY_SCHEME = 'funcforge-history';

/** Key of the API key in VS Code's SecretStorage. */
export const API_KEY_SECRET = 'funcforge.openaiApiKey';
/** The environment variable the server reads the key from (docs/lsp.md). */
export const API_KEY_ENV = 'OPENAI_API_KEY';

export const CONFIG_SECTION = 'funcforge';
