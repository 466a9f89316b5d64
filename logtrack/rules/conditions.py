"""Parse and validate `when:` / `exclude:` mappings into condition trees (DESIGN §5).

Every problem is reported, not just the first: unknown keys (with a "did you mean"), bad
regexes, bad status specs, values of the wrong type, session keys in `exclude`.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any

from ..yamlfile import KeyPath
from .model import (
    BOOL_COLUMNS,
    DEVICES,
    NUMBER_COLUMNS,
    SESSION_COLUMNS,
    STRING_COLUMNS,
    Always,
    And,
    BoolCond,
    Cidr,
    Equals,
    FirstInSession,
    Node,
    Not,
    NumCond,
    Or,
    Pattern,
    Presence,
    Problems,
    StrCond,
    UserKnown,
    did_you_mean,
)
from .templates import glob_pattern, path_pattern, user_pattern

SPECIAL_KEYS = ("method", "path", "status", "host", "query", "fields", "bot", "static", "device",
                "first_in_session", "user", "not", "any", "all")
WHEN_KEYS = tuple(dict.fromkeys(SPECIAL_KEYS + STRING_COLUMNS + NUMBER_COLUMNS + BOOL_COLUMNS))
SESSION_KEYS = ("first_in_session", "user") + SESSION_COLUMNS
SPEC_KEYS = ("regex", "equals", "one_of", "glob", "prefix")
_FOLD = {"method": "upper", "host": "lower", "device": "lower", "scheme": "lower"}
_CLASS = re.compile(r"([1-5])xx\Z", re.I)
_CMP = re.compile(r"(>=|<=|==|!=|>|<)\s*(-?[0-9]+(?:\.[0-9]+)?)\Z")
_RANGE = re.compile(r"(-?[0-9]+(?:\.[0-9]+)?)\s*(?:-|\.\.)\s*(-?[0-9]+(?:\.[0-9]+)?)\Z")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")
_METHOD = re.compile(r"[A-Z][A-Z0-9_-]*\Z")
INF = math.inf


def parse_when(value: Any, path: KeyPath, p: Problems, exclude: bool = False) -> Node:
    """Parse one condition mapping (all keys must hold); problems go to `p`."""
    if value is None or value == {}:
        return Always()
    if not isinstance(value, dict):
        p.add(path, "must be a mapping of conditions (method:, path:, status:, …)")
        return Always()
    children: list[Node] = []
    for key, spec in value.items():
        at = path + (key,)
        if key not in WHEN_KEYS:
            p.add(path, f"unknown key {key!r}{did_you_mean(str(key), WHEN_KEYS)}", at=at)
            continue
        if exclude and key in SESSION_KEYS:
            p.add(at, "exclude runs before identity and sessions; session conditions are not allowed here")
            continue
        node = _parse_key(key, spec, at, p, exclude)
        if node is not None:
            children.append(node)
    if not children:
        return Always()
    return children[0] if len(children) == 1 else And(tuple(children))


def _parse_key(key: str, spec: Any, at: KeyPath, p: Problems, exclude: bool) -> Node | None:
    if key in ("any", "all"):
        items = _condition_list(spec, at, p, exclude)
        if items is None:
            return None
        return Or(tuple(items)) if key == "any" else And(tuple(items))
    if key == "not":
        if isinstance(spec, list):
            items = _condition_list(spec, at, p, exclude)
            return Not(Or(tuple(items))) if items else None
        return Not(parse_when(spec, at, p, exclude))
    if key in ("query", "fields"):
        if not isinstance(spec, dict) or not spec:
            p.add(at, f"must be a mapping of {'parameter' if key == 'query' else 'field'} names to values, "
                      f"e.g. {{{'q: present' if key == 'query' else 'cookie_plan: pro'}}}")
            return None
        nodes: list[Node] = []
        for name, sub in spec.items():
            items = str_spec(sub, at + (name,), p, "value")
            if items:
                nodes.append(StrCond((key, str(name)), items))
        return And(tuple(nodes)) if len(nodes) > 1 else (nodes[0] if nodes else None)
    if key in ("bot", "static", "is_bot", "is_static", "first_in_session"):
        if key == "bot" and spec == "any":
            return Always()
        if not isinstance(spec, bool):
            extra = " or any" if key == "bot" else ""
            p.add(at, f"must be true or false{extra}, not {spec!r}")
            return None
        if key == "first_in_session":
            return FirstInSession(spec)
        return BoolCond({"bot": "is_bot", "static": "is_static"}.get(key, key), spec)
    if key == "user":
        if spec not in ("known", "anonymous"):
            p.add(at, f"must be 'known' or 'anonymous', not {spec!r}{did_you_mean(str(spec), ['known', 'anonymous'])}")
            return None
        return UserKnown(spec == "known")
    if key in NUMBER_COLUMNS:
        ranges = num_spec(spec, at, p)
        if ranges is None:
            return None
        if isinstance(ranges, bool):
            return NumCond(key, presence=ranges)
        return NumCond(key, ranges=tuple(ranges))
    kind = "path" if key == "path" else "ip" if key == "client_ip" else "value"
    items = str_spec(spec, at, p, kind, fold=_FOLD.get(key))
    if not items:
        return None
    if key == "method":
        for item in items:
            for m in getattr(item, "values", ()):
                if not _METHOD.match(m):
                    p.add(at, f"{m!r} is not an HTTP method")
    if key == "device":
        for item in items:
            for d in getattr(item, "values", ()):
                if d not in DEVICES:
                    p.add(at, f"unknown device {d!r}{did_you_mean(d, DEVICES)}; devices: {', '.join(DEVICES)}")
    return StrCond(("col", key), items, _FOLD.get(key))


def _condition_list(spec: Any, at: KeyPath, p: Problems, exclude: bool) -> list[Node] | None:
    if not isinstance(spec, list) or not spec:
        p.add(at, "must be a non-empty list of condition mappings")
        return None
    return [parse_when(item, at + (i,), p, exclude) for i, item in enumerate(spec)]


def str_spec(spec: Any, at: KeyPath, p: Problems, kind: str, fold: str | None = None) -> tuple:
    """Items of a string condition: literal(s), `present`/`absent`, globs, templates, regexes."""
    if isinstance(spec, list):
        if not spec:
            p.add(at, "an empty list matches nothing; give at least one value")
            return ()
        return tuple(i for n, item in enumerate(spec) for i in str_spec(item, at + (n,), p, kind, fold))
    if isinstance(spec, dict):
        return _mapping_spec(spec, at, p, kind, fold)
    if spec is None:
        p.add(at, "needs a value (a string, a list, present, absent or {regex: …})")
        return ()
    if isinstance(spec, bool):
        p.add(at, f"YAML read {spec!r} as a boolean; quote it ('{str(spec).lower()}') to match text")
        return ()
    text = str(spec)
    if text in ("present", "absent"):
        return (Presence(text == "present"),)
    if kind == "path":
        if "?" in text:
            p.add(at, f"a path has no query string: match {text.split('?', 1)[1]!r} with query: instead")
            return ()
        if "{" in text or "}" in text or "*" in text:
            pattern, error = path_pattern(text)
            if error:
                p.add(at, error)
                return ()
            return (pattern,)
        return (Equals((text,)),)
    if kind == "ip" and ("/" in text or ":" in text or text[:1].isdigit()):
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            p.add(at, f"{text!r} is not an IP address or CIDR network (e.g. 10.0.0.0/8)")
            return ()
        return (Cidr((str(net),)),)
    if "*" in text:
        return (glob_pattern(text, fold),)
    return (Equals((_fold(text, fold),)),)


def _mapping_spec(spec: dict, at: KeyPath, p: Problems, kind: str, fold: str | None) -> tuple:
    keys = list(spec)
    p.unknown_keys(spec, at, SPEC_KEYS)
    keys = [k for k in keys if k in SPEC_KEYS]
    if len(keys) != 1:
        if keys:
            p.add(at, f"give one of {', '.join(SPEC_KEYS)}, not several")
        elif not spec:
            p.add(at, f"empty mapping; give one of {', '.join(SPEC_KEYS)}")
        return ()
    key, value = keys[0], spec[keys[0]]
    where = at + (key,)
    if key == "one_of":
        if not isinstance(value, list) or not value or any(isinstance(v, dict | list) for v in value):
            p.add(where, "must be a non-empty list of values")
            return ()
        return (Equals(tuple(_fold(str(v), fold) for v in value)),)
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        p.add(where, f"must be a string, not {type(value).__name__}")
        return ()
    text = str(value)
    if key == "equals":
        return (Equals((_fold(text, fold),)),)
    if key == "glob":
        if kind == "path":
            pattern, error = path_pattern(text)
            if error:
                p.add(where, error)
                return ()
            return (pattern,)
        return (glob_pattern(text, fold),)
    if key == "prefix":
        text = _fold(text, fold)
        return (Pattern(regex="^" + re.escape(text), prefix=text),)
    pattern, error = user_pattern(text)
    if error:
        p.add(where, error)
        return ()
    if fold:
        # Case-blind columns: match the folded value case-insensitively.
        pattern = Pattern(regex="(?i)" + pattern.regex, captures=pattern.captures)
    return (pattern,)


def _fold(text: str, fold: str | None) -> str:
    return text.lower() if fold == "lower" else text.upper() if fold == "upper" else text


def num_spec(spec: Any, at: KeyPath, p: Problems) -> list[tuple[float, float]] | bool | None:
    """Ranges for `201`, `[200, 201]`, `2xx`, `'>=400'`, `200-299`; True/False for present/absent."""
    if isinstance(spec, list):
        if not spec:
            p.add(at, "an empty list matches nothing; give at least one value")
            return None
        out: list[tuple[float, float]] = []
        for n, item in enumerate(spec):
            ranges = num_spec(item, at + (n,), p)
            if isinstance(ranges, list):
                out.extend(ranges)
            elif isinstance(ranges, bool):
                p.add(at + (n,), "present/absent cannot be mixed with values in a list")
        return out or None
    if isinstance(spec, bool) or not isinstance(spec, int | float | str):
        p.add(at, f"must be a number, a class like 2xx, a comparison like '>=400', or a list; not {spec!r}")
        return None
    if isinstance(spec, int | float):
        return [(float(spec), float(spec))]
    text = spec.strip()
    if text in ("present", "absent"):
        return text == "present"
    if _NUMBER.match(text):
        return [(float(text), float(text))]
    m = _CLASS.match(text)
    if m:
        base = int(m.group(1)) * 100
        return [(base, base + 99)]
    m = _CMP.match(text)
    if m:
        op, v = m.group(1), float(m.group(2))
        below, above = math.nextafter(v, -INF), math.nextafter(v, INF)
        return {">=": [(v, INF)], ">": [(above, INF)], "<=": [(-INF, v)], "<": [(-INF, below)],
                "==": [(v, v)], "!=": [(-INF, below), (above, INF)]}[op]
    m = _RANGE.match(text)
    if m and float(m.group(1)) <= float(m.group(2)):
        return [(float(m.group(1)), float(m.group(2)))]
    what = next((k for k in reversed(at) if isinstance(k, str)), "number")
    p.add(at, f"bad {what} {spec!r}: use 201, [200, 201], 2xx, '>=400' or '200-299'")
    return None

