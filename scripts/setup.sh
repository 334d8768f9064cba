#!/usr/bin/env bash
# Set up a fresh machine for funcforge: a virtualenv with the package and its
# test extras, and (with --editors) the real editors the end-to-end tests drive.
# Idempotent: what is already there is not installed again.
set -euo pipefail
cd "$(dirname "$0")/.."

want_editors=0
for arg in "$@"; do
  case "$arg" in
    --editors) want_editors=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

if [ "$want_editors" = 1 ]; then
  need=()
  command -v git >/dev/null || need+=(git)
  command -v nvim >/dev/null || need+=(neovim)
  command -v emacs >/dev/null || need+=(emacs-nox)
  [ -d /usr/share/emacs/site-lisp/elpa/eglot-1.9 ] || ls -d /usr/share/emacs/site-lisp/elpa/eglot-* >/dev/null 2>&1 || need+=(elpa-eglot)
  command -v chromium >/dev/null || need+=(chromium)
  dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)
  command -v bwrap >/dev/null || need+=(bubblewrap)  # the OS sandbox for tool code (issue 12)
  if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ -f vscode-client/package.json ]; then
    (cd vscode-client && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
