"""Benchmark `logtrack parse` (and optionally `report`) against GoAccess on the same file.

Whole processes, measured side by side: lines per CPU-second (user + sys of the child),
wall time and peak RSS. Also checks that 4x the input raises peak RSS by at most 20 %.

    python benchmarks/bench_parse.py --lines 1000000            # generates the log if needed
    python benchmarks/bench_parse.py --log big.log --command report
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run `cmd` to completion; its wall time, CPU time and peak RSS (of that child alone)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):
        sys.stderr.write(err.decode(errors="replace"))
        raise SystemExit(f"command failed ({code}): {' '.join(cmd)}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def compile_bytecode() -> None:
    """Compile the logtrack package that `logtrack` will import, as `pip install` does.

    An editable install run with PYTHONDONTWRITEBYTECODE=1 (CI, containers) would otherwise
    compile its ≈100 modules on every run: ≈0.1 CPU-s of start-up that an installed tool never
    pays, and that no measurement of steady-state speed should count.
    """
    subprocess.run([sys.executable, "-c", "import compileall, logtrack, os; "
                    "compileall.compile_dir(os.path.dirname(logtrack.__file__), quiet=1)"], check=True)


def ensure_log(lines: int, seed: int = 1) -> Path:
    """A generated combined log of `lines` lines under benchmarks/data/ (made once)."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"combined-{lines}-{seed}.log"
    if not path.exists():
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--lines", str(lines), "--seed", str(seed),
                        "-o", str(path)], check=True)
    return path


def logtrack_cmd(command: str, log: Path, out: Path) -> list[str]:
    """The logtrack command line for `parse` or `report` on `log`."""
    exe = shutil.which("logtrack") or str(Path(sys.executable).with_name("logtrack"))
    if command == "parse":
        return [exe, "parse", str(log), "--format", "combined", "-o", str(out / "requests.parquet"), "--quiet"]
    rules = HERE.parent / "rules"
    return [exe, "report", str(log), "--format", "combined", "--rules", str(rules), "-o", str(out / "report"),
            "--quiet", "--state", str(out / "state")]


def main() -> None:
    """Print lines/s and peak RSS for logtrack and GoAccess on the same log."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--log", type=Path, help="use this log instead of a generated one")
    ap.add_argument("--command", choices=["parse", "report"], default="parse")
    ap.add_argument("--scale-check", action="store_true", help="also run on 4x the input and compare peak RSS")
    args = ap.parse_args()
    log = args.log or ensure_log(args.lines)
    n = sum(1 for _ in open(log, "rb"))
    compile_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        ours = measure(logtrack_cmd(args.command, log, out))
        print(f"logtrack {args.command}: {n:,} lines, {ours['wall_s']:.2f} s wall, {ours['cpu_s']:.2f} CPU-s, "
              f"{n / ours['cpu_s']:,.0f} lines/CPU-s, peak RSS {ours['peak_rss_mb']:.0f} MB")
        goaccess = shutil.which("goaccess")
        if goaccess:
            env = {**os.environ, "TZ": "UTC"}
            theirs = measure([goaccess, str(log), "--log-format=COMBINED", "-o", str(out / "ga.json"),
                              "--no-progress"], env=env)
            print(f"goaccess: {theirs['wall_s']:.2f} s wall, {theirs['cpu_s']:.2f} CPU-s, "
                  f"{n / theirs['cpu_s']:,.0f} lines/CPU-s, peak RSS {theirs['peak_rss_mb']:.0f} MB")
            print(f"ratio (lines per CPU-second, logtrack / goaccess): {theirs['cpu_s'] / ours['cpu_s']:.2f}x")
        else:
            print("goaccess: not installed (apt-get install goaccess) — no side-by-side figure")
        if args.scale_check:
            big = out / "x4.log"
            with open(big, "wb") as dst:
                for _ in range(4):
                    with open(log, "rb") as src:
                        shutil.copyfileobj(src, dst, 16 << 20)
            four = measure(logtrack_cmd(args.command, big, out))
            growth = four["peak_rss_mb"] / ours["peak_rss_mb"] - 1
            print(f"4x input: peak RSS {four['peak_rss_mb']:.0f} MB ({growth:+.0%} vs 1x), "
                  f"{4 * n / four['cpu_s']:,.0f} lines/CPU-s")


if __name__ == "__main__":
    main()
