"""Benchmark: enrich + identify + privacy + sessionize over 1 M synthetic log lines.

    /work/venv/bin/python benchmarks/bench_sessions.py [--lines 1000000] [--uas 100000] [--repeat 3]

Writes a combined-format log with known visitors and sessions (each visitor has its own /24 and
user agent; sessions of one visitor are more than 31 min apart, requests within one less than
29 min apart; 5 % of visitors are bots; about a third of the requests are static assets), then,
each in a fresh subprocess so peak RSS is per stage:
  parse   — `pipeline.iter_parsed` only (the baseline);
  full    — parse, then enrich → identify → privacy.apply → Sessionizer.push per batch;
and prints rows/s, seconds per stage (wall clock: run it on an idle machine; CPU seconds too), peak RSS, how much sessionizing added to the parse time,
whether the session count matches the truth, and the time to enrich 100 k distinct user agents.

    /work/venv/bin/python benchmarks/bench_sessions.py --log benchmarks/data/combined-1000000-1.log [--rules rules/]

measures an existing log instead, driving `run.Chain` (what `logtrack report` runs: enrich → rules'
exclude mask → identify → privacy.apply → filter → sessionize → rules), in CPU seconds per stage
(Chain's own stage timings on the process's CPU clock, so other processes matter less). Generate the log with
`python benchmarks/generate.py --lines 1000000 --seed 1 -o benchmarks/data/combined-1000000-1.log`.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import logtrack.cli  # noqa: E402  (sets the allocator/BLAS environment before numpy and pyarrow load)

logtrack.cli.tune_process()  # measure the stages as `logtrack` runs them

BOTS = ["curl/8.4.0", "python-requests/2.31.0", "Go-http-client/1.1", "kube-probe/1.29",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"]
PAGES = ["/", "/products", "/products/42", "/cart", "/checkout", "/about", "/blog/post-1", "/search"]
STATIC = ["/static/app.js", "/static/app.css", "/img/logo.png", "/favicon.ico", "/fonts/a.woff2"]
REFERERS = ["-", "-", "https://www.google.com/", "https://t.co/x", "https://news.example.org/a"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def user_agents(n: int, seed: int = 1) -> list[str]:
    """n distinct, realistic-looking browser user agents."""
    rng = random.Random(seed)
    out: set[str] = set()
    oses = ["Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7", "X11; Linux x86_64",
            "Windows NT 6.1; WOW64"]
    models = ["Pixel 8", "SM-G991B", "SM-X700", "Redmi Note 12", "moto g(60)", "CPH2451", "SM-A546B"]
    while len(out) < n:
        kind = rng.random()
        v = f"{rng.randint(90, 131)}.0.{rng.randint(1000, 6999)}.{rng.randint(0, 250)}"
        if kind < 0.45:
            out.add(f"Mozilla/5.0 ({rng.choice(oses)}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36")
        elif kind < 0.65:
            out.add(f"Mozilla/5.0 (Linux; Android {rng.randint(9, 14)}; {rng.choice(models)}) AppleWebKit/537.36 "
                    f"(KHTML, like Gecko) Chrome/{v} Mobile Safari/537.36")
        elif kind < 0.85:
            ios = f"{rng.randint(14, 17)}_{rng.randint(0, 7)}"
            dev = rng.choice(["iPhone; CPU iPhone OS", "iPad; CPU OS"])
            out.add(f"Mozilla/5.0 ({dev} {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                    f"Version/{rng.randint(14, 17)}.{rng.randint(0, 9)} Mobile/15E{rng.randint(100, 999)} Safari/604.1")
        else:
            fv = f"{rng.randint(90, 125)}.{rng.randint(0, 9)}"
            out.add(f"Mozilla/5.0 ({rng.choice(oses)}; rv:{fv}) Gecko/20100101 Firefox/{fv}")
    return sorted(out)


def generate(path: Path, lines: int, seed: int = 7) -> dict:
    """Write the synthetic log; return the truth (visitors, human sessions)."""
    rng = random.Random(seed)
    uas = user_agents(3000, seed)
    day0 = 1_772_323_200  # 2026-03-01 00:00:00 UTC
    rows: list[tuple[int, str]] = []
    visitors = human_sessions = 0
    while len(rows) < lines:
        v = visitors
        visitors += 1
        ip = f"{10 + v // 65536}.{(v // 256) % 256}.{v % 256}.{rng.randint(1, 254)}"
        bot = rng.random() < 0.05
        ua = rng.choice(BOTS) if bot else uas[v % len(uas)]  # visitors differ by their /24
        t = day0 + rng.randint(0, 20 * 3600)
        for _ in range(rng.choice([1, 1, 2, 3])):
            human_sessions += not bot
            ref = rng.choice(REFERERS)
            for k in range(max(1, int(rng.expovariate(1 / 7)))):
                # Static assets follow their page within 5 s; only pages move the clock, so page
                # gaps (what sessions see: static assets are excluded) stay under 10 min.
                page = rng.choice(PAGES) if k == 0 or rng.random() < 0.6 else rng.choice(STATIC)
                if page in STATIC:
                    at = t + rng.randint(0, 5)
                else:
                    t += 0 if k == 0 else rng.randint(1, 600)
                    at = t
                rows.append((at, f'{ip} - - [{{ts}}] "GET {page} HTTP/1.1" 200 {rng.randint(200, 90000)} '
                                 f'"{ref if k == 0 else "https://shop.example" + page}" "{ua}"'))
            t += 31 * 60 + 5 + rng.randint(1, 4 * 3600)
    rows.sort(key=lambda r: r[0])
    with open(path, "w") as fh:
        for t, line in rows:
            tm = time.gmtime(t)
            stamp = f"{tm.tm_mday:02d}/{MONTHS[tm.tm_mon - 1]}/{tm.tm_year}:{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} +0000"
            fh.write(line.replace("{ts}", stamp) + "\n")
    return {"lines": len(rows), "visitors": visitors, "human_sessions": human_sessions}


def stage(kind: str, log: str) -> dict:
    """Run one measured pass in this process (called in a subprocess)."""
    from logtrack import privacy
    from logtrack.enrich import EnrichConfig, enrich
    from logtrack.identity import IdentityConfig, identify
    from logtrack.pipeline import ParseOptions, RunStats, iter_parsed
    from logtrack.run import grouped
    from logtrack.sessions import SessionConfig, Sessionizer
    from logtrack.sources import Input

    timings = dict.fromkeys(["parse", "enrich", "identify", "privacy", "sessionize"], 0.0)
    cpu = dict.fromkeys(timings, 0.0)
    ecfg, icfg, pcfg = EnrichConfig(), IdentityConfig(), privacy.PrivacyConfig()
    sessionizer = Sessionizer(SessionConfig())
    rows = sessions = emitted = 0
    start = last = time.perf_counter()
    cpu_start = cpu_last = time.process_time()

    def lap(name: str) -> None:
        nonlocal last, cpu_last
        now, cpu_now = time.perf_counter(), time.process_time()
        timings[name] += now - last
        cpu[name] += cpu_now - cpu_last
        last, cpu_last = now, cpu_now

    batches = iter_parsed([Input(log)], ParseOptions(format="combined"), RunStats())
    if kind == "full":
        batches = grouped(batches)  # parsed blocks joined as `logtrack report` joins them (run.CHAIN_BATCH)
    for batch in batches:
        lap("parse")
        rows += batch.requests.num_rows
        if kind == "parse":
            continue
        table = enrich(batch.requests.combine_chunks(), ecfg)  # the join's copy, as run.Chain makes it
        lap("enrich")
        table = identify(table, icfg, b"benchmark-salt")
        lap("identify")
        table = privacy.apply(table, pcfg)
        lap("privacy")
        out = sessionizer.push(table, batch.watermark)
        emitted += out.requests.num_rows
        sessions += out.sessions.num_rows
        lap("sessionize")
    if kind == "full":
        out = sessionizer.finish()
        emitted += out.requests.num_rows
        sessions += out.sessions.num_rows
        lap("sessionize")
    total = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": rows, "total_s": total, "timings": timings, "peak_rss_mib": rss,
            "sessions": sessions, "emitted": emitted, "cpu_s": time.process_time() - cpu_start, "cpu": cpu}


def chain_cpu(log: str, rules: str | None) -> dict:
    """CPU seconds per stage over an existing combined log, chained by `run.Chain` itself (what
    `logtrack report` runs: exclude mask as a column after enrich, identify and privacy on the
    unfiltered table, the filter after privacy, outputs combined per RULES_BATCH rows).

    Chain times its stages with `time.perf_counter`; here its clock is the process's CPU clock,
    so its per-stage figures are CPU seconds. Parse is what consuming `iter_parsed` costs.
    """
    import types

    from logtrack import run
    from logtrack.config import Config
    from logtrack.pipeline import ParseOptions, RunStats, iter_parsed
    from logtrack.sources import Input

    run.time = types.SimpleNamespace(perf_counter=time.process_time)  # this subprocess only
    rows = batches = 0
    parse = 0.0

    def parsed():
        nonlocal rows, batches, parse
        it = iter(iter_parsed([Input(log)], ParseOptions(format="combined"), RunStats()))
        while True:
            t = time.process_time()
            batch = next(it, None)
            parse += time.process_time() - t
            if batch is None:
                return
            rows += batch.requests.num_rows
            batches += 1
            yield batch

    with tempfile.TemporaryDirectory() as state:
        chain = run.Chain(Config(), Path(state), rules_paths=[rules] if rules else None)
        for step in chain.run(parsed()):
            del step
    cpu = {"parse": parse} | dict(chain.counts.seconds)
    return {"rows": rows, "batches": batches, "cpu_s": cpu}


def ua_benchmark(n: int) -> dict:
    """Enrich a table of n distinct user agents with a cold parser."""
    import pandas as pd
    import pyarrow as pa

    from logtrack.enrich import EnrichConfig, enrich
    from logtrack.enrich.useragent import UAParser
    from logtrack.schema import REQUESTS, conform

    uas = user_agents(n, seed=3)
    table = conform(pa.table({"ts": pa.array([pd.Timestamp("2026-03-01", tz="UTC")] * n), "user_agent": uas}), REQUESTS)
    parser = UAParser()
    t0 = time.perf_counter()
    enrich(table, EnrichConfig(parser=parser))
    dt = time.perf_counter() - t0
    return {"distinct": n, "seconds": dt, "us_per_ua": dt / n * 1e6, "resolver": parser.resolver_name}


def main() -> None:
    """Generate, run the stages in subprocesses, print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--uas", type=int, default=100_000)
    ap.add_argument("--stage", choices=["gen", "parse", "full", "uas"])
    ap.add_argument("--log")
    ap.add_argument("--rules")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run parse-only and full this many times, alternately; keep each stage's fastest run")
    args = ap.parse_args()
    if args.log and args.stage is None:
        res = chain_cpu(args.log, args.rules)
        cpu = res["cpu_s"]
        print(f"{res['rows']:,} rows in {res['batches']} batches, CPU seconds per stage: "
              + ", ".join(f"{k} {v:.3f}" for k, v in cpu.items()))
        print(f"  identify (with privacy) {cpu.get('identify', 0.0):.3f} s; all but parse "
              f"{sum(cpu.values()) - cpu['parse']:.3f} s")
        return
    if args.stage == "gen":
        print(json.dumps(generate(Path(args.log), args.lines)))
        return
    if args.stage in ("parse", "full"):
        print(json.dumps(stage(args.stage, args.log)))
        return
    if args.stage == "uas":
        print(json.dumps(ua_benchmark(args.uas)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "access.log"
        t0 = time.perf_counter()
        # Generated in a subprocess too: Linux carries a parent's peak RSS into forked children.
        res = subprocess.run([sys.executable, __file__, "--stage", "gen", "--log", str(log), "--lines", str(args.lines)],
                             capture_output=True, text=True, check=True)
        truth = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"generated {truth['lines']:,} lines ({log.stat().st_size / 2**20:.0f} MiB), {truth['visitors']:,} visitors, "
              f"{truth['human_sessions']:,} human sessions in {time.perf_counter() - t0:.1f} s")
        runs: dict[str, list[dict]] = {"parse": [], "full": []}
        for _ in range(max(1, args.repeat)):  # alternately: load from other processes hits both alike
            for kind in ("parse", "full"):
                res = subprocess.run([sys.executable, __file__, "--stage", kind, "--log", str(log)],
                                     capture_output=True, text=True, check=True)
                runs[kind].append(json.loads(res.stdout.strip().splitlines()[-1]))
    # The least CPU is the least disturbed run (of each stage on its own for the full chain).
    p = min(runs["parse"], key=lambda r: r["cpu_s"])
    f = min(runs["full"], key=lambda r: r["cpu_s"])
    f["cpu"] = {k: min(r["cpu"][k] for r in runs["full"]) for k in f["cpu"]}
    if args.repeat > 1:
        print(f"{args.repeat} runs each; sessionize % of parse-only CPU per pair: "
              + ", ".join(f"{b['cpu']['sessionize'] / a['cpu_s']:.0%}" for a, b in zip(runs["parse"], runs["full"], strict=True)))
    print(f"parse only : {p['rows']:,} rows in {p['total_s']:.2f} s = {p['rows'] / p['total_s']:,.0f} rows/s, "
          f"peak RSS {p['peak_rss_mib']:.0f} MiB")
    print(f"full chain : {f['rows']:,} rows in {f['total_s']:.2f} s = {f['rows'] / f['total_s']:,.0f} rows/s, "
          f"peak RSS {f['peak_rss_mib']:.0f} MiB")
    stages = f["timings"]
    print("  per stage: " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
    added = f["total_s"] - p["total_s"]
    after = stages["enrich"] + stages["identify"] + stages["privacy"] + stages["sessionize"]
    print(f"  enrich+identify+privacy+sessionize = {after:.2f} s "
          f"({after / f['rows'] * 1e6:.2f} µs/row, {f['rows'] / after:,.0f} rows/s); "
          f"sessionize alone {stages['sessionize']:.2f} s = {stages['sessionize'] / p['total_s']:.0%} of parse time; "
          f"whole chain adds {added / p['total_s']:.0%} to parse time")
    print(f"  CPU seconds: parse only {p['cpu_s']:.2f}; per stage " + ", ".join(f"{k} {v:.2f}" for k, v in f["cpu"].items())
          + f"; sessionize {f['cpu']['sessionize'] / p['cpu_s']:.0%} of parse-only CPU")
    print(f"  sessions: {f['sessions']:,} (truth {truth['human_sessions']:,}: "
          f"{'match' if f['sessions'] == truth['human_sessions'] else 'MISMATCH'}); requests emitted {f['emitted']:,}")
    res = subprocess.run([sys.executable, __file__, "--stage", "uas", "--uas", str(args.uas)],
                         capture_output=True, text=True, check=True)
    u = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"user agents: {u['distinct']:,} distinct enriched in {u['seconds']:.2f} s = {u['us_per_ua']:.1f} µs/UA "
          f"({u['resolver']})")


if __name__ == "__main__":
    main()
