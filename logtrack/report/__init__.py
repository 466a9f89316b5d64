"""Sinks of `logtrack report` (DESIGN §6): Parquet datasets, aggregate reports, report.html, run.json.

- `DatasetWriter`, `InputIdentity`, `run_key_for` — hive-partitioned datasets (`dataset.py`);
- `build_reports`, `REPORT_SCHEMAS`, `REPORT_DESCRIPTIONS` — aggregates over the whole dataset
  (`aggregates.py`, `dimensions.py`, `specs.py`);
- `render_html` — the self-contained report.html (`html.py`, `svg.py`, `template.html`);
- `write_run_json`, `redact` — run.json with secrets redacted (`runinfo.py`);
- `summary_lines`, `summary_renderable` — the terminal summary (`summary.py`).
"""

from __future__ import annotations

from .aggregates import build_reports, write_reports
from .dataset import DatasetWriter, InputIdentity, run_key_for
from .html import render_html
from .runinfo import redact, write_run_json
from .specs import REPORT_DESCRIPTIONS, REPORT_SCHEMAS
from .summary import summary_lines, summary_renderable

__all__ = [
    "DatasetWriter", "InputIdentity", "run_key_for", "build_reports", "write_reports", "REPORT_SCHEMAS",
    "REPORT_DESCRIPTIONS", "render_html", "write_run_json", "redact", "summary_lines", "summary_renderable",
]
