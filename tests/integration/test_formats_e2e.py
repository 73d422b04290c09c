"""Model servers' own logs end to end: the real daemon and broker, payloads from the
servers' client libraries, a real webhook receiver.

KServe: request and response CloudEvents on one unkeyed topic (spread over partitions,
responses often ahead of their requests), v1 and v2 bodies mixed. Seldon: framed protobuf
inputs and raw protobuf outputs on per-model topics read through one pattern, next to
the errors topic. In both, clean traffic pairs without one missing value or alarm; then
drifted traffic confirms drift on exactly the drifted features and calls the webhook.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.demo import synthetic
from monitor.state.checkpoint import CheckpointStore
from tests.conftest import Env
from tests.integration.daemon_harness import SECRET, SECRET_ENV, write_config, write_reference
from tests.support.daemon import DaemonProcess, RunningDaemon
from tests.support.kafka import create_topic, delete_topics, produce
from tests.support.net import free_port
from tests.support.payloads import (
    kserve_record,
    oip_json_request,
    oip_json_response,
    oip_proto_request,
    oip_proto_response,
    parse_proto,
    schema_registry_framed,
)
from tests.support.wait import wait_until
from tests.support.webhook import WebhookReceiver
from tests.support.yaml_edit import edit_yaml_file

pytestmark = pytest.mark.integration

DRIFTED = set(synthetic.DRIFTED_FEATURES)
FEATURES = (*synthetic.NUMERIC, *synthetic.CATEGORICAL)
ROWS = 8  # rows per inference request
CLEAN, DRIFT = 6000, 8000


def inferences(
    n: int, *, seed: int, drift: bool = False
) -> Iterator[tuple[dict[str, Any], list[float]]]:
    """Batches of ``ROWS`` synthetic rows: the inputs by feature and the scores."""
    cols = synthetic.generate(np.random.default_rng(seed), n, drift=drift)
    for start in range(0, n, ROWS):
        rows = slice(start, start + ROWS)
        inputs: dict[str, Any] = {
            k: ("FP64", v[rows].round(4).tolist()) for k, v in cols.numeric.items()
        }
        inputs.update({k: ("BYTES", v[rows].tolist()) for k, v in cols.categorical.items()})
        yield inputs, cols.prediction[rows].round(5).tolist()


def kserve_records(
    n: int, *, seed: int, drift: bool = False
) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    """Request and response CloudEvents, v1 and v2 bodies alternating, shuffled so that
    many responses come before their requests."""
    rng = random.Random(seed)
    records = []
    for k, (inputs, scores) in enumerate(inferences(n, seed=seed, drift=drift)):
        ce_id = str(uuid.uuid4())
        if k % 2:
            request: Any = {
                "instances": [list(r) for r in zip(*(inputs[f][1] for f in FEATURES), strict=True)]
            }
            response: Any = {"predictions": scores}
        else:
            request = oip_json_request(inputs, f"body-{k}")[0]
            response = oip_json_response({"predict": ("FP64", scores)}, f"body-{k}")
        records.append(kserve_record(request, ce_id, request=True, structured=k % 3 == 0))
        records.append(kserve_record(response, ce_id, request=False, structured=k % 3 == 0))
    for i in range(0, len(records) - 40, 40):  # out of order within blocks of 20 inferences
        block = records[i : i + 40]
        rng.shuffle(block)
        records[i : i + 40] = block
    return records


Record = tuple[str, bytes, list[tuple[str, bytes]], bytes | None]  # topic, value, headers, key


def produce_records(bootstrap: str, records: list[Record]) -> None:
    """One producer for all: each record keeps its own topic, headers and key (unkeyed
    records spread over the partitions)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for topic, value, headers, key in records:
        producer.produce(topic, value, key=key, headers=headers)
        producer.poll(0)
    assert producer.flush(30) == 0


def configure(
    tmp_path: Path, bootstrap: str, topics: list[dict[str, Any]], webhook: str | None, group: str
) -> Path:
    config = write_config(
        tmp_path,
        bootstrap=bootstrap,
        topic="placeholder",
        group=group,
        reference=write_reference(tmp_path),
        webhook_url=webhook,
    )
    edit_yaml_file(config, (("kafka", "topics"), topics))
    return config


