"""A batch's events counted on integer codes, for the run's counts (DESIGN §2, §5).

The chain counts events per name (run.json) and key events per session id (the sessions'
`events` column). Both follow from what `RuleSet.evaluate` knows already: each event's rule
index and its request's session id code in the batch's encoding. A `bincount` over those codes
replaces hashing the events' name and session id strings again (and filtering the whole events
table to the key events first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .dictcol import DictCol, encode


@dataclass
class Tally:
    """The events of one batch, by rule and by session.

    `rule_index` holds each event's rule (an index into `names`, in output order), `first` the
    output position of each rule's first event (len(events) for rules that emitted none), and
    `sessions` each event's session id (indices aligned with the events; null at index `m`),
    or a callable making that encoding when nothing encoded the batch's session ids."""

    names: list[str]
    rule_index: np.ndarray
    first: np.ndarray
    sessions: DictCol | Callable[[], DictCol]

    @classmethod
    def empty(cls, names: list[str]) -> Tally:
        """The tally of a batch without events."""
        return cls(names, np.zeros(0, np.int64), np.zeros(len(names), np.int64),
                   DictCol(pa.array([], pa.string()), np.zeros(0, np.int64)))

    def by_name(self) -> dict[str, int]:
        """Events per name, names in the order of their first event (as a hash count of the
        event names would list them); rules sharing a name add up."""
        per_rule = np.bincount(self.rule_index, minlength=len(self.names))
        out: dict[str, int] = {}
        for rule in np.argsort(self.first, kind="stable"):
            if per_rule[rule]:
                name = self.names[rule]
                out[name] = out.get(name, 0) + int(per_rule[rule])
        return out

    def per_session(self, counted: Callable[[str], bool]) -> pa.Table | None:
        """(session_id, n): how many events of the names `counted` accepts each session id has
        (null session ids left out); None when there is none."""
        wanted = np.array([counted(name) for name in self.names], dtype=bool)
        if not len(self.rule_index) or not wanted.any():
            return None
        sessions = self.sessions if isinstance(self.sessions, DictCol) else self.sessions()
        codes = sessions.indices[wanted[self.rule_index]]
        counts = np.bincount(codes, minlength=sessions.m + 1)[:sessions.m]
        present = np.flatnonzero(counts)
        if not len(present):
            return None
        return pa.table({"session_id": sessions.values.take(pa.array(present)),
                         "n": pa.array(counts[present], pa.int64())})


def lazy_encoding(column: pa.Array | pa.ChunkedArray) -> Callable[[], DictCol]:
    """The encoding of an events column, made only if a count needs it."""
    return lambda: encode(column)
