"""The chain's step sizes (run.py) do not change what `logtrack report` computes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from logtrack import run
from logtrack.config import Config
from logtrack.pipeline import ParseOptions, RunStats, iter_parsed
from logtrack.sources import expand_inputs

ROOT = Path(__file__).resolve().parent.parent


def _outputs(tmp_path: Path) -> tuple[list[run.StageOutput], dict[str, pa.Table]]:
    (tmp_path / "state").mkdir(exist_ok=True)
    chain = run.Chain(Config(), tmp_path / "state", rules_paths=[str(ROOT / "rules")])
    inputs = expand_inputs([str(ROOT / "sample_logs")])
    steps = list(chain.run(iter_parsed(inputs, ParseOptions(format="combined"), RunStats())))
    tables = {kind: pa.concat_tables([getattr(s, kind) for s in steps]) for kind in ("requests", "sessions", "events")}
    return steps, tables


def test_small_rules_batches_and_sliced_last_flush_give_the_same_outputs(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _, whole = _outputs(tmp_path)
    monkeypatch.setattr(run, "RULES_BATCH", 50)
    steps, sliced = _outputs(tmp_path)
    assert max(s.requests.num_rows for s in steps[-3:]) <= 50  # the last flush comes in slices
    assert whole["sessions"].num_rows and whole["events"].num_rows
    for kind, keys in (("requests", ["source", "line"]), ("sessions", ["session_id"]), ("events", ["event_id"])):
        a, b = whole[kind].sort_by([(k, "ascending") for k in keys]), sliced[kind].sort_by([(k, "ascending") for k in keys])
        assert a.equals(b), kind  # session `events` counts and engagement included


def test_session_event_counts_are_the_key_events_of_each_session(tmp_path: Path) -> None:
    _, t = _outputs(tmp_path)
    events = t["events"].to_pandas()
    key = events[~events["event_name"].str.endswith("page_view") & events["session_id"].notna()]
    expected = key.groupby("session_id").size()
    sessions = t["sessions"].to_pandas().set_index("session_id")
    got = sessions["events"]
    assert got.sum() == len(key) > 0
    assert (got[expected.index] == expected).all() and (got.drop(expected.index) == 0).all()
    assert sessions.loc[expected.index, "is_engaged"].all()  # a key event engages its session (GA4)


def test_grouped_joins_parsed_blocks_in_order_with_the_newest_watermark():
    from datetime import UTC, datetime

    from logtrack.pipeline import ParsedBatch
    from logtrack.run import grouped
    from logtrack.schema import REJECTS, REQUESTS, conform, empty

    def block(lines: list[int], mark: int | None) -> ParsedBatch:
        table = conform(pa.table({"line": pa.array(lines, pa.int64())}), REQUESTS)
        return ParsedBatch(table, empty(REJECTS), None if mark is None else datetime.fromtimestamp(mark, tz=UTC))

    blocks = [block([1, 2], 100), block([3], None), block([4, 5, 6], 300), block([7], 200), block([8], None)]
    out = list(grouped(blocks, min_rows=3))
    assert [b.requests.column("line").to_pylist() for b in out] == [[1, 2, 3], [4, 5, 6], [7, 8]]
    assert [b.watermark.timestamp() if b.watermark else None for b in out] == [100, 300, 200]
    assert list(grouped([block([1], None)], min_rows=3))[0].watermark is None


def test_report_runs_without_importing_pandas(tmp_path: Path) -> None:
    """`report` skips pyarrow's pandas probe and nothing on its path needs pandas (≈0.1 CPU-s of
    start-up); its outputs still read back in pandas afterwards."""
    import subprocess
    import sys

    out = tmp_path / "out"
    script = (
        "import sys\n"
        "from logtrack.cli import main\n"
        f"sys.argv = ['logtrack', 'report', {str(ROOT / 'sample_logs')!r}, '--rules', {str(ROOT / 'rules')!r},\n"
        f"            '-o', {str(out)!r}, '--state', {str(tmp_path / 'state')!r}, '--quiet']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "print('pandas' in sys.modules)\n"
        "import pandas as pd\n"
        f"print(len(pd.read_parquet({str(out / 'sessions')!r})))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    imported, sessions = res.stdout.split("\n")[:2]
    assert imported == "False"
    assert int(sessions) > 0


def test_pending_key_event_counts_add_up_across_steps_and_open_sessions_stay_pending() -> None:
    from logtrack.schema import SESSIONS, conform

    chain = run.Chain.__new__(run.Chain)
    chain._events_per_session = [pa.table({"session_id": ["a", "b"], "n": [2, 1]}),
                                 pa.table({"session_id": ["c", "a"], "n": [4, 3]})]
    sessions = conform(pa.table({"session_id": ["x", "a", "c"], "is_engaged": [False, False, None]}), SESSIONS)
    out = chain._with_event_counts(sessions)
    assert out["events"].to_pylist() == [0, 5, 4]
    assert out["is_engaged"].to_pylist() == [False, True, True]
    assert [t.to_pylist() for t in chain._events_per_session] == [[{"session_id": "b", "n": 1}]]
