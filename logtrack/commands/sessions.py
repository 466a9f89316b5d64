"""`logtrack sessions`: enriched requests and sessions as Parquet datasets."""

from __future__ import annotations

import click

from ..report import DatasetWriter
from ..runsummary import parse_summary
from . import common
from .chain import ChainRun, chain_options, out_dir, run_key


@click.command("sessions")
@click.argument("logs", nargs=-1, required=True)
@click.option("-o", "--out", required=True, metavar="DIR", help="Output directory (requests/, sessions/, rejects/).")
@click.option("--timezone", default="UTC", show_default=True, help="Time zone of the date partitions.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@chain_options
def sessions_cmd(logs: tuple[str, ...], out: str, timezone: str, quiet: bool, **kw: object) -> None:
    """Enrich requests, identify visitors and group them into sessions.

    Writes hive-partitioned Parquet datasets DIR/requests/ and DIR/sessions/ (and DIR/rejects/).
    IPs are truncated and secrets scrubbed unless --keep-ip.

    \b
    Examples:
      logtrack sessions sample_logs/ -o out/
      logtrack sessions access.log --config logtrack.yaml -o out/
    """
    run = ChainRun(logs, kw)
    target = out_dir(out)
    key = run_key(run.inputs)
    with DatasetWriter(target, key, timezone) as writer:
        for step in run.outputs():
            writer.write("requests", step.requests)
            writer.write("sessions", step.sessions)
            writer.write("rejects", step.rejects)
    if not quiet:
        c = run.chain.counts
        common.echo_err(parse_summary(run.stats))
        common.echo_err(f"{c.requests:,} requests ({c.bots:,} from bots), {c.sessions:,} sessions written to {target}")
    run.finish()
