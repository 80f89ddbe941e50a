#!/usr/bin/env bash
# One-time, idempotent set-up of a fresh machine: a virtual environment in .venv with everything installed.
# - torch: an already-installed build (CPU or CUDA) is kept. Otherwise torch==2.13.0 is installed, which on the
#   project's CPU machines is a local CPU wheel. GPU users: install the CUDA build of torch into .venv first
#   (see README), this script then leaves it alone.
# - GPS_EXTRAS=photoz (comma-separated extras of pyproject.toml) adds optional extras, e.g. the qp p(z) export.
# - Debian's chromium (for the real-browser tests) is installed when missing and we are root; otherwise those
#   tests are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import torch" 2>/dev/null; then
  pip install "torch==${GPS_TORCH_VERSION:-2.13.0}"
fi
if ! python -c "import core, streamlit, zuko, numpyro, lightgbm, colossus, playwright" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.gps-installed ] || [ -n "${GPS_EXTRAS:-}" ]; then
  pip install -e ".[test${GPS_EXTRAS:+,$GPS_EXTRAS}]"
  touch .venv/.gps-installed
fi
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "note: could not install chromium; real-browser tests will be skipped" >&2
fi
