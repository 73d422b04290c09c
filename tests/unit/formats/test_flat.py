"""``flat``: one JSON object per row, features at the top level (BentoML monitoring rows)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from monitor.config import validate_config
from monitor.errors import ConfigError
from monitor.ingest.decode import (
    DecodeSchema,
    EventFields,
    ModelSchema,
    Reason,
    build_decode_schema,
)
from monitor.ingest.decode.formats import MessageBatch, decode_messages

FIELDS = EventFields(id="request_id", ts="timestamp", prediction="score")
MODEL = ModelSchema("fraud", numeric=("amount",), categorical=("country",), prediction="numeric")


def config(**topic: object) -> dict[str, object]:
    return {
        "kafka": {
            "bootstrap_servers": "127.0.0.1:9092",
            "topics": [
                {
                    "name": "bento",
                    "model": "fraud",
                    "format": "flat",
                    "fields": {"id": "request_id", "ts": "timestamp", "prediction": "score"},
                    **topic,
                }
            ],
        },
        "models": {
            "fraud": {
                "reference": {"capture_events": 100},
                "window": {"events": 100, "slide": 50},
                "features": {"amount": {"type": "numeric"}, "country": {"type": "categorical"}},
                "prediction": {"type": "numeric"},
            }
        },
    }


def test_rows_with_naive_times_read_in_the_topic_zone() -> None:
    schema = build_decode_schema(validate_config(config(timezone="Europe/Berlin")), "bento")
    assert schema.format == "flat"
    rows = [
        {
            "amount": 12.5,
            "country": "DE",
            "score": 0.8,
            "request_id": "r1",
            "timestamp": "2026-11-26T10:00:00",
            "trace_id": "t1",
        },
        {
            "amount": 3.0,
            "country": "US",
            "score": 0.1,
            "request_id": "r2",
            "timestamp": "2026-11-26T10:00:01.500000",
        },
    ]
    batch = decode_messages(MessageBatch([orjson.dumps(r) for r in rows], np.zeros(2)), schema)
    cols = batch.models["fraud"]
    assert not batch.rejected
    np.testing.assert_allclose(cols.numeric, [[12.5, 0.8], [3.0, 0.1]])
    assert cols.categorical == [["DE", "US"]]
    assert cols.ids == ["r1", "r2"]
    # 10:00 in Berlin (UTC+1 in November) is 09:00 UTC
    nine = datetime(2026, 11, 26, 9, tzinfo=UTC).timestamp()
    assert cols.ts.tolist() == [nine, nine + 1.5]
    assert cols.unknown_features == 1  # trace_id; the configured fields are not features


def test_naive_times_without_a_zone_are_rejected_with_the_fix() -> None:
    schema = DecodeSchema(
        models={"fraud": MODEL}, fields=FIELDS, bound_model="fraud", format="flat"
    )
    row = orjson.dumps({"amount": 1.0, "timestamp": "2026-11-26T10:00:00"})
    (rejection,) = decode_messages(MessageBatch([row], np.zeros(1)), schema).rejected
    assert rejection.reason == Reason.bad_timestamp and "timezone" in rejection.detail


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", Reason.not_json),
        (b"[1]", Reason.not_object),
        (b'{"amount": "12"}', Reason.wrong_type),
        (b'{"amount": 1, "country": {"a": 1}}', Reason.wrong_type),
        (b'{"amount": 1, "score": "high"}', Reason.wrong_type),
        (None, Reason.no_payload),
    ],
)
def test_bad_rows_are_rejected_with_a_reason(payload: bytes | None, reason: Reason) -> None:
    schema = DecodeSchema(
        models={"fraud": MODEL}, fields=FIELDS, bound_model="fraud", format="flat"
    )
    good = b'{"amount": 1.0, "country": "DE", "score": 0.5}'
    batch = decode_messages(MessageBatch([good, payload, good], np.zeros(3)), schema)
    assert [(r.index, r.reason) for r in batch.rejected] == [(1, reason)]
    assert batch.models["fraud"].rows == 2


def test_format_settings_are_checked_with_the_key_and_fix() -> None:
    with pytest.raises(ConfigError) as err:
        validate_config(config(format="csv"))
    assert "kafka.topics.0.format" in str(err.value)
    with pytest.raises(ConfigError) as err:
        validate_config(config(timezone="Europe/Berln"))
    assert "kafka.topics.0.timezone" in str(err.value) and "Europe/Berlin" in str(err.value)
    with pytest.raises(ConfigError) as err:
        validate_config(config(format="oip", tensors={"input-0": ["amount", "amonut"]}))
    assert "kafka.topics.0.tensors.input-0" in str(err.value) and "did you mean 'amount'" in str(
        err.value
    )
