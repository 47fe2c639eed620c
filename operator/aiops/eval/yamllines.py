"""YAML that remembers where each value was written, so an error names the line.

PyYAML composes a node tree with marks before it constructs Python objects; this walks that
tree beside the constructed data and records the line of every key and item (1-based) under
its path, e.g. ("faults", 2, "fault") → 14.
"""

from __future__ import annotations

from typing import Any

import yaml

Path = tuple[str | int, ...]


class YamlError(ValueError):
    """Not YAML, or not one document: the message names the line."""


def load(text: str) -> tuple[Any, dict[Path, int]]:
    """The document and the line of each of its paths."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise YamlError(f"{where}not valid YAML: {getattr(err, 'problem', None) or err}") from err
    if node is None:
        return None, {}
    data = yaml.SafeLoader("").construct_document(node)
    lines: dict[Path, int] = {}
    _walk(node, (), lines)
    return data, lines


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                here = (*path, str(key.value))
                lines[here] = key.start_mark.line + 1  # the key's line, not its value's
                _walk(value, here, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines)


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of `path`, or of its nearest ancestor that was written (a missing field is
    reported at the mapping that lacks it)."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
