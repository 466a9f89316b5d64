"""`logtrack events`: the events table, as Parquet or JSON lines."""

from __future__ import annotations

import os
import sys

import click

from ..eventio import write_json_lines
from ..runsummary import parse_summary
from ..schema import EVENTS
from ..sinks import ParquetFileSink
from . import common
from .chain import ChainRun, chain_options


@click.command("events")
@click.argument("logs", nargs=-1, required=True)
@click.option("--rules", "rules", multiple=True, required=True, metavar="PATH", help="Rule file or directory (repeatable).")
@click.option("-o", "--out", required=True, metavar="FILE|-", help="Parquet file, or - for JSON lines on stdout.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@chain_options
def events_cmd(logs: tuple[str, ...], rules: tuple[str, ...], out: str, quiet: bool, **kw: object) -> None:
    """Apply rules to access logs and write the events they emit.

    \b
    Examples:
      logtrack events sample_logs/ --rules rules/ -o events.parquet
      logtrack events access.log --rules rules/shop.yaml --format combined -o - | head
    """
    run = ChainRun(logs, kw, rules)
    sink = None if out == "-" else ParquetFileSink(out, EVENTS)
    try:
        for step in run.outputs():
            if sink is None:
                write_json_lines(step.events, sys.stdout)
            else:
                sink.write(step.events)
    except BrokenPipeError:
        # The reader stopped (`| head`): that is its choice, not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    if sink is not None:
        sink.close()
    if not quiet:
        c = run.chain.counts
        common.echo_err(parse_summary(run.stats))
        by_name = ", ".join(f"{n} {k:,}" for n, k in c.events_by_name.most_common())
        common.echo_err(f"{c.events:,} events" + (f": {by_name}" if by_name else ""))
    run.finish()
