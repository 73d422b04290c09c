"""The README's model-server examples are true: each format's config validates with the
example model, and each example payload decodes under it without a rejection."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from monitor.config import validate_config
from monitor.ingest.decode import build_decode_schema
from monitor.ingest.decode.formats import MessageBatch, decode_messages

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()
SECTION = README.split("## Reading model servers' logs", 1)[1].split("\n## ", 1)[0]


def blocks(text: str, kind: str) -> list[str]:
    """The bodies of the fenced blocks of one kind (``""``: no language), in order."""
    fenced = re.findall(r"^```(\w*)\n(.*?)^```$", text, re.S | re.M)
    return [body for lang, body in fenced if lang == kind]


def subsection(name: str) -> str:
    return SECTION.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]


MODELS = yaml.safe_load(blocks(SECTION, "yaml")[0])


def decode(
    name: str, payloads: list[bytes], headers: list[Any], topics: list[str] | None = None
) -> Any:
    doc = yaml.safe_load(blocks(subsection(name), "yaml")[0])
    config = validate_config({**doc, **MODELS})
    topic = config.topics[0].name
    schema = build_decode_schema(config, topic)
    assert schema.format == name
    batch = MessageBatch(
        payloads,
        np.full(len(payloads), 1.7e9),
        lambda: headers,
        lambda: topics or [topic] * len(payloads),
    )
    return decode_messages(batch, schema)


def test_oip_examples() -> None:
    payloads = [b.strip().encode() for b in blocks(subsection("oip"), "json")]
    batch = decode("oip", payloads, [None] * len(payloads))
    assert not batch.rejected and batch.models["fraud"].rows == 4


def test_kserve_examples() -> None:
    text = subsection("kserve")
    attrs = [line.split(": ", 1) for line in blocks(text, "")[0].strip().splitlines()]
    request = [(k, v.encode()) for k, v in attrs]
    response = [(k, v.replace(".request", ".response").encode()) for k, v in attrs]
    payloads = [b.strip().encode() for b in blocks(text, "json")]
    batch = decode("kserve", payloads, [request, response, [("content-type", b"x")]])
    cols = batch.models["fraud"]
    assert not batch.rejected and cols.rows == 6
    assert cols.categorical[0][:2] == ["DE", "US"]


def test_seldon_example() -> None:
    value = bytes.fromhex(blocks(subsection("seldon"), "")[0].strip())
    batch = decode("seldon", [value], [None], ["seldon.prod.model.fraud.inputs"])
    assert not batch.rejected and batch.models["fraud"].numeric[:, 0].tolist() == [41.0, 29.0]


def test_flat_example() -> None:
    payloads = [b.strip().encode() for b in blocks(subsection("flat"), "json")]
    batch = decode("flat", payloads, [None])
    cols = batch.models["fraud"]
    assert not batch.rejected and cols.ids == ["r-17"] and cols.unknown_features == 1
