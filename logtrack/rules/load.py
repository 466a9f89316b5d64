"""Load rule files: strict validation that reports every problem at once (DESIGN §5).

`load_rules(paths)` returns a RuleSet or raises ConfigError whose `problems` list every problem
of every file as `file:line: key.path: message`; `check_rules(paths)` returns that list.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..yamlfile import KeyPath, YamlDoc, format_path, load_yaml
from . import builtins
from .conditions import parse_when
from .model import (
    TEMPLATE_COLUMNS,
    VALUE_TYPES,
    Always,
    And,
    BoolCond,
    Node,
    Problems,
    Prop,
    Ref,
    Rule,
    RuleFile,
    did_you_mean,
    node_captures,
)
from .ruleset import RuleSet
from .templates import parse_template
from .testing_spec import parse_tests
from .values import convert_literal

TOP_KEYS = ("namespace", "separator", "format", "description", "builtins", "exclude", "events", "tests")
EVENT_KEYS = ("name", "description", "when", "properties", "user_properties", "once_per", "stop")
PROP_KEYS = ("value", "type", "default")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_PROP_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_.$-]*\Z")
_TYPE_ALIASES = {"integer": "int", "str": "string", "boolean": "bool", "number": "float", "double": "float"}


def load_rules(paths: list[str] | str) -> RuleSet:
    """Load rule files (or directories of `*.yaml`/`*.yml`) into a RuleSet.

    Raises ConfigError listing every problem found (file:line: key.path: message).
    """
    files, problems = _load_files([paths] if isinstance(paths, str) else list(paths))
    if problems:
        raise ConfigError(problems[0], problems=problems)
    return RuleSet(files)


def rules_from_text(text: str, name: str = "<rules>") -> RuleSet:
    """Load one rule file given as text (docs examples, tests); raises ConfigError like load_rules."""
    doc = load_yaml(name, text)
    p = Problems(doc)
    rule_file = parse_file(doc, p)
    _check_duplicates([rule_file] if rule_file else [], p.items)
    if p.items or rule_file is None:
        raise ConfigError(p.items[0], problems=p.items)
    return RuleSet([rule_file])


def check_rules(paths: list[str] | str) -> list[str]:
    """Every problem in the rule files as `file:line: key.path: message` (empty when valid)."""
    return _load_files([paths] if isinstance(paths, str) else list(paths))[1]


def rule_file_paths(paths: list[str]) -> tuple[list[Path], list[str]]:
    """The rule files named by `paths` (directories searched recursively, in name order)."""
    out, problems = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                f for f in path.rglob("*")
                if f.suffix in (".yaml", ".yml") and f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
            )
            if not found:
                problems.append(f"{raw}: no *.yaml or *.yml rule files in this directory")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            problems.append(f"{raw}: no such file or directory")
    return out, problems


def _load_files(paths: list[str]) -> tuple[list[RuleFile], list[str]]:
    files, problems = rule_file_paths(paths)
    loaded: list[RuleFile] = []
    for path in files:
        try:
            doc = load_yaml(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        p = Problems(doc)
        rule_file = parse_file(doc, p)
        problems.extend(p.items)
        if rule_file is not None:
            loaded.append(rule_file)
    _check_duplicates(loaded, problems)
    return loaded, problems


def _check_duplicates(loaded: list[RuleFile], problems: list[str]) -> None:
    seen: dict[str, str] = {}
    for rule_file in loaded:
        for rule in rule_file.rules:
            where = f"{rule.file}:{rule.line}"
            if rule.name in seen:
                problems.append(f"{where}: {rule.key}: duplicate event name {rule.name!r} "
                                f"(also at {seen[rule.name]}); combine the conditions with any:")
            else:
                seen[rule.name] = where


def parse_file(doc: YamlDoc, p: Problems) -> RuleFile | None:
    """Validate one rule file; problems go to `p`, the parsed file is returned when usable."""
    data = doc.data
    if not isinstance(data, dict):
        p.add((), "a rule file must be a mapping with events:, exclude:, builtins: or tests:")
        return None
    p.unknown_keys(data, (), TOP_KEYS)
    namespace = data.get("namespace")
    if namespace is not None and not (isinstance(namespace, str) and _NAME.match(namespace)):
        p.add(("namespace",), f"must be a name of letters, digits and _ (starting with a letter), not {namespace!r}")
        namespace = None
    separator = data.get("separator", "_")
    if not isinstance(separator, str) or not separator or any(c.isspace() for c in separator):
        p.add(("separator",), f"must be a non-empty string without spaces, not {separator!r}")
        separator = "_"
    fmt = data.get("format", "combined")
    if not isinstance(fmt, str) or not fmt:
        p.add(("format",), "must be a format name such as combined")
        fmt = "combined"

    def full(short: str) -> str:
        return f"{namespace}{separator}{short}" if namespace else short

    rules: list[Rule] = []
    events = data.get("events", [])
    if events is None:
        events = []
    if not isinstance(events, list):
        p.add(("events",), "must be a list of rules (- name: …)")
        events = []
    for i, spec in enumerate(events):
        rule = _parse_event(spec, ("events", i), p, full, doc)
        if rule is not None:
            rules.append(rule)
    rules.extend(builtins.parse_builtins(data.get("builtins"), p, full, doc, _parse_props))
    exclude = []
    spec = data.get("exclude")
    if spec is not None:
        items = spec if isinstance(spec, list) else [spec]
        for i, item in enumerate(items):
            at: KeyPath = ("exclude", i) if isinstance(spec, list) else ("exclude",)
            if not isinstance(item, dict) or not item:
                p.add(at, "each exclude entry must be a mapping of conditions, e.g. {path: /healthz}")
                continue
            exclude.append(parse_when(item, at, p, exclude=True))
    tests = parse_tests(data.get("tests"), p)
    return RuleFile(path=doc.file, namespace=namespace, separator=separator, format=fmt,
                    rules=rules, exclude=exclude, tests=tests)


def _parse_event(spec: Any, at: KeyPath, p: Problems, full, doc: YamlDoc) -> Rule | None:
    if not isinstance(spec, dict):
        p.add(at, "each rule must be a mapping with name: and when:")
        return None
    p.unknown_keys(spec, at, EVENT_KEYS)
    name = spec.get("name")
    ok = True
    if name is None:
        p.add(at, "missing name:")
        ok = False
    elif not isinstance(name, str) or not _NAME.match(name):
        p.add(at + ("name",), f"event names use letters, digits and _ and start with a letter, not {name!r}")
        ok = False
    if "when" not in spec:
        p.add(at, "missing when: (use when: {} to match every request)")
    when = parse_when(spec.get("when"), at + ("when",), p)
    if not _mentions_bot(spec.get("when")):
        # Bots never emit events unless the rule asks for them (DESIGN §4).
        when = _and(when, BoolCond("is_bot", False))
    captures = node_captures(when)
    props = _parse_props(spec.get("properties"), at + ("properties",), p, captures)
    user_props = None
    if spec.get("user_properties") is not None:
        user_props = _parse_props(spec.get("user_properties"), at + ("user_properties",), p, captures)
    once_per = spec.get("once_per")
    if once_per is not None and once_per not in ("session", "user"):
        p.add(at + ("once_per",), f"must be session or user, not {once_per!r}{did_you_mean(str(once_per), ['session', 'user'])}")
        once_per = None
    stop = spec.get("stop", False)
    if not isinstance(stop, bool):
        p.add(at + ("stop",), f"must be true or false, not {stop!r}")
        stop = False
    if not ok:
        return None
    return Rule(name=full(name), short=name, file=doc.file, line=doc.line_of(at + ("name",)) or 1, when=when,
                properties=props, user_properties=user_props, once_per=once_per, stop=stop,
                key=format_path(at + ("name",)))


def _and(a: Node, b: Node) -> Node:
    """`a` and `b`, flattening an existing And."""
    if isinstance(a, Always):
        return b
    return And(a.children + (b,)) if isinstance(a, And) else And((a, b))


def _mentions_bot(when: Any) -> bool:
    """Whether `bot:`/`is_bot:` appears anywhere in a `when` tree (then no implicit bot filter)."""
    if isinstance(when, dict):
        return any(k in ("bot", "is_bot") or _mentions_bot(v) for k, v in when.items())
    if isinstance(when, list):
        return any(_mentions_bot(v) for v in when)
    return False


def _parse_props(spec: Any, at: KeyPath, p: Problems, captures: dict[str, str]) -> tuple[Prop, ...]:
    if spec is None:
        return ()
    if not isinstance(spec, dict):
        p.add(at, "must be a mapping of property names to values or templates")
        return ()
    out = []
    for name, value in spec.items():
        where = at + (name,)
        if not isinstance(name, str) or not _PROP_NAME.match(name):
            p.add(at, f"bad property name {name!r} (letters, digits, _ . $ -)", at=where)
            continue
        prop = _parse_prop(str(name), value, where, p, captures)
        if prop is not None:
            out.append(prop)
    return tuple(out)


def _parse_prop(name: str, value: Any, at: KeyPath, p: Problems, captures: dict[str, str]) -> Prop | None:
    declared, default = None, None
    if isinstance(value, dict):
        p.unknown_keys(value, at, PROP_KEYS)
        if "value" not in value:
            p.add(at, "missing value: (a template such as \"{query.total}\" or a literal)")
            return None
        declared = value.get("type")
        if declared is not None:
            declared = str(declared)
            if declared not in VALUE_TYPES:
                hint = f" (did you mean {_TYPE_ALIASES[declared]!r}?)" if declared in _TYPE_ALIASES \
                    else did_you_mean(declared, VALUE_TYPES)
                p.add(at + ("type",), f"unknown type {declared!r}{hint}; types: {', '.join(VALUE_TYPES)}")
                return None
        default, value = value.get("default"), value["value"]
    if value is None or isinstance(value, dict | list):
        p.add(at, f"must be a template string or a literal value, not {value!r}")
        return None
    if not isinstance(value, str) or ("{" not in value and "}" not in value):
        typ = declared or {bool: "bool", int: "int", float: "float"}.get(type(value), "string")
        converted, error = convert_literal(value, typ)
        if error:
            p.add(at, error)
            return None
        return Prop(name=name, type=typ, literal=converted)
    parts, error = parse_template(value)
    if error:
        p.add(at, error)
        return None
    resolved = []
    for part in parts:
        if isinstance(part, Ref) and part.kind == "name":
            if part.name in captures:
                part = Ref("capture", part.name)
            elif part.name in TEMPLATE_COLUMNS:
                part = Ref("column", part.name)
            else:
                have = f"; this rule captures {', '.join(sorted(captures))}" if captures else "; this rule's path captures nothing"
                p.add(at, f"{{{part.name}}} is not a capture or a request column{_suggest(part.name, captures)}{have}")
                return None
        resolved.append(part)
    if declared is None:
        only = resolved[0] if len(resolved) == 1 else None
        declared = captures[only.name] if isinstance(only, Ref) and only.kind == "capture" else "string"
    if default is not None:
        default, error = convert_literal(default, declared)
        if error:
            p.add(at + ("default",), error)
            return None
    return Prop(name=name, type=declared, parts=tuple(resolved), default=default)


def _suggest(name: str, captures: dict[str, str]) -> str:
    """A did-you-mean for a template reference: the rule's own captures first."""
    close = did_you_mean(name, list(captures))
    if close:
        return close
    related = [c for c in captures if c in name or name in c]
    if related:
        return f" (did you mean {related[0]!r}?)"
    return did_you_mean(name, TEMPLATE_COLUMNS)
