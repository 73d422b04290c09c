"""The synthetic fraud model for daemon tests: its reference profile, events and config.

How the daemon is run lives in :mod:`tests.support.daemon` (in a thread or a subprocess).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monitor.demo import synthetic
from monitor.state.checkpoint import CheckpointStore
from tests.support.yaml_edit import edit_yaml

SECRET_ENV = "E2E_WEBHOOK_SECRET"
SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLWRyaWZ0bW9uLWUyZS10ZXN0cw=="


def write_reference(directory: Path, seed: int = 7, rows: int = 50_000) -> Path:
    """The synthetic fraud model's reference profile, saved as JSON."""
    path = directory / "fraud.profile.json"
    synthetic.reference_profile(seed, rows, source="test reference").save(path)
    return path


def events(
    n: int, *, seed: int, drift: bool = False, start_ts: float = 1_764_150_000.0, id_offset: int = 0
) -> list[bytes]:
    """``n`` synthetic event messages (deterministic for a seed)."""
    cols = synthetic.generate(np.random.default_rng(seed), n, drift=drift)
    return list(
        synthetic.to_events(cols, start_ts=start_ts, step_seconds=0.01, id_offset=id_offset)
    )


def retrain_webhook_yaml(url: str) -> str:
    """A ``webhooks:`` section: one generic webhook signed with ``$SECRET_ENV``, fast retries."""
    return (
        "webhooks:\n"
        "  - name: retrain\n"
        "    format: generic\n"
        f"    url: {url}\n"
        f"    secret_env: {SECRET_ENV}\n"
        "    timeout_seconds: 5\n"
        "    retry: {max_attempts: 3, initial_backoff_seconds: 0.2, max_backoff_seconds: 1}\n"
    )


def write_config(
    directory: Path,
    *,
    bootstrap: str,
    topic: str,
    group: str,
    reference: Path,
    webhook_url: str | None = None,
    events_per_window: int = 4000,
    slide: int = 1000,
    extra_kafka: str = "",
    extra: str = "",
) -> Path:
    """A config monitoring the synthetic model on ``topic``; p-value thresholds are strict."""
    text = (
        "kafka:\n"
        f"  bootstrap_servers: {bootstrap}\n"
        f"  group_id: {group}\n"
        f"  topics: [{topic}]\n"
        "  consumer: {session.timeout.ms: 6000, heartbeat.interval.ms: 2000, "
        "statistics.interval.ms: 1000}\n"
        "  poll_timeout_seconds: 0.2\n"
        f"{extra_kafka}"
        "http: {host: 127.0.0.1, port: 0}\n"
        "models:\n"
        + synthetic.model_config_yaml(str(reference), events=events_per_window, slide=slide)
    )
    if webhook_url is not None:
        text += retrain_webhook_yaml(webhook_url)
    text += extra
    thresholds = ("models", synthetic.MODEL, "thresholds")
    path = directory / "driftmon.yaml"
    path.write_text(
        edit_yaml(
            text,
            ((*thresholds, "ks_p_value"), 0.000001),
            ((*thresholds, "chi2_p_value"), 0.000001),
        )
    )
    return path


def checkpointed(state: Path, topic: str) -> int:
    """The highest offset of ``topic`` partition 0 that a checkpoint in ``state`` covers."""
    ckpts = CheckpointStore(state, "reader").load_all()
    return max((c.offsets.get(f"{topic}/0", -1) for c in ckpts), default=-1)
