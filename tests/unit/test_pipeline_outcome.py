"""What a batch's outcome says about its messages (``BatchOutcome.model_messages``)."""

from __future__ import annotations

import json

import numpy as np

from monitor.config import validate_config
from monitor.pipeline import Pipeline
from monitor.stats import FeatureKind, build_profile


def pipeline() -> Pipeline:
    config = validate_config(
        {
            "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["t"]},
            "models": {
                "m": {
                    "reference": "unused.json",
                    "window": {"events": 300, "slide": 100},
                    "features": {"x": {"type": "numeric"}},
                }
            },
        }
    )
    rng = np.random.default_rng(0)
    profile = build_profile("m", {"x": rng.normal(0, 1, 1000)}, {"x": FeatureKind.NUMERIC})
    return Pipeline(config, {"m": profile})


def event(x: float) -> dict[str, object]:
    return {"model": "m", "ts": 1.7e9, "features": {"x": x}}


def test_model_messages_name_each_message_once_in_order() -> None:
    payloads = [
        json.dumps(event(0.1)).encode(),
        json.dumps([event(0.2), event(0.3), event(0.4)]).encode(),  # three events, one message
        b"not json",
        json.dumps(event(0.5)).encode(),
    ]
    outcome = pipeline().process(payloads, np.zeros(len(payloads)), "t")
    assert outcome.accepted == {"m": 5}
    assert outcome.model_messages["m"].tolist() == [0, 1, 3]


def test_model_messages_of_one_event_per_message_are_every_accepted_message() -> None:
    payloads = [json.dumps(event(0.1 * i)).encode() for i in range(50)]
    payloads[7] = b"{}"
    outcome = pipeline().process(payloads, np.zeros(len(payloads)), "t")
    assert outcome.model_messages["m"].tolist() == [i for i in range(50) if i != 7]
