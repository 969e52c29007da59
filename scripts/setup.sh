#!/usr/bin/env bash
# Create ./.venv (Python 3.11) and install ctx-spark with its pinned dependencies.
# Idempotent: re-installs only when setup.cfg changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
  || { echo "ctx-spark needs Python 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2; exit 1; }
command -v java >/dev/null 2>&1 || { echo "ctx-spark needs Java 17 on PATH (Spark runs on the JVM)" >&2; exit 1; }
VENV=.venv
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
stamp="$VENV/.ctx-spark-installed"
want="$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip "setuptools<70" wheel
  "$VENV/bin/python" -m pip install --quiet -e ".[test]"
  echo "$want" > "$stamp"
fi
