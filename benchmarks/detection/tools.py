"""Comparison-tool adapters, run inside each tool's own virtual environment.

    <env>/bin/python tools.py TOOL DATA.npz OUT.json --max-cpu-seconds S
    <env>/bin/python tools.py alibi-configure THRESHOLDS.npz OUT.json META_JSON

Reads one scenario (reference and stream arrays written by ``run.py``), runs the tool with
its default settings and writes the positions (stream event index) where it flagged drift,
with the features it named, the CPU seconds used and the events processed. Needs numpy and
the tool only; never imports driftmon. Processing stops at the CPU cap (the events
processed are recorded, so rates stay honest).
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np


def load(path: str) -> dict:  # type: ignore[type-arg]
    z = np.load(path, allow_pickle=False)
    meta = json.loads(str(z["meta"]))
    return {"meta": meta, **{k: z[k] for k in z.files if k != "meta"}}


def frames(d: dict, rows: slice | None = None):  # type: ignore[no-untyped-def,type-arg]
    import pandas as pd

    meta = d["meta"]

    def frame(num: np.ndarray, cat: np.ndarray) -> pd.DataFrame:
        out = {n: num[:, i] for i, n in enumerate(meta["numeric"])}
        for j, n in enumerate(meta["categorical"]):
            codes = cat[:, j]
            vocab = np.array([f"v{k}" for k in range(int(codes.max(initial=0)) + 1)] + [None])
            out[n] = vocab[np.where(codes < 0, len(vocab) - 1, codes)]
        return pd.DataFrame(out)

    ref = frame(d["ref_num"], d["ref_cat"])
    num, cat = d["num"], d["cat"]
    if rows is not None:
        num, cat = num[rows], cat[rows]
    return ref, frame(num, cat)


def run_evidently(d: dict, cap: float) -> tuple[list, int]:  # type: ignore[type-arg]
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    meta = d["meta"]
    window = meta["window"]
    dd = DataDefinition(numerical_columns=meta["numeric"], categorical_columns=meta["categorical"])
    ref_df, cur_all = frames(d)
    ref = Dataset.from_pandas(ref_df, data_definition=dd)
    first = int(meta.get("start", {}).get("evidently", 0))
    flags, done = [], first
    start = time.process_time()
    for end in range(first + window, len(cur_all) + 1, window):  # tumbling, same size
        cur = Dataset.from_pandas(cur_all.iloc[end - window : end], data_definition=dd)
        snap = Report([DataDriftPreset()]).run(cur, ref).dict()
        named = []
        for m in snap["metrics"]:
            cfg = m["config"]
            if cfg.get("type", "").endswith("ValueDrift"):
                value, th = m["value"], cfg["threshold"]
                pval = "p_value" in cfg["method"].lower().replace("-", "_")
                if (value < th) if pval else (value >= th):
                    named.append(cfg["column"])
        if named:
            flags.append([end, named])
        done = end
        if time.process_time() - start > cap:
            break
    return flags, [first, done]


def run_nannyml(d: dict, cap: float) -> tuple[list, int]:  # type: ignore[type-arg]
    import nannyml as nml

    del cap  # one call over the stream
    meta = d["meta"]
    window = meta["window"]
    ref, cur = frames(d)
    calc = nml.UnivariateDriftCalculator(
        column_names=meta["numeric"] + meta["categorical"], chunk_size=window
    )
    calc.fit(ref)
    res = calc.calculate(cur).filter(period="analysis").to_df()
    flags = []
    for i in range(len(res)):
        row = res.iloc[i]
        end = int(row[("chunk", "chunk", "end_index")]) + 1
        named = sorted(
            {c[0] for c in res.columns if c[2] == "alert" and c[0] != "chunk" and bool(row[c])}
        )
        if named and end - int(row[("chunk", "chunk", "start_index")]) >= window:
            flags.append([end, named])
    return flags, [0, len(cur) // window * window]


def run_river(d: dict, cap: float, kind: str) -> tuple[list, int]:  # type: ignore[type-arg]
    from river import drift

    meta = d["meta"]
    names = meta["numeric"] + meta["categorical"]
    first = int(meta.get("start", {}).get(kind, 0))
    data = np.column_stack([d["num"], d["cat"].astype(np.float64)])[first:]
    make = (lambda: drift.ADWIN()) if kind == "adwin" else (lambda: drift.KSWIN(seed=0))
    detectors = [make() for _ in names]
    flags, n = [], data.shape[0]
    start = time.process_time()
    step = 250
    done = 0
    for lo in range(0, n, step):
        block = data[lo : lo + step].tolist()
        for r, row in enumerate(block):
            hit = []
            for j, x in enumerate(row):
                if x != x:  # missing: river detectors take numbers only
                    continue
                det = detectors[j]
                det.update(x)
                if det.drift_detected:
                    hit.append(names[j])
            if hit:
                flags.append([first + lo + r + 1, hit])
        done = min(n, lo + step)
        if time.process_time() - start > cap:
            break
    return flags, [first, first + done]


def alibi_thresholds(meta: dict, path: str) -> tuple[np.ndarray, float]:  # type: ignore[type-arg]
    """CVMDriftOnline's simulated thresholds, computed once and kept in ``path``.

    Alibi Detect's CVM thresholds are rank-based: they depend on the reference size, the
    window sizes, the ERT, the number of features and the bootstrap count, never on the
    reference values (its ``_configure_thresholds`` simulates Gaussian streams whatever the
    data). So one configuration serves every scenario; the first call pays for it and
    records its CPU seconds next to the thresholds.
    """
    import os

    if os.path.isfile(path):
        z = np.load(path)
        return z["thresholds"], float(z["cpu_seconds"])
    from alibi_detect.cd import CVMDriftOnline

    np.random.seed(0)  # the simulation draws from numpy's global generator
    started = time.process_time()
    cd = CVMDriftOnline(
        np.random.randn(meta["alibi_reference"], len(meta["numeric"])),
        ert=meta["alibi_ert"], window_sizes=meta["alibi_windows"],
        n_bootstraps=meta["alibi_bootstraps"], verbose=False,
    )  # fmt: skip
    cpu = time.process_time() - started
    tmp = path + ".tmp.npz"
    np.savez(tmp, thresholds=cd.thresholds, cpu_seconds=cpu)
    os.replace(tmp, path)
    return cd.thresholds, cpu


def run_alibi(d: dict, cap: float) -> tuple[list, int]:  # type: ignore[type-arg]
    from alibi_detect.cd import CVMDriftOnline

    meta = d["meta"]
    thresholds, _ = alibi_thresholds(meta, meta["alibi_thresholds"])

    class Configured(CVMDriftOnline):  # type: ignore[misc]
        """The same detector with the thresholds simulated once (``alibi_thresholds``)."""

        def _configure_thresholds(self) -> None:
            self.thresholds = thresholds

    ref = d["ref_num"]
    ref = ref[~np.isnan(ref).any(axis=1)][: meta["alibi_reference"]]
    cd = Configured(ref, ert=meta["alibi_ert"], window_sizes=meta["alibi_windows"],
                    n_bootstraps=meta["alibi_bootstraps"], verbose=False)  # fmt: skip
    first = int(meta.get("start", {}).get("alibi-cvm", 0))
    x = np.nan_to_num(d["num"], nan=0.0)[first:]
    names = meta["numeric"]
    flags, done = [], 0
    start = time.process_time()
    for i in range(x.shape[0]):
        if (i & 1023) == 0 and cd.t > 1:
            # Alibi appends every event's statistic and input to arrays it copies on each
            # call (cost grows with the stream). Only the last window of inputs is ever
            # read, so trimming the history changes no decision and keeps the cost per
            # event at its steady state (in Alibi's favour).
            keep = max(cd.window_sizes)
            cd.xs, cd.test_stats = cd.xs[-keep:], cd.test_stats[-1:]
            cd.drift_preds = cd.drift_preds[-1:]
        out = cd.predict(x[i])
        if out["data"]["is_drift"]:
            # the features whose statistic (max over windows) crossed the threshold
            stat = np.nanmax(out["data"]["test_stat"], axis=0)
            th = float(out["data"]["threshold"])
            flags.append([first + i + 1, [names[j] for j in np.flatnonzero(stat > th)]])
            cd.reset_state()
        done = i + 1
        if (i & 255) == 0 and time.process_time() - start > cap:
            break
    return flags, [first, first + done]


def main() -> None:
    tool, data, out = sys.argv[1], sys.argv[2], sys.argv[3]
    cap = (
        float(sys.argv[sys.argv.index("--max-cpu-seconds") + 1])
        if "--max-cpu-seconds" in sys.argv
        else math.inf
    )
    if tool == "alibi-configure":  # tools.py alibi-configure THRESHOLDS.npz OUT.json META
        try:
            _, cpu = alibi_thresholds(json.loads(sys.argv[4]), data)
            result = {"cpu_seconds": cpu, "error": ""}
        except Exception as exc:
            result = {"cpu_seconds": math.nan, "error": f"{type(exc).__name__}: {exc}"[:500]}
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(result, fh)
        return
    d = load(data)
    started = time.process_time()
    try:
        if tool == "evidently":
            flags, done = run_evidently(d, cap)
        elif tool == "nannyml":
            flags, done = run_nannyml(d, cap)
        elif tool in ("adwin", "kswin"):
            flags, done = run_river(d, cap, tool)
        elif tool == "alibi-cvm":
            flags, done = run_alibi(d, cap)
        else:
            raise SystemExit(f"unknown tool {tool}")
        result = {"flags": flags, "events": done[1] - done[0], "range": done, "error": ""}
    except Exception as exc:
        result = {
            "flags": [],
            "events": 0,
            "range": [0, 0],
            "error": f"{type(exc).__name__}: {exc}"[:500],
        }
    result["cpu_seconds"] = time.process_time() - started
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
