#!/usr/bin/env bash
# Set up everything and run every test: lint, types, Python tests (unit, LSP,
# real editors), and the VS Code extension's tests and package.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --editors
export PATH="$PWD/.venv/bin:$PATH"
# The local model of the real-server tests (llama.cpp server + SmolLM2, built once into a cache).
FUNCFORGE_LLM_PYTHON=$(bash scripts/setup-local-model.sh | tail -n 1)
export FUNCFORGE_LLM_PYTHON

echo "== ruff"
ruff check server tests benchmarks samples
echo "== mypy"
mypy
if [ -f vscode-client/package.json ]; then
  echo "== vscode-client"
  (cd vscode-client && npm run --silent compile && npm test --silent && npm run --silent package)
fi
echo "== pytest"
python -m pytest "$@"
