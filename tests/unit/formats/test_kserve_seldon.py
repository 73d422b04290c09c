"""``kserve`` (InferenceLogger CloudEvents from the cloudevents Kafka binding) and
``seldon`` (Seldon Core 2 model topics, Schema Registry framing from confluent-kafka)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from monitor.config import validate_config
from monitor.errors import ConfigError
from monitor.ingest.decode import DecodedBatch, DecodeSchema, ModelSchema, Reason
from monitor.ingest.decode.columns import REQUEST, RESPONSE
from monitor.ingest.decode.formats import Headers, MessageBatch, decode_messages
from monitor.pipeline import schema_for
from tests.support.payloads import (
    kserve_record,
    oip_json_request,
    oip_json_response,
    oip_proto_request,
    oip_proto_response,
    parse_proto,
    schema_registry_framed,
)

IRIS = ModelSchema(
    "fraud",
    numeric=("sepal_length", "sepal_width", "petal_length"),
    categorical=("petal_color",),
    prediction="categorical",
    feature_order=("sepal_length", "sepal_width", "petal_length", "petal_color"),
)
KSERVE = DecodeSchema(models={"fraud": IRIS}, format="kserve")


def decode(
    records: Sequence[tuple[bytes | None, Headers]],
    schema: DecodeSchema = KSERVE,
    topics: Sequence[str | None] | None = None,
) -> DecodedBatch:
    n = len(records)
    batch = MessageBatch(
        [v for v, _ in records],
        np.arange(n, dtype=np.float64) + 1000.0,
        lambda: [h for _, h in records],
        lambda: list(topics) if topics is not None else [None] * n,
    )
    return decode_messages(batch, schema)


V1_REQUEST = {"instances": [[6.8, 2.8, 4.8, "blue"], [5.1, 3.5, 1.4, "red"]]}
V1_RESPONSE = {"predictions": [1, 0]}


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
def test_v1_request_and_response_pair_on_ce_id(structured: bool) -> None:
    batch = decode(
        [
            kserve_record(V1_REQUEST, "ce-1", request=True, structured=structured),
            kserve_record(V1_RESPONSE, "ce-1", request=False, structured=structured),
        ]
    )
    assert not batch.rejected
    cols = batch.models["fraud"]
    np.testing.assert_allclose(cols.numeric[:2], [[6.8, 2.8, 4.8], [5.1, 3.5, 1.4]])
    assert cols.categorical == [["blue", "red", None, None], [None, None, "1", "0"]]
    assert cols.pair_keys == ["ce-1:0", "ce-1:1", "ce-1:0", "ce-1:1"]
    assert cols.ids == cols.pair_keys  # v1 bodies carry no id
    assert cols.halves is not None and cols.halves.tolist() == [REQUEST] * 2 + [RESPONSE] * 2


def test_object_instances_and_ce_time() -> None:
    body = {
        "instances": [{"sepal_length": 5.0, "petal_color": "red", "other": 1}, {"sepal_width": 3.0}]
    }
    batch = decode(
        [kserve_record(body, "ce-2", request=True, time=datetime(2026, 11, 26, 10, tzinfo=UTC))]
    )
    cols = batch.models["fraud"]
    assert not batch.rejected
    assert cols.numeric[0, 0] == 5.0 and np.isnan(cols.numeric[0, 1])
    assert cols.numeric[1, 1] == 3.0
    assert cols.categorical[0] == ["red", None]
    ten = datetime(2026, 11, 26, 10, tzinfo=UTC).timestamp()
    assert cols.ts.tolist() == [ten] * 2  # ce_time, not the Kafka timestamp


def test_v2_bodies_and_the_positional_mapping_of_the_topic() -> None:
    schema = DecodeSchema(
        models={"fraud": IRIS},
        format="kserve",
        tensors={"instances": ("petal_length", "sepal_length")},
        bound_model="fraud",
    )
    request, _ = oip_json_request({"sepal_width": ("FP64", [3.0])}, "body-id")
    batch = decode(
        [
            kserve_record(request, "ce-3", request=True, service="elsewhere"),
            kserve_record(
                oip_json_response({"label": ("BYTES", ["setosa"])}, "body-id"),
                "ce-3",
                request=False,
            ),
            kserve_record({"instances": [[4.8, 6.8]]}, "ce-4", request=True),
        ],
        schema,
    )
    assert not batch.rejected
    cols = batch.models["fraud"]
    assert cols.pair_keys == ["ce-3:0", "ce-3:0", "ce-4:0"]
    assert cols.ids == ["body-id:0", "body-id:0", "ce-4:0"]
    assert cols.numeric[0, 1] == 3.0
    assert cols.categorical[1] == [None, "setosa", None]
    np.testing.assert_allclose(cols.numeric[2], [6.8, np.nan, 4.8])


def _ce(**attrs: str) -> bytes:
    event = {
        "specversion": "1.0",
        "id": "x",
        "source": "s",
        "type": "org.kubeflow.serving.inference.request",
        "inferenceservicename": "fraud",
        "data": V1_REQUEST,
    }
    event.update(attrs)
    return orjson.dumps(event)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ((b'{"instances": [[1]]}', []), Reason.bad_framing),  # no CloudEvent at all
        ((_ce(type="dev.knative.other"), []), Reason.bad_framing),
        ((_ce(id=""), []), Reason.bad_framing),
        ((b"{nope", []), Reason.not_json),
        ((_ce(data_base64="!!"), []), Reason.bad_framing),
        (
            (orjson.dumps({**orjson.loads(_ce()), "data": {"instances": [[1, 2]]}}), []),
            Reason.bad_shape,
        ),
        (
            (orjson.dumps({**orjson.loads(_ce()), "data": {"predictions": [1]}}), []),
            Reason.bad_framing,
        ),
        (
            (orjson.dumps({**orjson.loads(_ce()), "data": {"instances": [[1, 2, "x", "y"]]}}), []),
            Reason.wrong_type,
        ),
        ((orjson.dumps({**orjson.loads(_ce()), "data": {"instances": []}}), []), Reason.no_payload),
        ((orjson.dumps({**orjson.loads(_ce()), "data": [1]}), []), Reason.not_object),
        (
            (orjson.dumps({**orjson.loads(_ce()), "inferenceservicename": "nope"}), []),
            Reason.unknown_model,
        ),
        (
            (
                orjson.dumps(
                    {k: v for k, v in orjson.loads(_ce()).items() if k != "inferenceservicename"}
                ),
                [],
            ),
            Reason.missing_model,
        ),
    ],
)
def test_malformed_cloudevents_have_their_reason(
    record: tuple[bytes, Headers], reason: Reason
) -> None:
    good = kserve_record(V1_REQUEST, "ok", request=True)
    batch = decode([good, record, good])
    assert [(r.index, r.reason) for r in batch.rejected] == [(1, reason)]


# -- Seldon --------------------------------------------------------------------------

SELDON = DecodeSchema(models={"fraud": IRIS}, format="seldon")
INPUTS = {"sepal_length": ("FP32", [6.8, 5.1]), "petal_color": ("BYTES", ["blue", "red"])}
OUTPUTS = {"label": ("BYTES", ["versicolor", "setosa"])}
IN, OUT = "seldon.prod.model.fraud.inputs", "seldon.prod.model.fraud.outputs"


def test_seldon_topics_framing_and_request_id() -> None:
    request = oip_proto_request(INPUTS, "body", raw=True)
    response = oip_proto_response(OUTPUTS, "body")
    framed = schema_registry_framed(parse_proto(request, True), IN)
    assert framed[0] == 0 and framed.endswith(request)
    rid = [("x-request-id", b"req-7")]
    batch = decode(
        [(framed, rid), (response, rid), (b"ignored", None)],
        SELDON,
        topics=[IN, OUT, "seldon.prod.errors.errors"],
    )
    assert not batch.rejected
    cols = batch.models["fraud"]
    np.testing.assert_allclose(cols.numeric[:2, 0], [6.8, 5.1], rtol=1e-6)
    assert cols.categorical == [["blue", "red", None, None], [None, None, "versicolor", "setosa"]]
    assert cols.pair_keys == ["req-7:0", "req-7:1"] * 2
    assert cols.halves is not None and cols.halves.tolist() == [REQUEST] * 2 + [RESPONSE] * 2


def test_a_contents_response_on_outputs_is_read_as_a_response() -> None:
    # same field layout as a request: the topic says which it is
    response = schema_registry_framed(
        parse_proto(oip_proto_response(OUTPUTS, "b", raw=False), False), OUT
    )
    batch = decode([(response, [("x-request-id", b"r")])], SELDON, topics=[OUT])
    assert batch.models["fraud"].categorical[1] == ["versicolor", "setosa"]


@pytest.mark.parametrize(
    ("payload", "topic", "reason"),
    [
        (oip_proto_request(INPUTS, "b"), "seldon.prod.model.nope.inputs", Reason.unknown_model),
        (oip_proto_request(INPUTS, "b"), "some.other.topic", Reason.bad_framing),
        (b"\x00\x00\x00", IN, Reason.truncated),
        (b"\x00\x00\x00\x00\x01" + b"\xff" * 11, IN, Reason.bad_framing),
        (b"\x00\x00\x00\x00\x01\x7f", IN, Reason.bad_framing),  # index count -64
        (b"\x00\x00\x00\x00\x01\x02", IN, Reason.truncated),
        (
            orjson.dumps(
                {"outputs": [{"name": "label", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}
            ),
            IN,
            Reason.bad_framing,
        ),
    ],
)
def test_malformed_seldon_values_have_their_reason(
    payload: bytes, topic: str, reason: Reason
) -> None:
    good = oip_proto_request(INPUTS, "b", raw=True)
    batch = decode([(good, None), (payload, None), (good, None)], SELDON, topics=[IN, topic, IN])
    assert [(r.index, r.reason) for r in batch.rejected] == [(1, reason)]


def seldon_config(name: str) -> dict[str, object]:
    return {
        "kafka": {
            "bootstrap_servers": "127.0.0.1:9092",
            "topics": [{"name": name, "format": "seldon"}],
        },
        "models": {
            "fraud": {
                "reference": {"capture_events": 100},
                "window": {"events": 100, "slide": 50},
                "features": {"sepal_length": {"type": "numeric"}},
            }
        },
    }


def test_a_topic_pattern_reads_every_matching_topic_with_its_settings() -> None:
    config = validate_config(seldon_config(r"^seldon\.prod\.model\..*"))
    entry = config.topic(IN)
    assert entry.is_pattern and entry.format == "seldon"
    assert schema_for(config, OUT).format == "seldon"
    with pytest.raises(KeyError):
        config.topic("other")
    with pytest.raises(ConfigError) as err:
        validate_config(seldon_config("^seldon(.*"))
    assert "kafka.topics.0.name" in str(err.value) and "regular expression" in str(err.value)


def test_an_over_long_id_or_pairing_key_is_rejected_before_it_is_copied_per_row() -> None:
    long_ce = kserve_record(V1_REQUEST, "c" * 300, request=True)
    long_body = kserve_record({**V1_REQUEST, "id": "b" * 300}, "short", request=True)
    good = kserve_record(V1_REQUEST, "ok", request=True)
    batch = decode([good, long_ce, long_body])
    assert [(r.index, r.reason) for r in batch.rejected] == [
        (1, Reason.too_long),
        (2, Reason.too_long),
    ]
    assert "pairing key of 300 characters" in batch.rejected[0].detail
    assert batch.models["fraud"].rows == 2
    rid = [("x-request-id", b"r" * 257)]
    seldon = decode([(oip_proto_request(INPUTS, "b", raw=True), rid)], SELDON, topics=[IN])
    assert [r.reason for r in seldon.rejected] == [Reason.too_long]
