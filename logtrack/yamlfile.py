"""Safe YAML loading that remembers where every key and value came from.

Config and rule files must fail with the file, line and key at fault (DESIGN §5, §7), so loading
keeps a map from key path (`("events", 2, "when", "methd")`) to the 1-based line of that key (or
of the list item).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

KeyPath = tuple[str | int, ...]


@dataclass
class YamlDoc:
    """A loaded YAML document: its plain data plus the line of every key path."""

    data: Any
    file: str
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def error(self, path: KeyPath, message: str) -> str:
        """Format one problem as `file:line: key.path: message`."""
        return f"{self.file}:{self.line_of(path) or 1}: {format_path(path)}: {message}"


def format_path(path: KeyPath) -> str:
    """Render a key path the way users read it: `events[2].when.methd`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_yaml(path: str | Path, text: str | None = None) -> YamlDoc:
    """Load one YAML file safely; a syntax error raises ConfigError with file and line."""
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", file=name) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", file=name, line=line) from exc
    doc = YamlDoc(data=None, file=name)
    if node is None:
        doc.data = {}
        return doc
    doc.lines[()] = node.start_mark.line + 1
    constructor = yaml.SafeLoader(text)
    try:
        doc.data = _convert(node, (), doc.lines, constructor)
    finally:
        constructor.dispose()
    return doc


def _convert(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            key = key if isinstance(key, str | int) else str(key)
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, path + (key,), lines, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            items.append(_convert(item, path + (i,), lines, loader))
        return items
    return loader.construct_object(node, deep=True)
