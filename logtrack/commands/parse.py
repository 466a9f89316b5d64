"""`logtrack parse`: the raw requests table, exactly as logged."""

from __future__ import annotations

import click

from ..pipeline import RunStats, iter_parsed
from ..runsummary import parse_summary
from ..schema import REJECTS, REQUESTS
from ..sinks import ParquetFileSink
from ..sources import expand_inputs
from . import common


@click.command("parse")
@click.argument("logs", nargs=-1, required=True)
@click.option("-o", "--out", required=True, metavar="FILE", help="Parquet file for the requests table.")
@click.option("--rejects", "rejects_path", default=None, metavar="FILE",
              help="Parquet file for rejected lines (default: <out>.rejects.parquet).")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@common.log_options
def parse_cmd(logs: tuple[str, ...], out: str, rejects_path: str | None, quiet: bool, **kw: object) -> None:
    """Parse access logs into a Parquet requests table (full IPs: the raw layer).

    LOGS are files, globs, directories or - for stdin; .gz/.bz2/.zst are read by content.

    \b
    Examples:
      logtrack parse /var/log/nginx/access.log* -o requests.parquet
      logtrack parse - --format combined -o out.parquet < access.log
      logtrack parse logs/ --log-format 'nginx:$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent' -o out.parquet
    """
    config = common.load(kw)
    options = common.parse_options(config, kw)
    inputs = expand_inputs(list(logs))
    stats = RunStats()
    rejects_path = rejects_path or (out[:-8] if out.endswith(".parquet") else out) + ".rejects.parquet"
    requests = ParquetFileSink(out, REQUESTS)
    rejects = ParquetFileSink(rejects_path, REJECTS)
    try:
        for batch in iter_parsed(inputs, options, stats):
            requests.write(batch.requests)
            rejects.write(batch.rejects)
    except BaseException:
        requests.abort()
        rejects.abort()
        raise
    requests.close()
    rejects.close()
    if not quiet:
        common.echo_err(parse_summary(stats))
        common.echo_err(f"wrote {requests.rows:,} requests to {out} and {rejects.rows:,} rejects to {rejects_path}")
    common.finish(stats, common.max_reject_rate(config, kw))
