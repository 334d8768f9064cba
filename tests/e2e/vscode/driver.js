// Drives real VS Code (code-server in headless Chromium, through playwright-core)
// the way a person would: open a tool file, see funcforge's diagnostic, run
// "funcforge: Optimize workspace" from the command palette, preview the proposal
// as a diff, apply it from the lightbulb menu. Each step leaves a screenshot.
//
// Parameters: the FUNCFORGE_E2E environment variable (JSON, see test_vscode.py).
// Findings: a JSON file (`result`), written after every step so a failure still
// shows how far the run got. Exit code 0 only when every step passed.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const P = JSON.parse(process.env.FUNCFORGE_E2E || '{}');
const STEP_MS = P.step_timeout_ms || 60000;
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const t0 = Date.now();
const found = { ok: false, seconds: {}, steps: [], screenshots: [] };
let last = t0;

function save() {
  fs.writeFileSync(P.result, JSON.stringify(found, null, 2));
}

function log(...args) {
  console.log(((Date.now() - t0) / 1000).toFixed(1) + 's', ...args);
}

/** Records a finished step and its duration. */
function done(step) {
  const now = Date.now();
  found.seconds[step] = (now - last) / 1000;
  found.steps.push(step);
  last = now;
  log(step);
  save();
}

let shot = 0;
async function screenshot(page, name) {
  await page.waitForTimeout(400); // notifications and hovers fade in
  shot += 1;
  const file = path.join(P.artifacts, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  found.screenshots.push(path.basename(file));
  save();
}

/** Visible text with VS Code's non-breaking spaces made plain. */
function plain(text) {
  return (text || '').replace(/\u00a0/g, ' ').replace(/\s+/g, ' ').trim();
}

async function textsOf(locator) {
  return (await locator.allInnerTexts()).map(plain);
}

/** Waits until `probe()` returns a truthy value; fails with `what` after STEP_MS. */
async function until(what, probe, timeout = STEP_MS) {
  const end = Date.now() + timeout;
  let lastError;
  while (Date.now() < end) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}` + (lastError ? ` (${lastError.message})` : ''));
}

function quickInput(page) {
  return page.locator('.quick-input-widget');
}

/** Types into the open quick input and picks the row whose text contains `rowText`. */
async function pickInQuickInput(page, typed, rowText) {
  const widget = quickInput(page);
  await widget.waitFor({ state: 'visible', timeout: STEP_MS });
  const input = widget.locator('input').first();
  await input.fill(typed);
  const row = widget.locator('.monaco-list-row', { hasText: rowText }).first();
  await row.waitFor({ state: 'visible', timeout: STEP_MS });
  await row.click();
}

/** Runs a command from the command palette (F1), by its title as the palette shows it. */
async function runCommand(page, title) {
  await page.keyboard.press('F1');
  await pickInQuickInput(page, '>' + title, title);
}

async function statusBarText(page) {
  const items = await textsOf(page.locator('.part.statusbar .statusbar-item', { hasText: 'funcforge' }));
  return items.join(' | ');
}

async function notificationTexts(page) {
  return textsOf(page.locator('.notifications-toasts .notification-toast'));
}

async function waitForNotification(page, text) {
  return until(`a notification containing "${text}"`, async () =>
    (await notificationTexts(page)).find((t) => t.includes(text)));
}

async function clearNotifications(page) {
  await runCommand(page, 'Notifications: Clear All Notifications');
  await until('notifications to go away', async () => (await notificationTexts(page)).length === 0, 10000);
}

async function tabTitles(page) {
  return textsOf(page.locator('.tabs-container .tab .label-name'));
}

/** Searches the active editor with its Find widget; returns the match count once `accept` likes it. */
async function findCount(page, text, accept) {
  await page.keyboard.press('Control+F');
  const widget = page.locator('.editor-group-container.active .find-widget.visible');
  await widget.waitFor({ state: 'visible', timeout: STEP_MS });
  await widget.locator('.find-part textarea, .find-part input').first().fill(text);
  return until(`Find "${text}" to report a match count`, async () => {
    const count = plain(await widget.locator('.matchesCount').innerText());
    return accept(count) && count;
  });
}

/** Go to Line/Column (Ctrl+G). */
async function goTo(page, line, col) {
  await page.keyboard.press('Control+G');
  await quickInput(page).waitFor({ state: 'visible', timeout: STEP_MS });
  await quickInput(page).locator('input').first().fill(`:${line}:${col}`);
  await page.keyboard.press('Enter');
  await quickInput(page).waitFor({ state: 'hidden', timeout: STEP_MS });
}

async function run(page) {
  await page.goto(P.url, { waitUntil: 'domcontentloaded', timeout: STEP_MS });
  await page.waitForSelector('.monaco-workbench', { timeout: STEP_MS });
  // The extension activates on the workspace's pyproject.toml and starts the server.
  found.status_ready = await until('the funcforge status bar item to say idle', async () => {
    const text = await statusBarText(page);
    return /funcforge: idle/.test(text) && text;
  });
  done('workbench and server ready');
  await screenshot(page, 'workbench');

  // 1. Open the tool file and see the diagnostic on the buggy tool.
  await page.keyboard.press('Control+P');
  await pickInQuickInput(page, P.file_rel, path.basename(P.file_rel));
  await page.waitForSelector('.editor-group-container.active .monaco-editor .view-lines', { timeout: STEP_MS });
  await page.waitForSelector('.monaco-editor .squiggly-warning', { timeout: STEP_MS });
  done('file open, warning squiggle shown');
  const squiggle = page.locator('.monaco-editor .squiggly-warning').first();
  // Code lenses arriving above the line (or a republish) can move the squiggle from
  // under a still mouse: hover it again where it is now whenever no hover shows.
  let hoveredAt = null;
  let probes = 0;
  found.hover = await until('the diagnostic hover', async () => {
    const texts = await textsOf(page.locator('.monaco-hover:visible'));
    const hit = texts.find((t) => t.includes('logged calls failed'));
    if (hit) return hit;
    const box = await squiggle.boundingBox();
    if (box) {
      const at = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
      const moved = !hoveredAt || Math.abs(at.x - hoveredAt.x) > 2 || Math.abs(at.y - hoveredAt.y) > 2;
      if (moved || ++probes % 20 === 0) {
        await page.mouse.move(5, 5);
        await page.mouse.move(at.x, at.y);
        hoveredAt = at;
      }
    }
    return undefined;
  });
  await screenshot(page, 'diagnostic-hover');
  await page.mouse.move(5, 5);
  await page.keyboard.press('Escape');

  await page.keyboard.press('Control+Shift+M'); // the Problems panel
  found.problems = await until('the Problems panel to list the diagnostic', async () => {
    const rows = await textsOf(page.locator('.markers-panel .monaco-list-row'));
    return rows.length > 0 && rows.some((r) => r.includes(P.expect_diagnostic)) && rows;
  });
  done('diagnostic in hover and Problems panel');
  await screenshot(page, 'problems-panel');

  // 2. Optimize from the command palette; the fake endpoint answers slowly enough
  //    that the cancellable progress notification is on screen for a while.
  await clearNotifications(page);
  await runCommand(page, 'funcforge: Optimize workspace');
  found.progress = await until('the optimization progress notification with Cancel', async () => {
    const toasts = page.locator('.notifications-toasts .notification-toast', { hasText: 'funcforge' });
    const n = await toasts.count();
    for (let i = 0; i < n; i++) {
      const toast = toasts.nth(i);
      const buttons = await textsOf(toast.locator('.monaco-button'));
      if (buttons.includes('Cancel')) return { text: plain(await toast.innerText()), buttons };
    }
    return undefined;
  });
  found.status_optimizing = await until('the status bar to say optimizing', async () => {
    const text = await statusBarText(page);
    return /optimizing/.test(text) && text;
  });
  await screenshot(page, 'optimize-progress');
  found.optimize_message = await waitForNotification(page, 'funcforge: proposed revise');
  await page.waitForTimeout(1500); // a second message would show by now
  // What the Optimize left on screen: its one message (the progress toast has ended).
  found.optimize_toasts = (await notificationTexts(page)).filter((t) => /funcforge|propos/.test(t));
  found.optimize_buttons = await textsOf(
    page.locator('.notifications-toasts .notification-toast', { hasText: 'funcforge: proposed' }).locator('.monaco-button'),
  );
  found.status_after_optimize = await until('the status bar to count the proposal', async () => {
    const text = await statusBarText(page);
    return /1 proposal\b/.test(text) && text;
  });
  done('optimize: one proposal');
  await screenshot(page, 'proposal-ready');

  // 3. Preview the proposal: a diff editor against the funcforge-proposal: document.
  await clearNotifications(page);
  await runCommand(page, 'funcforge: Preview proposal');
  await pickInQuickInput(page, '', P.function); // "Preview which proposal?"
  await page.waitForSelector('.monaco-diff-editor', { timeout: STEP_MS });
  found.preview_tab = await until('the diff tab', async () =>
    (await tabTitles(page)).find((t) => t.includes('funcforge proposal')));
  found.diff_inserted = await until('the diff to show the new line', async () => {
    const lines = await textsOf(page.locator('.monaco-diff-editor .editor.modified .view-lines .view-line'));
    return lines.find((l) => l.includes(P.expect_new_line));
  });
  // Left: the file on disk; right: the read-only proposal document on its own scheme.
  found.diff_uris = {
    original: await page.locator('.monaco-diff-editor .editor.original .monaco-editor').first().getAttribute('data-uri'),
    modified: await page.locator('.monaco-diff-editor .editor.modified .monaco-editor').first().getAttribute('data-uri'),
  };
  found.diff_has_changes = await page.locator('.monaco-diff-editor .line-insert, .monaco-diff-editor .char-insert').count();
  done('preview diff open');
  await screenshot(page, 'preview-diff');

  // 4. Back in the tool file, the user types a line above the function (autosave may
  //    save it, or not), then Ctrl+. on the function's name: the lightbulb menu.
  await page.locator('.tabs-container .tab', { hasText: path.basename(P.file_rel) })
    .filter({ hasNotText: 'funcforge proposal' }).first().click();
  await page.waitForSelector('.editor-group-container.active .editor-instance > .monaco-editor', { timeout: STEP_MS });
  let defLine = P.def_line;
  if (P.typed_line) {
    await goTo(page, defLine, 1);
    await page.keyboard.type(P.typed_line);
    await page.keyboard.press('Enter');
    defLine += 1;
    await page.waitForTimeout(P.autosave ? 2500 : 800); // autosave's delay, the server's debounce
    found.dirty_before_apply = await page.locator('.tabs-container .tab.dirty').count();
    done('typed a line above the function');
  }
  await goTo(page, defLine, P.def_col); // the cursor on the function's name
  await page.keyboard.press('Control+Period');
  const menu = page.locator('.action-widget .monaco-list-row');
  const apply = menu.filter({ hasText: P.expect_action }).first();
  await apply.waitFor({ state: 'visible', timeout: STEP_MS });
  found.actions = await textsOf(menu);
  done('lightbulb menu lists the proposal');
  await screenshot(page, 'lightbulb-menu');

  await page.keyboard.press('Escape'); // close the menu; open it again on a clean screen
  await clearNotifications(page);
  await goTo(page, defLine, P.def_col);
  await page.keyboard.press('Control+Period');
  await apply.waitFor({ state: 'visible', timeout: STEP_MS });
  await apply.click();
  found.commit_message = await waitForNotification(page, 'funcforge: committed');
  await page.waitForTimeout(1500); // any later toast would show by now
  found.apply_toasts = (await notificationTexts(page)).filter((t) => /funcforge|committed|applied/.test(t));
  done('applied: commit notification');
  if (P.autosave) await page.waitForTimeout(2500); // let autosave write the buffer

  // After Apply the server still knows the editor's text: the hover on the
  // function's name (one line lower now) shows the failures as history.
  await goTo(page, defLine, P.def_col);
  await runCommand(page, 'Show or Focus Hover');
  found.hover_after_apply = await until('the hover after Apply', async () => {
    const texts = await textsOf(page.locator('.monaco-hover:visible'));
    return texts.find((t) => t.includes('before your change'));
  });
  await screenshot(page, 'hover-after-apply');
  await page.keyboard.press('Escape');
  // The editor holds the committed text: Find (Ctrl+F) counts the new line once, the old one never.
  found.find_new = await findCount(page, P.expect_new_line, (c) => c === '1 of 1');
  found.find_old = await findCount(page, P.expect_old_line, (c) => /no results/i.test(c));
  await findCount(page, P.expect_new_line, (c) => c === '1 of 1'); // in view for the screenshot
  found.tab_dirty = await page.locator('.tabs-container .tab.dirty').count();
  done('editor holds the committed text');
  found.status_after_apply = await until('the status bar to drop the proposal count', async () => {
    const text = await statusBarText(page);
    return !/proposal/.test(text) && /funcforge: idle/.test(text) && text;
  });
  done('status bar: no pending proposal');
  await screenshot(page, 'applied');
  found.ok = true;
}

(async () => {
  fs.mkdirSync(P.artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: P.chromium || '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, timeout: STEP_MS,
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
  try {
    await run(page);
  } catch (e) {
    found.error = String((e && e.stack) || e);
    found.notifications_at_failure = await notificationTexts(page).catch(() => []);
    found.status_at_failure = await statusBarText(page).catch(() => '');
    await screenshot(page, 'FAILED').catch(() => {});
  } finally {
    found.seconds.total = (Date.now() - t0) / 1000;
    save();
    await browser.close();
  }
  process.exit(found.ok ? 0 : 1);
})().catch((e) => {
  console.error('driver crashed:', e);
  process.exit(2);
});
