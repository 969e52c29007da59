#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite in local mode.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export SPARK_LOCAL_IP=127.0.0.1
export PYSPARK_PYTHON="$PWD/.venv/bin/python"
exec .venv/bin/python -m pytest "$@"
