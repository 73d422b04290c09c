"""The ``DRIFTMON_`` environment overlay applied to the parsed YAML before validation.

``DRIFTMON_A__B__C=value`` sets key ``a.b.c``: ``__`` separates nesting levels, names match
existing keys case-insensitively, a number indexes a list, and values are parsed as YAML
scalars or flow collections. Only variables naming a top-level section are read, so
secrets that webhooks read through ``*_env`` keys never enter the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from monitor.config.root import Config
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
        value = _parse_env_value(env[name])
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
                node[key] = value
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


def _parse_env_value(text: str) -> Any:
    """Values are YAML scalars or flow collections (`[a, b]`, `{k: v}`); else plain text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
