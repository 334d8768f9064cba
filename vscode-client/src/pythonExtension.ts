/**
 * The Python extension's active environment (ms-python.python), when that
 * extension is installed. Only the two calls we need are typed here.
 */

import * as vscode from 'vscode';

interface EnvironmentPath {
  id: string;
  path: string;
}

interface ResolvedEnvironment {
  executable: { uri?: vscode.Uri };
}

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): EnvironmentPath;
    resolveEnvironment(env: EnvironmentPath | string): Promise<ResolvedEnvironment | undefined>;
    onDidChangeActiveEnvironmentPath: vscode.Event<unknown>;
  };
}

const PYTHON_EXTENSION_ID = 'ms-python.python';

async function api(): Promise<PythonExtensionApi | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>(PYTHON_EXTENSION_ID);
  if (extension === undefined) {
    return undefined;
  }
  const exports = extension.isActive ? extension.exports : await extension.activate();
  return exports?.environments !== undefined ? exports : undefined;
}

/** The interpreter the Python extension has selected for `resource`, or `undefined`. */
export async function activeInterpreter(
  resource: vscode.Uri | undefined,
  log: vscode.LogOutputChannel,
): Promise<string | undefined> {
  try {
    const environments = (await api())?.environments;
    if (environments === undefined) {
      return undefined;
    }
    const envPath = environments.getActiveEnvironmentPath(resource);
    const resolved = await environments.resolveEnvironment(envPath);
    return resolved?.executable.uri?.fsPath ?? envPath.path;
  } catch (error) {
    log.warn(`could not ask the Python extension for its interpreter: ${String(error)}`);
    return undefined;
  }
}

/** Subscribes to interpreter changes in the Python extension, when it is installed. */
export async function onDidChangeInterpreter(
  listener: () => void,
  log: vscode.LogOutputChannel,
): Promise<vscode.Disposable | undefined> {
  try {
    return (await api())?.environments?.onDidChangeActiveEnvironmentPath(() => listener());
  } catch (error) {
    log.warn(`could not follow the Python extension's interpreter: ${String(error)}`);
    return undefined;
  }
}
