"""Scenario benchmark: false alarms and detection delay, driftmon next to other tools.

    python benchmarks/detection/run.py [--quick] [--stationary-events N] [--tools ...]
        [--cap-seconds S] [--work DIR] [--write-results]
    python benchmarks/detection/run.py --calibration-check [--quick] [--check-streams K]
        [--check-events N] [--check-cap-seconds S]

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
* Alibi Detect's ``CVMDriftOnline`` on the numeric columns (settings and why in ``ALIBI``);
  its thresholds depend on no data, so they are simulated once and shared by every
  scenario, and that one-off CPU is reported apart.

Each comparison tool runs in its own virtual environment (``envs.py``), bounded by a CPU
cap per scenario; the events it processed are recorded and the rates use them. A flag is
a window (or event) where a tool named at least one drifted column; flags less than one
window (10,000 events) after the previous flag belong to the same alarm. False alarms per
million events come from the stationary stream (95 % Poisson interval, Garwood); detection
delay is the first alarm after the change minus the change position.

``--calibration-check`` measures what a budget of one false alarm a month cannot show:
budgets large enough to expect alarms, on independent stationary streams, configured
against measured (``calibration_check``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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
#: Alibi Detect ``CVMDriftOnline`` on the 12 numeric columns. An expected run time (ERT)
#: of 10,000 events, driftmon's window length: one false alarm per 10,000 events by
#: design (~100 per million), the rate the other tools' defaults run at, since a budget of
#: one a month (an ERT of 2.6e9 events) is out of reach: the threshold simulation needs
#: more bootstrap streams than 1 / beta, beta = 1 - (1 - 1/ERT)^(1/12) (12 ERT here).
#: 150,000 bootstraps (Alibi asks for at least 10x the ERT). The simulation costs
#: (reference + 2 x window)^2 per bootstrap and each event costs reference x window x
#: features, which rules out a 10,000-event window (tens of GB, ~0.3 s per event): one
#: window of 100 events (Alibi's own examples use tens to hundreds) against 1,000
#: reference rows (the numeric rows of the 100,000-row reference, first complete ones).
ALIBI = {"alibi_ert": 10_000, "alibi_windows": [100], "alibi_bootstraps": 150_000,
         "alibi_reference": 1_000}  # fmt: skip


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


def driftmon_inputs(ref: tuple, stream: tuple) -> tuple:  # type: ignore[type-arg]
    """The profile of ``ref`` and the stream's arrays in the profile's codes (and its CPU)."""
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
    return profile, num, enc, profile_cpu


def evaluations(profile, num: np.ndarray, enc: np.ndarray):  # type: ignore[no-untyped-def]
    """(position, result) at every full window: the daemon's window update and evaluation."""
    win = SlotWindow(profile, CountWindowSpec(events=WINDOW, slide=SLIDE))
    batch = 5_000
    for lo in range(0, num.shape[0], batch):
        for _slide in win.feed(num[lo : lo + batch], enc[lo : lo + batch]):
            if win.is_full:
                yield win.events_seen, evaluate(profile, win, tests=TESTS)


