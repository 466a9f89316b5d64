"""The `logtrack` command: parses flags and calls library functions (DESIGN §7).

Exit codes: 0 ok; 1 failed; 2 usage or config error; 3 finished but too many rejects;
75 another run holds the lock.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import importlib
import os
import sys
from typing import Any

import click

from . import __version__
from .errors import LogtrackError

# (module under logtrack.commands, attribute): a command whose module is missing is left out,
# so a partial install still runs the rest.
COMMANDS = [
    ("parse", "parse_cmd"),
    ("formats", "formats_cmd"),
    ("sessions", "sessions_cmd"),
    ("events", "events_cmd"),
    ("rules", "rules_cmd"),
    ("report", "report_cmd"),
    ("send", "send"),
]


# Arrow's allocator (mimalloc) hands freed pages back to the OS at once by default; a batch job
# that allocates block after block of the same size then pays page faults for every block
# (measured: system time 0.25 s → 0.15 s per 1 M lines). Set before pyarrow is first imported.
os.environ.setdefault("MIMALLOC_PURGE_DELAY", "-1")
# numpy's OpenBLAS starts a worker thread per core that spins between calls; logtrack does no
# linear algebra worth threads (measured: 0.08 CPU-s of a 2 CPU-s parse). Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def tune_process() -> None:
    """Process settings every logtrack command runs with (benchmarks call it too, to measure the
    stages as the command runs them).

    Keep glibc from mmap/munmap-ing every multi-MB block buffer: with the default threshold each
    block costs thousands of page faults (measured: system time 0.65 s → 0.25 s per 1 M lines).

    And no transparent huge pages: Arrow's allocator (mimalloc) asks for them on its arena, and
    the kernel then zeroes 2 MB per fault, much of it never used — measured on 1 M lines: system
    time 0.27–0.41 s → 0.14–0.20 s, user time unchanged."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
        libc.prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE (Linux; fails harmlessly elsewhere)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune
    _freeze_heap()


_frozen = False


def _freeze_heap() -> None:
    """Keep the garbage collector off the objects that live until the process ends.

    Imports leave ≈0.5 M objects (modules, functions, the user-agent matchers) that every full
    collection of the run walks again, and at exit the interpreter's final collection walks
    everything once more before freeing it: measured 0.16 CPU-s per `report` of 1 M lines after
    its summary was printed. Freezing moves the objects alive now out of the collector's reach
    (cycles among them are never freed: there are none worth freeing in a batch process), and
    the exit hook does it again for what the run built, so the final collection has nothing to
    walk. Once per process (the tests call the command many times in one)."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.freeze()
    atexit.register(gc.freeze)


# Commands that never hand pandas objects to Arrow (see _skip_pandas_probe).
PANDAS_FREE = {"parse", "formats", "report"}


def _skip_pandas_probe() -> None:
    """pyarrow imports pandas the first time it checks whether a value is a pandas object (any
    `pa.array(...)`), ≈0.3 CPU-s of a 2.5 CPU-s `parse` of 1 M lines. Let that first probe find no
    pandas: pyarrow then treats values as non-pandas, and imports pandas for real the moment
    something needs it (`to_pandas`), so nothing breaks if a pandas-free command uses it after all."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    sys.meta_path.insert(0, _NoPandas)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(_NoPandas)


class _NoPandas:
    """An import finder under which `import pandas` fails (for `_skip_pandas_probe`)."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("pandas is skipped at start-up", name=name)


class LogtrackGroup(click.Group):
    """Loads each command's module only when that command runs (start-up stays small), and maps
    library errors to messages and exit codes instead of tracebacks."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, _ in COMMANDS if self.get_command(ctx, name) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        attr = dict(COMMANDS).get(cmd_name)
        if attr is None:
            return None
        try:
            module = importlib.import_module(f"logtrack.commands.{cmd_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"logtrack.commands.{cmd_name}":
                raise
            return None
        return getattr(module, attr)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        # The command's imports (pyarrow, numpy, the stages) build ≈0.5 M objects and no garbage:
        # the collections they trigger walk them again and again for nothing (≈30 ms of every
        # run's start-up). tune_process freezes them once they are all there.
        enabled = gc.isenabled()
        gc.disable()
        try:
            if args and args[0] in PANDAS_FREE:  # before the command's module loads: its imports may probe
                _skip_pandas_probe()
            return super().resolve_command(ctx, args)
        finally:
            if enabled:
                gc.enable()

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LogtrackError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=LogtrackGroup)
@click.version_option(__version__, prog_name="logtrack")
def main() -> None:  # noqa: D401 - click uses the docstring as help
    """Turn web-server access logs into analytics: requests, sessions, events, reports, uploads.

    \b
    Start with:
      logtrack report sample_logs/ --rules rules/ -o reports/
    """
    tune_process()
