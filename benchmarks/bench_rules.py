"""Benchmark rule evaluation: 1 rule vs 200 rules over 1 M enriched requests (issue 4 bar: ≤ 3×).

    /work/venv/bin/python benchmarks/bench_rules.py [--rows 1000000] [--batch 0] [--repeat 3]

The table is synthetic but shaped like a shop's traffic (product pages, search, API calls,
assets, bots, sessions). The one-rule set is a typical `view_product` rule with a typed path
capture and properties; the 200-rule set adds 199 rules mixing literal paths, templates, globs,
regexes, method lists, status classes, query and field conditions, `once_per` and `not:`.
`--batch N` evaluates in N-row slices, as the pipeline does.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from logtrack import schema
from logtrack.rules.load import parse_file
from logtrack.rules.model import Problems
from logtrack.rules.ruleset import RuleSet
from logtrack.yamlfile import load_yaml

ONE_RULE = """
namespace: server
events:
  - name: view_product
    when: {method: GET, path: "/products/{product_id:int}", status: 2xx}
    properties: {product_id: "{product_id}", ref: "{query.ref}"}
"""


def many_rules(count: int) -> str:
    """`count` rules of varied kinds (the first is the one-rule set's rule)."""
    out = [ONE_RULE.rstrip()]
    kinds = [
        '    when: {{method: POST, path: "/api/v1/thing{i}/{{item_id:int}}", status: 201}}\n'
        '    properties: {{item_id: "{{item_id}}", n: {{value: "{{query.n}}", type: int}}}}',
        '    when: {{method: [GET, HEAD], path: /page{i}, status: [200, 304]}}\n'
        '    properties: {{page: "{{path}}"}}',
        '    when: {{path: "/docs{i}/**", status: ">=400"}}\n'
        '    properties: {{status: "{{status}}"}}',
        '    when: {{path: /search, query: {{q: {{regex: "^term{i}"}}}}}}\n'
        '    properties: {{q: "{{query.q}}"}}',
        '    when: {{path: {{regex: "^/c{i}/(?P<slug>[a-z-]+)$"}}, not: {{static: true}}}}\n'
        '    properties: {{slug: "{{slug}}"}}\n'
        '    once_per: session',
        '    when: {{method: POST, path: /api/v1/act{i}, fields: {{http_x_app: present}}}}\n'
        '    properties: {{app: "{{fields.http_x_app}}"}}',
    ]
    for i in range(1, count):
        out.append(f"  - name: rule_{i}\n" + kinds[i % len(kinds)].format(i=i))
    return "\n".join(out) + "\n"


def ruleset(text: str) -> RuleSet:
    doc = load_yaml("<bench>", text)
    p = Problems(doc)
    rule_file = parse_file(doc, p)
    assert not p.items, p.items[:5]
    return RuleSet([rule_file])


def make_table(n: int, seed: int = 7) -> pa.Table:
    """A synthetic batch of enriched, sessionized requests."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(8, size=n, p=[0.30, 0.15, 0.10, 0.10, 0.10, 0.10, 0.10, 0.05])
    pid = rng.integers(1, 5000, n)
    thing = rng.integers(0, 200, n)
    paths = np.empty(n, dtype=object)
    paths[kind == 0] = [f"/products/{x}" for x in pid[kind == 0]]
    paths[kind == 1] = "/search"
    paths[kind == 2] = [f"/api/v1/thing{t}/{x}" for t, x in zip(thing[kind == 2], pid[kind == 2], strict=True)]
    paths[kind == 3] = [f"/page{t}" for t in thing[kind == 3]]
    paths[kind == 4] = [f"/static/app.{x % 50}.js" for x in pid[kind == 4]]
    paths[kind == 5] = [f"/c{t}/shoes-{x % 20}" for t, x in zip(thing[kind == 5], pid[kind == 5], strict=True)]
    paths[kind == 6] = [f"/docs{t}/x/{x % 30}" for t, x in zip(thing[kind == 6], pid[kind == 6], strict=True)]
    paths[kind == 7] = [f"/api/v1/act{t}" for t in thing[kind == 7]]
    query = np.full(n, None, dtype=object)
    query[kind == 1] = [f"q=term{x % 300}+red&page=1" for x in pid[kind == 1]]
    query[kind == 0] = np.where(pid[kind == 0] % 3 == 0, "ref=home", None)
    query[kind == 2] = [f"n={x}" for x in pid[kind == 2]]
    method = np.where(np.isin(kind, [2, 7]), "POST", "GET")
    status = rng.choice([200, 201, 304, 404, 500], size=n, p=[0.7, 0.1, 0.1, 0.07, 0.03]).astype(np.int16)
    status[kind == 2] = 201
    session = rng.integers(0, 100_000, n)
    ts0 = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1e6)
    fields = [[("http_x_app", "ios")] if k == 7 else [] for k in kind]
    table = pa.table({
        "ts": pa.array(ts0 + np.arange(n, dtype=np.int64) * 1000, schema.TS),
        "method": method, "path": pa.array(paths, pa.string()), "query": pa.array(query, pa.string()),
        "status": status, "fields": pa.array(fields, schema.STR_MAP),
        "user_agent": pa.array(["Mozilla/5.0"] * n, pa.string()),
        "is_bot": rng.random(n) < 0.05, "is_static": kind == 4,
        "session_id": pa.array([f"s{x}" for x in session], pa.string()),
        "anonymous_id": pa.array([f"a{x}" for x in session], pa.string()),
        "source": pa.array(["access.log"] * n, pa.string()).dictionary_encode(),
        "line": np.arange(1, n + 1, dtype=np.int64),
    })
    return schema.conform(table, schema.ENRICHED_REQUESTS)


def run(rules: RuleSet, table: pa.Table, batch: int, repeat: int) -> tuple[float, int]:
    best, events = float("inf"), 0
    for _ in range(repeat):
        rules.reset()
        # CPU time of this process: other jobs on a shared machine inflate wall time, not this.
        start = time.process_time()
        events = 0
        step = batch or table.num_rows
        for offset in range(0, table.num_rows, step):
            events += rules.evaluate(table.slice(offset, step)).num_rows
        best = min(best, time.process_time() - start)
    return best, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--batch", type=int, default=0, help="rows per evaluate() call (0: one call)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    t0 = time.perf_counter()
    table = make_table(args.rows)
    print(f"table: {args.rows:,} rows built in {time.perf_counter() - t0:.1f}s; batch={args.batch or 'all'}")
    one, one_events = run(ruleset(ONE_RULE), table, args.batch, args.repeat)
    many, many_events = run(ruleset(many_rules(args.rules)), table, args.batch, args.repeat)
    print(f"1 rule:      {one:6.3f}s CPU  {one_events:>9,} events  {args.rows / one / 1e6:5.2f} M rows/s")
    print(f"{args.rules} rules:   {many:6.3f}s CPU  {many_events:>9,} events  {args.rows / many / 1e6:5.2f} M rows/s")
    print(f"ratio: {many / one:.2f}x (bar: <= 3x)")


if __name__ == "__main__":
    main()
