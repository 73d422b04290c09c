"""A tiny Airflow 3 DAG that records the drift event (``dag_run.conf``) it was started with.

Parsed by the Airflow test instance, never imported by driftmon's tests. Each run writes
``<dag_run_id>.json`` (atomically) into ``$DRIFTMON_RECEIVED_DIR`` and returns the conf,
so it is also visible as the task's XCom.
"""

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="driftmon_retrain",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["driftmon-test"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=2)},
)
def driftmon_retrain():
    @task
    def retrain() -> dict:
        dag_run = get_current_context()["dag_run"]
        received = Path(os.environ["DRIFTMON_RECEIVED_DIR"])
        record = {"dag_run_id": dag_run.run_id, "conf": dag_run.conf}
        tmp = received / f".{dag_run.run_id}.tmp"
        tmp.write_text(json.dumps(record))
        tmp.rename(received / f"{dag_run.run_id}.json")
        return dict(dag_run.conf)

    retrain()


driftmon_retrain()
