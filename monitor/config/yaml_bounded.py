"""YAML parsing that refuses documents whose aliases expand far past their written size.

PyYAML builds an alias as a second reference to the same node, so a 1.5 KB "billion
laughs" document parses in microseconds and only explodes when something walks the
result (validation, an error message, a copy). We count the values the document would
have once every alias is expanded, on the node graph and before anything is built, and
refuse it when aliases multiply it beyond a small factor of what is written.

    >>> load_bounded("a: &x [1, 2]\\nb: *x")
    {'a': [1, 2], 'b': [1, 2]}
    >>> bomb = "a: &a [1,1,1,1,1,1,1,1,1,1]\\n" + "".join(
    ...     f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\\n"
    ...     for i in range(8))
    >>> try:
    ...     load_bounded(bomb)
    ... except AliasExpansionError as exc:
    ...     print(exc)
    aliases expand the document to more than 10,290 values (it holds 29 as written)
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["AliasExpansionError", "load_bounded"]

#: Expanded values allowed on top of a multiple of the written ones: anchors that share a
#: feature list between a few models stay well inside, exponential nesting does not.
_FLOOR = 10_000
_FACTOR = 10


#: libyaml's parser when PyYAML was built with it (the wheels are): a 1,000-model config
#: parses in a third of the pure-Python parser's time; the same nodes, errors and marks.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class AliasExpansionError(ValueError):
    """The document's aliases expand it beyond the bound."""


def load_bounded(text: str) -> Any:
    """``yaml.safe_load`` that raises :class:`AliasExpansionError` on alias bombs."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        written, expanded = _sizes(node)
        limit = _FLOOR + _FACTOR * written
        if expanded > limit:
            raise AliasExpansionError(
                f"aliases expand the document to more than {limit:,} values "
                f"(it holds {written:,} as written)"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _sizes(root: yaml.Node) -> tuple[int, int]:
    """(distinct nodes, nodes after expanding every alias); shared nodes are counted once
    in the first and as often as they are referenced in the second."""
    expanded: dict[int, int] = {}
    pending: list[tuple[yaml.Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while pending:
        node, children_done = pending.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in _children(node))
            continue
        if key in expanded:
            continue
        if key in on_path:
            raise AliasExpansionError("an alias refers to a value that contains it")
        on_path.add(key)
        pending.append((node, True))
        pending.extend((child, False) for child in _children(node) if id(child) not in expanded)
    return len(expanded), expanded[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
