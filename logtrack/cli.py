"""The `logtrack` command: parses flags and calls library functions (DESIGN §7).

Exit codes: 0 ok; 1 failed; 2 usage or config error; 3 finished but too many rejects;
75 another run holds the lock.
"""

from __future__ import annotations

import importlib
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


class LogtrackGroup(click.Group):
    """Maps library errors to messages and exit codes instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LogtrackError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=LogtrackGroup)
@click.version_option(__version__, prog_name="logtrack")
def main() -> None:
    """Turn web-server access logs into analytics: requests, sessions, events, reports, uploads.

    \b
    Start with:
      logtrack report sample_logs/ --rules rules/ -o reports/
    """


for _module, _attr in COMMANDS:
    try:
        _mod = importlib.import_module(f"logtrack.commands.{_module}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"logtrack.commands.{_module}":
            raise
        continue
    main.add_command(getattr(_mod, _attr))
