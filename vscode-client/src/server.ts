/**
 * Starts, restarts and talks to `python -m funcforge serve`: picks the
 * interpreter, checks that funcforge is importable there, hands the API key
 * over through the environment, answers `workspace/configuration` with the
 * trust-gated settings, and wraps `workspace/executeCommand`.
 */

import { spawn } from 'node:child_process';
import * as vscode from 'vscode';
import {
  type ClientCapabilities,
  CloseAction,
  ErrorAction,
  type ErrorHandler,
  ExecuteCommandRequest,
  type FeatureState,
  LanguageClient,
  type LanguageClientOptions,
  ResponseError,
  RevealOutputChannelOn,
  type ServerOptions,
  State,
  type StaticFeature,
} from 'vscode-languageclient/node';
import { ClientCommandsGuard } from './commandsGuard';
import { API_KEY_ENV, API_KEY_SECRET, COMMANDS, SERVER_COMMANDS, STATUS_NOTIFICATION } from './constants';
import { exitMessage, RestartBudget, StderrTail } from './crashPolicy';
import { chooseInterpreter, installCommand, notImportableMessage } from './interpreter';
import { activeInterpreter } from './pythonExtension';
import { NotificationProgressFeature } from './progressFeature';
import { newProgressToken } from './progressMath';
import { funcforgeCheckout, importProblem, moduleArgs } from './pythonCheck';
import {
  type ApplyResult,
  parseApplyResult,
  parseOptimizeResult,
  parseStatus,
  resultMessage,
  type Status,
  withShowsResults,
} from './protocol';
import { configurationItem, executionState, serverSettings } from './settings';
import type { ClientPhase } from './statusText';
import { currentSettings } from './workspaceSettings';

/** Why the server cannot run; with `install`, the message offers to run that install. */
export class ServerUnavailable extends Error {
  constructor(
    message: string,
    readonly install?: { python: string; command: string },
  ) {
    super(message);
    this.name = 'ServerUnavailable';
  }
}

