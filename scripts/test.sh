#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite in local mode, in the environment
# CTX_SPARK_ENV names (current by default; lts: CTX_SPARK_ENV=lts scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$(scripts/setup.sh)"
export SPARK_LOCAL_IP=127.0.0.1
export PYSPARK_PYTHON="$PWD/$VENV/bin/python"
exec "$VENV/bin/python" -m pytest "$@"
