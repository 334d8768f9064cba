// package.json must agree with the code: every command registered is
// contributed, menus name real commands and context values, settings match
// what settings.ts reads, and no command clashes with a server command.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  COMMANDS,
  CONTEXT_VALUES,
  INTERNAL_COMMANDS,
  SERVER_COMMANDS,
  VIEW_CONTAINER,
  VIEWS,
} from '../src/constants';
import { SETTING_KEYS } from '../src/settings';

const root = path.join(__dirname, '..', '..');
interface MenuEntry {
  command: string;
  when?: string;
}
interface Manifest {
  main: string;
  engines: { vscode: string };
  devDependencies: Record<string, string>;
  capabilities: {
    untrustedWorkspaces: { supported: string; restrictedConfigurations: string[]; description: string };
  };
  contributes: {
    commands: { command: string; category?: string }[];
    menus: Record<string, MenuEntry[]>;
    configuration: { properties: Record<string, { default?: unknown }> };
    viewsContainers: { activitybar: { id: string; icon: string }[] };
    views: Record<string, { id: string }[]>;
  };
}
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as Manifest;
const contributed = pkg.contributes.commands.map((c) => c.command);

describe('package.json', () => {
  it('contributes exactly the commands the extension registers', () => {
    assert.deepEqual([...contributed].sort(), Object.values(COMMANDS).sort());
    for (const c of pkg.contributes.commands) {
      assert.equal(c.category, 'funcforge', `${c.command} has the category funcforge`);
    }
  });

  it('reuses no id of a server command (vscode-languageclient registers those)', () => {
    const server = new Set<string>(Object.values(SERVER_COMMANDS));
    for (const id of contributed) {
      assert.equal(server.has(id), false, `${id} is a server command`);
    }
  });

  it('hides internal commands from the palette', () => {
    const hidden = pkg.contributes.menus.commandPalette
      .filter((m) => m.when === 'false')
      .map((m) => m.command);
    assert.deepEqual(hidden.sort(), [...INTERNAL_COMMANDS].sort());
  });

  it('menus name contributed commands, real views and real context values', () => {
    const contexts = new Set<string>(Object.values(CONTEXT_VALUES));
    const views = new Set<string>(Object.values(VIEWS));
    for (const [where, entries] of Object.entries(pkg.contributes.menus)) {
      for (const entry of entries) {
        assert.ok(contributed.includes(entry.command), `${where}: ${entry.command} is contributed`);
        for (const m of (entry.when ?? '').matchAll(/viewItem == ([\w.]+)/g)) {
          assert.ok(contexts.has(m[1]), `${where}: context value ${m[1]} exists`);
        }
        for (const m of (entry.when ?? '').matchAll(/view == ([\w.]+)/g)) {
          assert.ok(views.has(m[1]), `${where}: view ${m[1]} exists`);
        }
      }
    }
  });

  it('declares the container and views the code uses', () => {
    assert.deepEqual(
      pkg.contributes.viewsContainers.activitybar.map((c) => c.id),
      [VIEW_CONTAINER],
    );
    assert.deepEqual(
      pkg.contributes.views[VIEW_CONTAINER].map((v) => v.id),
      [VIEWS.tools, VIEWS.proposals, VIEWS.history],
    );
  });

  it('contributes the settings settings.ts reads, and the trace setting', () => {
    const props = Object.keys(pkg.contributes.configuration.properties).sort();
    assert.deepEqual(props, [...SETTING_KEYS.map((k) => `funcforge.${k}`), 'funcforge.trace.server'].sort());
    const p = pkg.contributes.configuration.properties;
    assert.equal(p['funcforge.allowExecution'].default, true);
    assert.equal(JSON.stringify(pkg.contributes.configuration).toLowerCase().includes('apikey'), false);
  });

  it('restricts the settings that could run or redirect things in an untrusted workspace', () => {
    const trust = pkg.capabilities.untrustedWorkspaces;
    assert.equal(trust.supported, 'limited');
    for (const key of [
      'funcforge.python',
      'funcforge.allowExecution',
      'funcforge.baseUrl',
      'funcforge.llm',
    ]) {
      assert.ok(trust.restrictedConfigurations.includes(key), `${key} is restricted`);
    }
    assert.ok(trust.description.length > 20);
  });

  it('targets a VS Code its @types/vscode and vscode-languageclient support', () => {
    const engine = /^\^(\d+)\.(\d+)\.\d+$/.exec(pkg.engines.vscode);
    assert.ok(engine, 'engines.vscode is ^X.Y.Z');
    const types = /^(\d+)\.(\d+)\.\d+$/.exec(pkg.devDependencies['@types/vscode']);
    assert.ok(types, '@types/vscode is pinned');
    assert.deepEqual([types[1], types[2]], [engine[1], engine[2]]);
    const lc = JSON.parse(
      readFileSync(path.join(root, 'node_modules', 'vscode-languageclient', 'package.json'), 'utf8'),
    ) as { version: string; engines: { vscode: string } };
    assert.match(lc.version, /^9\./);
    const needs = /(\d+)\.(\d+)/.exec(lc.engines.vscode);
    assert.ok(needs);
    assert.ok(
      Number(engine[1]) * 1000 + Number(engine[2]) >= Number(needs[1]) * 1000 + Number(needs[2]),
      `engines.vscode ${pkg.engines.vscode} satisfies vscode-languageclient's ${lc.engines.vscode}`,
    );
    assert.equal(pkg.main, './dist/extension.js');
  });

  it('packages only the bundle, the docs and the icon', () => {
    const ignore = readFileSync(path.join(root, '.vscodeignore'), 'utf8');
    assert.match(ignore, /^\*\*$/m);
    assert.match(ignore, /^!dist\/extension\.js$/m);
    assert.match(ignore, /^!LICENSE$/m);
    for (const container of pkg.contributes.viewsContainers.activitybar) {
      assert.match(ignore, new RegExp(`^!${path.dirname(container.icon)}/\\*\\*$`, 'm'));
      readFileSync(path.join(root, container.icon));
    }
  });
});
