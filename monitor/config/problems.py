"""How validation failures read: pydantic errors become ``key.path: message (hint: ...)``.

Owns the translation of each pydantic error into a :class:`~monitor.errors.ConfigProblem`
(key paths as the user wrote them, driftmon's own messages, explanations of pydantic's
built-in error types, did-you-mean hints listing the valid keys, the environment variable
that set a bad value) and :func:`render_problems` for ``driftmon check-config``.
"""

from __future__ import annotations

import reprlib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Union

from pydantic import BaseModel, Tag

from monitor.config.base import LABEL_HINT, PROBLEM_TYPE, nearest
from monitor.config.root import Config
from monitor.config.windows import TAGGED_FIELDS, UNION_TAGS
from monitor.errors import ConfigError, ConfigProblem
from monitor.stats.budget_split import DEFAULT_WEIGHTS, FAMILIES

# Keys a later version will support: an unknown-key error names them as planned instead of
# guessing at a typo.
_PLANNED_KEYS: dict[str, str] = {}


def render_problems(err: ConfigError) -> str:
    """Human-readable report for ``driftmon check-config`` (one block per problem)."""
    where = f" {err.source}" if err.source else ""
    count = len(err.problems)
    lines = [f"config{where}: {count} problem{'s' if count != 1 else ''}"]
    for problem in err.problems:
        lines.append(f"  {problem.path}: {problem.message}")
        if problem.hint:
            lines.append(f"      hint: {problem.hint}")
    return "\n".join(lines)


def translate(err: Any, env_keys: Mapping[str, str]) -> ConfigProblem:
    """One pydantic error -> key path, message and hint."""
    raw = err["loc"]
    # Drop the tags pydantic inserts after a tagged-union field (reference, window).
    loc = [
        p for i, p in enumerate(raw) if not (p in UNION_TAGS and i and raw[i - 1] in TAGGED_FIELDS)
    ]
    ctx = err.get("ctx") or {}
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        message, hint = f"name {loc[-1]!r} is not allowed", LABEL_HINT
        if len(loc) > 1 and loc[-2] == "references":
            message = f"version {loc[-1]!r} is not allowed"
            hint = "a version is 1 to 128 characters, as it appears in the events' version field"
    elif err["type"] == PROBLEM_TYPE:
        message, hint = err["msg"], ctx.get("hint", "")
        if ctx.get("field"):
            loc = [*loc, *str(ctx["field"]).split(".")]
    else:
        message, hint = _explain(err, loc)
    if not hint:
        hint = _key_hint(loc)
    path = ".".join(str(p) for p in loc) or "(config)"
    for key_path, var in env_keys.items():
        if path == key_path or path.startswith(key_path + "."):
            message += f" (set by {var})"
            break
    return ConfigProblem(path, message, hint)


