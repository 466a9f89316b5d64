"""The parsed form of a rule file: condition trees, property specs, rules, tests (DESIGN §5).

Loading (`load.py`, `conditions.py`) turns YAML into these plain, immutable objects; matching
(`match.py`) and emitting (`emit.py`) compile them against a batch. Condition nodes are frozen
and hashable so a batch can cache the mask of a condition that several rules share.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from .. import schema
from ..yamlfile import KeyPath, YamlDoc, format_path

# Types a property, a capture or a declared value may have.
VALUE_TYPES = ("string", "int", "float", "bool")

def _names(kind: str) -> tuple[str, ...]:
    """Request columns of one kind, for `when:` keys and template references."""
    out = []
    for f in schema.ENRICHED_REQUESTS:
        if f.name == "fields":
            continue
        t = f.type
        if kind == "string" and pa.types.is_string(t):
            out.append(f.name)
        elif kind == "number" and (pa.types.is_integer(t) or pa.types.is_floating(t)):
            out.append(f.name)
        elif kind == "bool" and pa.types.is_boolean(t):
            out.append(f.name)
    return tuple(out)


STRING_COLUMNS = _names("string")
NUMBER_COLUMNS = _names("number")
BOOL_COLUMNS = _names("bool")
# Columns computed by identity/sessions: not available to file-level `exclude`, which runs before.
SESSION_COLUMNS = tuple(f.name for f in schema.IDENTITY)
# Every column a template may reference (`{status}`, `{path}`); `ts` renders as ISO text.
TEMPLATE_COLUMNS = tuple(f.name for f in schema.ENRICHED_REQUESTS if f.name != "fields")
DEVICES = ("desktop", "mobile", "tablet", "bot", "other")


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """` (did you mean 'x'?)` when a close choice exists, else ''."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass
class Problems:
    """Collects every problem of one file as `file:line: key.path: message` lines."""

    doc: YamlDoc
    items: list[str] = field(default_factory=list)

    def add(self, path: KeyPath, message: str, at: KeyPath | None = None) -> None:
        """Record a problem reported at `path`, with the line of `at` (default: `path`)."""
        line = self.doc.line_of(at if at is not None else path) or 1
        self.items.append(f"{self.doc.file}:{line}: {format_path(path)}: {message}")

    def unknown_keys(self, value: dict[str, Any], path: KeyPath, known: tuple[str, ...] | list[str]) -> None:
        """Report every key of `value` not in `known`, at the line of that key."""
        for key in value:
            if key not in known:
                self.add(path, f"unknown key {key!r}{did_you_mean(key, known)}", at=path + (key,))


# ---- condition nodes ---------------------------------------------------------------------------

# A string source: ("col", name) for a request column, ("query", param), ("fields", key).
Source = tuple[str, str]


@dataclass(frozen=True)
class Equals:
    """Value is one of `values` (after the source's normalisation)."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class Pattern:
    """Value matches an RE2 `regex`; `captures` are its named groups and their types."""

    regex: str
    prefix: str = ""  # literal prefix every match starts with (cheap pre-filter)
    captures: tuple[tuple[str, str], ...] = ()
    template: str | None = None  # display form of a path template: /products/{product_id}


@dataclass(frozen=True)
class Presence:
    """Value is present (not null) or absent."""

    present: bool


@dataclass(frozen=True)
class Cidr:
    """An IP address inside one of `networks` (text form, IPv4 or IPv6)."""

    networks: tuple[str, ...]


@dataclass(frozen=True)
class StrCond:
    """A string source matches any of `items`; `fold` is 'lower'/'upper' for case-blind columns."""

    source: Source
    items: tuple[Equals | Pattern | Presence | Cidr, ...]
    fold: str | None = None


@dataclass(frozen=True)
class NumCond:
    """A numeric column lies in any of the inclusive `ranges`; `presence` tests null instead."""

    column: str
    ranges: tuple[tuple[float, float], ...] = ()
    presence: bool | None = None


@dataclass(frozen=True)
class BoolCond:
    """A boolean column (`is_bot`, `is_static`) equals `value`; nulls count as false."""

    column: str
    value: bool


@dataclass(frozen=True)
class FirstInSession:
    """The request is (or is not) the first of its session, across batches."""

    value: bool


@dataclass(frozen=True)
class UserKnown:
    """`user: known` (a user id) or `user: anonymous` (none)."""

    known: bool


@dataclass(frozen=True)
class PageView:
    """The request is a page view exactly as sessions count one (`sessions.pageview_mask`):
    a successful (2xx/304) GET/HEAD of a page-like, non-static path by a non-bot."""


@dataclass(frozen=True)
class Always:
    """Matches every row (an empty `when`, or `bot: any`)."""


@dataclass(frozen=True)
class And:
    """Every child holds."""

    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """At least one child holds (`any:`)."""

    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The child does not hold (`not:`)."""

    child: Node


Node = StrCond | NumCond | BoolCond | FirstInSession | UserKnown | PageView | Always | And | Or | Not


def node_captures(node: Node) -> dict[str, str]:
    """Captures a node defines when it matches (name -> type); `not:` defines none."""
    out: dict[str, str] = {}
    if isinstance(node, StrCond):
        for item in node.items:
            if isinstance(item, Pattern):
                for name, typ in item.captures:
                    # The same name from several alternatives with different types is text.
                    out[name] = typ if out.get(name, typ) == typ else "string"
    elif isinstance(node, And | Or):
        for child in node.children:
            for name, typ in node_captures(child).items():
                out[name] = typ if out.get(name, typ) == typ else "string"
    return out


def node_templates(node: Node) -> list[str]:
    """Display forms of the path templates inside a node, in order."""
    if isinstance(node, StrCond) and node.source == ("col", "path"):
        return [i.template for i in node.items if isinstance(i, Pattern) and i.template]
    if isinstance(node, And | Or):
        return [t for c in node.children for t in node_templates(c)]
    if isinstance(node, Not):
        return node_templates(node.child)
    return []


# ---- properties, rules, files ------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """A template reference: kind is 'capture', 'query', 'fields' or 'column'."""

    kind: str
    name: str


@dataclass(frozen=True)
class Prop:
    """One property: a literal value, or template `parts` (text and Refs), with its type."""

    name: str
    type: str
    literal: Any = None
    parts: tuple[str | Ref, ...] | None = None
    default: Any = None


@dataclass
class Rule:
    """One compiled event rule (or a built-in event)."""

    name: str  # full event name: namespace + separator + short name
    short: str
    file: str
    line: int
    when: Node
    properties: tuple[Prop, ...] = ()
    user_properties: tuple[Prop, ...] | None = None
    once_per: str | None = None
    stop: bool = False
    builtin: bool = False
    key: str = ""  # where it was declared, for messages: events[2] or builtins.page_view


@dataclass
class RuleTest:
    """One `tests:` entry: request mappings or log lines, and the expected events."""

    index: int
    line: int
    name: str | None
    requests: list[dict[str, Any]] | None
    lines: list[str] | None
    expect: list[dict[str, Any]]


@dataclass
class RuleFile:
    """A loaded rule file."""

    path: str
    namespace: str | None
    separator: str
    format: str
    rules: list[Rule]
    exclude: list[Node]
    tests: list[RuleTest]
