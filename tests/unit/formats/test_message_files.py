"""``driftmon baseline`` and ``replay`` over captured model-server logs: JSON lines
(structured KServe CloudEvents) and length-delimited protobuf (OIP, Seldon)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from monitor.app.baseline import build_reference
from monitor.app.message_files import iter_messages, write_delimited
from monitor.app.replay import replay
from monitor.cli import EXIT_CONFIG, EXIT_OK, main
from monitor.config import Config, validate_config
from monitor.errors import UsageError
from tests.support.payloads import kserve_record, oip_proto_request, oip_proto_response

FEATURES = {"amount": {"type": "numeric"}, "country": {"type": "categorical"}}


def config(topics: list[dict[str, Any]], reference: str | dict[str, int] | None = None) -> Config:
    return validate_config(
        {
            "kafka": {"bootstrap_servers": "127.0.0.1:9092", "topics": topics},
            "models": {
                "fraud": {
                    "reference": reference or {"capture_events": 200},
                    "window": {"events": 200, "slide": 100},
                    "features": FEATURES,
                    "prediction": {"type": "numeric"},
                }
            },
        }
    )


def traffic(n: int, seed: int, shift: float = 0.0) -> list[tuple[dict[str, Any], list[float]]]:
    """Inferences of 4 rows: inputs by feature, and the scores."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        amount = (rng.normal(50 + shift, 10, 4)).round(3).tolist()
        country = rng.choice(["DE", "US", "FR"], 4).tolist()
        out.append(
            (
                {"amount": ("FP64", amount), "country": ("BYTES", country)},
                rng.uniform(0, 1, 4).round(4).tolist(),
            )
        )
    return out


def native_lines(data: list[tuple[dict[str, Any], list[float]]]) -> list[bytes]:
    lines = []
    for inputs, scores in data:
        for r in range(4):
            features = {"amount": inputs["amount"][1][r], "country": inputs["country"][1][r]}
            lines.append(
                orjson.dumps({"model": "fraud", "features": features, "prediction": scores[r]})
            )
    return lines


def kserve_lines(data: list[tuple[dict[str, Any], list[float]]]) -> list[bytes]:
    lines = []
    for k, (inputs, scores) in enumerate(data):
        rows = [list(r) for r in zip(inputs["amount"][1], inputs["country"][1], strict=True)]
        request, _ = kserve_record({"instances": rows}, f"ce-{k}", request=True, structured=True)
        response, _ = kserve_record(
            {"predictions": scores}, f"ce-{k}", request=False, structured=True
        )
        lines += [response, request] if k % 2 else [request, response]  # either order
    return lines


def test_baseline_from_kserve_cloudevents_equals_the_native_events(tmp_path: Path) -> None:
    data = traffic(300, seed=1)
    native, kserve = tmp_path / "native.jsonl", tmp_path / "kserve.jsonl"
    native.write_bytes(b"\n".join(native_lines(data)) + b"\n")
    kserve.write_bytes(b"\n".join(kserve_lines(data)) + b"\n")
    topics = [{"name": "infer", "format": "kserve"}]
    expected, _, _ = build_reference(config([{"name": "events"}]), "fraud", native)
    got, _, rejected = build_reference(config(topics), "fraud", kserve, ("lines", "infer"))
    assert rejected.total == 0
    same = {"created_at": expected.created_at, "source": expected.source}
    assert dataclasses.replace(got, **same) == expected


def test_baseline_releases_requests_left_without_response_at_the_end(tmp_path: Path) -> None:
    data = traffic(50, seed=2)
    lines = kserve_lines(data)
    lines = [line for line in lines if b".response" not in line or b"ce-49" not in line]
    path = tmp_path / "kserve.jsonl"
    path.write_bytes(b"\n".join(lines))
    profile, _, _ = build_reference(config([{"name": "i", "format": "kserve"}]), "fraud", path)
    amount, prediction = profile.features["amount"], profile.features["prediction"]
    assert (amount.n, amount.missing) == (200, 0)
    assert (prediction.n, prediction.missing) == (196, 4)  # the unanswered 4 rows


def oip_delimited(path: Path, data: list[tuple[dict[str, Any], list[float]]]) -> None:
    values = []
    for k, (inputs, scores) in enumerate(data):
        values.append(oip_proto_request(inputs, f"r{k}", raw=k % 2 == 0))
        values.append(oip_proto_response({"score": ("FP64", scores)}, f"r{k}"))
    write_delimited(path, values)


def test_replay_of_a_delimited_protobuf_log_matches_the_native_replay(tmp_path: Path) -> None:
    data = traffic(100, seed=3) + traffic(150, seed=4, shift=15)
    native, log = tmp_path / "native.jsonl", tmp_path / "oip.bin"
    native.write_bytes(b"\n".join(native_lines(data)))
    oip_delimited(log, data)
    assert sum(len(chunk) for chunk, _ in iter_messages(log, "delimited", 77)) == 500
    plain = replay(config([{"name": "events"}]), {}, native, None)
    topics = [{"name": "events"}, {"name": "oip-log", "model": "fraud", "format": "oip"}]
    got = replay(config(topics), {}, log, None, input_format="delimited", topic="oip-log")
    assert got.rejected == 0 and got.accepted == plain.accepted == 1000
    assert got.evaluations == plain.evaluations > 0
    assert got.triggers == plain.triggers > 0
    assert got.pairing == ["pairing: 1000 pair(s); unpaired halves: none; 0 still waiting"]


def test_the_cli_reads_delimited_files_and_names_a_cut_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "oip.bin"
    oip_delimited(log, traffic(60, seed=5))
    cfg = tmp_path / "driftmon.yaml"
    cfg.write_text(
        "kafka:\n"
        "  bootstrap_servers: '127.0.0.1:9092'\n"
        "  topics: [{name: oip-log, model: fraud, format: oip}]\n"
        "models:\n  fraud:\n    reference: {capture_events: 100}\n"
        "    window: {events: 100, slide: 50}\n"
        "    features: {amount: {type: numeric}, country: {type: categorical}}\n"
        "    prediction: {type: numeric}\n"
    )
    args = ["replay", "--config", str(cfg), "--input", str(log), "--input-format", "delimited"]
    assert main([*args, "--output", str(tmp_path / "out.jsonl")]) == EXIT_OK
    assert "240 accepted" in capsys.readouterr().err
    assert main([*args, "--topic", "elsewhere"]) == EXIT_CONFIG
    assert "--topic: 'elsewhere' is not a configured topic" in capsys.readouterr().err
    log.write_bytes(log.read_bytes()[:-5])
    assert main(args) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "--input:" in err and "Traceback" not in err
    with pytest.raises(UsageError):
        list(iter_messages(log, "delimited", 10))
