#!/usr/bin/env bash
# Install the project and everything it needs into .venv, at the versions in requirements.lock
# (hash-checked), so every machine runs what CI ran. Idempotent. `make lock` updates the lock.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" -V 2>&1))." >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# llama-cpp-python has no Linux wheel on PyPI: its sdist compiles here (about 6 minutes on
# 2 cores, cached by pip afterwards). GGML_NATIVE=OFF keeps the build portable across CPUs.
echo "Installing Python packages from requirements.lock (the first time compiles llama-cpp-python, ~6 min)..." >&2
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" \
  .venv/bin/pip install --quiet --require-hashes --no-deps -r requirements.lock
.venv/bin/pip install --quiet --no-deps -e .
.venv/bin/pip check >&2 || echo "install: pip check found a conflict; see above" >&2
