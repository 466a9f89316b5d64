"""Validate a rule file's `tests:` block (DESIGN §5).

A test gives a `request` mapping of request columns (or `requests`, several in one session), or
a `line` in the file's `format:` (or `lines`), and the events it must produce, in order:

    tests:
      - name: order with coupon
        request: {method: POST, path: /api/v1/orders, query: "coupon=X", status: 201}
        expect: [{name: server_order_placed, properties: {coupon: X}}]
      - line: '192.0.2.1 - - [01/Mar/2026:10:00:00 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.29"'
        expect: []
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import schema
from ..yamlfile import KeyPath
from .model import Problems, RuleTest, did_you_mean

TEST_KEYS = ("name", "request", "requests", "line", "lines", "expect")
INPUT_KEYS = ("request", "requests", "line", "lines")
EXPECT_KEYS = ("name", "properties", "user_properties")
REQUEST_KEYS = tuple(f.name for f in schema.ENRICHED_REQUESTS)


def parse_tests(spec: Any, p: Problems) -> list[RuleTest]:
    """Validate `tests:`; problems go to `p`."""
    if spec is None:
        return []
    if not isinstance(spec, list):
        p.add(("tests",), "must be a list of tests (- request: … expect: …)")
        return []
    out = []
    for i, item in enumerate(spec):
        at: KeyPath = ("tests", i)
        if not isinstance(item, dict):
            p.add(at, "each test must be a mapping with request: (or line:) and expect:")
            continue
        p.unknown_keys(item, at, TEST_KEYS)
        given = [k for k in INPUT_KEYS if k in item]
        if len(given) != 1:
            p.add(at, "give exactly one of request:, requests:, line:, lines:" +
                  (f" (found {', '.join(given)})" if given else ""))
            continue
        key = given[0]
        requests, lines = None, None
        if key in ("request", "requests"):
            items = [item[key]] if key == "request" else item[key]
            if not isinstance(items, list) or not items:
                p.add(at + (key,), "must be a non-empty list of request mappings")
                continue
            requests = []
            for n, req in enumerate(items):
                where = at + (key,) if key == "request" else at + (key, n)
                if _check_request(req, where, p):
                    requests.append(req)
            if len(requests) != len(items):
                continue
        else:
            items = [item[key]] if key == "line" else item[key]
            if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
                p.add(at + (key,), "must be a log line (a string)" if key == "line"
                      else "must be a non-empty list of log lines")
                continue
            lines = items
        expect = _parse_expect(item.get("expect"), at, p)
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            p.add(at + ("name",), "must be a string")
            name = None
        if expect is not None:
            out.append(RuleTest(index=i, line=p.doc.line_of(at) or 1, name=name,
                                requests=requests, lines=lines, expect=expect))
    return out


def _check_request(req: Any, at: KeyPath, p: Problems) -> bool:
    if not isinstance(req, dict) or not req:
        p.add(at, "must be a mapping of request columns, e.g. {method: GET, path: /, status: 200}")
        return False
    before = len(p.items)
    for key, value in req.items():
        where = at + (key,)
        if key not in REQUEST_KEYS:
            p.add(at, f"unknown request column {key!r}{did_you_mean(str(key), REQUEST_KEYS)}", at=where)
        elif key == "fields":
            if not isinstance(value, dict) or any(isinstance(v, dict | list) for v in value.values()):
                p.add(where, "must be a mapping of field names to text, e.g. {cookie_plan: pro}")
        elif key == "ts":
            if not isinstance(value, datetime):
                try:
                    datetime.fromisoformat(str(value).replace("Z", "+00:00"))
                except ValueError:
                    p.add(where, f"not an ISO timestamp: {value!r} (e.g. 2026-03-01T10:00:00Z)")
        elif isinstance(value, dict | list):
            p.add(where, f"must be a single value, not {type(value).__name__}")
    return len(p.items) == before


def _parse_expect(spec: Any, at: KeyPath, p: Problems) -> list[dict[str, Any]] | None:
    if "expect" not in (p.doc.data["tests"][at[1]] if isinstance(p.doc.data, dict) else {}):
        p.add(at, "missing expect: (a list of events, [] for none)")
        return None
    if spec is None:
        return []
    if not isinstance(spec, list):
        p.add(at + ("expect",), "must be a list of events ([] for none)")
        return None
    out = []
    for n, item in enumerate(spec):
        where = at + ("expect", n)
        if isinstance(item, str):
            out.append({"name": item})
            continue
        if not isinstance(item, dict) or "name" not in item:
            p.add(where, "each expected event is a name or a mapping with name: (and properties:)")
            return None
        p.unknown_keys(item, where, EXPECT_KEYS)
        for key in ("properties", "user_properties"):
            if key in item and not isinstance(item[key], dict):
                p.add(where + (key,), "must be a mapping of property names to values")
                return None
        out.append(item)
    return out
