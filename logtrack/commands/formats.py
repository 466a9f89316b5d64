"""`logtrack formats`: list the built-in formats, or detect the format of a file."""

from __future__ import annotations

import click

from ..formats import registry
from ..formats.detect import detect
from ..lines import split_lines
from ..sources import SAMPLE_BYTES, expand_inputs, iter_blocks, open_input


@click.group("formats", invoke_without_command=True)
@click.pass_context
def formats_cmd(ctx: click.Context) -> None:
    """List every built-in log format with a one-line description.

    \b
    Examples:
      logtrack formats
      logtrack formats detect access.log
    """
    if ctx.invoked_subcommand is None:
        for name, fmt in sorted(registry().items()):
            click.echo(f"{name:<22} {fmt.description}")


@formats_cmd.command("detect")
@click.argument("files", nargs=-1, required=True)
def detect_cmd(files: tuple[str, ...]) -> None:
    """Print the detected format of each file and how many sample lines each candidate matched.

    \b
    Example:
      logtrack formats detect /var/log/nginx/access.log
    """
    failed = False
    for inp in expand_inputs(list(files)):
        stream = open_input(inp)
        try:
            block = next(iter_blocks(stream, inp.name, SAMPLE_BYTES), None)
        finally:
            if not inp.is_stdin:
                stream.close()
        if block is None:
            click.echo(f"{inp.name}: empty")
            continue
        result = detect(split_lines(block))
        if result.chosen is None:
            failed = True
            click.echo(f"{inp.name}: no format matched well; best candidates:")
        else:
            best = result.candidates[0]
            click.echo(f"{inp.name}: {result.chosen.name} ({best.matched}/{best.total} sample lines matched)")
        click.echo(result.describe())
    if failed:
        raise SystemExit(2)
