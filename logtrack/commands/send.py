"""`logtrack send`: deliver events to an analytics destination (the click layer only)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pyarrow as pa
import pyarrow.dataset as ds

from ..config import Config, load_config
from ..errors import LogtrackError, UsageError
from ..schema import EVENTS
from ..send import DESTINATIONS, SendOptions, SendSummary, deliver

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_when(value: str | None, now: datetime | None = None) -> datetime | None:
    """An ISO date/datetime (UTC unless it has an offset) or a relative age: `70h`, `3d`, `90m`."""
    if not value:
        return None
    rel = _RELATIVE.fullmatch(value.strip())
    if rel:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[rel.group(2)]: float(rel.group(1))})
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"not an ISO date/time or an age like 70h: {value!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def events_dataset(inputs: list[str]) -> list[str] | None:
    """Parquet paths when the inputs are an EVENTS dataset (`.parquet` files, a directory with
    `events/`, or a directory of Parquet files); None when they are logs; mixing is an error."""
    found: list[str] = []
    for text in inputs:
        p = Path(text)
        if p.is_file() and p.suffix == ".parquet":
            found.append(str(p))
        elif p.is_dir() and (p / "events").is_dir():
            found.append(str(p / "events"))
        elif p.is_dir() and next(p.rglob("*.parquet"), None) is not None:
            found.append(str(p))
    if found and len(found) != len(inputs):
        raise UsageError("give either logs or an events Parquet dataset, not both")
    return found or None


def read_events(paths: list[str], since: datetime | None, until: datetime | None) -> Iterator[pa.Table]:
    """Stream EVENTS tables from Parquet files/datasets, filtering on `ts` while reading."""
    for path in paths:
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
        names = [n for n in EVENTS.names if n in dataset.schema.names]
        if "event_id" not in names or "ts" not in names:
            raise UsageError(f"{path}: not an events dataset (needs event_id and ts columns)")
        flt = None
        for bound, op in ((since, "ge"), (until, "lt")):
            if bound is not None:
                e = ds.field("ts") >= bound if op == "ge" else ds.field("ts") < bound
                flt = e if flt is None else flt & e
        for batch in dataset.to_batches(columns=names, filter=flt, batch_size=65_536):
            yield pa.Table.from_batches([batch])


def _options(config: Config, kw: dict[str, Any]) -> SendOptions:
    tuning = config.section("send")
    opts = SendOptions(endpoint=kw["endpoint"], state=kw["state"] or config.get("state"),
                       dry_run=kw["dry_run"], validate=kw["validate"],
                       since=parse_when(kw["since"]), until=parse_when(kw["until"]),
                       retry_failed=kw["retry_failed"], skip_uncertain=kw["skip_uncertain"], config=config)
    for key, kind in (("concurrency", int), ("max_attempts", int), ("timeout", float),
                      ("backoff_base", float), ("backoff_max", float)):
        if key in tuning:
            try:
                setattr(opts, key, kind(tuning[key]))
            except (TypeError, ValueError) as exc:
                raise config.error(("send", key), f"must be a number, not {tuning[key]!r}") from exc
    return opts


class _Progress:
    """A live line on stderr, only on a TTY (rich)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                            transient=True, console=Console(stderr=True))
        self.task = self.bar.add_task("sending", total=None)

    def __call__(self, s: SendSummary) -> None:
        self.bar.update(self.task, description=(
            f"{s.destination}: sent {s.sent}, refused {sum(s.refused.values())}, "
            f"failed {sum(s.failed.values())}, {s.requests} requests"))


@click.command("send")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--to", "to", required=True, type=click.Choice(sorted(DESTINATIONS)), help="Destination.")
@click.option("--rules", default=None, metavar="PATH", help="Rule files (when INPUTS are logs).")
@click.option("--endpoint", default=None, metavar="URL",
              help="Replace scheme, host and path prefix of the API (EU hosts, proxies, tests).")
@click.option("--state", default=None, metavar="DIR", help="State directory (ledger, lock).")
@click.option("--dry-run", is_flag=True, help="Print the payloads (secrets redacted); send nothing.")
@click.option("--validate", is_flag=True, help="Use the provider's validation endpoint (GA4 /debug/mp/collect).")
@click.option("--since", default=None, metavar="WHEN", help="Events at or after (ISO date/time UTC, or 70h, 3d).")
@click.option("--until", default=None, metavar="WHEN", help="Events before (ISO date/time UTC, or an age).")
@click.option("--retry-failed", is_flag=True, help="Resend events the destination rejected as invalid.")
@click.option("--skip-uncertain", is_flag=True,
              help="Skip events in flight when an earlier run died (GA4 cannot deduplicate them).")
@click.option("--config", "config_path", default=None, metavar="FILE",
              help="Config file (else $LOGTRACK_CONFIG): destinations, host routing, send tuning.")
@click.option("--format", "format_name", default=None, metavar="NAME", help="Log format (log inputs; default auto).")
@click.option("--log-format", default=None, metavar="SPEC", help="Your layout: 'nginx:…' or 'apache:…' (log inputs).")
@click.option("--trusted-proxies", default=None, metavar="CIDR,…", help="Client from X-Forwarded-For (log inputs).")
@click.option("--host", "hosts", multiple=True, metavar="HOST", help="Only these virtual hosts (log inputs).")
@click.option("--keep-ip", is_flag=True, help="Send full client IPs (default: truncated, as in every output).")
@click.pass_context
def send(ctx: click.Context, inputs: tuple[str, ...], to: str, **kw: Any) -> None:
    """Deliver events to an analytics destination; a re-run sends only what was not delivered.

    Secrets come from the environment (LOGTRACK_GA4_MEASUREMENT_ID, LOGTRACK_GA4_API_SECRET,
    LOGTRACK_SEGMENT_WRITE_KEY) or the config file's `destinations:` section, never from flags.
    Exit 0 when every selected event was delivered or deliberately skipped, 1 otherwise,
    75 when another sender holds the state directory's lock.

    \b
    Examples:
      logtrack send access.log --rules rules/ --to ga4 --dry-run
      logtrack send events.parquet --to segment --state /var/lib/logtrack
      logtrack send reports/ --to ga4 --since 70h --validate
    """
    try:
        config = load_config(kw["config_path"])
        opts = _options(config, kw)
        paths = events_dataset(list(inputs))
        if paths is not None:
            tables: Any = read_events(paths, opts.since, opts.until)
        else:
            tables = _events_from_logs(list(inputs), config, kw, opts)
        opts.output = click.echo
        progress = _Progress() if sys.stderr.isatty() and not opts.dry_run else None
        opts.progress = progress
        if progress:
            with progress.bar:
                summary = deliver(tables, to, opts)
        else:
            summary = deliver(tables, to, opts)
    except LogtrackError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(exc.exit_code)
    click.echo(summary.render(), err=True)
    ctx.exit(summary.exit_code)


def _events_from_logs(inputs: list[str], config: Config, kw: dict[str, Any], opts: SendOptions) -> Any:
    from ..pipeline import ParseOptions  # imported only for log inputs
    from ..run import iter_events
    from ..sources import expand_inputs
    from ..state import state_dir
    from .common import parse_options

    parse: ParseOptions = parse_options(config, {**kw, "since": None, "until": None})
    parse.since, parse.until = opts.since, opts.until
    rules = [kw["rules"]] if kw.get("rules") else list(config.get("rules") or [])
    return iter_events(expand_inputs(inputs), config, parse, state_dir(opts.state), rules,
                       keep_ip=bool(kw.get("keep_ip")))
