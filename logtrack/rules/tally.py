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
import pyarrow.compute as pc

from .dictcol import DictCol


@dataclass
class Tally:
    """The events of one batch, by rule and by session.

    `rule_index` holds each event's rule (an index into `names`, in output order), `first` the
    output position of each rule's first event (len(events) for rules that emitted none), and
    `sessions` each event's session id code (indices aligned with the events; null at index
    `m`), or the events' session id column when nothing encoded the batch's session ids."""

    names: list[str]
    rule_index: np.ndarray
    first: np.ndarray
    sessions: DictCol | pa.Array | pa.ChunkedArray

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
        keep = wanted[self.rule_index]
        if not isinstance(self.sessions, DictCol):
            # No codes: the counted events' ids are hashed (only theirs, not every event's).
            ids = self.sessions.filter(pa.array(keep)).drop_null()
            if not len(ids):
                return None
            vc = pc.value_counts(ids)
            return pa.table({"session_id": vc.field("values"), "n": vc.field("counts")})
        codes = self.sessions.indices[keep]
        counts = np.bincount(codes, minlength=self.sessions.m + 1)[:self.sessions.m]
        present = np.flatnonzero(counts)
        if not len(present):
            return None
        return pa.table({"session_id": self.sessions.values.take(pa.array(present)),
                         "n": pa.array(counts[present], pa.int64())})
