"""Built-in events, switched on per rule file with `builtins:` (DESIGN §5).

`page_view`: a successful (2xx/304) GET/HEAD of a page by a non-bot, namespaced like every
other event (`server_page_view`). `builtins: {page_view: true}` turns it on; a mapping narrows
it (`page_view: {when: {not: {path: '/api/**'}}}` keeps API calls out) or replaces its
properties (default: `path`). `session_start` is deliberately not emitted: destinations derive
sessions from the session id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..yamlfile import YamlDoc
from .conditions import parse_when
from .model import And, PageView, Problems, Prop, Ref, Rule, did_you_mean

BUILTINS = ("page_view",)
PAGE_VIEW_KEYS = ("when", "properties")


def page_view_condition() -> And:
    """The built-in page view: the same test sessions use to count pageviews (2xx/304 GET/HEAD of
    a page-like path — not an asset, not an /api/ call — by a non-bot), so events and session
    figures agree."""
    return And((PageView(),))


def parse_builtins(spec: Any, p: Problems, full: Callable[[str], str], doc: YamlDoc,
                   parse_props: Callable[..., tuple[Prop, ...]]) -> list[Rule]:
    """Validate `builtins:` and return the built-in rules it switches on."""
    if spec is None:
        return []
    if not isinstance(spec, dict):
        p.add(("builtins",), "must be a mapping such as {page_view: true}")
        return []
    rules = []
    for key, value in spec.items():
        at = ("builtins", key)
        if key == "session_start":
            p.add(("builtins",), "session_start is not a built-in: destinations derive sessions "
                                 "from the session id", at=at)
            continue
        if key not in BUILTINS:
            p.add(("builtins",), f"unknown built-in {key!r}{did_you_mean(str(key), BUILTINS)}; "
                                 f"built-ins: {', '.join(BUILTINS)}", at=at)
            continue
        if value is False or value is None:
            continue
        when = page_view_condition()
        props: tuple[Prop, ...] = (Prop(name="path", type="string", parts=(Ref("column", "path"),)),)
        if isinstance(value, dict):
            p.unknown_keys(value, at, PAGE_VIEW_KEYS)
            if value.get("when") is not None:
                extra = parse_when(value["when"], at + ("when",), p)
                when = And(when.children + (extra,))
            if "properties" in value:
                props = parse_props(value["properties"], at + ("properties",), p, {})
        elif value is not True:
            p.add(at, f"must be true, false or a mapping with when:/properties:, not {value!r}")
            continue
        rules.append(Rule(name=full(key), short=key, file=doc.file, line=doc.line_of(at) or 1,
                          when=when, properties=props, builtin=True, key=f"builtins.{key}"))
    return rules
