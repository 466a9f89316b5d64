"""The delivery ledger (SQLite, standard library) and the per-destination sender lock (DESIGN §6).

Three tables, keyed by `(destination, event_id)`:
- `delivered`: the API acknowledged the event (`uncertain = 1` when the user chose to skip an
  event that was in flight at a crash, `--skip-uncertain`);
- `inflight`: written and committed *before* a batch is sent, deleted when its answer is
  recorded; rows left by an earlier run (`run` differs) are the batches in flight at a crash;
- `rejected`: the destination refused the event as invalid (reason kept); only `--retry-failed`
  sends them again.
WAL with `synchronous=NORMAL`: a committed acknowledgement survives `kill -9` of the process
(only an OS crash can lose the last transactions, which then count as uncertain or unsent).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
import uuid
from pathlib import Path

import numpy as np

from ..errors import LockedError, LogtrackError

LEDGER_FILE = "ledger.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS delivered (
    destination TEXT NOT NULL, event_id TEXT NOT NULL, at REAL NOT NULL,
    uncertain INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (destination, event_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inflight (
    destination TEXT NOT NULL, event_id TEXT NOT NULL, batch TEXT NOT NULL, run TEXT NOT NULL,
    at REAL NOT NULL, PRIMARY KEY (destination, event_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    destination TEXT NOT NULL, event_id TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (destination, event_id)) WITHOUT ROWID;
"""


class Ledger:
    """The ledger of one destination in one state directory (use from one thread)."""

    def __init__(self, state: Path, destination: str, readonly: bool = False) -> None:
        self.destination = destination
        self.run = uuid.uuid4().hex
        path = Path(state) / LEDGER_FILE
        try:
            if readonly:
                self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
            else:
                self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise LogtrackError(f"cannot open the delivery ledger {path}: {exc}") from exc

    def close(self) -> None:
        """Close the database."""
        self.conn.close()

    def classify(self, event_ids: list[str]) -> dict[str, np.ndarray]:
        """Masks over `event_ids`: `delivered`, `rejected`, `crashed` (in flight at an earlier
        run's crash) and `current` (already in flight in this run: a duplicate in the input)."""
        n = len(event_ids)
        out = {k: np.zeros(n, dtype=bool) for k in ("delivered", "rejected", "crashed", "current")}
        if not n:
            return out
        ids = json.dumps(event_ids)
        # json_each gives the array index as `key`: one query per table, no per-event round trip.
        for table, name in (("delivered", "delivered"), ("rejected", "rejected")):
            rows = self.conn.execute(
                f"SELECT j.key FROM json_each(?) j JOIN {table} t "
                "ON t.destination = ? AND t.event_id = j.value", (ids, self.destination)).fetchall()
            out[name][[r[0] for r in rows]] = True
        rows = self.conn.execute(
            "SELECT j.key, t.run = ? FROM json_each(?) j JOIN inflight t "
            "ON t.destination = ? AND t.event_id = j.value", (self.run, ids, self.destination)).fetchall()
        for key, same in rows:
            out["current" if same else "crashed"][key] = True
        return out

    def apply(self, acked: list[str] = (), rejected: list[tuple[str, str]] = (),  # type: ignore[assignment]
              released: list[str] = (), begin: tuple[str, list[str]] | None = None) -> None:  # type: ignore[assignment]
        """Record answers (acknowledged, rejected with reason, failed) and mark the next batch in
        flight, all in one transaction (one commit per batch keeps the ledger off the hot path)."""
        now = time.time()
        d = self.destination
        with self._tx():
            if acked:
                rows = [(d, e) for e in acked]
                self.conn.executemany(f"INSERT OR REPLACE INTO delivered VALUES (?, ?, {now!r}, 0)", rows)
                self.conn.executemany("DELETE FROM inflight WHERE destination = ? AND event_id = ?", rows)
                self.conn.executemany("DELETE FROM rejected WHERE destination = ? AND event_id = ?", rows)
            if rejected:
                self.conn.executemany("INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?)",
                                      [(d, e, r, now) for e, r in rejected])
                self.conn.executemany("DELETE FROM inflight WHERE destination = ? AND event_id = ?",
                                      [(d, e) for e, _ in rejected])
            if released:
                self.conn.executemany("DELETE FROM inflight WHERE destination = ? AND event_id = ?",
                                      [(d, e) for e in released])
            if begin:
                batch, ids = begin
                self.conn.executemany("INSERT OR REPLACE INTO inflight VALUES (?, ?, ?, ?, ?)",
                                      [(d, e, batch, self.run, now) for e in ids])

    def begin(self, batch: str, event_ids: list[str]) -> None:
        """Mark a batch in flight, committed before it is sent."""
        now = time.time()
        with self._tx():
            self.conn.executemany(
                "INSERT OR REPLACE INTO inflight VALUES (?, ?, ?, ?, ?)",
                [(self.destination, e, batch, self.run, now) for e in event_ids])

    def ack(self, event_ids: list[str], uncertain: bool = False) -> None:
        """Record events as acknowledged (and no longer in flight or rejected)."""
        now = time.time()
        with self._tx():
            rows = [(self.destination, e) for e in event_ids]
            self.conn.executemany(
                f"INSERT OR REPLACE INTO delivered VALUES (?, ?, {now!r}, {int(uncertain)})", rows)
            self.conn.executemany("DELETE FROM inflight WHERE destination = ? AND event_id = ?", rows)
            self.conn.executemany("DELETE FROM rejected WHERE destination = ? AND event_id = ?", rows)

    def reject(self, event_ids: list[str], reasons: list[str]) -> None:
        """Record events the destination refused as invalid, with the reason."""
        now = time.time()
        with self._tx():
            self.conn.executemany(
                "INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?)",
                [(self.destination, e, r, now) for e, r in zip(event_ids, reasons, strict=True)])
            self.conn.executemany("DELETE FROM inflight WHERE destination = ? AND event_id = ?",
                                  [(self.destination, e) for e in event_ids])

    def release(self, event_ids: list[str]) -> None:
        """Forget in-flight marks of events that failed (a plain re-run sends them)."""
        with self._tx():
            self.conn.executemany("DELETE FROM inflight WHERE destination = ? AND event_id = ?",
                                  [(self.destination, e) for e in event_ids])

    def counts(self) -> dict[str, int]:
        """Rows per table for this destination."""
        return {t: self.conn.execute(f"SELECT count(*) FROM {t} WHERE destination = ?",
                                     (self.destination,)).fetchone()[0]
                for t in ("delivered", "inflight", "rejected")}

    def ids(self, table: str) -> set[str]:
        """Event ids of one table (tests and diagnostics)."""
        assert table in ("delivered", "inflight", "rejected")
        return {r[0] for r in self.conn.execute(
            f"SELECT event_id FROM {table} WHERE destination = ?", (self.destination,))}

    def rejection_reasons(self) -> dict[str, str]:
        """event_id -> reason of every rejected event."""
        return dict(self.conn.execute(
            "SELECT event_id, reason FROM rejected WHERE destination = ?", (self.destination,)))

    def _tx(self) -> _Tx:
        return _Tx(self.conn)


class _Tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


class SenderLock:
    """An exclusive `flock` on `<state>/send-<destination>.lock`; the OS drops it with the process."""

    def __init__(self, state: Path, destination: str) -> None:
        Path(state).mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = Path(state) / f"send-{destination}.lock"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self.fd)
            raise LockedError(f"another `logtrack send --to {destination}` is running on this state "
                              f"directory (lock {self.path})") from exc
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        """Unlock (closing the descriptor releases the flock)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> SenderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
