"""`logtrack report`: the main job — datasets, aggregate reports, report.html, run.json."""

from __future__ import annotations

import datetime as dt
import gc
import sys
import time
from collections import Counter
from typing import Any

import click
import pyarrow as pa
import pyarrow.compute as pc

from ..report import DatasetWriter, build_reports, render_html, write_run_json
from ..report.summary import summary_lines, summary_renderable
from .chain import ChainRun, chain_options, out_dir, run_key


@click.command("report")
@click.argument("logs", nargs=-1, required=True)
@click.option("--rules", "rules", multiple=True, metavar="PATH", help="Rule file or directory (repeatable).")
@click.option("-o", "--out", required=True, metavar="DIR", help="Output directory (datasets, reports/, report.html, run.json).")
@click.option("--timezone", default="UTC", show_default=True, help="Time zone of dates in partitions and reports.")
@click.option("--no-requests", is_flag=True, help="Do not write the requests dataset (events, sessions and reports only).")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@chain_options
def report_cmd(logs: tuple[str, ...], rules: tuple[str, ...], out: str, timezone: str, no_requests: bool,
               quiet: bool, **kw: Any) -> None:
    """Turn access logs into Parquet datasets, aggregate reports and a self-contained report.html.

    Re-running the same inputs replaces that run's parts; other runs' data in DIR is kept and
    the reports cover the whole of DIR.

    \b
    Examples:
      logtrack report sample_logs/ --rules rules/ -o reports/
      logtrack report /var/log/nginx/access.log* --rules rules/ -o /srv/analytics --timezone Europe/Berlin
    """
    started = dt.datetime.now(dt.UTC)
    run = ChainRun(logs, kw, rules)
    target = out_dir(out)
    key = run_key(run.inputs)
    reasons: Counter[str] = Counter()
    show_progress = not quiet and sys.stderr.isatty()
    seconds = run.chain.counts.seconds  # run.json timings: the sinks' stages beside the chain's
    with DatasetWriter(target, key, timezone) as writer, _progress(show_progress) as advance:
        for step in run.outputs():
            t = time.perf_counter()
            if not no_requests:
                writer.write("requests", step.requests)
            writer.write("sessions", step.sessions)
            writer.write("events", step.events)
            writer.write("rejects", step.rejects)
            seconds["datasets"] += time.perf_counter() - t
            if step.rejects.num_rows:
                vc = pc.value_counts(step.rejects["reason"])
                reasons.update(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)))
            advance(run.stats.total("lines_read"))
            # Unbind the step before the chain computes the next one (it would stay alive).
            del step
        t = time.perf_counter()
        outputs = writer.commit()
        seconds["datasets"] += time.perf_counter() - t
    # Give the freed write buffers back before the report scans allocate on other threads.
    gc.collect()
    pa.default_memory_pool().release_unused()
    grouper = run.chain.ruleset.group_paths if run.chain.ruleset is not None else None
    t = time.perf_counter()
    reports = build_reports(target, path_grouper=grouper, timezone=timezone)
    seconds["reports"] += time.perf_counter() - t
    info = _run_info(run, key, started, timezone, reasons, outputs)
    write_run_json(target, info)
    render_html(target, reports, info)
    if not quiet:
        if sys.stdout.isatty():
            from rich.console import Console

            Console().print(summary_renderable(reports, info))
        else:
            click.echo("\n".join(summary_lines(reports, info)))
        click.echo(f"wrote {target}/report.html, {target}/run.json and datasets under {target}/")
    run.finish()


def _run_info(run: ChainRun, key: str, started: dt.datetime, timezone: str, reasons: Counter[str],
              outputs: dict[str, int]) -> dict[str, Any]:
    stats, counts = run.stats, run.chain.counts
    return {
        "run_key": key,
        "started_at": started,
        "finished_at": dt.datetime.now(dt.UTC),
        "timezone": timezone,
        "inputs": [{"path": s.source, "size": s.size, "lines": s.lines_read, "format": s.format,
                    "parsed": s.parsed, "rejected": s.rejected, "skipped": s.skipped, "error": s.error}
                   for s in stats.sources.values()],
        "counts": {"lines": stats.total("lines_read"), "parsed": stats.total("parsed"),
                   "rejected": stats.total("rejected"), "skipped": stats.total("skipped"),
                   "filtered": stats.total("filtered"), "excluded_by_rules": counts.excluded,
                   "requests": counts.requests, "bot_requests": counts.bots, "sessions": counts.sessions,
                   "events": counts.events},
        "events_by_name": dict(counts.events_by_name),
        "rejects_by_reason": dict(reasons),
        "timings": {"total": round(stats.elapsed_s, 3), **{k: round(v, 3) for k, v in counts.seconds.items()}},
        "outputs": outputs,
        "config": {"file": run.config.file, "settings": run.config.doc.data, "rules": run.rules_paths,
                   "keep_ip": bool(run.kw.get("keep_ip")), "format": run.options.format},
    }


class _progress:
    """A rich progress line on a terminal; nothing otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = None

    def __enter__(self):  # noqa: ANN204 - returns the advance callable
        if not self.enabled:
            return lambda lines: None
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True)
        self.progress.start()
        task = self.progress.add_task("reading logs")
        return lambda lines: self.progress.update(task, description=f"{lines:,} lines read")  # type: ignore[union-attr]

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
