#!/usr/bin/env bash
# The main job on the bundled sample, offline: set up, show the evidence, then
# train samples/math-tools with its scripted agent and its hand-written optimizer
# transcript (a stand-in for a model: no key, no network). Training runs on a new
# branch in a worktree under samples/math-tools/.funcforge/train/, so the sample's
# own files stay untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
if ! git config user.name >/dev/null || ! git config user.email >/dev/null; then
  export GIT_AUTHOR_NAME="funcforge demo" GIT_AUTHOR_EMAIL="demo@funcforge.invalid"
fi
if funcforge stats --help >/dev/null 2>&1; then
  funcforge stats samples/math-tools
fi
funcforge train samples/math-tools \
  --llm replay:samples/math-tools/optimizer-transcript.jsonl \
  --epochs 5 --concurrency 2 --fresh
