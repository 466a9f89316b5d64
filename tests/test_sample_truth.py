"""The committed sample (`sample_logs/`) through the whole chain gives its documented truth.

The truth is the JSON block of `sample_logs/README.md` (written by the generator that made the
logs): visitors, sessions and pageviews of people. The chain runs as `logtrack report` runs it
(format auto-detected, `rules/`, default config), so this fails when sessions count lines without
a request, bots, static files or API calls as visits or pages.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from logtrack.config import Config
from logtrack.pipeline import ParseOptions, RunStats, iter_parsed
from logtrack.run import Chain
from logtrack.sessions import pageview_mask
from logtrack.sources import expand_inputs

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_logs"


def truth() -> dict:
    text = (SAMPLE / "README.md").read_text()
    return json.loads(re.search(r"```json\n(.*?)\n```", text, re.S).group(1))


@pytest.fixture(scope="module")
def chain_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, pa.Table, RunStats]:
    chain = Chain(Config(), tmp_path_factory.mktemp("state"), rules_paths=[str(ROOT / "rules")])
    stats = RunStats()
    steps = list(chain.run(iter_parsed(expand_inputs([str(SAMPLE)]), ParseOptions(), stats)))
    requests = pa.concat_tables([s.requests for s in steps])
    sessions = pa.concat_tables([s.sessions for s in steps])
    return requests, sessions, stats


def test_truth_block_is_what_the_readme_says():
    t = truth()
    assert (t["visitors"], t["sessions"], t["pageviews"]) == (190, 317, 1220)


def test_sessions_visitors_and_pageviews_match_the_truth(chain_output):
    requests, sessions, stats = chain_output
    t = truth()
    assert stats.total("lines_read") == t["lines"]
    assert sessions.num_rows == t["sessions"]
    assert len(pc.unique(sessions["anonymous_id"].drop_null())) == t["visitors"]
    assert pc.sum(sessions["pageviews"]).as_py() == t["pageviews"]
    assert int(pageview_mask(requests).sum()) == t["pageviews"]  # no pageview outside a session
    # Every request row of a session is counted in exactly one SESSIONS row.
    in_sessions = requests.filter(pc.is_valid(requests["session_id"]))
    assert in_sessions.num_rows == pc.sum(sessions["requests"]).as_py()
    assert set(pc.unique(in_sessions["session_id"]).to_pylist()) == set(sessions["session_id"].to_pylist())


def test_lines_without_a_request_and_api_calls_stay_outside_visits(chain_output):
    requests, sessions, _ = chain_output
    t = truth()
    no_request = requests.filter(pc.is_null(requests["path"]))
    assert no_request.num_rows == t["unparsable_request_lines"]
    assert no_request["session_id"].null_count == no_request.num_rows  # kept, with no session
    assert sorted(set(no_request["status"].to_pylist())) == [400]
    api = pc.starts_with(requests["path"], "/api/")
    assert not np.any(pageview_mask(requests.filter(pc.fill_null(api, False))))
    # The Android app's 3 sessions are API calls only: sessions, but without a pageview.
    no_pages = sessions.filter(pc.equal(sessions["pageviews"], 0))
    assert no_pages.num_rows == t["sessions_by_entry"]["app"]
    assert all(p.startswith("/api/") for p in no_pages["landing_path"].to_pylist())
