"""Golden files: parsed rows of a sample log compared with a reviewed JSON file under tests/golden/.

Regenerate after a deliberate change with `LOGTRACK_UPDATE_GOLDEN=1 pytest …`, then read the
diff before committing it: a golden file is only as good as its review.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa

from logtrack.formats import get_format
from logtrack.lines import split_lines
from logtrack.sources import Block, Input, iter_blocks, open_input

GOLDEN = Path(__file__).parent / "golden"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FORMATS = SHARED / "formats"


def rows_for_golden(table: pa.Table, drop: tuple[str, ...] = ("source",)) -> list[dict]:
    """Rows as JSON-ready dicts: timestamps in ISO, maps as sorted dicts, nulls left out."""
    out = []
    for row in table.drop_columns([c for c in drop if c in table.column_names]).to_pylist():
        clean = {}
        for key, value in row.items():
            if value is None:
                continue
            if hasattr(value, "isoformat"):
                value = value.isoformat()
            elif isinstance(value, list) and value and isinstance(value[0], tuple):
                value = dict(sorted(value))
            elif isinstance(value, list) and not value:
                continue
            clean[key] = value
        out.append(clean)
    return out


def check_golden(name: str, data: object) -> None:
    """Assert `data` equals tests/golden/<name>.json (written when LOGTRACK_UPDATE_GOLDEN=1)."""
    path = GOLDEN / f"{name}.json"
    text = json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("LOGTRACK_UPDATE_GOLDEN") == "1" or not path.exists():
        if os.environ.get("CI") == "true" and not path.exists():
            raise AssertionError(f"golden file {path} is missing (generate it locally and review it)")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert json.loads(text) == expected, f"output differs from {path}; rerun with LOGTRACK_UPDATE_GOLDEN=1 and review"


def parse_file(path: str | Path, fmt_name: str) -> tuple[pa.Table, pa.Table]:
    """Parse a sample through the real sources and line splitter, state carried across blocks."""
    fmt = get_format(fmt_name)
    state = fmt.new_state()
    requests, rejects = [], []
    for block in iter_blocks(open_input(Input(str(path))), str(path)):
        parsed = fmt.parse(split_lines(block), state)
        requests.append(parsed.requests)
        rejects.append(parsed.rejects)
    return pa.concat_tables(requests), pa.concat_tables(rejects)


def parse_text(text: str, fmt_name: str) -> tuple[list[dict], list[dict]]:
    """Rows (golden style) and rejects of a few lines given as one string."""
    fmt = get_format(fmt_name)
    parsed = fmt.parse(split_lines(Block("t", 1, text.encode("utf-8"))), fmt.new_state())
    return rows_for_golden(parsed.requests), parsed.rejects.to_pylist()
