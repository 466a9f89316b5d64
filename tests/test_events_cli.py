"""`logtrack events`: the events table as Parquet and as JSON lines carry the same events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from logtrack.cli import main
from logtrack.eventio import json_lines
from logtrack.schema import EVENTS, conform

ROOT = Path(__file__).resolve().parents[1]
LOG = str(ROOT / "sample_logs" / "shop-access.log")


def test_json_lines_and_parquet_agree(tmp_path: Path) -> None:
    out = tmp_path / "events.parquet"
    res = CliRunner().invoke(main, ["events", LOG, "--rules", str(ROOT / "rules"), "-o", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    res = CliRunner().invoke(main, ["events", LOG, "--rules", str(ROOT / "rules"), "-o", "-", "--quiet"])
    assert res.exit_code == 0
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(records) == table.num_rows > 0
    by_id = {r["event_id"]: r for r in records}
    for row in table.to_pylist():
        rec = by_id[row["event_id"]]
        assert rec["event_name"] == row["event_name"] and rec["line"] == row["line"]
        assert rec["properties"] == json.loads(row["properties_json"])
        assert datetime.fromisoformat(rec["ts"].replace("Z", "+00:00")) == row["ts"]
    product = next(r for r in records if r["event_name"] == "server_view_product")
    assert isinstance(product["properties"]["product_id"], int)  # declared types survive


def test_json_lines_escape_and_leave_out_nulls() -> None:
    t = conform(pa.table({
        "event_id": ["a", "b"], "event_name": ["x", "y"],
        "ts": pa.array([datetime(2026, 1, 2, 3, 4, 5, 6007, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)]),
        "user_agent": ['q"\\\n\té', None], "line": [3, None],
        "properties_json": ['{"n":1}', None],
    }), EVENTS)
    first, second = (json.loads(s) for s in json_lines(t).to_pylist())
    assert first == {"event_id": "a", "event_name": "x", "ts": "2026-01-02T03:04:05.006007Z",
                     "user_agent": 'q"\\\n\té', "line": 3, "properties": {"n": 1}}
    assert second == {"event_id": "b", "event_name": "y", "ts": "2026-01-02T03:04:05Z", "properties": {}}
