"""Sinks of `logtrack report` (DESIGN §6): Parquet datasets, aggregate reports, report.html, run.json.

- `DatasetWriter`, `InputIdentity`, `run_key_for` — hive-partitioned datasets (`dataset.py`);
- `build_reports`, `REPORT_DESCRIPTIONS` — aggregates over the whole dataset (`aggregates.py`);
- `render_html` — the self-contained report.html (`html.py`);
- `write_run_json` — run.json with secrets redacted (`runinfo.py`);
- `summary_lines`, `summary_renderable` — the terminal summary (`summary.py`).
"""

from __future__ import annotations

from .dataset import DatasetWriter, InputIdentity, run_key_for

__all__ = ["DatasetWriter", "InputIdentity", "run_key_for"]
