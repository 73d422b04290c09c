"""A tiny Prefect 3 flow that records the drift event it was started with.

Runs inside the Prefect test venv, never in driftmon's: ``python retrain_flow.py``
serves the deployment ``driftmon-retrain/driftmon-test`` until interrupted. Each run
writes ``<flow run id>.json`` (atomically) into ``$DRIFTMON_RECEIVED_DIR``.
"""

import json
import os
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run


@flow(name="driftmon-retrain")
def retrain(event: dict, reason: str = "unset") -> dict:
    received = Path(os.environ["DRIFTMON_RECEIVED_DIR"])
    record = {"flow_run_id": str(flow_run.id), "event": event, "reason": reason}
    tmp = received / f".{flow_run.id}.tmp"
    tmp.write_text(json.dumps(record))
    tmp.rename(received / f"{flow_run.id}.json")
    return event


if __name__ == "__main__":
    retrain.serve(name="driftmon-test")
