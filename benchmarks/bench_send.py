"""Benchmark `logtrack.send.deliver` against local fake APIs (loopback), ledger on.

    /work/venv/bin/python benchmarks/bench_send.py [--events 100000] [--fail-rate 0.2]

The fake server runs in its own process (tests/fakeapis.py), so its JSON parsing does not share
the sender's interpreter. For each destination it runs a clean send (throughput), then a send with
`--fail-rate` of requests failing (500 / 429 / connection reset) and checks, from the server's own
counts, that every event arrived once: none lost, none twice.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakeapis import ENV, make_events  # noqa: E402

from logtrack.send import SendOptions, deliver  # noqa: E402
from logtrack.send.ledger import Ledger  # noqa: E402


class Server:
    """A fake API in a subprocess; `stats()` asks it for its counts."""

    def __init__(self, kind: str, fail_rate: float) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fakeapis.py"), kind, str(fail_rate)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.url = self.proc.stdout.readline().strip()

    def stats(self) -> dict:
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def run(kind: str, n: int, fail_rate: float, users: int) -> dict:
    """One send of `n` events; returns the summary figures and the server's counts."""
    server = Server(kind, fail_rate)
    events = make_events(n, users=users)
    with tempfile.TemporaryDirectory() as state:
        opts = SendOptions(endpoint=server.url, state=state, env=ENV, backoff_base=0.01, backoff_max=0.5,
                           max_attempts=12)
        t0 = time.perf_counter()
        summary = deliver([events], kind, opts)
        wall = time.perf_counter() - t0
        ledger = Ledger(Path(state), kind).counts()
    stats = server.stats()
    server.close()
    ok = (summary.sent == n and stats["accepted"] == n and stats["duplicates"] == 0
          and ledger["delivered"] == n and not stats["errors"])
    return {"destination": kind, "events": n, "fail_rate": fail_rate, "sent": summary.sent,
            "seconds": round(wall, 2), "events_per_s": round(n / wall), "requests": summary.requests,
            "retries": summary.retries, "server": stats, "ledger": ledger, "ok": ok}


def main() -> None:
    """Run the benchmark and print one JSON line per run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--fail-rate", type=float, default=0.2)
    ap.add_argument("--users", type=int, default=1_000, help="distinct visitors (GA4 batches per user)")
    args = ap.parse_args()
    results = []
    for kind in ("segment", "ga4"):
        for rate in (0.0, args.fail_rate):
            r = run(kind, args.events, rate, args.users)
            results.append(r)
            print(json.dumps(r), flush=True)
    if not all(r["ok"] for r in results):
        sys.exit("FAILED: some events were lost or duplicated")


if __name__ == "__main__":
    main()