def check_clean_then_drift(
    run: RunningDaemon, produce_drift: Any, receiver: WebhookReceiver
) -> None:
    wait_until(lambda: run.events_total >= CLEAN, 60, "clean traffic paired and consumed")
    assert run.metric("driftmon_events_total", model="fraud") == CLEAN
    assert run.evaluations and all(not e.result.drifted_features for e in run.evaluations)
    for feature in (*FEATURES, "prediction"):
        assert run.metric("driftmon_missing_ratio", model="fraud", feature=feature) == 0.0, feature
    assert run.metric("driftmon_pairing_paired_total", model="fraud") == CLEAN
    for half in ("request", "response"):
        for reason in ("expired", "capacity", "duplicate", "no_id"):
            count = run.metric(
                "driftmon_pairing_unpaired_total", model="fraud", half=half, reason=reason
            )
            assert not count, (half, reason)
    assert receiver.requests == []

    produce_drift()
    wait_until(lambda: run.events_total >= CLEAN + DRIFT, 60, "drifted traffic consumed")
    wait_until(lambda: run.metric("driftmon_model_drifted", model="fraud") == 1.0, 10, "drift")
    receiver.wait_for(1, timeout=15)
    for evaluation in run.evaluations:
        assert set(evaluation.result.drifted_features) <= DRIFTED
    assert set(run.evaluations[-1].result.drifted_features) == DRIFTED
    confirmed = [e.drift_event for e in run.evaluations if e.drift_event is not None]
    assert len(confirmed) == 1
    assert {f.feature for f in confirmed[0].drifted_features} <= DRIFTED
    assert run.metric("driftmon_pairing_pending", model="fraud", half="request") == 0.0
    assert run.metric("driftmon_invalid_events_total", reason="bad_framing") == 0.0


def test_kserve_cloudevents_out_of_order_on_an_unkeyed_topic(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic, webhook_receiver: WebhookReceiver, env: Env
) -> None:
    env.set(SECRET_ENV, SECRET)
    topic = kafka_topic(partitions=3)
    config = configure(
        tmp_path,
        kafka_bootstrap,
        [{"name": topic, "format": "kserve"}],
        webhook_receiver.url + "/retrain",
        f"{topic}-g",
    )

    def send(records: list[tuple[bytes, list[tuple[str, bytes]]]]) -> None:
        produce_records(
            kafka_bootstrap, [(topic, value, headers, None) for value, headers in records]
        )

    send(kserve_records(CLEAN, seed=1))
    with RunningDaemon(config) as run:
        check_clean_then_drift(
            run, lambda: send(kserve_records(DRIFT, seed=2, drift=True)), webhook_receiver
        )


def seldon_records(
    n: int, *, seed: int, drift: bool, inputs_topic: str
) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """``(inputs value, outputs value, headers)`` per inference: framed protobuf requests
    with ``contents``, raw protobuf responses (as Triton answers), ``x-request-id`` on both."""
    out = []
    for inputs, scores in inferences(n, seed=seed, drift=drift):
        rid = uuid.uuid4().hex
        request = oip_proto_request(inputs, rid)
        framed = schema_registry_framed(parse_proto(request, True), inputs_topic)
        response = oip_proto_response({"predict": ("FP64", scores)}, rid)
        out.append((framed, response, [("x-request-id", rid.encode())]))
    return out


