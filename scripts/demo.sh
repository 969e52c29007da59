#!/usr/bin/env bash
# The README's first command: install (first run only), generate a sample catalogue with a
# fixed seed, label it and build its dataset with the Spark jobs in local mode, and write the
# report site of the run.
#   scripts/demo.sh            # writes demo-out/catalogue, demo-out/labels, demo-out/dataset, demo-out/site
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$(scripts/setup.sh)"  # .venv (current); CTX_SPARK_ENV=lts: .venv-lts
export SPARK_LOCAL_IP=127.0.0.1
export PYSPARK_PYTHON="$PWD/$VENV/bin/python"
CTX="$VENV/bin/ctx-spark"
OUT=demo-out

echo "== generating a synthetic catalogue (200k playlist-track rows, seed 42) in $OUT/catalogue"
"$CTX" generate-catalogue --out "$OUT/catalogue" --rows 200000 --seed 42

echo "== labelling it: ctx-spark label (local mode)"
"$CTX" label \
  --playlists "$OUT/catalogue/playlists" \
  --playlist-tracks "$OUT/catalogue/playlist_tracks" \
  --tracks "$OUT/catalogue/tracks" \
  --out "$OUT/labels"

echo "== assembling the dataset: ctx-spark dataset"
"$CTX" dataset --labels "$OUT/labels/track_labels" --out "$OUT/dataset"

echo "== writing the report site: ctx-spark report"
site=$("$CTX" report --labels "$OUT/labels" --dataset "$OUT/dataset" --out "$OUT/site")
echo "== done: labels in $OUT/labels, dataset in $OUT/dataset; open the report:"
echo "   file://$(cd "$(dirname "$site")" && pwd)/$(basename "$site")"
