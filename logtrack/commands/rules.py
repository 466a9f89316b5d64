"""`logtrack rules check|test`: validate rule files and run their tests."""

from __future__ import annotations

import sys
import time

import click

from ..config import load_config
from ..errors import UsageError
from ..rules import check_rules, format_test_results, run_rule_tests
from .common import config_option


@click.group("rules")
def rules_cmd() -> None:
    """Validate rule files and run the tests they contain.

    \b
    Examples:
      logtrack rules check rules/
      logtrack rules test rules/
    """


def _paths(paths: tuple[str, ...], config_path: str | None) -> list[str]:
    """PATHs given, else the config file's `rules:` list."""
    if paths:
        return list(paths)
    configured = load_config(config_path).get("rules") or []
    if not configured:
        raise UsageError("name rule files or directories (or `rules:` in the config file)")
    return [str(p) for p in (configured if isinstance(configured, list) else [configured])]


@rules_cmd.command("check")
@click.argument("paths", nargs=-1)
@config_option
def check_cmd(paths: tuple[str, ...], config_path: str | None) -> None:
    """Validate rule files; print every problem as file:line: key: message (exit 2 if any).

    \b
    Example:
      logtrack rules check rules/
    """
    problems = check_rules(_paths(paths, config_path))
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s)", err=True)
        sys.exit(2)
    click.echo("rules OK")


@rules_cmd.command("test")
@click.argument("paths", nargs=-1)
@config_option
def test_cmd(paths: tuple[str, ...], config_path: str | None) -> None:
    """Run the `tests:` blocks of rule files, pytest-style (exit 1 on a failure).

    \b
    Example:
      logtrack rules test rules/
    """
    started = time.perf_counter()
    results = run_rule_tests(_paths(paths, config_path))
    for line in format_test_results(results, time.perf_counter() - started):
        click.echo(line)
    if any(r.outcome == "failed" for r in results):
        sys.exit(1)