def _explain(err: Any, loc: list[Any]) -> tuple[str, str]:
    """Message and hint for pydantic's built-in error types."""
    kind: str = err["type"]
    message: str = err["msg"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(loc[-1])
        if key in _PLANNED_KEYS:
            hint = f"{_PLANNED_KEYS[key]} is planned but not supported by this version yet"
        else:
            hint = nearest(key, _valid_keys(err["loc"][:-1]), "valid keys here")
        return f"unknown key {key!r}", hint
    if kind == "missing":
        return "required key is missing", _MISSING_HINTS.get(
            _generic_path(loc), f"add `{loc[-1]}: ...`"
        )
    if kind in _KIND_HINTS:
        return message, _KIND_HINTS[kind]
    if kind == "literal_error":
        return f"invalid value {_short(err.get('input'))}: {message.lower()}", ""
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty", _MISSING_HINTS.get(_generic_path(loc), "")
    if kind == "string_pattern_mismatch":
        topic = loc and loc[-1] in ("name", "dead_letter_topic")
        hint = "Kafka topic names use letters, digits, '.', '_' and '-'" if topic else LABEL_HINT
        return f"{_short(err.get('input'))} is not allowed here", hint
    if kind == "model_type":  # pydantic names its class: say what to write instead
        return f"must be a mapping (key: value), got {_type_name(err.get('input'))}", ""
    if kind.endswith(("_type", "_parsing")):
        return f"{message.lower()}, got {_type_name(err.get('input'))}", ""
    return message, ""


_KIND_HINTS = {
    "reference_kind": "e.g. `reference: baselines/fraud.json` or "
    "`reference: {capture_events: 50000}`",
    "window_kind": "e.g. `window: {events: 20000, slide: 2000}` or "
    "`window: {seconds: 3600, slide_seconds: 300}`",
}

_MISSING_HINTS = {
    "kafka": "add a `kafka:` section with bootstrap_servers and topics",
    "kafka.bootstrap_servers": "e.g. `bootstrap_servers: 127.0.0.1:9092`, or set "
    "DRIFTMON_KAFKA__BOOTSTRAP_SERVERS",
    "kafka.topics": "list the topics to consume, e.g. `topics: [ml.inference]`",
    "models": "add at least one model under `models:` (see examples/config.yaml)",
    "models.*.reference": "a profile file built with `driftmon baseline ...`, or "
    "{capture_events: N} to capture one from the stream",
    "models.*.window": "e.g. `window: {events: 20000, slide: 2000}`",
    "models.*.features.*.type": "`type: numeric` or `type: categorical`",
    "models.*.prediction.type": "`type: numeric`, `categorical` or `probabilities`",
    "state.dir": "a writable directory, e.g. `dir: /var/lib/driftmon`",
    "models.*.tests": "list tests, e.g. `tests: [psi, ks, js, chi2]`",
}


_MIN_EFFECT_HINT = (
    "a minimum effect >= 0 on the measure's own scale, e.g. `psi: 0.1` or `wasserstein: 0.1` "
    "(reference standard deviations); missing_ratio is a share difference from 0 to 1"
)
#: Fallback hints for any bad value of these keys (generic key paths).
_KEY_HINTS = {
    "models.*.alert.false_alarms_per_month": "false alarms a month you accept, above 0, "
    "e.g. 1 or 0.1 (one in ten months); remove the key to alert on raw thresholds",
    "models.*.alert.events_per_second": "the model's average events per second, above 0, e.g. 250",
    "models.*.alert.correction": "`bonferroni` (default; holds for any dependence) or `bh` "
    "(Benjamini-Hochberg; flags more features when several drift together)",
    "models.*.alert.dependence": "`union` (default; the bound holds however windows overlap) "
    "or `effective` (counts disjoint windows: shorter delays, weaker guarantee)",
    "models.*.alert.calibration_draws": "a whole number from 50 to 100000; 1000 is enough "
    "for the fitted tail",
    "models.*.alert.calibration_seed": "a whole number from 0 to 4294967295",
    "models.*.alert.budget_weights": "relative weights of one check of each test family, "
    "above 0, e.g. `budget_weights: {window: 1, cusum: 1, bin_cusum: 0.3}` (the defaults)",
    **{
        f"models.*.alert.budget_weights.{family}": f"a relative weight above 0 and at most "
        f"1000000 (default {getattr(DEFAULT_WEIGHTS, family):g}): the share of the budget of "
        f"one {family} check against one check of each other family"
        for family in FAMILIES
    },
    "kafka.group_id": "the consumer group, e.g. `group_id: driftmon` (the default: remove the "
    "key); with kafka.scale_out it also names the internal topics <group_id>.rows, ...",
    "kafka.scale_out": "a mapping, e.g. `scale_out: {enabled: true}` (see the README, "
    '"Several replicas")',
    "kafka.scale_out.enabled": "`true` or `false` (the default)",
    "kafka.scale_out.allowed_lateness_seconds": "seconds from 0 to 86400 (default 5) an event "
    "may trail its partition's newest event time",
    "kafka.scale_out.max_buffered_rows": "rows per model from 1000 to 100000000 (default 1000000)",
    "kafka.scale_out.idle_seconds": "seconds above 0 and at most 3600 (default 5)",
    "kafka.scale_out.checkpoint_interval_seconds": "seconds above 0 and at most 3600 (default 5)",
    "models.*.alert.retrain_grace_seconds": "seconds of event time >= 0 during which "
    "further retrain triggers of the model are suppressed; 0 turns it off",
    "models.*.alert.min_effect": "a mapping such as `min_effect: {psi: 0.1}`",
    "models.*.features.*.min_effect": "a mapping such as `min_effect: {psi: 0.1}`",
}


def _key_hint(loc: list[Any]) -> str:
    generic = _generic_path(loc)
    if generic in _KEY_HINTS:
        return _KEY_HINTS[generic]
    if generic.startswith(("models.*.alert.min_effect.", "models.*.features.*.min_effect.")):
        return _MIN_EFFECT_HINT
    return ""


def _generic_path(loc: list[Any]) -> str:
    """Key path with user-chosen names replaced by '*' (for hint lookup)."""
    out: list[str] = []
    prev: Any = None
    for part in loc:
        named = prev in ("models", "features", "references") or isinstance(part, int)
        out.append("*" if named else str(part))
        prev = None if named else part
    return ".".join(out)


def _valid_keys(loc: Iterable[Any]) -> list[str]:
    """Keys accepted by the model found at ``loc`` (walking the annotations)."""
    tp: Any = Config
    for part in loc:
        tp = _unwrap(tp, part)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[str(part)].annotation
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        elif part not in UNION_TAGS:
            return []
    tp = _unwrap(tp, None)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _unwrap(tp: Any, tag: Any) -> Any:
    """Strip Annotated/Optional; pick the union member named by a tag (or the first model)."""
    while True:
        if typing.get_origin(tp) is Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if typing.get_origin(tp) in (Union, types.UnionType):
            members = [
                typing.get_args(m)[0] if typing.get_origin(m) is Annotated else m
                for m in typing.get_args(tp)
            ]
            tagged = {
                tag_meta.tag: typing.get_args(m)[0]
                for m in typing.get_args(tp)
                if typing.get_origin(m) is Annotated
                for tag_meta in typing.get_args(m)[1:]
                if isinstance(tag_meta, Tag)
            }
            if tag in tagged:
                return tagged[tag]
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            tp = models[0] if models else members[0]
            continue
        return tp


def _short(value: Any) -> str:
    # reprlib renders at most a few items and characters of each level, so a huge value
    # (an expanded alias, a pasted file) costs microseconds; then cut to 40 characters.
    text = _REPR.repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 4
_REPR.maxstring = _REPR.maxother = 40


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )
