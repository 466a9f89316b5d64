"""Run the `tests:` blocks of rule files (`logtrack rules test`, DESIGN §5).

Each test runs against its own file's rules (events, built-ins, `exclude`) with fresh state:
the request rows are enriched, given a test identity (one visitor, one session), filtered by
`exclude`, evaluated, and the emitted events compared in order with `expect`. Property values
are compared with their JSON types, so `product_id: 42` (int) differs from `'42'` (string).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from .load import load_rules
from .model import RuleFile, RuleTest
from .ruleset import RuleSet

BASE_TS = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
_STATIC = r"(?i)\.(css|js|mjs|map|png|jpe?g|gif|svg|ico|webp|avif|woff2?|ttf|eot|otf|mp4|webm|pdf|txt|xml)$"
_BOT = r"(?i)bot|crawl|spider|slurp|kube-probe|healthcheck|curl/|wget/|python-requests|go-http-client|monitor"


@dataclass
class RuleTestResult:
    """The outcome of one rule test: outcome is 'passed', 'failed' or 'skipped'."""

    file: str
    line: int
    name: str
    outcome: str
    message: str = ""

    @property
    def passed(self) -> bool:
        """True when the test passed."""
        return self.outcome == "passed"

    @property
    def test_id(self) -> str:
        """pytest-style id: `rules/shop.yaml::view product`."""
        return f"{self.file}::{self.name}"

    def __str__(self) -> str:
        text = f"{self.test_id} {self.outcome.upper()}"
        return f"{text} ({self.message})" if self.outcome == "skipped" and self.message else text


def run_rule_tests(paths: list[str] | str) -> list[RuleTestResult]:
    """Run every test of the rule files under `paths`; raises ConfigError if the rules are invalid."""
    ruleset = load_rules(paths)
    results = []
    for rule_file in ruleset.files:
        for test in rule_file.tests:
            results.append(_run_one(rule_file, test))
    return results


def format_test_results(results: list[RuleTestResult], seconds: float | None = None) -> list[str]:
    """The lines `logtrack rules test` prints: one per test, failure details, a summary line."""
    lines = [str(r) for r in results]
    failed = [r for r in results if r.outcome == "failed"]
    if failed:
        lines.append("")
        lines.append("=" * 20 + " FAILURES " + "=" * 20)
        for r in failed:
            lines.append(f"{r.file}:{r.line}: {r.name}")
            lines.extend("    " + m for m in r.message.splitlines())
    counts = [f"{sum(r.outcome == o for r in results)} {o}" for o in ("passed", "failed", "skipped")
              if any(r.outcome == o for r in results)]
    took = f" in {seconds:.2f}s" if seconds is not None else ""
    lines.append(f"{'=' * 10} {', '.join(counts) or 'no tests ran'}{took} {'=' * 10}")
    return lines


def _run_one(rule_file: RuleFile, test: RuleTest) -> RuleTestResult:
    name = test.name or f"tests[{test.index}]"
    result = RuleTestResult(rule_file.path, test.line, name, "passed")
    try:
        table = build_test_table(rule_file, test)
    except _Skip as exc:
        result.outcome, result.message = "skipped", str(exc)
        return result
    except Exception as exc:  # a bad line or value is this test's failure, not the run's
        result.outcome, result.message = "failed", f"could not build the request: {exc}"
        return result
    ruleset = RuleSet([rule_file])
    table = table.filter(pc.invert(ruleset.excluded(table)))
    events = ruleset.evaluate(table)
    actual = [
        {"name": n, "properties": json.loads(pj), "user_properties": json.loads(uj) if uj else None}
        for n, pj, uj in zip(events.column("event_name").to_pylist(),
                             events.column("properties_json").to_pylist(),
                             events.column("user_properties_json").to_pylist(), strict=True)
    ]
    problems = compare(test.expect, actual)
    if problems:
        result.outcome, result.message = "failed", "\n".join(problems)
    return result


class _Skip(Exception):
    pass


def build_test_table(rule_file: RuleFile, test: RuleTest) -> pa.Table:
    """The enriched, sessionized request rows of one test."""
    if test.lines is not None:
        try:
            from ..pipeline import parse_lines
        except ImportError as exc:
            raise _Skip(f"line tests need logtrack.pipeline.parse_lines: {exc}") from exc
        requests = parse_lines(list(test.lines), rule_file.format)
        if requests.num_rows != len(test.lines):
            raise ValueError(f"{len(test.lines) - requests.num_rows} line(s) do not parse as {rule_file.format!r}")
        given: list[dict[str, Any]] = [{} for _ in test.lines]
    else:
        given = [_normalise(r, i) for i, r in enumerate(test.requests or [])]
        requests = schema.conform(_from_rows(given), schema.REQUESTS)
    requests = requests.set_column(requests.column_names.index("source"), "source",
                                   pa.array([rule_file.path] * requests.num_rows, pa.string()))
    requests = requests.set_column(requests.column_names.index("line"), "line",
                                   pa.array([test.line + i for i in range(requests.num_rows)], pa.int64()))
    table = _enrich(requests)
    columns = {name: table.column(name) for name in table.column_names}
    remote = table.column("remote_user").to_pylist()
    defaults = {
        "user_id": [u if u not in (None, "", "-") else None for u in remote],
        "anonymous_id": ["test-visitor"] * table.num_rows,
        "session_id": ["test-session"] * table.num_rows,
        "session_seq": list(range(1, table.num_rows + 1)),
    }
    for name, values in defaults.items():
        columns[name] = pa.array(values, schema.ENRICHED_REQUESTS.field(name).type)
    out = schema.conform(pa.table(columns), schema.ENRICHED_REQUESTS)
    # Columns the test spells out win over enrichment and test identity.
    explicit = {k for row in given for k in row if k not in schema.REQUESTS.names}
    if explicit:
        override = schema.conform(_from_rows(given), schema.ENRICHED_REQUESTS)
        for name in explicit:
            i = out.column_names.index(name)
            merged = pc.coalesce(override.column(name), out.column(name)) if name in defaults \
                else override.column(name)
            out = out.set_column(i, name, merged)
    return out


def requests_table(rows: list[dict[str, Any]]) -> pa.Table:
    """An ENRICHED_REQUESTS table from plain dicts (tests, docs): `path` may carry `?query`,
    `ts` defaults to one second apart, `fields` is a dict; missing columns are null."""
    return schema.conform(_from_rows([_normalise(r, i) for i, r in enumerate(rows)]), schema.ENRICHED_REQUESTS)


def _normalise(req: dict[str, Any], i: int) -> dict[str, Any]:
    row = dict(req)
    path = row.get("path")
    if isinstance(path, str) and "?" in path and "query" not in row:
        row["path"], row["query"] = path.split("?", 1)
    ts = row.get("ts")
    if ts is None:
        row["ts"] = BASE_TS + timedelta(seconds=i)
    elif not isinstance(ts, datetime):
        row["ts"] = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    if isinstance(row.get("ts"), datetime) and row["ts"].tzinfo is None:
        row["ts"] = row["ts"].replace(tzinfo=UTC)
    if "fields" in row:
        row["fields"] = [(str(k), None if v is None else str(v)) for k, v in row["fields"].items()]
    for key, value in list(row.items()):
        if key not in ("ts", "fields") and value is not None and key in schema.ENRICHED_REQUESTS.names:
            if pa.types.is_string(schema.ENRICHED_REQUESTS.field(key).type):
                row[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return row


def _from_rows(rows: list[dict[str, Any]]) -> pa.Table:
    fields = [f for f in schema.ENRICHED_REQUESTS if any(f.name in r for r in rows)]
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def _enrich(requests: pa.Table) -> pa.Table:
    """Enrich with logtrack.enrich when it exists, else a minimal stand-in (bots, static files)."""
    try:
        from ..enrich import enrich
    except ImportError:
        return _minimal_enrich(requests)
    try:
        from ..enrich import EnrichConfig
    except ImportError:
        return enrich(requests)
    return enrich(requests, EnrichConfig())


def _minimal_enrich(requests: pa.Table) -> pa.Table:
    # Only what rules lean on by default; the real stage (issue 3) replaces this.
    is_bot = pc.match_substring_regex(requests.column("user_agent"), _BOT).fill_null(False)
    is_static = pc.match_substring_regex(requests.column("path"), _STATIC).fill_null(False)
    table = requests.append_column("is_bot", is_bot).append_column("is_static", is_static)
    device = pc.if_else(is_bot, "bot", pa.scalar(None, pa.string()))
    return table.append_column("device", device)


def compare(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Differences between expected and emitted events, as readable lines (empty when equal)."""
    problems = []
    names = [a["name"] for a in actual]
    want = [e["name"] for e in expected]
    if names != want:
        problems.append(f"expected events {want}, got {names}")
    for exp, act in zip(expected, actual, strict=False):
        if exp["name"] != act["name"]:
            continue
        for key in ("properties", "user_properties"):
            if key in exp:
                problems.extend(_compare_props(exp["name"], key, exp[key] or {}, act[key] or {}))
    if problems and actual:
        problems.append("emitted: " + "; ".join(f"{a['name']} {json.dumps(a['properties'])}" for a in actual))
    return problems


def _compare_props(event: str, key: str, want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    out = []
    for name in sorted(set(want) | set(got), key=lambda k: (k not in want, str(k))):
        if name not in got:
            out.append(f"{event}: {key}.{name}: expected {_show(want[name])}, missing")
        elif name not in want:
            out.append(f"{event}: {key}.{name}: not expected, got {_show(got[name])}")
        elif not same_value(want[name], got[name]):
            out.append(f"{event}: {key}.{name}: expected {_show(want[name])}, got {_show(got[name])}")
    return out


def same_value(a: Any, b: Any) -> bool:
    """Equality that respects JSON types: True is not 1, 42 is not '42', 2 is not 2.0."""
    return type(a) is type(b) and a == b


def _show(value: Any) -> str:
    kind = {bool: "bool", int: "int", float: "float", str: "string"}.get(type(value), type(value).__name__)
    return f"{value!r} ({kind})"

