"""Stage 2 of a model sent as raw rows (versions, a join, a captured reference).

    python benchmarks/bench_scaleout_raw.py [--events 50000] [--repeats 5]

The synthetic fraud model (13 features) with a ``versions`` section, so stage 1 sends its
decoded values instead of codes:

1. one process (the baseline): ``Model.feed`` of the same events already decoded, what a
   single process does after decoding;
2. stage 2: decode the raw rows' wire bytes, dedup, release, rebuild the columns and the
   same ``Model.feed`` (``ModelStage.step``);
3. for scale, the same model without versions sent as binned rows through stage 2;
4. wire bytes per row, raw and binned, against the events' JSON.

Medians of ``--repeats`` runs; the load average is printed with them.
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

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import Config
from monitor.demo import synthetic
from monitor.ingest.decode import decode_batch
from monitor.model.reference_file import load_references
from monitor.pipeline import Pipeline
from monitor.scaleout.codec import decode_rows, encode_rows
from monitor.scaleout.reorder import Marker
from monitor.scaleout.stage import ModelStage, codec_for, raw_fingerprint, raw_rows


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
        def run() -> float:
            s = ModelStage(synthetic.MODEL, Pipeline(c, r).models[synthetic.MODEL], [0],
                           allowed_lateness_seconds=0.0, max_buffered_rows=10**8)  # fmt: skip
            start = time.perf_counter()
            s.push(decode_rows(data))
            s.mark(Marker(0, n, idle=True))
            rows = s.step().rows
            took = time.perf_counter() - start
            assert rows == n, rows
            return took

        return run

    runs = {
        "one process: Model.feed of decoded events, versioned model (baseline)": baseline,
        "stage 2, raw rows: wire decode + dedup + release + rebuild + Model.feed": stage(
            conf, refs, raw
        ),
        "stage 2, binned rows of the model without versions (for scale)": stage(
            plain, plain_refs, binned
        ),
    }
    medians = {}
    for name, run in runs.items():
        run()  # compile and warm
        medians[name] = statistics.median(run() for _ in range(args.repeats))
        print(f"{name}: {n / medians[name] / 1e6:.2f} M rows/s, median {medians[name]:.3f} s")
    base, got = list(medians.values())[:2]
    print(f"raw stage 2 / baseline (time): {got / base:.2f}x")
    print(f"wire bytes per row: raw {len(raw) / n:.1f}, binned {len(binned) / n:.1f}, "
          f"JSON event {json_bytes:.1f}")  # fmt: skip
    print("load average", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
