"""Decode throughput: ``decode_batch`` against plain ``orjson.loads`` and a typed msgspec decoder.

Events have 20 features (12 numeric, 8 categorical) plus id, ts and a numeric prediction,
shaped like the demo's fraud model. Each round decodes the same batches; the figure is the
median over rounds, in events per second on one core. ``decode_batch`` runs three ways: with
category codes in the schema (what the daemon does once a model's reference is known: the
columnar scanner of ``monitor.ingest.decode.scanner``), without them (the object paths:
msgspec typed decoder, orjson for what it refuses), and with the orjson path only (no msgspec).

Run: ``python benchmarks/bench_decode.py [--events 200000] [--batch 5000] [--rounds 7]``
with ``--profile`` to print where decode time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import orjson

import monitor.ingest.decode.typed
from monitor.ingest.decode import CategoryCodes, DecodeSchema, ModelSchema, decode_batch

NUMERIC = (
    "amount", "age", "account_age_days", "balance", "txn_count_24h", "avg_amount_30d",
    "distance_km", "hour", "velocity_1h", "credit_limit", "score_ext", "items",
)  # fmt: skip
CATEGORICAL = (
    "country", "channel", "device", "merchant_category", "currency", "card_type",
    "is_new_device", "segment",
)  # fmt: skip
COUNTRIES = ["DE", "FR", "US", "GB", "NL", "ES", "IT", "PL", "SE", "BR", "IN", "JP"]
CHOICES = {
    "country": COUNTRIES,
    "channel": ["web", "app", "pos", "phone"],
    "device": ["ios", "android", "desktop", "other"],
    "merchant_category": [f"mcc{n}" for n in range(5000, 5060)],
    "currency": ["EUR", "USD", "GBP", "SEK", "BRL", "JPY", "INR", "PLN"],
    "card_type": ["debit", "credit", "prepaid"],
    "is_new_device": [True, False],
    "segment": ["retail", "smb", "corporate", "student", "senior"],
}


def make_payloads(count: int, seed: int = 7) -> list[bytes]:
    """Realistic events: skewed amounts, integer counts, a few nulls, 13-digit ids."""
    rng = random.Random(seed)
    out = []
    ts = 1_764_150_000.0
    for i in range(count):
        ts += rng.expovariate(1000.0)
        feats: dict[str, object] = {
            "amount": round(rng.lognormvariate(3.5, 1.2), 2),
            "age": rng.randint(18, 90),
            "account_age_days": rng.randint(0, 5000),
            "balance": round(rng.gauss(2500, 1800), 2),
            "txn_count_24h": rng.randint(0, 40),
            "avg_amount_30d": round(rng.lognormvariate(3.3, 0.9), 2),
            "distance_km": round(rng.expovariate(0.05), 3),
            "hour": rng.randint(0, 23),
            "velocity_1h": round(rng.random() * 5, 4),
            "credit_limit": rng.choice([500, 1000, 2500, 5000, 10000]),
            "score_ext": None if rng.random() < 0.02 else round(rng.random(), 6),
            "items": rng.randint(1, 12),
        }
        for name in CATEGORICAL:
            feats[name] = rng.choice(CHOICES[name])
        event = {
            "model": "fraud",
            "ts": round(ts, 3),
            "id": f"req-{i:013d}",
            "features": feats,
            "prediction": round(rng.betavariate(1, 12), 6),
        }
        out.append(orjson.dumps(event))
    return out


def schema(codes: bool = False) -> DecodeSchema:
    """The decode schema of the benchmark's model; ``codes``: with category codes."""
    model = ModelSchema("fraud", numeric=NUMERIC, categorical=CATEGORICAL, prediction="numeric")
    if codes:
        tables = []
        for name in CATEGORICAL:
            values = [str(v).lower() if isinstance(v, bool) else v for v in CHOICES[name]]
            tables.append(CategoryCodes({str(v): i for i, v in enumerate(values)}, len(values) + 1))
        model = replace(model, codes=tuple(tables))
    return DecodeSchema(models={"fraud": model})


def rates(runs: dict[str, Callable[[], object]], events: int, rounds: int) -> dict[str, float]:
    """Median events per second of each run; rounds interleave the runs so that a noisy
    neighbour on a shared machine slows all of them alike."""
    seen: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seen[name].append(events / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in seen.items()}


def msgspec_run(batches: list[list[bytes]]) -> dict[str, Callable[[], object]]:
    """A plain typed msgspec decoder over the batches, when msgspec is installed."""
    try:
        import msgspec
    except ImportError:
        return {}

    class Event(msgspec.Struct):
        model: str
        ts: float
        id: str
        features: dict[str, float | int | str | bool | None]
        prediction: float

    decoder = msgspec.json.Decoder(Event)

    def run_msgspec() -> None:
        decode = decoder.decode
        for batch in batches:
            for payload in batch:
                decode(payload)

    return {f"msgspec typed Struct ({msgspec.__version__})": run_msgspec}


def main() -> None:
    """Print median throughput of each decoder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    payloads = make_payloads(args.events)
    batches = [payloads[i : i + args.batch] for i in range(0, len(payloads), args.batch)]
    stamps = [np.full(len(b), 1_764_150_000.0) for b in batches]
    sch = schema()
    coded = schema(codes=True)
    mean_bytes = sum(map(len, payloads)) / len(payloads)

    def run_decode() -> None:
        for batch, kts in zip(batches, stamps, strict=True):
            decode_batch(batch, kts, sch)

    def run_scanner() -> None:
        for batch, kts in zip(batches, stamps, strict=True):
            decode_batch(batch, kts, coded)

    def run_orjson() -> None:
        loads = orjson.loads
        for batch in batches:
            for payload in batch:
                loads(payload)

    runs: dict[str, Callable[[], object]] = {"orjson.loads only": run_orjson}
    runs.update(msgspec_run(batches))
    typed = monitor.ingest.decode.typed.msgspec

    def run_general() -> None:
        # The orjson path alone, as before the typed decoder (what runs without msgspec).
        monitor.ingest.decode.typed.msgspec = None  # type: ignore[assignment]
        try:
            run_decode()
        finally:
            monitor.ingest.decode.typed.msgspec = typed

    runs["decode_batch, orjson path only"] = run_general
    runs["decode_batch, object paths"] = run_decode
    runs["decode_batch, columnar scanner"] = run_scanner
    run_scanner()  # compile or load the kernels before timing
    results = rates(runs, args.events, args.rounds)

    print(
        f"{args.events} events, {mean_bytes:.0f} bytes each, batches of {args.batch}, "
        f"median of {args.rounds} rounds, orjson {orjson.__version__}, numpy {np.__version__}"
    )
    base = results["orjson.loads only"]
    for name, value in results.items():
        print(f"  {name:<40} {value:>12,.0f} events/s  {value / base:5.2f}x orjson")

    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(run_scanner)
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
