"""`logtrack formats`: list the built-in formats, or detect the format of a file."""

from __future__ import annotations

import click
import pyarrow as pa

from ..config import load_config
from ..formats import registry
from ..formats.detect import SAMPLE_LINES, detect
from ..lines import Lines, split_lines
from ..sources import SAMPLE_BYTES, Input, expand_inputs, iter_blocks, open_input
from .common import config_option


@click.group("formats", invoke_without_command=True)
@config_option
@click.pass_context
def formats_cmd(ctx: click.Context, config_path: str | None) -> None:
    """List every built-in log format with a one-line description.

    \b
    Examples:
      logtrack formats
      logtrack formats detect access.log
    """
    if ctx.invoked_subcommand is None:
        for name, fmt in sorted(registry().items()):
            click.echo(f"{name:<22} {fmt.description}")
        custom = load_config(config_path).get("formats") or {}
        for name, spec in sorted(custom.items()) if isinstance(custom, dict) else []:
            click.echo(f"{name:<22} (config) {spec}")


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
        sample = _sample(inp)
        if sample is None:
            click.echo(f"{inp.name}: no data lines")
            continue
        result = detect(sample)
        if result.chosen is None:
            failed = True
            click.echo(f"{inp.name}: no format matched well; best candidates:")
        else:
            best = result.candidates[0]
            click.echo(f"{inp.name}: {result.chosen.name} ({best.matched}/{best.total} sample lines matched)")
        click.echo(result.describe())
    if failed:
        raise SystemExit(2)


def _sample(inp: Input) -> Lines | None:
    """The first data lines of an input (reading on past a header-only first block)."""
    stream = open_input(inp)
    parts: list[Lines] = []
    try:
        for block in iter_blocks(stream, inp.name, SAMPLE_BYTES):
            parts.append(split_lines(block))
            if sum(len(p) for p in parts) >= SAMPLE_LINES:
                break
    finally:
        if not inp.is_stdin:
            stream.close()
    if not sum(len(p) for p in parts):
        return None
    return Lines(inp.name, pa.concat_arrays([p.text for p in parts]), pa.concat_arrays([p.line for p in parts]),
                 [c for p in parts for c in p.comments])