def run_driftmon(
    sc: streams.Scenario,
    ref: tuple,  # type: ignore[type-arg]
    stream: tuple,  # type: ignore[type-arg]
    budget_events_per_second: float,
    per_month: float = 1.0,
    consecutive: int = CONSECUTIVE,
) -> tuple[Outcome, Outcome, dict]:  # type: ignore[type-arg]
    del sc
    profile, num, enc, profile_cpu = driftmon_inputs(ref, stream)
    t0 = time.process_time()
    budget = Budget(
        per_month, window_events=WINDOW, slide_events=SLIDE,
        events_per_second=budget_events_per_second, consecutive=consecutive,
    )  # fmt: skip
    cal = calibrate(profile, budget, tests=TESTS, seed=0)
    cal_cpu = time.process_time() - t0
    run_default = [0, []]  # consecutive count, flags
    run_budget = [0, []]
    cpu_apply = 0.0
    t_all = time.process_time()
    for pos, res in evaluations(profile, num, enc):
        t2 = time.process_time()
        res_b = cal.apply(res)
        cpu_apply += time.process_time() - t2
        for state, r in ((run_default, res), (run_budget, res_b)):
            named = list(r.drifted_features)
            state[0] = state[0] + 1 if named else 0
            if state[0] >= consecutive:
                state[1].append((pos, named))
    base = time.process_time() - t_all - cpu_apply
    seen = num.shape[0]
    info = {"profile_cpu": profile_cpu, "calibration_cpu": cal_cpu,
            "alpha_test": cal.alpha_test, "checks": cal.checks_per_evaluation,
            "psi_critical_n00": cal.features["n00"]["psi"].critical,
            "js_critical_n00": cal.features["n00"]["js"].critical}  # fmt: skip
    return (Outcome(run_default[1], seen, base),  # type: ignore[arg-type]
            Outcome(run_budget[1], seen, base + cpu_apply), info)  # type: ignore[arg-type]  # fmt: skip


#: One core per tool process (Numba's threads would take both cores of a shared box).
TOOL_ENV = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def alibi_thresholds_file(work: Path) -> Path:
    a = ALIBI
    windows = "_".join(map(str, a["alibi_windows"]))
    return work / (f"alibi-thresholds-n{a['alibi_reference']}-w{windows}-ert{a['alibi_ert']}"
                   f"-b{a['alibi_bootstraps']}-d{len(streams.NUMERIC)}.npz")  # fmt: skip


def configure_alibi(work: Path) -> tuple[float, str]:
    """Simulate CVMDriftOnline's thresholds once (``tools.alibi_thresholds``): CPU s, error."""
    py = envs.python_of(work / "envs", "alibi-detect")
    meta = {**ALIBI, "numeric": list(streams.NUMERIC)}
    out = work / "alibi-configure.json"
    out.unlink(missing_ok=True)
    done = subprocess.run(
        [str(py), str(HERE / "tools.py"), "alibi-configure", str(alibi_thresholds_file(work)),
         str(out), json.dumps(meta)],
        check=False, capture_output=True, text=True, timeout=7_200, env=TOOL_ENV,
    )  # fmt: skip
    try:
        got = json.loads(out.read_text())
    except (OSError, ValueError):
        return math.nan, (done.stderr or "no output").strip().splitlines()[-1]
    return float(got["cpu_seconds"]), got.get("error", "")