/** The message of an error from the server or the connection, without a stack. */
export function errorMessage(error: unknown): string {
  if (error instanceof ResponseError) {
    return error.message;
  }
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/** Shows a failed command's one message (the server's error text), with a "Show logs" button. */
export async function showCommandError(
  log: vscode.LogOutputChannel,
  name: string,
  error: unknown,
): Promise<void> {
  const message = errorMessage(error);
  log.error(`${name}: ${message}`);
  const text = /^funcforge\b/.test(message) ? message : `funcforge: ${message}`;
  const picked = await vscode.window.showErrorMessage(text, 'Show logs');
  if (picked === 'Show logs') {
    log.show();
  }
}

/** A request the user or the server cancelled: nothing to tell. */
function isCancellation(error: unknown): boolean {
  return (
    error instanceof vscode.CancellationError ||
    (error instanceof ResponseError && (error.code === -32800 || error.code === -32802))
  );
}

/**
 * Shows the one message an action's result carries (the server does not show
 * it: this client declares `showsResults`), with its buttons.
 */
async function showResult(command: string, raw: unknown): Promise<void> {
  const message = resultMessage(command, raw);
  if (message === undefined) {
    return;
  }
  const show =
    message.level === 'error'
      ? vscode.window.showErrorMessage
      : message.level === 'warning'
        ? vscode.window.showWarningMessage
        : vscode.window.showInformationMessage;
  const picked = await show(message.text, ...message.actions.map((a) => a.title));
  const action = message.actions.find((a) => a.title === picked);
  if (action?.title === 'Preview') {
    await vscode.commands.executeCommand(COMMANDS.previewProposal, action.proposal);
  } else if (action?.title === 'Show proposals') {
    await vscode.commands.executeCommand(COMMANDS.showProposals);
  }
}

/**
 * Declares `experimental.funcforge.showsResults`: the server then leaves each
 * action's message to this extension, which shows it once, with buttons
 * (docs/lsp.md "Messages"). Plain LSP clients get the same text as
 * `window/showMessage`.
 */
class ShowsResultsFeature implements StaticFeature {
  getState(): FeatureState {
    return { kind: 'static' };
  }
  fillClientCapabilities(capabilities: ClientCapabilities): void {
    capabilities.experimental = withShowsResults(capabilities.experimental);
  }
  initialize(): void {}
  clear(): void {}
}

export class ServerManager implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private progress: NotificationProgressFeature | undefined;
  private lifecycle: Promise<void> = Promise.resolve();
  private current: { phase: ClientPhase; status?: Status; failure?: string; executionOff?: string } = {
    phase: 'stopped',
  };
  private stopping = false;
  private failureError: ServerUnavailable | undefined;
  private readonly stateEmitter = new vscode.EventEmitter<void>();
  private readonly statusEmitter = new vscode.EventEmitter<Status>();
  private readonly afterApplyHooks: ((result: ApplyResult) => Promise<void>)[] = [];

  /** Phase, status, failure or execution changed: redraw the status bar. */
  readonly onDidChangeState = this.stateEmitter.event;
  /** A `funcforge/status` notification arrived: refresh the views. */
  readonly onDidReceiveStatus = this.statusEmitter.event;

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get phase(): ClientPhase {
    return this.current.phase;
  }
  get status(): Status | undefined {
    return this.current.status;
  }
  get failure(): string | undefined {
    return this.current.failure;
  }
  /** Why the client turned execution off (trust or setting), or `undefined`. */
  get executionOffReason(): string | undefined {
    return this.current.executionOff;
  }

  /** The folder the server works on: the first workspace folder. */
  get folder(): vscode.WorkspaceFolder | undefined {
    return vscode.workspace.workspaceFolders?.[0];
  }

  /** Called after a proposal was applied, by a command or a code action (see editors.ts). */
  onDidApply(hook: (result: ApplyResult) => Promise<void>): void {
    this.afterApplyHooks.push(hook);
  }

  private setState(patch: Partial<ServerManager['current']>): void {
    this.current = { ...this.current, ...patch };
    this.stateEmitter.fire();
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    this.lifecycle = this.lifecycle.then(op, op);
    return this.lifecycle;
  }

  /**
   * Starts the server unless it runs or a start failed (then `restart` tries
   * again). With `notify`, a failure is shown to the user at once; commands
   * pass `false` and show the error themselves.
   */
  start(notify = true): Promise<void> {
    return this.enqueue(async () => {
      if (this.client !== undefined || this.current.phase === 'failed') {
        return;
      }
      await this.doStart(notify);
    });
  }

  restart(reason: string): Promise<void> {
    return this.enqueue(async () => {
      this.log.info(`restarting the server: ${reason}`);
      await this.doStop();
      await this.doStart(true);
    });
  }

  stop(): Promise<void> {
    return this.enqueue(() => this.doStop());
  }

  private async doStop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.progress = undefined;
    if (client !== undefined) {
      this.stopping = true;
      try {
        // dispose, not stop: a client is never started again, and dispose frees its diagnostics.
        await client.dispose(5000);
      } catch (error) {
        this.log.warn(`stopping the server: ${errorMessage(error)}`);
      } finally {
        this.stopping = false;
      }
    }
    this.setState({ phase: 'stopped', status: undefined, failure: undefined });
  }

  private async doStart(notify: boolean): Promise<void> {
    this.failureError = undefined;
    this.setState({ phase: 'starting', status: undefined, failure: undefined });
    try {
      await this.launch();
    } catch (error) {
      const message = errorMessage(error);
      this.log.error(message);
      this.failureError = error instanceof ServerUnavailable ? error : new ServerUnavailable(message);
      const client = this.client;
      this.client = undefined;
      this.progress = undefined;
      if (client !== undefined) {
        await client.dispose(2000).catch(() => undefined);
      }
      this.setState({ phase: 'failed', failure: message });
      if (notify) {
        void this.showFailure(this.failureError);
      }
    }
  }

  private async launch(): Promise<void> {
    const folder = this.folder;
    if (folder === undefined) {
      throw new ServerUnavailable('funcforge needs a folder: open the folder that holds your agent tools.');
    }
    const trusted = vscode.workspace.isTrusted;
    const settings = currentSettings(folder);
    for (const problem of settings.problems) {
      this.log.warn(problem);
    }
    const execution = executionState(settings, trusted);
    this.setState({ executionOff: execution.reason });
    if (execution.reason !== undefined) {
      this.log.info(`execution is off: ${execution.reason}`);
    }

    const choice = chooseInterpreter({
      setting: settings.python,
      pythonExtension:
        settings.python === undefined ? await activeInterpreter(folder.uri, this.log) : undefined,
      trusted,
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
    });
    if (choice.note !== undefined) {
      this.log.info(choice.note);
    }
    this.log.info(`interpreter: ${choice.command} (${choice.source})`);

    const env: NodeJS.ProcessEnv = { ...process.env };
    const apiKey = await this.secrets.get(API_KEY_SECRET);
    if (apiKey !== undefined && apiKey.length > 0) {
      env[API_KEY_ENV] = apiKey;
      this.log.info(`API key: from VS Code's secret storage (in ${API_KEY_ENV})`);
    } else {
      this.log.info(
        env[API_KEY_ENV] ? `API key: ${API_KEY_ENV} from VS Code's environment` : 'API key: none set',
      );
    }

    const problem = await importProblem(choice.command, 'funcforge', folder.uri.fsPath, env);
    if (problem !== undefined) {
      const checkout = await funcforgeCheckout(folder.uri.fsPath);
      const command = installCommand(choice.command, checkout, process.platform === 'win32');
      throw new ServerUnavailable(notImportableMessage(choice.command, choice.source, problem, command), {
        python: choice.command,
        command,
      });
    }

    // The process is spawned here, not by vscode-languageclient, to keep its exit
    // status and the tail of its stderr for the message when it dies.
    const proc: { stderr: StderrTail; exit?: { code: number | null; signal: string | null } } = {
      stderr: new StderrTail(),
    };
    const serverOptions: ServerOptions = async () => {
      proc.stderr = new StderrTail();
      proc.exit = undefined;
      const child = spawn(choice.command, moduleArgs('funcforge', 'serve'), {
        cwd: folder.uri.fsPath,
        env,
        stdio: 'pipe',
      });
      child.stderr.on('data', (chunk: Buffer) => proc.stderr.push(chunk.toString('utf8')));
      // 'close' comes after stderr is drained, so the tail is complete.
      child.on('close', (code, signal) => {
        proc.exit = { code, signal };
        this.log.info(`the server process exited (code ${code ?? '-'}, signal ${signal ?? '-'})`);
      });
      child.on('error', (error) => this.log.error(`the server process: ${error.message}`));
      return child;
    };
    let initialized = false;
    const budget = new RestartBudget();
    const errorHandler: ErrorHandler = {
      error: (_error, _message, count) => ({
        action: count !== undefined && count <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
      }),
      closed: () => {
        const message = exitMessage(
          initialized ? 'running' : 'start-up',
          proc.exit?.code,
          proc.exit?.signal,
          proc.stderr.lastLine(),
        );
        if (this.client !== client || this.stopping) {
          return { action: CloseAction.DoNotRestart, handled: true };
        }
        if (!initialized) {
          // start() fails and doStart reports it; no restart loop on a server that cannot start.
          return { action: CloseAction.DoNotRestart, handled: true };
        }
        if (budget.allow(Date.now())) {
          this.log.warn(`${message} Restarting it.`);
          return { action: CloseAction.Restart, handled: true };
        }
        const failure = new ServerUnavailable(
          `${message} It crashed ${budget.max + 1} times in 3 minutes; not restarting it.`,
        );
        this.failureError = failure;
        this.setState({ phase: 'failed', failure: failure.message });
        void this.showFailure(failure);
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file', language: 'python' }],
      workspaceFolder: folder,
      initializationOptions: serverSettings(settings, trusted),
      outputChannel: this.log,
      traceOutputChannel: this.log,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      diagnosticCollectionName: 'funcforge',
      errorHandler,
      initializationFailedHandler: (error) => {
        this.log.error(`the server failed to initialize: ${errorMessage(error)}`);
        return false;
      },
      middleware: {
        workspace: {
          configuration: (params, token, next) => {
            const fresh = serverSettings(currentSettings(this.folder), vscode.workspace.isTrusted);
            const answers = params.items.map((item) => configurationItem(item.section, fresh));
            if (answers.every((a) => a.ours)) {
              return answers.map((a) => a.value);
            }
            return Promise.resolve(next(params, token)).then((theirs) =>
              Array.isArray(theirs) ? answers.map((a, i) => (a.ours ? a.value : theirs[i])) : theirs,
            );
          },
        },
        // Commands run from code actions and lenses (e.g. "Apply funcforge proposal",
        // the "Optimize" lens): the result's message, or the error, shown once here
        // (a rejection would be shown again by VS Code itself).
        executeCommand: async (command, args, next) => {
          let result: unknown;
          try {
            result = await next(command, args);
          } catch (error) {
            if (!isCancellation(error)) {
              void showCommandError(this.log, command, error);
            }
            return undefined;
          }
          if (command === SERVER_COMMANDS.applyProposal) {
            await this.applied(result);
          }
          void showResult(command, result);
          return result;
        },
      },
    };

    const client = new LanguageClient('funcforge', 'funcforge', serverOptions, clientOptions);
    const progress = new NotificationProgressFeature(client, this.log);
    client.registerFeature(progress);
    client.registerFeature(new ClientCommandsGuard(this.log));
    client.registerFeature(new ShowsResultsFeature());
    client.onNotification(STATUS_NOTIFICATION, (params: unknown) => {
      try {
        const status = parseStatus(params);
        this.setState({ status });
        this.statusEmitter.fire(status);
      } catch (error) {
        this.log.warn(errorMessage(error));
      }
    });
    client.onDidChangeState((event) => {
      if (this.client !== client || this.stopping) {
        return;
      }
      if (event.newState === State.Running) {
        this.setState({ phase: 'running' });
      } else if (event.newState === State.Stopped) {
        this.setState({ phase: 'stopped', status: undefined });
      }
    });
    this.client = client;
    this.progress = progress;
    this.log.info(`starting: ${choice.command} -m funcforge serve (in ${folder.uri.fsPath})`);
    let startError: unknown;
    try {
      await client.start();
    } catch (error) {
      startError = error;
    }
    // vscode-languageclient 9 resolves start() without error when a failed
    // initialize stops the client, so check the state as well.
    if (startError !== undefined || !client.isRunning()) {
      // The process usually died; wait for its exit status and stderr to say why.
      for (let waited = 0; proc.exit === undefined && waited < 2000; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new ServerUnavailable(
        proc.exit !== undefined
          ? exitMessage('start-up', proc.exit.code, proc.exit.signal, proc.stderr.lastLine())
          : `the funcforge server did not start: ${startError !== undefined ? errorMessage(startError) : 'it stopped during initialization'}`,
      );
    }
    initialized = true;
    this.setState({ phase: 'running' });
  }

  /** Shows why the server cannot run, with buttons to install funcforge or pick an interpreter. */
  async showFailure(error: unknown): Promise<void> {
    const install = error instanceof ServerUnavailable ? error.install : undefined;
    const buttons =
      install !== undefined ? ['Install in terminal', 'Choose interpreter', 'Show logs'] : ['Show logs'];
    const message = errorMessage(error);
    const sentence = message.charAt(0).toUpperCase() + message.slice(1);
    const picked = await vscode.window.showErrorMessage(sentence, ...buttons);
    if (picked === 'Show logs') {
      this.log.show();
    } else if (picked === 'Choose interpreter') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'funcforge.python');
    } else if (picked === 'Install in terminal' && install !== undefined) {
      const terminal = vscode.window.createTerminal({ name: 'funcforge install', cwd: this.folder?.uri });
      terminal.show();
      terminal.sendText(install.command);
      const next = await vscode.window.showInformationMessage(
        `Installing funcforge into ${install.python}. Restart the server when the install has finished.`,
        'Restart server',
      );
      if (next === 'Restart server') {
        await this.restart('funcforge installed');
      }
    }
  }

  /** The running client; starts it when needed, and fails with the reason when it cannot run. */
  async running(): Promise<LanguageClient> {
    if (this.client !== undefined && this.client.state === State.Stopped) {
      // It died and vscode-languageclient gave up restarting it.
      await this.restart('the server had stopped');
    }
    await this.start(false);
    await this.lifecycle;
    if (this.client === undefined || this.current.phase === 'failed') {
      throw (
        this.failureError ??
        new ServerUnavailable('the funcforge server is not running; run "funcforge: Restart server"')
      );
    }
    return this.client;
  }

  /**
   * Runs one of the server's commands (docs/lsp.md) and returns its JSON result;
   * an action's message is shown (once: the server leaves it to this client).
   */
  async execute(command: string, arg?: unknown, token?: vscode.CancellationToken): Promise<unknown> {
    const client = await this.running();
    const result: unknown = await client.sendRequest(
      ExecuteCommandRequest.type,
      { command, arguments: arg === undefined ? [] : [arg] },
      token,
    );
    void showResult(command, result);
    return result;
  }

  /**
   * Runs `funcforge.optimize`. It hands the server a work-done token of its own
   * and also shows progress on a token the server creates, whichever it uses.
   */
  async optimize(functionName?: string): Promise<string[]> {
    const client = await this.running();
    const token = newProgressToken();
    const part = this.progress?.track(token);
    try {
      const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
        command: SERVER_COMMANDS.optimize,
        arguments: [functionName === undefined ? {} : { function: functionName }],
        workDoneToken: token,
      });
      const ids = parseOptimizeResult(result);
      void showResult(SERVER_COMMANDS.optimize, result);
      return ids;
    } finally {
      part?.dispose();
    }
  }

  /** Runs `funcforge.applyProposal` and then the after-apply hooks. */
  async apply(id: string): Promise<void> {
    await this.applied(await this.execute(SERVER_COMMANDS.applyProposal, { id }));
  }

  private async applied(raw: unknown): Promise<void> {
    let result: ApplyResult;
    try {
      result = parseApplyResult(raw);
    } catch (error) {
      this.log.warn(errorMessage(error));
      return;
    }
    this.log.info(`applied: commit ${result.commit} (${result.files.join(', ')})`);
    for (const hook of this.afterApplyHooks) {
      try {
        await hook(result);
      } catch (error) {
        this.log.warn(`after applying: ${errorMessage(error)}`);
      }
    }
  }

  dispose(): void {
    void this.stop();
    this.stateEmitter.dispose();
    this.statusEmitter.dispose();
  }
}
