"""run.json: what a run read, kept, rejected and how long it took, with secrets redacted.

The CLI builds the dict; by convention (report.html and the summary read these keys):

    {
      "run_key": "…", "started_at": "…", "finished_at": "…", "timezone": "UTC",
      "inputs": [{"path": "…", "size": 123, "lines": 456}],
      "counts": {"lines": …, "parsed": …, "rejected": …, "skipped": …,
                 "requests": …, "sessions": …, "events": …},   # counts per stage, in order
      "rejects_by_reason": {"reason": n},
      "timings": {"parse": 1.2, "sessions": 0.3, …},           # seconds per stage
      "outputs": {"requests": rows, …},                          # DatasetWriter.commit()
      "config": {…}                                              # the effective configuration
    }

`write_run_json` adds `logtrack_version` and redacts, at any depth, the value of every key whose
name contains secret, token, key, password, api, salt or auth (`run_key` excepted), and
`name=value` secrets inside strings (URLs with `?api_secret=…`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from .. import __version__

REDACTED = "***"
SECRET_KEY = re.compile(r"secret|token|key|passw|api|salt|auth|credential", re.IGNORECASE)
NOT_SECRET = {"run_key"}
_SECRET_IN_TEXT = re.compile(
    r"(?i)\b([\w-]*(?:secret|token|key|passw|api|auth)[\w-]*)=([^&\s#;,]+)")


def redact(value: Any, key: str | None = None) -> Any:
    """A copy of `value` with secrets replaced by "***" (see the module docstring)."""
    if key is not None and key not in NOT_SECRET and SECRET_KEY.search(key) and value not in (None, ""):
        if not isinstance(value, dict | list | tuple) or value:
            return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}={REDACTED}", value)
    return value


def _default(value: Any) -> Any:
    """JSON for the values a run collects: paths, times, numpy and Arrow scalars, sets."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "as_py"):  # pyarrow scalar
        return value.as_py()
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return str(value)


def write_run_json(out_dir: Path, info: dict[str, Any]) -> Path:
    """Write `out_dir/run.json` (atomically) from `info`, secrets redacted; return its path."""
    # Round-trip through JSON first so dataclasses and paths are plain data before redaction.
    plain = json.loads(json.dumps(info, default=_default))
    data = {"logtrack_version": __version__, **redact(plain)}
    path = Path(out_dir) / "run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".run.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
