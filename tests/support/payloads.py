"""Model-server payloads built by the model servers' own client libraries.

``tritonclient`` writes OIP JSON and binary-extension bodies, ``open-inference-grpc``'s
generated types write OIP protobuf, ``cloudevents`` writes KServe's Kafka records, and
confluent-kafka's serializers write Schema Registry framing: tests decode what real
producers send, never hand-typed imitations.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import orjson

__all__ = [
    "kserve_record",
    "oip_json_request",
    "oip_json_response",
    "oip_proto_request",
    "oip_proto_response",
    "parse_proto",
    "schema_registry_framed",
]

_DTYPE = {
    "FP64": np.float64,
    "FP32": np.float32,
    "INT64": np.int64,
    "INT32": np.int32,
    "BOOL": np.bool_,
}


def _column(
    values: Sequence[Any], datatype: str, shape: Sequence[int] | None
) -> tuple[np.ndarray, list[int]]:
    if datatype == "BYTES":
        arr = np.array([str(v).encode() for v in values], dtype=object)
    else:
        arr = np.asarray(values, dtype=_DTYPE[datatype])
    dims = list(shape) if shape is not None else [len(arr), 1]
    return arr.reshape(dims), dims


def oip_json_request(
    inputs: Mapping[str, tuple[str, Sequence[Any]]],
    request_id: str | None = None,
    *,
    binary: bool = False,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> tuple[bytes, int | None]:
    """A v2 request body as tritonclient writes it: ``(body, json header length)`` (the
    length is ``None`` for plain JSON). ``inputs``: name -> (datatype, values)."""
    import tritonclient.http as triton

    tensors = []
    for name, (datatype, values) in inputs.items():
        arr, dims = _column(values, datatype, (shapes or {}).get(name))
        tensor = triton.InferInput(name, dims, datatype)
        tensor.set_data_from_numpy(arr, binary_data=binary)
        tensors.append(tensor)
    body, header_length = triton.InferenceServerClient.generate_request_body(
        tensors, request_id=request_id or ""
    )
    return bytes(body), header_length


def oip_json_response(
    outputs: Mapping[str, tuple[str, Sequence[Any]]],
    response_id: str | None,
    model: str = "fraud",
    version: str | None = "3",
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> bytes:
    """A v2 response body (servers answer with the same tensor objects tritonclient reads)."""
    tensors = []
    for name, (datatype, values) in outputs.items():
        arr, dims = _column(values, datatype, (shapes or {}).get(name))
        data = [v.decode() for v in arr.ravel()] if datatype == "BYTES" else arr.ravel().tolist()
        tensors.append({"name": name, "shape": dims, "datatype": datatype, "data": data})
    body: dict[str, Any] = {"model_name": model, "outputs": tensors}
    if version is not None:
        body["model_version"] = version
    if response_id is not None:
        body["id"] = response_id
    return orjson.dumps(body)


def _fill(tensor: Any, arr: np.ndarray, datatype: str, raw: list[bytes] | None) -> None:
    if raw is not None:
        if datatype == "BYTES":
            raw.append(b"".join(len(v).to_bytes(4, "little") + v for v in arr.ravel()))
        else:
            raw.append(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
        return
    contents = tensor.contents
    field = {
        "FP64": contents.fp64_contents,
        "FP32": contents.fp32_contents,
        "INT64": contents.int64_contents,
        "INT32": contents.int_contents,
        "BOOL": contents.bool_contents,
        "BYTES": contents.bytes_contents,
    }[datatype]
    field.extend(arr.ravel().tolist())


def oip_proto_request(
    inputs: Mapping[str, tuple[str, Sequence[Any]]],
    request_id: str | None = None,
    *,
    raw: bool = False,
    model: str = "fraud",
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> bytes:
    """A serialized ``inference.ModelInferRequest`` (``contents`` or raw input contents)."""
    from open_inference.grpc import protocol

    msg = protocol.ModelInferRequest(model_name=model, id=request_id or "")
    contents: list[bytes] | None = [] if raw else None
    for name, (datatype, values) in inputs.items():
        arr, dims = _column(values, datatype, (shapes or {}).get(name))
        tensor = msg.inputs.add(name=name, datatype=datatype, shape=dims)
        _fill(tensor, arr, datatype, contents)
    if contents is not None:
        msg.raw_input_contents.extend(contents)
    return bytes(msg.SerializeToString())


def oip_proto_response(
    outputs: Mapping[str, tuple[str, Sequence[Any]]],
    response_id: str | None,
    *,
    raw: bool = True,
    model: str = "fraud",
    version: str = "3",
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> bytes:
    """A serialized ``inference.ModelInferResponse`` (raw by default, as Triton answers)."""
    from open_inference.grpc import protocol

    msg = protocol.ModelInferResponse(model_name=model, model_version=version, id=response_id or "")
    contents: list[bytes] | None = [] if raw else None
    for name, (datatype, values) in outputs.items():
        arr, dims = _column(values, datatype, (shapes or {}).get(name))
        tensor = msg.outputs.add(name=name, datatype=datatype, shape=dims)
        _fill(tensor, arr, datatype, contents)
    if contents is not None:
        msg.raw_output_contents.extend(contents)
    return bytes(msg.SerializeToString())


KSERVE_TYPES = {
    True: "org.kubeflow.serving.inference.request",
    False: "org.kubeflow.serving.inference.response",
}


def kserve_record(
    body: Mapping[str, Any] | bytes,
    ce_id: str,
    *,
    request: bool,
    service: str = "fraud",
    structured: bool = False,
    time: datetime | None = None,
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A KServe InferenceLogger CloudEvent as the Knative Kafka binding writes it:
    ``(value, headers)``, binary mode (``ce_*`` headers) or structured mode."""
    from cloudevents.core.bindings.kafka import to_binary, to_structured
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent

    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": ce_id,
        "type": KSERVE_TYPES[request],
        "source": f"http://{service}-predictor.default/",
        "inferenceservicename": service,
        "namespace": "default",
        "component": "predictor",
        "endpoint": "",
        "datacontenttype": "application/json",
    }
    if time is not None:
        attributes["time"] = time
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    event = CloudEvent(attributes, data)
    record = (to_structured if structured else to_binary)(event, JSONFormat())
    return bytes(record.value or b""), [(k, bytes(v)) for k, v in (record.headers or {}).items()]


def schema_registry_framed(message: Any, topic: str) -> bytes:
    """A protobuf message as confluent-kafka's ProtobufSerializer frames it, registered
    with its mock Schema Registry client (real wire bytes: magic byte, schema id,
    message indexes)."""
    from confluent_kafka.serialization import MessageField, SerializationContext

    serializer = _serializer(type(message))
    return bytes(serializer(message, SerializationContext(topic, MessageField.VALUE)))


@functools.cache
def _serializer(message_type: type) -> Any:
    """One serializer per message type: building one registers its schema (slow)."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer

    client = SchemaRegistryClient.new_client({"url": "mock://driftmon-tests"})
    return ProtobufSerializer(message_type, client, {"use.deprecated.format": False})


def parse_proto(payload: bytes, request: bool) -> Any:
    """The generated OIP message a serialized payload holds."""
    from open_inference.grpc import protocol

    cls = protocol.ModelInferRequest if request else protocol.ModelInferResponse
    return cls.FromString(payload)
