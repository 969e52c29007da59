#!/usr/bin/env bash
# Entry point of the ctx-spark image: one role per container.
#
#   master                 a standalone master (RPC 7077, web UI 8080)
#   worker                 a standalone worker of $SPARK_MASTER_URL
#   submit [SPARK-SUBMIT OPTIONS... --] JOB ARGS...
#                          spark-submit (client mode) to $SPARK_MASTER_URL; JOB is a file
#                          or a bare job name (label_tracks: /opt/ctx-spark/jobs/label_tracks.py)
#   python ARGS...         the image's Python (e.g. python -m jobs.generate_catalogue ...)
#   bash | shell           a shell
#
# Settings (environment): SPARK_MASTER_URL (spark://master:7077), SPARK_MASTER_PORT (7077),
# SPARK_MASTER_WEBUI_PORT (8080), SPARK_WORKER_CORES (2), SPARK_WORKER_MEMORY (4g),
# SPARK_WORKER_WEBUI_PORT (8081), SPARK_WORKER_DIR (/tmp/spark-work).
set -euo pipefail

: "${SPARK_HOME:?SPARK_HOME must point at the pyspark package (set by the Dockerfile)}"
PROJECT=/opt/ctx-spark
MASTER_URL="${SPARK_MASTER_URL:-spark://master:7077}"

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

role="${1:-help}"
[ "$#" -gt 0 ] && shift

case "$role" in
  master)
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
      --host "$(hostname)" --port "${SPARK_MASTER_PORT:-7077}" \
      --webui-port "${SPARK_MASTER_WEBUI_PORT:-8080}" "$@"
    ;;
  worker)
    mkdir -p "${SPARK_WORKER_DIR:-/tmp/spark-work}"
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker "$MASTER_URL" \
      --host "$(hostname)" --cores "${SPARK_WORKER_CORES:-2}" --memory "${SPARK_WORKER_MEMORY:-4g}" \
      --webui-port "${SPARK_WORKER_WEBUI_PORT:-8081}" --work-dir "${SPARK_WORKER_DIR:-/tmp/spark-work}" "$@"
    ;;
  submit)
    options=()
    if printf '%s\n' "$@" | grep -qx -- '--'; then
      while [ "$1" != "--" ]; do options+=("$1"); shift; done
      shift
    fi
    [ "$#" -gt 0 ] || { echo "submit: give a job (label_tracks or jobs/label_tracks.py) and its options" >&2; exit 2; }
    given="$1"
    job="$1"
    shift
    case "$job" in
      */*|*.py) ;;
      *) job="$PROJECT/jobs/$job.py" ;;
    esac
    [ -f "$job" ] || job="$PROJECT/$job"
    [ -f "$job" ] || { echo "submit: no job file '$given' (nor under $PROJECT)" >&2; exit 2; }
    exec "$SPARK_HOME/bin/spark-submit" --master "$MASTER_URL" --deploy-mode client \
      ${options[@]+"${options[@]}"} "$job" "$@"
    ;;
  python)
    cd "$PROJECT"
    exec python3 "$@"
    ;;
  bash|shell)
    exec bash "$@"
    ;;
  help|-h|--help)
    usage
    ;;
  *)
    echo "unknown role '$role'" >&2
    usage >&2
    exit 2
    ;;
esac