def test_seldon_model_topics_through_a_pattern(
    tmp_path: Path, kafka_bootstrap: str, webhook_receiver: WebhookReceiver, env: Env
) -> None:
    env.set(SECRET_ENV, SECRET)
    ns = f"t{uuid.uuid4().hex[:8]}"
    inputs, outputs, errors = (
        f"seldon.{ns}.model.fraud.inputs",
        f"seldon.{ns}.model.fraud.outputs",
        f"seldon.{ns}.errors.errors",
    )
    for name in (inputs, outputs, errors):
        create_topic(kafka_bootstrap, name, partitions=2)
    config = configure(
        tmp_path,
        kafka_bootstrap,
        [{"name": rf"^seldon\.{ns}\..*", "format": "seldon"}],
        webhook_receiver.url + "/retrain",
        f"{ns}-g",
    )

    def send(records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
        out: list[Record] = []
        for k, (request, response, headers) in enumerate(records):
            key = f"{k % 2}.model.fraud.{headers[0][1].decode()}".encode()  # Seldon's shared key
            out += [(inputs, request, headers, key), (outputs, response, headers, key)]
        produce_records(kafka_bootstrap, out)

    try:
        send(seldon_records(CLEAN, seed=3, drift=False, inputs_topic=inputs))
        produce(
            kafka_bootstrap, errors, [b"model failed"], headers=[("seldon-pipeline-errors", b"x")]
        )
        with RunningDaemon(config) as run:
            check_clean_then_drift(
                run,
                lambda: send(seldon_records(DRIFT, seed=4, drift=True, inputs_topic=inputs)),
                webhook_receiver,
            )
            assert run.metric("driftmon_invalid_events_total", reason="not_json") == 0.0
    finally:
        delete_topics(kafka_bootstrap, [inputs, outputs, errors])


def test_pending_pairs_survive_a_sigkill(tmp_path: Path, kafka_bootstrap: str, kafka_topic) -> None:
    """Requests wait for their responses in the checkpoint: killed with SIGKILL while they
    wait, the daemon restarts, their responses arrive, and every row is paired once (none
    lost, none counted twice, none released unpaired)."""
    topic = kafka_topic(partitions=2)
    config = configure(
        tmp_path, kafka_bootstrap, [{"name": topic, "format": "kserve"}], None, f"{topic}-g"
    )
    state = tmp_path / "state"
    edit_yaml_file(
        config,
        (("state",), {"dir": str(state), "checkpoint_interval_seconds": 0.3}),
        (("http", "port"), free_port()),
        # the killed member's session must end before the restarted one is assigned
        (("kafka", "consumer", "session.timeout.ms"), 2000),
        (("kafka", "consumer", "heartbeat.interval.ms"), 500),
    )
    requests, responses = [], []
    for k, (inputs, scores) in enumerate(inferences(1600, seed=5)):  # 200 requests of 8 rows
        ce_id = str(uuid.uuid4())
        body = oip_json_request(inputs, f"body-{k}")[0]
        requests.append(kserve_record(body, ce_id, request=True, structured=k % 2 == 0))
        body = oip_json_response({"predict": ("FP64", scores)}, f"body-{k}")
        responses.append(kserve_record(body, ce_id, request=False, structured=k % 2 == 0))

    def send(part: list[tuple[bytes, list[tuple[str, bytes]]]]) -> None:
        produce_records(kafka_bootstrap, [(topic, v, h, None) for v, h in part])

    def checkpointed_requests() -> int:
        saved = CheckpointStore(state, "x").load_all()  # newest first
        model = saved[0].models.get("fraud") if saved else None
        return -1 if model is None else len(model.arrays.get("pairing.request_keys", []))

    send(requests)
    first = DaemonProcess(config)
    try:
        wait_until(lambda: checkpointed_requests() == 1600, 60, "waiting requests checkpointed")
        assert first.metric("driftmon_pairing_paired_total", model="fraud") in (None, 0.0)
    finally:
        first.kill()
    send(responses)
    second = DaemonProcess(config)
    try:
        second.wait_serving()
        wait_until(
            lambda: second.metric("driftmon_pairing_paired_total", model="fraud") == 1600,
            60,
            "every waiting request paired after the restart",
        )
        assert second.get("/status").json()["models"]["fraud"]["events"] == 1600
        assert second.metric("driftmon_pairing_pending", model="fraud", half="request") == 0.0
        for half in ("request", "response"):
            for reason in ("expired", "capacity", "duplicate", "no_id"):
                count = second.metric(
                    "driftmon_pairing_unpaired_total", model="fraud", half=half, reason=reason
                )
                assert not count, (half, reason)
        assert second.terminate() == 0
    finally:
        second.kill()
