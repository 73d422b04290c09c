"""Stage 2 of a model sent as raw rows (versions, a join, a captured reference).

    python benchmarks/bench_scaleout_raw.py [--events 50000] [--repeats 5]

The synthetic fraud model (13 features) with a ``versions`` section, so stage 1 sends its
decoded values instead of codes:

1. one process (the baseline): ``Model.feed`` of the same events already decoded, what a
   single process does after decoding;
2. stage 2: decode the raw rows' wire bytes, dedup, release, rebuild the columns and the
   same ``Model.feed`` (``ModelStage.step``);
3. for scale, the same model without versions sent as binned rows through stage 2;
4. wire bytes per row, raw and binned, against the events' JSON;
   (6. below: binned rows that carry what they need, against raw rows);
5. the same model capturing its reference (``capture_events``) before and after its
   captured profile is shared on ``<group_id>.profiles``: stage 1 (decode the events'
   JSON, build the row batch, its wire bytes) sending raw rows against binned rows, and
   the owner's stage 2 on each (raw rows are binned on arrival once it has captured);
6. binned rows that carry what they need (:func:`carried_cases`): the model with a
   performance join and the versioned model, raw rows against binned ones, with each
   model's one-process baseline.

Medians of ``--repeats`` rounds, every case once per round (interleaved); the load average
is printed with them.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import Config
from monitor.demo import synthetic
from monitor.ingest.decode import decode_batch
from monitor.model.model import Model
from monitor.model.reference_file import load_references
from monitor.pipeline import Pipeline
from monitor.scaleout.carried import join_columns
from monitor.scaleout.codec import RowCodec, decode_rows, encode_rows
from monitor.scaleout.profiles import captured_codec
from monitor.scaleout.reorder import Marker
from monitor.scaleout.stage import ModelStage, binned_rows, codec_for, raw_fingerprint, raw_rows
from monitor.scaleout.versions import VersionGrids


def stage_round(
    model: Callable[[], Model], data: bytes, n: int, *, switched: bool = False
) -> Callable[[], float]:
    """A timed round of the owner's stage 2 over one row batch of ``n`` rows: wire decode,
    push, release and feed (``switched``: the model's capture is shared, so it bins)."""

    def run() -> float:
        s = ModelStage(synthetic.MODEL, model(), [0],
                       allowed_lateness_seconds=0.0, max_buffered_rows=10**8)  # fmt: skip
        if switched:
            assert s.codec is not None  # switched: the reference is captured
        start = time.perf_counter()
        assert s.push(decode_rows(data))
        s.mark(Marker(0, n, idle=True))
        rows = s.step().rows
        took = time.perf_counter() - start
        assert rows == n, rows
        return took

    return run


def captured_cases(
    doc: dict[str, Any], tmp: Path, messages: list[bytes]
) -> tuple[dict[str, Callable[[], float]], dict[bool, int]]:
    """The model capturing its reference: stage 1 and the owner's stage 2, raw and binned;
    and the wire bytes of each form (filled in by the stage-1 runs: raw True)."""
    n = len(messages)
    source, offset, ranges = np.zeros(n, np.int32), np.arange(n), np.array([[0, 0, n - 1]])
    # A model capturing its reference from its first 5,000 events: the same model, once its
    # owner has captured (the profile every stage 1 then reads from the profiles topic).
    capturing = copy.deepcopy(doc)
    capturing["models"][synthetic.MODEL]["reference"] = {"capture_events": 5000}
    cap_conf = Config.model_validate(capturing)
    cap_refs = load_references(cap_conf, tmp)
    capture_msgs = list(synthetic.to_events(synthetic.generate(np.random.default_rng(4), 5000),
                                            start_ts=1.6e9, step_seconds=0.01))  # fmt: skip

    owner = Pipeline(cap_conf, cap_refs)
    owner.process(capture_msgs, np.zeros(len(capture_msgs)), "t")
    captured = owner.models[synthetic.MODEL].state([])  # what its checkpoint holds

    def captured_model() -> Pipeline:
        """The owner's model restored (a fresh capture would be another profile: its
        creation time is part of the fingerprint)."""
        restored = Pipeline(cap_conf, cap_refs)
        restored.models[synthetic.MODEL].restore(captured)
        return restored

    monitor = owner.models[synthetic.MODEL].default
    assert monitor.profile is not None
    shared = captured_codec(synthetic.MODEL, monitor, monitor.profile)
    cap_stage1 = Pipeline(cap_conf, cap_refs)  # a stage 1 never captures: category strings
    cap_fingerprint = raw_fingerprint(cap_stage1.models[synthetic.MODEL])

    def stage1(codec: RowCodec | None) -> Callable[[], float]:
        """Decode the events and build the wire bytes of their row batch."""

        def run() -> float:
            start = time.perf_counter()
            c = decode_batch(messages, np.zeros(n), cap_stage1.schema("t")).models[synthetic.MODEL]
            if codec is None:
                batch = raw_rows(synthetic.MODEL, cap_fingerprint, c, None, source, offset, ranges)
            else:
                codes = c.codes if c.codes is not None else codec.encode_categories(c.categorical)
                batch = codec.bin(c.numeric, codes, c.ts, source, offset, ranges)
            data = encode_rows(batch)
            took = time.perf_counter() - start
            wire[codec is None] = len(data)
            return took

        return run

    wire: dict[bool, int] = {}
    stage1(None)()
    stage1(shared)()
    cap_raw = encode_rows(raw_rows(synthetic.MODEL, cap_fingerprint,
        decode_batch(messages, np.zeros(n), cap_stage1.schema("t")).models[synthetic.MODEL],
        None, source, offset, ranges))  # fmt: skip
    c = decode_batch(messages, np.zeros(n), cap_stage1.schema("t")).models[synthetic.MODEL]
    cap_binned = encode_rows(shared.bin(c.numeric, shared.encode_categories(c.categorical),
                                        c.ts, source, offset, ranges))  # fmt: skip

    def captured_stage(data: bytes) -> Callable[[], float]:
        return stage_round(lambda: captured_model().models[synthetic.MODEL], data, n, switched=True)

    return {
        "captured reference, stage 1 raw rows (before the profile is shared)": stage1(None),
        "captured reference, stage 1 binned rows (after: the topic's profile)": stage1(shared),
        "captured reference, stage 2 (captured) on raw rows, binned on arrival": captured_stage(
            cap_raw
        ),
        "captured reference, stage 2 (captured) on binned rows": captured_stage(cap_binned),
    }, wire


def carried_cases(
    doc: dict[str, Any], versioned: Config, tmp: Path, messages: list[bytes]
) -> tuple[dict[str, Callable[[], float]], dict[str, float]]:
    """Binned rows that carry what they need: the model with a performance join (raw rows
    of an older stage 1, binned on arrival, against binned rows carrying ids, labels and
    the prediction) and the versioned model (every other row of version v1, from the
    message header) binned per version; stage 2 of each and wire bytes per row."""
    n = len(messages)
    source, offset, ranges = np.zeros(n, np.int32), np.arange(n), np.array([[0, 0, n - 1]])
    perf = copy.deepcopy(doc)
    perf["models"][synthetic.MODEL].update(
        task="binary_classification", performance={"window": {"events": 5000, "slide": 1000}}
    )
    perf_conf = Config.model_validate(perf)
    perf_refs = load_references(perf_conf, tmp)
    # Every other event carries its label inline (the join's inline path).
    labelled = [m[:-1] + b',"label":%d}' % (i % 2) if i % 2 else m for i, m in enumerate(messages)]
    perf_pipeline = Pipeline(perf_conf, perf_refs)
    perf_model = perf_pipeline.models[synthetic.MODEL]
    perf_cols = decode_batch(labelled, np.zeros(n), perf_pipeline.schema("t")).models[
        synthetic.MODEL
    ]
    perf_raw = encode_rows(raw_rows(synthetic.MODEL, raw_fingerprint(perf_model), perf_cols,
                                    None, source, offset, ranges))  # fmt: skip
    perf_binned = encode_rows(binned_rows(codec_for(synthetic.MODEL, perf_model),
                                          join_columns(perf_model), perf_cols, source, offset,
                                          ranges))  # fmt: skip
    ver_refs = load_references(versioned, tmp)
    ver_pipeline = Pipeline(versioned, ver_refs)
    ver_cols = decode_batch(messages, np.zeros(n), ver_pipeline.schema("t")).models[synthetic.MODEL]
    headers: list[str | None] = ["v1" if i % 2 else None for i in range(n)]
    ver_model = ver_pipeline.models[synthetic.MODEL]
    found = VersionGrids(synthetic.MODEL, ver_model).rows(ver_cols, headers, source, offset,
                                                          ranges)  # fmt: skip
    assert found is not None
    ver_binned = encode_rows(found)
    ver_raw = encode_rows(raw_rows(synthetic.MODEL, raw_fingerprint(ver_model), ver_cols,
                                   headers, source, offset, ranges))  # fmt: skip

    def baseline(c: Config, r: dict, cols: Any, hv: Any) -> Callable[[], float]:  # type: ignore[type-arg]
        def run() -> float:
            m = Pipeline(c, r).models[synthetic.MODEL]
            start = time.perf_counter()
            m.feed(cols, hv)
            return time.perf_counter() - start

        return run

    def stage(c: Config, r: dict, data: bytes) -> Callable[[], float]:  # type: ignore[type-arg]
        return stage_round(lambda: Pipeline(c, r).models[synthetic.MODEL], data, n)

    wire = {
        "join, raw": len(perf_raw) / n,
        "join, binned + carried": len(perf_binned) / n,
        "versions, raw": len(ver_raw) / n,
        "versions, binned + version": len(ver_binned) / n,
    }
    return {
        "join: one process, Model.feed of decoded events (baseline)": baseline(
            perf_conf, perf_refs, perf_cols, None
        ),
        "join: stage 2 on raw rows (an older stage 1; binned on arrival)": stage(
            perf_conf, perf_refs, perf_raw
        ),
        "join: stage 2 on binned rows carrying ids, labels, prediction": stage(
            perf_conf, perf_refs, perf_binned
        ),
        "versions (v1 and default): one process, Model.feed (baseline)": baseline(
            versioned, ver_refs, ver_cols, headers
        ),
        "versions: stage 2 on raw rows": stage(versioned, ver_refs, ver_raw),
        "versions: stage 2 on binned rows, each against its version's grid": stage(
            versioned, ver_refs, ver_binned
        ),
    }, wire


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n = args.events
    tmp = Path(tempfile.mkdtemp())
    reference = tmp / "fraud.json"
    synthetic.reference_profile(7, 5000).save(reference)
    models = yaml.safe_load(synthetic.model_config_yaml(str(reference), events=20000, slide=5000))
    doc = {
        "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["t"],
                  "scale_out": {"enabled": True}},
        "models": models,
    }  # fmt: skip
    versioned = copy.deepcopy(doc)
    versioned["models"][synthetic.MODEL]["versions"] = {"references": {"v1": str(reference)}}
    plain = Config.model_validate(doc)
    conf = Config.model_validate(versioned)
    refs, plain_refs = load_references(conf, tmp), load_references(plain, tmp)
    cols = synthetic.generate(np.random.default_rng(3), n)
    messages = list(synthetic.to_events(cols, start_ts=1.7e9, step_seconds=0.01))
    json_bytes = sum(map(len, messages)) / n

    pipeline = Pipeline(conf, refs)
    decoded = decode_batch(messages, np.zeros(n), pipeline.schema("t")).models[synthetic.MODEL]
    source, offset, ranges = np.zeros(n, np.int32), np.arange(n), np.array([[0, 0, n - 1]])
    raw = encode_rows(raw_rows(synthetic.MODEL, raw_fingerprint(pipeline.models[synthetic.MODEL]),
                               decoded, None, source, offset, ranges))  # fmt: skip
    plain_pipeline = Pipeline(plain, plain_refs)
    plain_cols = decode_batch(messages, np.zeros(n), plain_pipeline.schema("t")).models[
        synthetic.MODEL
    ]
    codec = codec_for(synthetic.MODEL, plain_pipeline.models[synthetic.MODEL])
    codes = plain_cols.codes
    if codes is None:
        codes = codec.encode_categories(plain_cols.categorical)
    binned = encode_rows(codec.bin(plain_cols.numeric, codes, plain_cols.ts, source, offset,
                                   ranges))  # fmt: skip

    def baseline() -> float:
        m = Pipeline(conf, refs).models[synthetic.MODEL]
        start = time.perf_counter()
        m.feed(decoded)
        return time.perf_counter() - start

    def stage(c: Config, r: dict, data: bytes) -> Callable[[], float]:  # type: ignore[type-arg]
        return stage_round(lambda: Pipeline(c, r).models[synthetic.MODEL], data, n)

    captured, wire = captured_cases(doc, tmp, messages)
    carried, carried_wire = carried_cases(doc, conf, tmp, messages)
    runs = {
        "one process: Model.feed of decoded events, versioned model (baseline)": baseline,
        "stage 2, raw rows: wire decode + dedup + release + rebuild + Model.feed": stage(
            conf, refs, raw
        ),
        "stage 2, binned rows of the model without versions (for scale)": stage(
            plain, plain_refs, binned
        ),
        **captured,
        **carried,
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # compile and warm
    for _ in range(args.repeats):  # interleaved rounds: every case once per round
        for name, run in runs.items():
            times[name].append(run())
    medians = {name: statistics.median(found) for name, found in times.items()}
    for name, median in medians.items():
        print(f"{name}: {n / median / 1e6:.2f} M rows/s, median {median:.3f} s")
    names = list(medians)
    print(f"raw stage 2 / baseline (time): {medians[names[1]] / medians[names[0]]:.2f}x")
    print(f"captured reference, stage 1 binned / raw (rows/s): "
          f"{medians[names[3]] / medians[names[4]]:.2f}x; stage 2 binned / raw (rows/s): "
          f"{medians[names[5]] / medians[names[6]]:.2f}x")  # fmt: skip
    print(f"wire bytes per row: raw {len(raw) / n:.1f}, binned {len(binned) / n:.1f}, "
          f"JSON event {json_bytes:.1f}")  # fmt: skip
    print(f"captured reference, wire bytes per row: raw {wire[True] / n:.1f}, "
          f"binned {wire[False] / n:.1f} ({wire[True] / wire[False]:.2f}x)")  # fmt: skip
    print("wire bytes per row, " + ", ".join(f"{k} {v:.1f}" for k, v in carried_wire.items()))
    join = [medians[k] for k in carried if k.startswith("join")]
    versions = [medians[k] for k in carried if k.startswith("versions")]
    print(f"join: stage 2 binned / raw (rows/s) {join[1] / join[2]:.2f}x, binned stage 2 / "
          f"baseline (time) {join[2] / join[0]:.2f}x; versions: binned / raw (rows/s) "
          f"{versions[1] / versions[2]:.2f}x, binned / baseline (time) "
          f"{versions[2] / versions[0]:.2f}x")  # fmt: skip
    print("load average", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
