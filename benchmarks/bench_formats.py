"""Model servers' formats: OIP JSON decode against driftmon's own format, the cost of
pairing requests with responses end to end, and the memory of a pending pair.

    python benchmarks/bench_formats.py [--rows 204800] [--rows-per-request 32] [--rounds 7]

1. decode, rows per second on one core, rounds interleaved, median: the same 20-feature
   rows (12 numeric, 8 categorical, a numeric prediction; ``bench_decode``'s events) as
   driftmon events through ``decode_batch`` (the columnar scanner with category codes:
   the strongest native path; and the object paths, what models without known category
   codes take) and as OIP v2 JSON requests of 32 rows written by
   tritonclient plus their responses, decoded by ``decode_messages`` with the categories
   coded after, so both give the same columns. A row costs the native format one event
   and OIP a share of one request and one response. OIP is timed twice: with its Numba
   body scanner (``oip_scan``) and with it off (orjson's batch path, the previous one).
2. pairing end to end: ``Pipeline.process`` over those requests and responses (decode,
   pairing, codes, windows, evaluations); the time inside ``Pairing.pair`` is measured in
   the same runs, and the overhead is that time over the rest.
3. memory per pending pair: tracemalloc's growth while 100,000 requests wait.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import monitor.ingest.decode.formats.oip as oip_module
from benchmarks.bench_decode import CATEGORICAL, NUMERIC, make_payloads, schema
from monitor.config import validate_config
from monitor.ingest.decode import decode_batch
from monitor.ingest.decode.batch import with_codes
from monitor.ingest.decode.formats import MessageBatch, decode_messages
from monitor.ingest.pairing import Pairing
from monitor.pipeline import Pipeline
from tests.support.payloads import oip_json_request, oip_json_response

BATCH_MESSAGES = 5000


def oip_messages(events: list[bytes], rows: int) -> list[bytes]:
    """The events as OIP requests of ``rows`` rows and their responses (tritonclient)."""
    out = []
    parsed = [orjson.loads(e) for e in events]
    for k in range(0, len(parsed), rows):
        group = parsed[k : k + rows]
        feats = [e["features"] for e in group]
        inputs: dict[str, tuple[str, list[Any]]] = {}
        for name in NUMERIC:  # JSON has no null for FP64: a missing value becomes 0
            inputs[name] = ("FP64", [f[name] if f[name] is not None else 0.0 for f in feats])
        for name in CATEGORICAL:
            values = [f[name] for f in feats]
            kind = "BOOL" if isinstance(values[0], bool) else "BYTES"
            inputs[name] = (kind, values)
        rid = group[0]["id"]
        out.append(oip_json_request(inputs, rid)[0])
        scores = [e["prediction"] for e in group]
        out.append(oip_json_response({"predict": ("FP64", scores)}, rid))
    return out


def rates(runs: dict[str, Callable[[], object]], rows: int, rounds: int) -> dict[str, float]:
    seen: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seen[name].append(rows / (time.perf_counter() - start))
    return {name: statistics.median(v) for name, v in seen.items()}


def pipeline_config(fmt: str) -> Any:
    features = {n: {"type": "numeric"} for n in NUMERIC}
    features.update({n: {"type": "categorical"} for n in CATEGORICAL})
    return validate_config(
        {
            "kafka": {
                "bootstrap_servers": "127.0.0.1:9092",
                "topics": [{"name": "t", "model": "fraud", "format": fmt}],
            },
            "models": {
                "fraud": {
                    "reference": {"capture_events": 20_000},
                    "window": {"events": 20_000, "slide": 5_000},
                    "features": features,
                    "prediction": {"type": "numeric"},
                }
            },
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=204_800)
    parser.add_argument("--rows-per-request", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    events = make_payloads(args.rows)
    messages = oip_messages(events, args.rows_per_request)
    native_batches = [events[i : i + BATCH_MESSAGES] for i in range(0, len(events), BATCH_MESSAGES)]
    per_batch = 2 * (BATCH_MESSAGES // (2 * args.rows_per_request))  # whole pairs per batch
    oip_batches = [messages[i : i + per_batch] for i in range(0, len(messages), per_batch)]
    coded = schema(codes=True)
    oip = replace(coded, format="oip", bound_model="fraud")

    def run_native() -> None:
        for batch in native_batches:
            decode_batch(batch, np.full(len(batch), 1.7e9), coded)

    plain = schema(codes=False)

    def run_objects() -> None:
        for batch in native_batches:
            decode_batch(batch, np.full(len(batch), 1.7e9), plain)

    def run_oip() -> None:
        for batch in oip_batches:
            decoded = decode_messages(MessageBatch(batch, np.full(len(batch), 1.7e9)), oip)
            with_codes(decoded, oip)

    def run_oip_orjson() -> None:  # the Numba body scanner off: orjson's batch path
        names = vars(oip_module)
        scanned = names["scanned_oip_json"]
        names["scanned_oip_json"] = lambda p, ts, s: ([], list(range(len(p))))
        try:
            run_oip()
        finally:
            names["scanned_oip_json"] = scanned

    run_native()  # compile or load the scanner before timing
    run_oip()
    runs: dict[str, Callable[[], object]] = {
        "native": run_native,
        "objects": run_objects,
        "oip": run_oip,
        "oip_orjson": run_oip_orjson,
    }
    found = rates(runs, args.rows, args.rounds)
    req_bytes = statistics.mean(len(m) for m in messages[::2])
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"decode, {args.rows} rows, median of {args.rounds} (requests of "
        f"{args.rows_per_request} rows, {req_bytes:,.0f} bytes):"
    )
    print(f"  driftmon events, columnar scanner   {found['native']:>12,.0f} rows/s  1.00x")
    ratio = found["objects"] / found["native"]
    print(f"  driftmon events, object paths       {found['objects']:>12,.0f} rows/s  {ratio:.2f}x")
    ratio = found["oip"] / found["native"]
    print(f"  OIP JSON request + response          {found['oip']:>12,.0f} rows/s  {ratio:.2f}x")
    ratio = found["oip_orjson"] / found["native"]
    print(
        f"  OIP JSON, scanner off (orjson)       {found['oip_orjson']:>12,.0f} rows/s  {ratio:.2f}x"
    )

    # -- pairing end to end ------------------------------------------------------------
    spent = [0.0]
    original = Pairing.pair

    def timed(self: Pairing, cols: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, cols)
        finally:
            spent[0] += time.perf_counter() - start

    Pairing.pair = timed  # type: ignore[method-assign]
    totals, pairs = [], []
    for _ in range(max(3, args.rounds // 2)):
        pipeline = Pipeline(pipeline_config("oip"), {})
        spent[0] = 0.0
        start = time.perf_counter()
        for k, batch in enumerate(oip_batches):
            pipeline.process(batch, np.full(len(batch), 1.7e9 + k), "t")
        totals.append(time.perf_counter() - start)
        pairs.append(spent[0])
    Pairing.pair = original  # type: ignore[method-assign]
    total, pair = statistics.median(totals), statistics.median(pairs)
    print(
        f"pipeline over OIP requests + responses: {args.rows / total:,.0f} rows/s; "
        f"pairing {pair * 1e3:.0f} ms of {total * 1e3:.0f} ms, "
        f"+{100 * pair / (total - pair):.1f} % over the rest"
    )

    # -- memory per pending pair --------------------------------------------------------
    pending = min(100_000, args.rows)
    cols = oip_columns(messages, oip, pending)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store = Pairing(_limits(), len(NUMERIC) + 1, len(NUMERIC), False)
    store.pair(cols)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert store.pending["request"] == pending, store.pending
    print(
        f"memory per pending request ({len(NUMERIC)} numeric + {len(CATEGORICAL)} categorical "
        f"features): {(after - before) / pending:,.0f} bytes (tracemalloc; numpy arrays "
        f"{store.nbytes() / pending:,.0f})"
    )


def _limits() -> Any:
    from monitor.ingest.pairing import PairLimits

    return PairLimits(max_pending=10_000_000, max_delay_seconds=1e9)


def oip_columns(messages: list[bytes], oip: Any, rows: int) -> Any:
    """Request rows only (``rows`` of them), decoded, as the pairing store receives them."""
    requests = messages[::2]
    need = -(-rows // (len(orjson.loads(requests[0])["inputs"][0]["data"]) or 1))
    decoded = decode_messages(MessageBatch(requests[:need], np.full(need, 1.7e9)), oip)
    return decoded.models["fraud"].slice_rows(0, rows)


if __name__ == "__main__":
    main()
