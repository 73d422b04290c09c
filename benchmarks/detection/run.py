"""Scenario benchmark: false alarms and detection delay, driftmon next to other tools.

    python benchmarks/detection/run.py [--quick] [--stationary-events N] [--tools ...]
        [--cap-seconds S] [--work DIR] [--write-results]

Every scenario (see ``streams.py``) gets its own reference (100,000 rows) and stream. The
same arrays go to every tool:

* driftmon through its library API: ``build_profile``, a count ``SlotWindow`` of 10,000
  events sliding by 2,000 (one evaluation every 2 s at 1,000 events/s), ``evaluate`` with
  the default tests (psi, ks, js, chi2 + missing ratio), and the default alert rule
  (1 feature, 2 evaluations in a row). Two configurations: the default thresholds, and a
  budget of 1 false alarm a month at 1,000 events/s through ``calibrate``;
* Evidently's default ``DataDriftPreset`` on tumbling windows of the same 10,000 events;
* NannyML's ``UnivariateDriftCalculator`` with its default methods and thresholds, chunks
  of 10,000 events;
* River's ADWIN and KSWIN with default parameters, one detector per column, every event;
* Alibi Detect's ``CVMDriftOnline`` on the numeric columns, where it installs.

Each comparison tool runs in its own virtual environment (``envs.py``), bounded by a CPU
cap per scenario; the events it processed are recorded and the rates use them. A flag is
a window (or event) where a tool named at least one drifted column; flags less than one
window (10,000 events) after the previous flag belong to the same alarm. False alarms per
million events come from the stationary stream (95 % Poisson interval, Garwood); detection
delay is the first alarm after the change minus the change position.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:  # a PYTHONPATH checkout of driftmon wins; otherwise this repository's
    import monitor  # noqa: F401
except ImportError:
    sys.path.insert(0, str(HERE.parents[1]))

import envs  # noqa: E402
import streams  # noqa: E402

from monitor.stats import (  # noqa: E402
    CountWindowSpec,
    FeatureKind,
    SlotWindow,
    build_profile,
    evaluate,
)
from monitor.stats.calibration import SECONDS_PER_MONTH, Budget, calibrate  # noqa: E402

WINDOW, SLIDE, REFERENCE = 10_000, 2_000, 100_000
TESTS = ("psi", "ks", "js", "chi2")
CONSECUTIVE = 2
STREAM_LEAD = 1_000
EXTERNAL = {"evidently": "evidently", "nannyml": "nannyml", "adwin": "river",
            "kswin": "river", "alibi-cvm": "alibi-detect"}  # fmt: skip


@dataclass
class Outcome:
    flags: list[tuple[int, list[str]]]
    events: int  # events processed
    cpu_seconds: float
    error: str = ""
    first: int = 0  # stream index of the first processed event


@dataclass
class ToolFigures:
    stationary_alarms: int = 0
    stationary_events: int = 0
    delays: dict[str, float | None] = field(default_factory=dict)
    named_ok: int = 0
    detected: int = 0
    cpu_seconds: float = 0.0
    cpu_events: int = 0
    pre_change_alarms: int = 0
    errors: list[str] = field(default_factory=list)


def alarms(flags: list[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
    """Flags grouped into alarms: a flag within one window of the previous one continues it."""
    out: list[tuple[int, list[str]]] = []
    last = -(10**12)
    for pos, named in flags:
        if pos - last > WINDOW:
            out.append((pos, named))
        last = pos
    return out


def run_driftmon(
    sc: streams.Scenario,
    ref: tuple,  # type: ignore[type-arg]
    stream: tuple,  # type: ignore[type-arg]
    budget_events_per_second: float,
    per_month: float = 1.0,
    consecutive: int = CONSECUTIVE,
) -> tuple[Outcome, Outcome, dict]:  # type: ignore[type-arg]
    kinds = {n: FeatureKind.NUMERIC for n in streams.NUMERIC}
    kinds.update({n: FeatureKind.CATEGORICAL for n in streams.CATEGORICAL})
    ref_num, ref_cat = ref
    cols: dict[str, object] = {n: ref_num[:, i] for i, n in enumerate(streams.NUMERIC)}
    for j, n in enumerate(streams.CATEGORICAL):
        codes = ref_cat[:, j]
        cols[n] = [None if c < 0 else f"v{c}" for c in codes.tolist()]
    t0 = time.process_time()
    profile = build_profile("bench", cols, kinds)  # type: ignore[arg-type]
    profile_cpu = time.process_time() - t0
    t0 = time.process_time()
    budget = Budget(
        per_month, window_events=WINDOW, slide_events=SLIDE,
        events_per_second=budget_events_per_second, consecutive=consecutive,
    )  # fmt: skip
    cal = calibrate(profile, budget, tests=TESTS, seed=0)
    cal_cpu = time.process_time() - t0
    num, cat = stream
    # the stream's categorical codes -> the profile's codes (same vocabulary order by name)
    enc = np.empty_like(cat)
    for j, n in enumerate(streams.CATEGORICAL):
        f = profile.features[n]
        lookup = {int(v[1:]): i for i, v in enumerate(f.categories)}  # type: ignore[union-attr]
        other = len(f.categories)  # type: ignore[union-attr]
        unseen = other + 1
        pooled = {int(v[1:]) for v in f.other_values}  # type: ignore[union-attr]
        table = np.full(int(max(cat[:, j].max(), 0)) + 2, unseen, np.int64)
        for code in range(table.size):
            table[code] = lookup.get(code, other if code in pooled else unseen)
        enc[:, j] = np.where(cat[:, j] < 0, -1, table[np.maximum(cat[:, j], 0)])
    win = SlotWindow(profile, CountWindowSpec(events=WINDOW, slide=SLIDE))
    run_default = [0, []]  # consecutive count, flags
    run_budget = [0, []]
    cpu_eval = cpu_apply = 0.0
    seen = 0
    batch = 5_000
    t_all = time.process_time()
    for lo in range(0, num.shape[0], batch):
        for slide in win.feed(num[lo : lo + batch], enc[lo : lo + batch]):
            del slide
            if not win.is_full:
                continue
            pos = win.events_seen
            t1 = time.process_time()
            res = evaluate(profile, win, tests=TESTS)
            t2 = time.process_time()
            res_b = cal.apply(res)
            cpu_apply += time.process_time() - t2
            cpu_eval += t2 - t1
            for state, r in ((run_default, res), (run_budget, res_b)):
                named = list(r.drifted_features)
                state[0] = state[0] + 1 if named else 0
                if state[0] >= consecutive:
                    state[1].append((pos, named))
        seen = min(num.shape[0], lo + batch)
    total = time.process_time() - t_all
    base = total - cpu_apply
    info = {"profile_cpu": profile_cpu, "calibration_cpu": cal_cpu,
            "alpha_test": cal.alpha_test, "checks": cal.checks_per_evaluation,
            "psi_critical_n00": cal.features["n00"]["psi"].critical,
            "js_critical_n00": cal.features["n00"]["js"].critical}  # fmt: skip
    return (Outcome(run_default[1], seen, base), Outcome(run_budget[1], seen, total), info)  # type: ignore[arg-type]


def run_external(tool: str, data: Path, work: Path, cap: float) -> Outcome:
    py = envs.python_of(work / "envs", EXTERNAL[tool])
    out = data.with_suffix(f".{tool}.json")
    try:
        subprocess.run(
            [str(py), str(HERE / "tools.py"), tool, str(data), str(out),
             "--max-cpu-seconds", str(cap)],
            check=False, capture_output=True, text=True, timeout=cap * 4 + 600,
        )  # fmt: skip
        got = json.loads(out.read_text())
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        return Outcome([], 0, 0.0, f"{type(exc).__name__}: {exc}")
    return Outcome([(int(p), list(n)) for p, n in got["flags"]], int(got["events"]),
                   float(got["cpu_seconds"]), got.get("error", ""),
                   int(got.get("range", [0, 0])[0]))  # fmt: skip


def poisson_ci(k: int, exposure_millions: float) -> tuple[float, float]:
    lo = 0.0 if k == 0 else stats.chi2.ppf(0.025, 2 * k) / 2
    hi = stats.chi2.ppf(0.975, 2 * k + 2) / 2
    return lo / exposure_millions, hi / exposure_millions


def account(fig: ToolFigures, sc: streams.Scenario, o: Outcome) -> None:
    if o.error:
        fig.errors.append(f"{sc.name}: {o.error}")
    fig.cpu_seconds += o.cpu_seconds
    fig.cpu_events += o.events
    al = alarms(o.flags)
    if sc.change is None:
        fig.stationary_alarms += len(al)
        fig.stationary_events += o.events
        return
    fig.pre_change_alarms += sum(1 for p, _ in al if p <= sc.before)
    after = [(p, n) for p, n in al if p > sc.before]
    if o.first + o.events <= sc.before:
        fig.delays[sc.name] = math.nan  # not reached within the CPU cap
        return
    if not after:
        fig.delays[sc.name] = None
        return
    pos, named = after[0]
    fig.delays[sc.name] = pos - sc.before
    fig.detected += 1
    if set(named) & set(sc.truth) and not set(named) - set(sc.truth):
        fig.named_ok += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--stationary-events", type=int, default=None)
    # Alibi Detect's online CVM is left out by default: configuring it costs minutes of CPU
    # per reference (see RESULTS.md); pass --tools ... alibi-cvm to include it.
    ap.add_argument("--tools", nargs="*", default=[t for t in EXTERNAL if t != "alibi-cvm"])
    ap.add_argument("--cap-seconds", type=float, default=60.0)
    ap.add_argument("--stationary-cap-seconds", type=float, default=None)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "driftmon-detection")
    ap.add_argument("--write-results", action="store_true")
    ap.add_argument("--scenarios", default="", help="regex selecting scenarios")
    ap.add_argument("--budget-check", action="store_true", help="only the calibration check")
    args = ap.parse_args()
    stationary = args.stationary_events or (200_000 if args.quick else 1_000_000)
    if args.budget_check:
        print(budget_check(stationary))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    records = {}
    for tool in sorted({EXTERNAL[t] for t in args.tools}):
        records[tool] = envs.ensure_env(args.work / "envs", tool)
        print(f"env {tool}: ok={records[tool].ok} install={records[tool].install_seconds}s "
              f"{records[tool].versions} {records[tool].error[:300]}", flush=True)  # fmt: skip
    tools = [t for t in args.tools if records[EXTERNAL[t]].ok]
    names = ["driftmon default", "driftmon budget 1/month", *tools]
    figs = {n: ToolFigures() for n in names}
    infos = []
    for i, sc in enumerate(streams.scenarios(args.quick, stationary)):
        if args.scenarios and not re.search(args.scenarios, sc.name):
            continue
        rng_ref = np.random.default_rng(1000 + i)
        rng = np.random.default_rng(2000 + i)
        ref = streams.draw(rng_ref, REFERENCE)
        parts = []
        if sc.change is None:
            parts.append(streams.draw(rng, sc.before))
        else:
            parts.append(streams.draw(rng, sc.before, sc.change, start=-sc.before))
            parts.append(streams.draw(rng, sc.after, sc.change, start=0))
        num = np.concatenate([p[0] for p in parts])
        cat = np.concatenate([p[1] for p in parts])
        d_default, d_budget, info = run_driftmon(sc, ref, (num, cat), 1_000.0)
        infos.append(info)
        account(figs["driftmon default"], sc, d_default)
        account(figs["driftmon budget 1/month"], sc, d_budget)
        data = args.work / f"scenario{i:02d}.npz"
        meta = {"numeric": list(streams.NUMERIC), "categorical": list(streams.CATEGORICAL),
                "window": WINDOW, "alibi_ert": 1_000, "alibi_window": 100,
                "alibi_bootstraps": 30_000,
                # streaming detectors without a reference, too slow for the whole stream,
                # start shortly before the change (their false alarms are measured on the
                # stationary stream)
                "start": {t: max(0, sc.before - STREAM_LEAD) for t in ("kswin", "alibi-cvm")}
                | {"evidently": max(0, sc.before - WINDOW)}
                if sc.change is not None else {}}  # fmt: skip
        if tools:
            np.savez(data, ref_num=ref[0], ref_cat=ref[1], num=num, cat=cat,
                     meta=np.array(json.dumps(meta)))  # fmt: skip
        cap = args.cap_seconds
        if sc.change is None and args.stationary_cap_seconds:
            cap = args.stationary_cap_seconds
        line = [f"{sc.name}: driftmon default {alarms(d_default.flags)[:1]} "
                f"budget {alarms(d_budget.flags)[:1]}"]  # fmt: skip
        for tool in tools:
            o = run_external(tool, data, args.work, cap)
            account(figs[tool], sc, o)
            line.append(
                f"{tool} {o.events} ev {o.cpu_seconds:.1f}s {alarms(o.flags)[:1]} {o.error[:120]}"
            )
        print(" | ".join(str(x) for x in line), flush=True)
        # partial figures after every scenario, so a stopped run still leaves its numbers
        partial = summarise(figs, records, infos, stationary, args)
        (args.work / "summary.md").write_text(partial, encoding="utf-8")
        if tools:
            data.unlink(missing_ok=True)
    summary = summarise(figs, records, infos, stationary, args)
    print(summary)
    if args.write_results:
        write_results(summary)


def budget_check(stationary: int) -> str:
    """Calibration validity where it is measurable: budgets large enough to expect alarms.

    The stationary stream of the main run (same seeds), driftmon with budgets of 10,000
    and 100,000 false alarms a month at 1,000 events/s (3.9 and 38.6 per million events),
    with ``consecutive`` 1 and 2; alarms are counted as in the main table.
    """
    sc = streams.scenarios(False, stationary)[0]
    ref = streams.draw(np.random.default_rng(1000), REFERENCE)
    num, cat = streams.draw(np.random.default_rng(2000), stationary)
    rows = ["| budget / month | per 1M events | consecutive | alarms per 1M (95 % CI) | "
            "evaluations flagged per 1M |", "|---:|---:|---:|---|---:|"]  # fmt: skip
    for per_month in (1e4, 1e5):
        for consecutive in (1, 2):
            _, o, _ = run_driftmon(sc, ref, (num, cat), 1_000.0, per_month, consecutive)
            k = len(alarms(o.flags))
            lo, hi = poisson_ci(k, stationary / 1e6)
            target = per_month / (SECONDS_PER_MONTH * 1_000) * 1e6
            rows.append(
                f"| {per_month:,.0f} | {target:.1f} | {consecutive} | {k / (stationary / 1e6):.1f} "
                f"({lo:.1f}-{hi:.1f}) | {len(o.flags) / (stationary / 1e6):.1f} |"
            )
    return "\n".join(rows)


def fmt_delay(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    p90 = float(np.percentile(values, 90, method="inverted_cdf"))
    return f"{med:,.0f} / {p90:,.0f}"


def summarise(figs: dict[str, ToolFigures], records: dict, infos: list[dict], stationary: int,
              args: argparse.Namespace) -> str:  # type: ignore[type-arg]  # fmt: skip
    lines = [
        "| Tool | false alarms per 1M events (95 % CI) [events] | delay median / p90, "
        "shifts >= 0.25 sd (events) | delay median / p90, all drift scenarios | "
        "detected | named correctly | CPU s per 1M events |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for name, f in figs.items():
        exp = f.stationary_events / 1e6
        if exp:
            lo, hi = poisson_ci(f.stationary_alarms, exp)
            fa = (f"{f.stationary_alarms / exp:.2f} ({lo:.2f}-{hi:.2f}) "
                  f"[{f.stationary_events:,}]")  # fmt: skip
        else:
            fa = "not run"
        big = [d for s, d in f.delays.items() if d is not None and not math.isnan(d)
               and re.match(r"mean 0\.(25|5) ", s)]  # fmt: skip
        every = [d for d in f.delays.values() if d is not None and not math.isnan(d)]
        reached = sum(1 for d in f.delays.values() if d is None or not math.isnan(d))
        cpu = f.cpu_seconds / (f.cpu_events / 1e6) if f.cpu_events else math.nan
        lines.append(
            f"| {name} | {fa} | {fmt_delay(big)} | {fmt_delay(every)} | "
            f"{f.detected}/{reached} | {f.named_ok}/{f.detected} | {cpu:,.1f} |"
        )
    lines.append("")
    lines.append("Per scenario, delay in events (`missed` = no alarm in the events the tool "
                 "processed, `cap` = the CPU cap ended the run before the change):")  # fmt: skip
    lines.append("")
    scen = list(next(iter(figs.values())).delays)
    lines.append("| Scenario | " + " | ".join(figs) + " |")
    lines.append("|---|" + "---:|" * len(figs))
    for s in scen:
        cells = []
        for f in figs.values():
            d = f.delays.get(s, math.nan)
            cells.append("missed" if d is None else ("cap" if math.isnan(d) else f"{d:,.0f}"))
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines.append("")
    pre = ", ".join(f"{n}: {f.pre_change_alarms}" for n, f in figs.items())
    lines.append(f"Alarms before the change in the drift streams (also false): {pre}.")
    cal_cpu = [i["calibration_cpu"] for i in infos]
    if infos:
        i0 = infos[0]
        lines.append(
            f"Calibration (20 columns, {i0['checks']} checks, 1,000 draws): median "
            f"{statistics.median(cal_cpu):.2f} CPU s per profile; per-check level "
            f"{i0['alpha_test']:.2e}; e.g. n00 PSI critical {i0['psi_critical_n00']:.4f} "
            f"(default 0.2), JS {i0['js_critical_n00']:.4f} (default 0.1)."
        )
    env_lines = []
    for tool, rec in records.items():
        status = "ok" if rec.ok else f"FAILED: {rec.error.splitlines()[-1] if rec.error else ''}"
        vers = ", ".join(f"{k} {v}" for k, v in rec.versions.items())
        env_lines.append(f"- {tool}: {status}; install {rec.install_seconds:.0f} s; {vers}")
    lines.append("")
    lines.append("Tool environments (one venv each, Python "
                 f"{next((r.python for r in records.values() if r.python), '?')}):")  # fmt: skip
    lines += env_lines
    errs = [f"- {n}: {e}" for n, f in figs.items() for e in f.errors[:3]]
    if errs:
        lines.append("")
        lines.append("Errors recorded:")
        lines += errs
    lines.append("")
    lines.append(f"Run: stationary {stationary:,} events; drift streams as in streams.py "
                 f"({'quick' if args.quick else 'full'}); CPU cap per tool and scenario "
                 f"{args.cap_seconds:.0f} s.")  # fmt: skip
    return "\n".join(lines)


def write_results(body: str) -> None:
    path = HERE.parent / "RESULTS.md"
    text = path.read_text(encoding="utf-8")
    head = "## Detection quality"
    section = f"{head}\n\n{body}\n"
    if head in text:
        start = text.index(head)
        nxt = text.find("\n## ", start + len(head))
        text = text[:start] + section + (text[nxt + 1 :] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
