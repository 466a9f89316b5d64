"""`logtrack rules check|test`: validate rule files and run their tests."""

from __future__ import annotations

import sys
import time

import click

from ..rules import check_rules, format_test_results, run_rule_tests


@click.group("rules")
def rules_cmd() -> None:
    """Validate rule files and run the tests they contain.

    \b
    Examples:
      logtrack rules check rules/
      logtrack rules test rules/
    """


@rules_cmd.command("check")
@click.argument("paths", nargs=-1, required=True)
def check_cmd(paths: tuple[str, ...]) -> None:
    """Validate rule files; print every problem as file:line: key: message (exit 2 if any).

    \b
    Example:
      logtrack rules check rules/
    """
    problems = check_rules(list(paths))
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s)", err=True)
        sys.exit(2)
    click.echo("rules OK")


@rules_cmd.command("test")
@click.argument("paths", nargs=-1, required=True)
def test_cmd(paths: tuple[str, ...]) -> None:
    """Run the `tests:` blocks of rule files, pytest-style (exit 1 on a failure).

    \b
    Example:
      logtrack rules test rules/
    """
    started = time.perf_counter()
    results = run_rule_tests(list(paths))
    for line in format_test_results(results, time.perf_counter() - started):
        click.echo(line)
    if any(r.outcome == "failed" for r in results):
        sys.exit(1)
