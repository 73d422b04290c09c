"""Every PromQL expression driftmon ships, and the metric catalogue they may use.

The dashboards in ``grafana/dashboards/`` and the rules in ``grafana/alerts/`` may
only query what the daemon exports (the catalogue table in
``docs/ARCHITECTURE.md``), Prometheus' own ``up``, and the recording rules defined
in the rules file. Two kinds of test use this module:

* offline (``tests/unit/deploy/``): parse each expression's metric and label names
  and check them against the catalogue;
* live: run each expression through a real Prometheus scraping a real daemon and
  fail on errors or empty results. That Prometheus must load
  ``grafana/alerts/driftmon.rules.yml`` (``rule_files``) so the recording rules
  exist, and the test must wait for one rule evaluation after the first scrape.
  The 5m recording-rule windows need two samples, which a 1 s scrape interval
  gives within seconds.

``extract_expressions()`` substitutes Grafana's template variables with values
Prometheus can run: every dashboard matcher on a variable is a regex matcher
(``model=~"$model"``, enforced by the dashboard tests), so the defaults below are
regexes that match any value. Pass ``values`` to pin a model or test instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO / "grafana" / "dashboards"
RULES_FILE = REPO / "grafana" / "alerts" / "driftmon.rules.yml"
ARCHITECTURE = REPO / "docs" / "ARCHITECTURE.md"

#: Substitutes for the dashboards' own variables (all used with `=~`).
DEFAULT_VALUES: dict[str, str] = {
    "job": ".*",
    "model": ".+",
    "test": ".+",
    "feature": ".+",
}

#: Substitutes for Grafana's built-in variables. 1m suits a test Prometheus
#: scraping every second; a [1m] window holds enough samples within seconds.
BUILTIN_VALUES: dict[str, str] = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
}

#: Labels every scraped series carries, or that histograms add.
TARGET_LABELS = frozenset({"job", "instance"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


def substitute(expr: str, values: Mapping[str, str] | None = None) -> str:
    """Replace Grafana variables (``$x``, ``${x}``, ``${x:fmt}``, ``[[x]]``) in ``expr``."""
    table = {**BUILTIN_VALUES, **DEFAULT_VALUES, **(values or {})}

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in table:
            raise KeyError(f"no substitute for Grafana variable ${name} in {expr!r}")
        return table[name]

    return _VAR.sub(repl, expr)


_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.+),\s*(?P<label>\w+)\s*\)\s*$", re.S)


def variable_query_as_promql(query: str) -> str | None:
    """Turn a Grafana ``label_values(selector, label)`` query into PromQL.

    ``label_values(label)`` alone (no selector) has no PromQL form: ``None``.
    """
    m = _LABEL_VALUES.match(query)
    if m is None:
        return None
    return f"group by ({m['label']}) ({m['selector'].strip()})"


def _walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _walk_panels(panel.get("panels", []))


def dashboard_expressions(path: Path) -> list[tuple[str, str]]:
    """``(source, raw expr)`` for every query of one dashboard, variables unsubstituted."""
    doc = json.loads(path.read_text())
    rel = path.relative_to(REPO)
    out: list[tuple[str, str]] = []
    for panel in _walk_panels(doc.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                src = f"{rel}: panel {panel['id']} {panel.get('title', '')!r} {target['refId']}"
                out.append((src, target["expr"]))
    for var in doc.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            promql = variable_query_as_promql(query)
            if promql is not None:
                out.append((f"{rel}: variable {var['name']}", promql))
    for ann in doc.get("annotations", {}).get("list", []):
        if ann.get("expr"):
            out.append((f"{rel}: annotation {ann['name']!r}", ann["expr"]))
    return out


def rule_expressions(path: Path = RULES_FILE) -> list[tuple[str, str]]:
    """``(source, expr)`` for every recording and alerting rule."""
    doc = yaml.safe_load(path.read_text())
    rel = path.relative_to(REPO)
    out: list[tuple[str, str]] = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            kind, name = ("alert", rule["alert"]) if "alert" in rule else ("record", rule["record"])
            out.append((f"{rel}: {kind} {name}", rule["expr"].strip()))
    return out


def extract_expressions(values: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """Every PromQL expression from the dashboards and the rules, ready to query.

    Returns ``(source, expr)`` pairs; ``source`` names the file and the panel,
    variable, annotation or rule. Dashboard variables are substituted (see
    ``DEFAULT_VALUES``; ``values`` overrides them), Grafana's ``$__rate_interval``
    and friends become fixed durations.
    """
    out = [
        (src, substitute(expr, values))
        for path in sorted(DASHBOARD_DIR.glob("*.json"))
        for src, expr in dashboard_expressions(path)
    ]
    out.extend(rule_expressions())
    return out


# --- the catalogue -------------------------------------------------------------------


def catalogue(path: Path = ARCHITECTURE) -> dict[str, tuple[str, frozenset[str]]]:
    """Metric name -> (type, label names), parsed from the architecture doc's table."""
    text = path.read_text()
    section = text.split("## Metric catalogue", 1)[1]
    metrics: dict[str, tuple[str, frozenset[str]]] = {}
    for line in section.splitlines()[1:]:
        if line.startswith("## "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        name = cells[0].strip("`")
        kind = cells[1].split()[0]
        # "webhook, outcome (`delivered`, ...)": drop the parenthesised values
        labels_cell = re.sub(r"\([^)]*\)", "", cells[2])
        labels = frozenset(w for w in re.findall(r"[a-z_]+", labels_cell))
        metrics[name] = (kind, labels)
    if not metrics:
        raise ValueError(f"no metric catalogue table found in {path}")
    return metrics


def series_names(metrics: Mapping[str, tuple[str, frozenset[str]]]) -> dict[str, frozenset[str]]:
    """Queryable series name -> its labels (histograms expand to _bucket/_sum/_count)."""
    out: dict[str, frozenset[str]] = {}
    for name, (kind, labels) in metrics.items():
        if kind == "histogram":
            out[f"{name}_bucket"] = labels | {"le"}
            out[f"{name}_sum"] = labels
            out[f"{name}_count"] = labels
        else:
            out[name] = labels
    return out


def recording_rules(path: Path = RULES_FILE) -> set[str]:
    doc = yaml.safe_load(path.read_text())
    return {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}


# --- a small PromQL scanner (names only; Prometheus itself checks the syntax) ----

_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "atan2",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(?!\w)")


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (identifiers that are not calls or keywords)."""
    s = _STRING.sub('""', expr)
    s = _LABEL_LIST.sub(" ", s)
    s = _MATCHERS.sub(" ", s)
    s = _RANGE.sub(" ", s)
    s = re.sub(r"\boffset\s+\S+", " ", s)
    names = set()
    for m in _IDENT.finditer(s):
        tail = s[m.end() :].lstrip()
        if tail.startswith("("):
            continue  # a function or an aggregation
        if m.group(1).lower() in _KEYWORDS:
            continue
        names.add(m.group(1))
    return names


def label_names(expr: str) -> set[str]:
    """Label names an expression matches on, groups by or joins on."""
    s = _STRING.sub('""', expr)
    names: set[str] = set()
    for m in _MATCHERS.finditer(s):
        names.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", m.group(1)))
    for m in _LABEL_LIST.finditer(s):
        names.update(w for w in re.findall(r"[A-Za-z_]\w*", m.group(2)))
    return names


_AGGREGATION = re.compile(
    r"\b(sum|avg|min|max|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)\b"
    r"\s*(?:(by|without)\s*\(([^()]*)\))?\s*\("
)


def aggregations(expr: str) -> list[tuple[str, str | None, set[str]]]:
    """``(operator, "by" | "without" | None, labels)`` for each aggregation written prefix-style.

    Postfix clauses (``sum(x) by (l)``) are not recognised; driftmon's files use
    the prefix form only, and the dashboard tests reject the postfix form.
    """
    s = _STRING.sub('""', expr)
    return [
        (m.group(1), m.group(2), set(re.findall(r"[A-Za-z_]\w*", m.group(3) or "")))
        for m in _AGGREGATION.finditer(s)
    ]
