#!/usr/bin/env bash
# Install the project and everything it needs into .venv (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --quiet --upgrade pip wheel
# llama-cpp-python has no Linux wheel on PyPI: its sdist compiles here (about 6 minutes on
# 2 cores, cached by pip afterwards). GGML_NATIVE=OFF keeps the build portable across CPUs.
echo "Installing Python packages (the first time compiles llama-cpp-python, ~6 min)..." >&2
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" .venv/bin/pip install --quiet -e '.[dev]'
