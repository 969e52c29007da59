#!/usr/bin/env bash
# Create the virtual environment of one tested environment and install ctx-spark into it
# from that environment's constraints file (docs/platforms.md, "Two tested environments"):
#
#   scripts/setup.sh                     # current: .venv, Python 3.13, constraints/current.txt
#   CTX_SPARK_ENV=lts scripts/setup.sh   # lts: .venv-lts, Python 3.11, constraints/lts.txt (+ petastorm)
#
# Installs ".[train,tf-cpu,test]" (lts also "petastorm") with `pip install -c`, so every
# package, transitive ones included, is the version the constraints file names. Idempotent:
# re-installs only when setup.cfg, pyproject.toml or the constraints file changed since the
# last install. PYTHON=/path/to/python overrides the interpreter; pip's cache (PIP_CACHE_DIR)
# is shared between the environments. Prints the environment's directory on stdout (and
# nothing else there), for scripts/test.sh and scripts/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_NAME="${CTX_SPARK_ENV:-current}"
case "$ENV_NAME" in
  current) VENV=.venv VERSION=3.13 EXTRAS="train,tf-cpu,test" ;;
  lts) VENV=.venv-lts VERSION=3.11 EXTRAS="train,tf-cpu,test,petastorm" ;;
  *) echo "CTX_SPARK_ENV must be 'current' or 'lts' (got '$ENV_NAME')" >&2; exit 1 ;;
esac
CONSTRAINTS="constraints/$ENV_NAME.txt"

is_version() { "$1" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$VERSION'.split('.'))))" 2>/dev/null; }

find_python() {
  local candidate
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  for candidate in "python$VERSION" "$HOME/.pyenv/versions/$VERSION"*/bin/python "/usr/local/bin/python$VERSION" \
    "/usr/bin/python$VERSION"; do
    if command -v "$candidate" >/dev/null 2>&1 && is_version "$candidate"; then echo "$candidate"; return; fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for candidate in "$(pyenv root)/versions/$VERSION"*/bin/python; do
      if [ -x "$candidate" ] && is_version "$candidate"; then echo "$candidate"; return; fi
    done
  fi
  echo "python$VERSION"
}

PY="$(find_python)"
is_version "$PY" || {
  echo "the '$ENV_NAME' environment needs Python $VERSION (tried '$PY'); set PYTHON=/path/to/python$VERSION" >&2
  exit 1
}
command -v java >/dev/null 2>&1 || { echo "ctx-spark needs Java 17 on PATH (Spark runs on the JVM)" >&2; exit 1; }

if [ -x "$VENV/bin/python" ] && ! is_version "$VENV/bin/python"; then
  echo "== $VENV holds another Python than $VERSION (an older checkout's?): re-creating it" >&2
  rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV" >&2
stamp="$VENV/.ctx-spark-installed"
want="$(cat setup.cfg pyproject.toml "$CONSTRAINTS" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== installing ctx-spark[$EXTRAS] into $VENV from $CONSTRAINTS" >&2
  pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
  # pip, setuptools and wheel first, at the constrained versions: the project and the
  # pyspark sdist are then built with them (no isolated build environment to download).
  "${pip[@]}" install --quiet -c "$CONSTRAINTS" pip setuptools wheel >&2
  "${pip[@]}" install --quiet -c "$CONSTRAINTS" --no-build-isolation -e ".[$EXTRAS]" >&2
  "${pip[@]}" check >&2
  echo "$want" > "$stamp"
fi
echo "$VENV"
