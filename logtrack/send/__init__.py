"""Delivering events to analytics destinations (DESIGN §6): registry and entry point.

    from logtrack.send import SendOptions, deliver
    summary = deliver(event_tables, "segment", SendOptions(state="/var/lib/logtrack"))
    print(summary.render()); exit(summary.exit_code)

`deliver` raises `LockedError` (exit 75) when another sender holds the destination's lock,
`ConfigError`/`UsageError` (exit 2) for missing credentials or bad options; every other outcome
is in the returned `SendSummary`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

import pyarrow as pa

from ..errors import UsageError
from .base import Destination
from .summary import SendOptions, SendSummary

__all__ = ["DESTINATIONS", "Destination", "SendOptions", "SendSummary", "deliver", "get_destination"]

# name -> "module:Class"; imported on use so one destination's import cost never hits the others.
DESTINATIONS = {
    "ga4": "logtrack.send.ga4:GA4",
    "segment": "logtrack.send.segment:Segment",
}


def get_destination(name: str) -> type[Destination]:
    """The destination class registered under `name` (UsageError listing the known ones)."""
    target = DESTINATIONS.get(name)
    if target is None:
        raise UsageError(f"unknown destination {name!r}; known: {', '.join(sorted(DESTINATIONS))}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def deliver(events: Iterable[pa.Table], destination_name: str,
            options: SendOptions | None = None) -> SendSummary:
    """Send EVENTS tables to a destination with the ledger's guarantees; return the summary."""
    from .engine import run

    options = options or SendOptions()
    cls = get_destination(destination_name)
    if options.validate and not cls.has_validation:
        raise UsageError(f"{destination_name} has no validation endpoint; use --dry-run to see payloads")
    if options.validate and options.dry_run:
        raise UsageError("--validate and --dry-run exclude each other")
    if options.concurrency < 1:
        raise UsageError("concurrency must be at least 1")
    return run(cls(options), events, options)
