"""Example Airflow DAG: the weekly catalogue refresh (docs/refresh.md, "Scheduled refresh").

An EXAMPLE to copy into an Airflow deployment's dags/ folder and adapt. Airflow is not a
dependency of ctx-spark: nothing in the package or the tests imports this file, and it is
not installed with the package. Written for Airflow 2.x (``airflow.operators.bash``); not
run here.

The job locks its refresh root itself (a second run exits with code 2 and a message naming
the lock's owner), resumes an interrupted run from its last completed stage, and moves
``R/current`` only when every stage succeeded, so Airflow retries are safe: a retry after a
crash continues where the crashed attempt stopped. ``max_active_runs=1`` avoids queueing
runs that would only be refused by the lock.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

# Adapt: where the project is checked out (or installed), the catalogue, the root, the master.
PROJECT = "/opt/ctx-spark"
CATALOGUE = "hdfs:///data/catalogue"
ROOT = "hdfs:///data/ctx-refresh"
SPARK_SUBMIT = (
    "spark-submit --master spark://spark-master:7077 --driver-memory 4g --executor-memory 6g --executor-cores 2 "
)

with DAG(
    dag_id="ctx_spark_weekly_refresh",
    schedule="0 3 * * 1",  # Mondays 03:00, like the crontab line in docs/refresh.md
    start_date=datetime(2025, 1, 6),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=30)},
    tags=["ctx-spark"],
) as dag:
    refresh = BashOperator(
        task_id="refresh_catalogue",
        bash_command=(
            f"cd {PROJECT} && {SPARK_SUBMIT} jobs/refresh_catalogue.py --catalogue {CATALOGUE} --root {ROOT}"
            # --conf /etc/ctx-spark/refresh.yaml   (e.g. refresh.model, keep_snapshots)
        ),
        execution_timeout=timedelta(hours=12),
    )
    # Downstream tasks read the published snapshot, never a half-built one:
    #   python -m jobs.refresh_catalogue --root ROOT --print-current
    show_current = BashOperator(
        task_id="print_current_snapshot",
        bash_command=f"cd {PROJECT} && python -m jobs.refresh_catalogue --root {ROOT} --print-current",
    )
    refresh >> show_current
