"""Options shared by every command that reads logs, and how they become library options."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from ..config import Config, load_config
from ..errors import UsageError
from ..pipeline import ParseOptions, RunStats


def _parse_when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO date or datetime: {value!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def log_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add --format, --log-format, --trusted-proxies, --since, --until, --host, --config."""
    options = [
        click.option("--format", "format_name", default=None, metavar="NAME",
                     help="Log format preset (see `logtrack formats`); default: auto-detect per file."),
        click.option("--log-format", default=None, metavar="SPEC",
                     help="Your server's own layout: 'nginx:$remote_addr …' or 'apache:%h %l …'."),
        click.option("--trusted-proxies", default=None, metavar="CIDR,…",
                     help="Take the client from X-Forwarded-For, skipping these proxies."),
        click.option("--since", default=None, metavar="WHEN", help="Only requests at or after (ISO date/time, UTC)."),
        click.option("--until", default=None, metavar="WHEN", help="Only requests before (ISO date/time, UTC)."),
        click.option("--host", "hosts", multiple=True, metavar="HOST", help="Only these virtual hosts (repeatable)."),
        click.option("--max-reject-rate", type=float, default=None,
                     help="Exit 3 when more than this share of lines is rejected (default 0.05)."),
        config_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


config_option = click.option("--config", "config_path", default=None, metavar="FILE",
                             help="Config file (else $LOGTRACK_CONFIG; none is read by default).")


def parse_options(config: Config, kw: dict[str, Any]) -> ParseOptions:
    """ParseOptions from flags, falling back to the config file."""
    proxies = kw.get("trusted_proxies") or config.get("trusted_proxies") or ()
    if isinstance(proxies, str):
        proxies = (proxies,)
    formats = config.get("formats") or {}
    if not isinstance(formats, dict):
        raise config.error(("formats",), "must map names to 'nginx:…' or 'apache:…' layouts")
    return ParseOptions(
        format=kw.get("format_name") or config.get("format") or "auto",
        log_format=kw.get("log_format") or config.get("log_format"),
        custom_formats={str(k): str(v) for k, v in formats.items()},
        trusted_proxies=tuple(proxies),
        since=_parse_when(kw.get("since")),
        until=_parse_when(kw.get("until")),
        hosts=tuple(kw.get("hosts") or config.get("hosts") or ()),
    )


def load(kw: dict[str, Any]) -> Config:
    """The config named by --config / $LOGTRACK_CONFIG (or defaults)."""
    return load_config(kw.get("config_path"))


def max_reject_rate(config: Config, kw: dict[str, Any]) -> float:
    """--max-reject-rate, else the config's, else 5 %."""
    value = kw.get("max_reject_rate")
    if value is None:
        value = config.get("max_reject_rate", 0.05)
    return float(value)


def finish(stats: RunStats, limit: float) -> None:
    """Exit 1 on read errors, 3 when the reject rate is over the limit (DESIGN §7)."""
    if stats.errors:
        for err in stats.errors:
            click.echo(f"error: {err}", err=True)
        sys.exit(1)
    if stats.reject_rate > limit:
        click.echo(f"rejected {stats.reject_rate:.1%} of lines, over --max-reject-rate {limit:.1%}", err=True)
        sys.exit(3)


def echo_err(text: str) -> None:
    """Print to stderr (summaries go there so stdout can carry data)."""
    click.echo(text, err=True)


def require(condition: bool, message: str) -> None:
    """Raise a UsageError unless `condition`."""
    if not condition:
        raise UsageError(message)
