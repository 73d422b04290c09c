"""The ``DRIFTMON_`` environment overlay applied to the parsed YAML before validation.

``DRIFTMON_A__B__C=value`` sets key ``a.b.c``: ``__`` separates nesting levels, names match
existing keys case-insensitively, a number indexes a list. A value for a key that holds
text (every librdkafka option, names, URLs, paths) is taken literally, so a password
``0123`` stays ``0123`` and ``abc #def`` keeps its ``#def``; other values are parsed as
YAML scalars or flow collections (``[a, b]``, ``{k: v}``). Only variables naming a
top-level section are read, so secrets that webhooks read through ``*_env`` keys never
enter the config.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import AnyUrl, BaseModel

from monitor.config.root import Config
from monitor.config.yaml_bounded import AliasExpansionError, load_bounded
from monitor.errors import ConfigError, ConfigProblem

ENV_PREFIX = "DRIFTMON_"


def apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Overlay ``DRIFTMON_A__B__C=value`` onto ``data``; returns key path -> variable name."""
    applied: dict[str, str] = {}
    # Shorter paths first so DRIFTMON_KAFKA={...} then DRIFTMON_KAFKA__GROUP_ID both apply.
    names = sorted(
        (n for n in env if n.upper().startswith(ENV_PREFIX)), key=lambda n: n.count("__")
    )
    for name in names:
        parts = name[len(ENV_PREFIX) :].split("__")
        # Only top-level sections: other DRIFTMON_* variables may be secrets that webhooks
        # read through *_env keys, and must never be pulled into (or printed from) config.
        if not all(parts) or parts[0].lower() not in Config.model_fields:
            continue
        node: Any = data
        path: list[str] = []
        for depth, raw in enumerate(parts):
            last = depth == len(parts) - 1
            key: str | int
            if isinstance(node, list):
                if not raw.isdigit() or int(raw) >= len(node):
                    raise ConfigError(
                        [
                            ConfigProblem(
                                ".".join(path) or "(env)",
                                f"{name}: {raw!r} is not an index of this list",
                                f"use an index from 0 to {len(node) - 1}, or set the whole "
                                "list as [a, b]",
                            )
                        ]
                    )
                key = int(raw)
            elif isinstance(node, dict):
                key = _match_key(node, raw, path)
            else:
                raise ConfigError(
                    [
                        ConfigProblem(
                            ".".join(path),
                            f"{name} sets a key below a value that is not a mapping",
                            "set the parent key to a mapping first, or set the whole value",
                        )
                    ]
                )
            path.append(str(key))
            if last:
                node[key] = _parse_env_value(env[name], path, name)
                continue
            child = node[key] if isinstance(key, int) else node.get(key)
            if child is None:
                child = {}
                node[key] = child
            node = child
        applied[".".join(path)] = name
    return applied


def _match_key(node: dict[str, Any], raw: str, path: list[str]) -> str:
    """Environment names are upper case: match existing keys case-insensitively."""
    for existing in node:
        if isinstance(existing, str) and existing.lower() == raw.lower():
            return existing
    if path and path[-1] in ("consumer", "producer") and path[:1] == ["kafka"]:
        # librdkafka keys use dots, which environment variable names cannot hold.
        return raw.lower().replace("_", ".")
    return raw.lower()


def _parse_env_value(text: str, path: list[str], name: str) -> Any:
    """Text for keys that hold text; else a YAML scalar or flow collection, or plain text."""
    leaves = _leaf_types(path)
    text_key = any(_is_text(tp) for tp in leaves)
    collection = any(_is_collection(tp) for tp in leaves)
    if text_key and not (collection and text.lstrip().startswith(("[", "{"))):
        return text
    try:
        return load_bounded(text)
    except AliasExpansionError as exc:
        raise ConfigError(
            [ConfigProblem(".".join(path), f"{name}: {exc}", "write the value out")]
        ) from None
    except yaml.YAMLError:
        return text


def _leaf_types(path: list[str]) -> list[Any]:
    """Every type the key at ``path`` may hold (all union members), from the annotations;
    empty for a key the config does not have (validation reports it)."""
    current: list[Any] = [Config]
    for part in path:
        found: list[Any] = []
        for tp in _members(current):
            origin = typing.get_origin(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                if part in tp.model_fields:
                    found.append(tp.model_fields[part].annotation)
            elif origin is dict:
                found.append(typing.get_args(tp)[1])
            elif origin is list and part.isdigit():
                found.append(typing.get_args(tp)[0])
        current = found
    return _members(current)


def _members(types_: list[Any]) -> list[Any]:
    """Types with Annotated stripped and unions spread into their members."""
    out: list[Any] = []
    pending = list(types_)
    while pending:
        tp = pending.pop()
        origin = typing.get_origin(tp)
        if origin is Annotated:
            pending.append(typing.get_args(tp)[0])
        elif origin in (Union, types.UnionType):
            pending.extend(typing.get_args(tp))
        else:
            out.append(tp)
    return out


def _is_text(tp: Any) -> bool:
    if isinstance(tp, type) and issubclass(tp, str | AnyUrl):
        return True
    return typing.get_origin(tp) is Literal and any(isinstance(a, str) for a in typing.get_args(tp))


def _is_collection(tp: Any) -> bool:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return True
    return typing.get_origin(tp) in (list, dict)