def run_external(tool: str, data: Path, work: Path, cap: float) -> Outcome:
    py = envs.python_of(work / "envs", EXTERNAL[tool])
    out = data.with_suffix(f".{tool}.json")
    try:
        subprocess.run(
            [str(py), str(HERE / "tools.py"), tool, str(data), str(out),
             "--max-cpu-seconds", str(cap)],
            check=False, capture_output=True, text=True, timeout=cap * 4 + 600, env=TOOL_ENV,
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
    ap.add_argument("--tools", nargs="*", default=list(EXTERNAL))
    ap.add_argument("--cap-seconds", type=float, default=60.0)
    ap.add_argument("--jobs", type=int, default=2, help="comparison tools run at once")
    ap.add_argument("--stationary-cap-seconds", type=float, default=None)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "driftmon-detection")
    ap.add_argument("--write-results", action="store_true")
    ap.add_argument("--scenarios", default="", help="regex selecting scenarios")
    ap.add_argument(
        "--calibration-check",
        action="store_true",
        help="only the calibration check (configured vs measured false alarms)",
    )
    ap.add_argument(
        "--check-streams",
        type=int,
        default=None,
        help="calibration check: stationary streams (default 2 quick, 20 full)",
    )
    ap.add_argument(
        "--check-events", type=int, default=1_000_000, help="calibration check: events per stream"
    )
    ap.add_argument(
        "--check-cap-seconds",
        type=float,
        default=900.0,
        help="calibration check: stop adding streams after this much CPU",
    )
    args = ap.parse_args()
    stationary = args.stationary_events or (200_000 if args.quick else 1_000_000)
    if args.calibration_check:
        streams_n = args.check_streams or (2 if args.quick else 20)
        print(calibration_check(streams_n, args.check_events, args.check_cap_seconds))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    records = {}
    for tool in sorted({EXTERNAL[t] for t in args.tools}):
        records[tool] = envs.ensure_env(args.work / "envs", tool)
        print(f"env {tool}: ok={records[tool].ok} install={records[tool].install_seconds}s "
              f"{records[tool].versions} {records[tool].error[:300]}", flush=True)  # fmt: skip
    tools = [t for t in args.tools if records[EXTERNAL[t]].ok]
    alibi_file = alibi_thresholds_file(args.work)
    args.alibi_configure = None
    if "alibi-cvm" in tools:
        cpu, err = configure_alibi(args.work)
        args.alibi_configure = (cpu, err)
        print(f"alibi-cvm thresholds: {cpu:.0f} CPU s {err}", flush=True)
        if err:
            tools.remove("alibi-cvm")
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
                "window": WINDOW, **ALIBI, "alibi_thresholds": str(alibi_file),
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
        # the tools run side by side (``--jobs``); each one's CPU is its own process time
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            jobs = [pool.submit(run_external, t, data, args.work, cap) for t in tools]
            outcomes = [j.result() for j in jobs]
        for tool, o in zip(tools, outcomes, strict=True):
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


#: Evaluations a month at 1,000 events/s with a slide of 2,000 events.
EVALUATIONS_PER_MONTH = 1_000.0 * SECONDS_PER_MONTH / SLIDE
#: Budgets of the calibration check: (label, false alarms a month, evaluations a month or
#: None for 1,000 events/s). The last is expressed per evaluation: 5 % of evaluations.
CHECK_BUDGETS = (
    ("1,000 / month", 1e3, None),
    ("10,000 / month", 1e4, None),
    ("100,000 / month", 1e5, None),
    ("5 % of evaluations", 0.05 * EVALUATIONS_PER_MONTH, EVALUATIONS_PER_MONTH),
)


@dataclass
class CheckCounts:
    evaluations: int = 0
    flagged: int = 0  # evaluations naming at least one feature
    alarms: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})  # by `consecutive`
    run: int = 0


def calibration_check(replicates: int, events: int, cap: float) -> str:
    """Is the budget honest where it can be measured? Configured vs measured false alarms.

    ``replicates`` independent stationary streams of ``events`` events, each with its own
    100,000-row reference (seeds apart from the main run's), so the reference's own
    sampling noise, which the calibration models, varies as it would between deployments.
    Every budget of ``CHECK_BUDGETS`` is calibrated on each reference for both dependence
    models and both corrections; the windows are evaluated once and every calibration is
    applied to the same results. Counted per calibration: evaluations that flag any feature
    (a Bonferroni or BH bound per evaluation, whatever the dependence model), and alarms, a
    run of flagged evaluations reaching ``consecutive`` (1, and the benchmark's 2) counted
    once, as the alert lifecycle counts an episode. Stops adding replicates once ``cap`` CPU
    seconds are spent.
    """
    started = time.process_time()
    combos = [(label, per_month, evals, dep, corr) for label, per_month, evals in CHECK_BUDGETS
              for dep in ("union", "effective") for corr in ("bonferroni", "bh")]  # fmt: skip
    counts = {c: CheckCounts() for c in [*combos, "default"]}
    alphas: dict[object, float] = {}
    done = cal_cpu = 0
    for r in range(replicates):
        if time.process_time() - started > cap:
            break
        ref = streams.draw(np.random.default_rng(7000 + r), REFERENCE)
        stream = streams.draw(np.random.default_rng(8000 + r), events)
        profile, num, enc, _ = driftmon_inputs(ref, stream)
        t0 = time.process_time()
        cals = {}
        for c in combos:
            _, per_month, evals, dep, corr = c
            rate = {"evaluations_per_month": evals} if evals else {"events_per_second": 1_000.0}
            budget = Budget(per_month, window_events=WINDOW, slide_events=SLIDE,
                            consecutive=CONSECUTIVE, correction=corr, dependence=dep,
                            **rate)  # type: ignore[arg-type]  # fmt: skip
            cals[c] = calibrate(profile, budget, tests=TESTS, seed=r)
            alphas[c] = cals[c].alpha_evaluation
        cal_cpu += time.process_time() - t0
        runs = dict.fromkeys(counts, 0)
        for _pos, res in evaluations(profile, num, enc):
            for c, cc in counts.items():
                r_c = res if c == "default" else cals[c].apply(res)
                cc.evaluations += 1
                if r_c.drifted_features:
                    cc.flagged += 1
                    runs[c] += 1
                    for k in cc.alarms:
                        cc.alarms[k] += runs[c] == k
                else:
                    runs[c] = 0
        done += 1
    millions = done * events / 1e6
    rows = [
        f"{done} stationary streams of {events:,} events ({millions:g} M events, "
        f"{sum(c.evaluations for c in counts.values()) // len(counts):,} evaluations), each "
        f"with its own 100,000-row reference; {time.process_time() - started:,.0f} CPU s "
        f"({cal_cpu:,.0f} of them calibrating {len(combos)} budgets per reference).",
        "",
        "| budget | dependence | correction | configured per evaluation | measured per "
        "evaluation (95 % CI) | configured alarms per 1M events | measured, consecutive 2 "
        "(95 % CI) | measured, consecutive 1 (95 % CI) |",
        "|---|---|---|---:|---|---:|---|---|",
    ]
    per_million = {c: c[1] / (1_000.0 * SECONDS_PER_MONTH) * 1e6 for c in combos}

    def rate(k: int, exposure: float, digits: int) -> str:
        lo, hi = poisson_ci(k, exposure)
        return f"{k / exposure:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f}) [{k}]"

    for c, cc in counts.items():
        if not cc.evaluations:
            continue
        label, dep, corr = ("default thresholds", "-", "-") if c == "default" else (
            c[0], c[3], c[4])  # fmt: skip
        conf_eval = f"{alphas[c]:.2g}" if c != "default" else "-"
        conf_m = f"{per_million[c]:.3g}" if c != "default" else "-"
        rows.append(
            f"| {label} | {dep} | {corr} | {conf_eval} | {rate(cc.flagged, cc.evaluations, 4)}"
            f" | {conf_m} | {rate(cc.alarms[2], millions, 2)} | {rate(cc.alarms[1], millions, 2)} |"
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
        how = f" with {rec.installer}" if rec.installer else ""
        env_lines.append(f"- {tool}: {status}; install{how} {rec.install_seconds:.0f} s; {vers}")
    lines.append("")
    lines.append("Tool environments (one venv each, Python "
                 f"{next((r.python for r in records.values() if r.python), '?')}):")  # fmt: skip
    lines += env_lines
    if getattr(args, "alibi_configure", None):
        cpu, err = args.alibi_configure
        a = ALIBI
        lines.append(
            f"- alibi-cvm configuration: `CVMDriftOnline(ert={a['alibi_ert']:,}, "
            f"window_sizes={a['alibi_windows']}, n_bootstraps={a['alibi_bootstraps']:,})` on "
            f"{len(streams.NUMERIC)} numeric columns, {a['alibi_reference']:,} reference rows; "
            f"threshold simulation {cpu:,.0f} CPU s, once for every scenario {err}"
        )
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
