#!/usr/bin/env bash
# The README's first command: install (first run only), generate a small sample catalogue
# with a fixed seed, label it with the labelling job in local mode, and show the output.
#   scripts/demo.sh            # writes demo-out/catalogue and demo-out/labels
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export SPARK_LOCAL_IP=127.0.0.1
export PYSPARK_PYTHON="$PWD/.venv/bin/python"
PY=.venv/bin/python
OUT=demo-out

echo "== generating a synthetic catalogue (200k playlist-track rows, seed 42) in $OUT/catalogue"
"$PY" -m jobs.generate_catalogue --out "$OUT/catalogue" --rows 200000 --seed 42

echo "== labelling it: python -m jobs.label_tracks (local mode)"
"$PY" -m jobs.label_tracks \
  --playlists "$OUT/catalogue/playlists" \
  --playlist-tracks "$OUT/catalogue/playlist_tracks" \
  --tracks "$OUT/catalogue/tracks" \
  --out "$OUT/labels"

echo "== a few labelled tracks (track_id, contexts, per-context playlist counts)"
"$PY" - "$OUT/labels/track_labels" <<'PYEOF'
import sys
import pyarrow.dataset as ds
table = ds.dataset(sys.argv[1], format="parquet").head(5).to_pylist()
for row in table:
    print(f"  track {row['track_id']}: {', '.join(row['contexts'])}  counts={row['n_playlists']}")
PYEOF
echo "== done: labels in $OUT/labels/track_labels, counts in $OUT/labels/track_context_counts,"
echo "   report in $OUT/labels/report.json"
