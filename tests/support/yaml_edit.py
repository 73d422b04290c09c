"""Editing YAML documents in tests through a parser, never by replacing text.

A config written by a helper is changed with :func:`edit_yaml_file` (or :func:`edit_yaml`
on text): each edit is a key path and a value. Keys may contain dots (librdkafka settings
such as ``session.timeout.ms``), so a path is a sequence of keys, not a dotted string.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

KeyPath = Sequence[str | int]


class _Remove:
    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Any = _Remove()
"""As a value: delete the key instead of setting it."""


def set_key(document: Any, path: KeyPath, value: Any) -> None:
    """Set ``document[path[0]][path[1]]... = value`` (delete it for :data:`REMOVE`).

    Missing mappings on the way are created, so a new section can be added in one edit.
    """
    if not path:
        raise ValueError("an empty key path names the whole document")
    node = document
    for key in path[:-1]:
        if isinstance(node, dict) and key not in node:
            node[key] = {}
        node = node[key]
    if value is REMOVE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


def edit_yaml(text: str, *edits: tuple[KeyPath, Any]) -> str:
    """``text`` parsed, with every ``(path, value)`` of ``edits`` set, dumped in key order."""
    document = yaml.safe_load(text)
    for path, value in edits:
        set_key(document, path, value)
    return yaml.safe_dump(document, sort_keys=False)


def edit_yaml_file(path: Path, *edits: tuple[KeyPath, Any]) -> Path:
    """Apply :func:`edit_yaml` to the file at ``path`` in place; returns ``path``."""
    path.write_text(edit_yaml(path.read_text(), *edits))
    return path
