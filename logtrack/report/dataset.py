"""Hive-partitioned Parquet datasets under `-o DIR` (DESIGN §6 "Parquet").

Layout: `DIR/<kind>/date=YYYY-MM-DD/part-<run_key>.parquet` (zstd), kinds `requests`, `sessions`,
`events`, `rejects`, each file holding exactly the kind's columns from `schema.py` (the `date` is
the partition only). A run owns the parts named after its run key, a hash of its input set:

- rows stream in by batch; each (kind, date) has one open part file that receives row groups.
  Buffers are bounded twice: a part flushes at `row_group_rows`, and when every part's buffers
  together exceed `buffer_bytes` the largest flushes first. Without the second bound a run of a
  few days kept up to a row group per open (kind, date) — 300 MB of Arrow on a 1 M-line log;
- everything is written aside in `DIR/.tmp-<run_key>-<nonce>/` (hidden: pyarrow, pandas and a
  `**/*.parquet` glob ignore it) and `commit()` renames the parts into place, replacing this run
  key's previous parts and deleting the ones of dates the run no longer produced; other runs'
  parts are never touched. A crash leaves only the hidden staging directory, removed by
  `abort()` or by the next commit of the same run key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import re
import shutil
import uuid
import zoneinfo
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import LogtrackError, UsageError
from ..schema import ENRICHED_REQUESTS, EVENTS, REJECTS, SESSIONS, conform, empty
from .parquetopts import writer_options

KIND_SCHEMAS: dict[str, pa.Schema] = {
    "requests": ENRICHED_REQUESTS,
    "sessions": SESSIONS,
    "events": EVENTS,
    "rejects": REJECTS,
}
# The column whose local date picks the partition; rejects have no timestamp in the schema, so
# they go to the run's date unless the caller's table carries a `ts` column (the line's time).
TIME_COLUMNS = {"requests": "ts", "sessions": "start", "events": "ts", "rejects": "ts"}

HEAD_BYTES = 64 * 1024
MAX_RUNS = 64  # date runs per written table appended as slices; more are sorted
COPY_BELOW = 8192  # rows: smaller slices of a larger table are copied before buffering
_RUN_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")


@dataclass(frozen=True)
class InputIdentity:
    """What identifies one input of a run: where it is, how big, and how it starts.

    `head_hash` hashes the file's bytes up to its first newline (at most 64 KiB): a log that grew
    since the last run keeps its identity (a re-run replaces the earlier parts instead of adding
    duplicates), a rotated file with new content gets a new one. `start` is the byte offset the
    run read from (incremental runs read a file's new tail: a different slice, a different run).
    `size` is recorded for run.json but is not part of the run key, for the same reason.
    """

    path: str
    size: int
    head_hash: str
    start: int = 0

    @classmethod
    def of(cls, path: str | os.PathLike[str], start: int = 0) -> InputIdentity:
        """Identify the file at `path` (resolved to an absolute path)."""
        p = Path(path).resolve()
        with open(p, "rb") as f:
            head = f.read(HEAD_BYTES)
            size = os.fstat(f.fileno()).st_size
        nl = head.find(b"\n")
        if nl >= 0:
            head = head[: nl + 1]
        return cls(str(p), size, hashlib.blake2b(head, digest_size=16).hexdigest(), start)


def run_key_for(inputs: list[InputIdentity]) -> str:
    """A 16-hex-digit key for a set of inputs (order does not matter)."""
    h = hashlib.blake2b(digest_size=8)
    for ident in sorted(set(inputs), key=lambda i: (i.path, i.start, i.head_hash)):
        h.update(f"{ident.path}\0{ident.start}\0{ident.head_hash}\n".encode())
    return h.hexdigest()


def part_name(run_key: str, seq: int) -> str:
    """The file name of a run's `seq`-th part in one partition (seq > 0 only when reopened)."""
    return f"part-{run_key}.parquet" if seq == 0 else f"part-{run_key}-{seq}.parquet"


def _publish(tmp: Path, final: Path) -> None:
    """Rename a staged part into place (atomic: same file system, replaces an older part)."""
    for attempt in (1, 2):
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, final)
            return
        except FileNotFoundError:
            # Another run's commit may have just removed this partition directory as empty.
            if attempt == 2 or not tmp.exists():
                raise


def _fit(table: pa.Table, kind: str) -> pa.Table:
    """`conform(table, KIND_SCHEMAS[kind])`, without rebuilding a table that has that shape already
    (the chain's outputs do: a name lookup per column and a new schema per write, for nothing)."""
    target = _CONFORMED.get(kind)
    if target is None:
        target = _CONFORMED[kind] = empty(KIND_SCHEMAS[kind]).schema
    return table if table.schema.equals(target, check_metadata=True) else conform(table, KIND_SCHEMAS[kind])


_CONFORMED: dict[str, pa.Schema] = {}


def _own(data: pa.Table, start: int, stop: int) -> pa.Table:
    """Rows start:stop of `data`: a zero-copy slice, or a copy when it is a small part of the
    table, so that a few rows buffered for a straggling date do not pin a whole step's buffers
    (copying every slice would cost a sixth of the write time)."""
    n = stop - start
    part = data.slice(start, n)
    if n >= COPY_BELOW or 4 * n >= data.num_rows:
        return part
    # Copy the slice, not the table: `take` on a chunked table first concatenates every chunk
    # of every column (the whole step, 40 MB, to keep a few rows).
    return part.take(pa.array(np.arange(n)))


@dataclass
class _Part:
    """One part file being written: a staging path, its final path, buffered row groups."""

    tmp: Path
    final: Path
    schema: pa.Schema
    options: dict[str, Any]
    writer: pq.ParquetWriter | None = None
    buffer: list[pa.Table] = field(default_factory=list)
    buffered: int = 0
    buffered_bytes: int = 0
    rows: int = 0

    def flush(self) -> None:
        if not self.buffered and self.writer is not None:
            return
        if self.writer is None:
            self.tmp.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.tmp, self.schema, **self.options)
        if self.buffered:
            data = pa.concat_tables(self.buffer) if len(self.buffer) > 1 else self.buffer[0]
            self.writer.write_table(data, row_group_size=max(self.buffered, 1))
        self.buffer, self.buffered, self.buffered_bytes = [], 0, 0

    def close(self) -> None:
        self.flush()
        assert self.writer is not None
        self.writer.close()
        self.writer = None
        # fsync before the rename so a power cut cannot leave a renamed but empty part.
        fd = os.open(self.tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class DatasetWriter:
    """Write one run's rows into the datasets under `out_dir`; `commit()` publishes them.

    Use as a context manager (commit on success, abort on an exception) or call `commit()` /
    `abort()` yourself. `row_group_rows` bounds the rows buffered per part, `buffer_bytes` the
    bytes buffered by all parts together (the largest buffer flushes first, as a smaller row
    group); `max_open_files` bounds open part files (an evicted partition continues in a new part
    `part-<key>-N`).
    """

    def __init__(self, out_dir: Path, run_key: str, timezone: str = "UTC", *,
                 row_group_rows: int = 128 * 1024, buffer_bytes: int = 32 << 20, max_open_files: int = 64,
                 run_date: dt.date | None = None) -> None:
        if not _RUN_KEY.match(run_key):
            raise UsageError(f"invalid run key {run_key!r}: letters, digits and _ only")
        try:
            tz = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
            raise UsageError(f"unknown time zone {timezone!r}") from e
        self.out_dir = Path(out_dir)
        self.run_key = run_key
        self.timezone = timezone
        self.run_date = run_date or dt.datetime.now(tz).date()
        self.row_group_rows = row_group_rows
        self.buffer_bytes = buffer_bytes
        self._buffered_bytes = 0
        self.max_open_files = max_open_files
        self._staging = self.out_dir / f".tmp-{run_key}-{uuid.uuid4().hex[:8]}"
        self._open: OrderedDict[tuple[str, str], _Part] = OrderedDict()
        self._done: list[_Part] = []
        self._seq: dict[tuple[str, str], int] = {}
        self._seen: set[str] = set()
        self.rows: dict[str, int] = {}
        self._state = "open"

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._state != "open":
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def write(self, kind: str, table: pa.Table | pa.RecordBatch) -> None:
        """Append `table` (any column superset of the kind's schema) to the kind's dataset."""
        if kind not in KIND_SCHEMAS:
            raise ValueError(f"unknown dataset kind {kind!r}; expected one of {sorted(KIND_SCHEMAS)}")
        if self._state != "open":
            raise LogtrackError(f"dataset writer already {self._state}")
        self._seen.add(kind)
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if table.num_rows == 0:
            return
        days = self._days(kind, table)
        data = _fit(table, kind)
        codes = days.cast(pa.int32()).to_numpy()
        starts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
        # Buffered bytes are estimated per row from one `nbytes` of the whole table: `nbytes` of
        # each slice walks every column's byte ranges again (~1 ms per slice of a step).
        row_bytes = data.nbytes / data.num_rows
        if len(starts) < MAX_RUNS:
            # Rows come roughly in time order (a step concatenates a few time-sorted outputs), so
            # each date's rows form a few runs: append them as zero-copy slices, in order.
            bounds = [0, *starts.tolist(), len(codes)]
            for a, b in itertools.pairwise(bounds):
                self._append(kind, days[a].as_py(), _own(data, a, b), row_bytes)
        else:
            # Otherwise one stable sort (rather than a filter per date) keeps each date's rows in order.
            order = pc.sort_indices(days)
            data, days = data.take(order), days.take(order)
            counts = pc.value_counts(days)
            start = 0
            for day, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(),
                              strict=True):
                self._append(kind, day, _own(data, start, start + n), row_bytes)
                start += n
        self.rows[kind] = self.rows.get(kind, 0) + table.num_rows

    def _days(self, kind: str, table: pa.Table) -> pa.Array:
        """The local date of every row as date32 (the run's date where there is no time)."""
        col = TIME_COLUMNS[kind]
        fallback = pa.scalar(self.run_date, pa.date32())
        if col not in table.column_names or not pa.types.is_timestamp(table.schema.field(col).type):
            return pa.repeat(fallback, table.num_rows)
        ts = table.column(col).combine_chunks()
        if self.timezone == "UTC":
            # UTC wall-clock time is the stored value: no time-zone lookups (10× cheaper).
            local = ts.cast(pa.timestamp(ts.type.unit))
            return pc.fill_null(local.cast(pa.date32()), fallback)
        if ts.type.tz is None:
            ts = pc.assume_timezone(ts, "UTC")
        local = pc.local_timestamp(ts.cast(pa.timestamp("us", tz=self.timezone)))
        return pc.fill_null(local.cast(pa.date32()), fallback)

    def _append(self, kind: str, day: dt.date, data: pa.Table, row_bytes: float) -> None:
        key = (kind, day.isoformat())
        part = self._open.get(key)
        if part is None:
            part = self._new_part(key)
        else:
            self._open.move_to_end(key)
        size = round(row_bytes * data.num_rows)
        part.buffer.append(data)
        part.buffered += data.num_rows
        part.buffered_bytes += size
        part.rows += data.num_rows
        self._buffered_bytes += size
        if part.buffered >= self.row_group_rows:
            self._flush(part)
        while self._buffered_bytes > self.buffer_bytes:
            self._flush(max(self._open.values(), key=lambda p: p.buffered_bytes))

    def _flush(self, part: _Part) -> None:
        self._buffered_bytes -= part.buffered_bytes
        part.flush()

    def _new_part(self, key: tuple[str, str]) -> _Part:
        while len(self._open) >= self.max_open_files:
            _, old = self._open.popitem(last=False)
            self._buffered_bytes -= old.buffered_bytes
            old.close()
            self._done.append(old)
        seq = self._seq.get(key, -1) + 1
        self._seq[key] = seq
        kind, day = key
        rel = Path(kind) / f"date={day}" / part_name(self.run_key, seq)
        schema = conform(empty(KIND_SCHEMAS[kind]), KIND_SCHEMAS[kind]).schema
        part = _Part(self._staging / rel, self.out_dir / rel, schema, writer_options(kind, schema))
        self._open[key] = part
        return part

    def commit(self) -> dict[str, int]:
        """Publish the run: rename its parts into place, drop its stale parts; rows per kind."""
        if self._state != "open":
            raise LogtrackError(f"dataset writer already {self._state}")
        try:
            for kind in self._seen:
                # A kind written with no rows at all still gets an empty part, so readers find
                # the dataset and its schema (DuckDB fails on a glob that matches nothing).
                if kind not in self.rows:
                    self._new_part((kind, self.run_date.isoformat()))
            while self._open:
                _, part = self._open.popitem(last=False)
                self._buffered_bytes -= part.buffered_bytes
                part.close()
                self._done.append(part)
            published = set()
            for part in self._done:
                _publish(part.tmp, part.final)
                published.add(part.final)
            self._remove_stale(published)
        except BaseException:
            self.abort()
            raise
        shutil.rmtree(self._staging, ignore_errors=True)
        for old in self.out_dir.glob(f".tmp-{self.run_key}-*"):
            shutil.rmtree(old, ignore_errors=True)  # left by a crashed run of the same inputs
        self._state = "committed"
        return {kind: self.rows.get(kind, 0) for kind in sorted(self._seen)}

    def _remove_stale(self, published: set[Path]) -> None:
        """Delete this run key's parts that this run did not produce, in every kind and date."""
        for kind in KIND_SCHEMAS:
            base = self.out_dir / kind
            if not base.is_dir():
                continue
            for pattern in (part_name(self.run_key, 0), f"part-{self.run_key}-*.parquet"):
                for path in base.glob(f"date=*/{pattern}"):
                    if path not in published:
                        path.unlink()
                        try:
                            path.parent.rmdir()  # only succeeds when the partition is now empty
                        except OSError:
                            pass

    def abort(self) -> None:
        """Discard everything this run wrote; the published datasets are left as they were."""
        for part in list(self._open.values()) + self._done:
            if part.writer is not None:
                try:
                    part.writer.close()
                except Exception:  # noqa: BLE001 - closing a broken writer must not mask the cause
                    pass
                part.writer = None
        self._open.clear()
        self._done.clear()
        shutil.rmtree(self._staging, ignore_errors=True)
        self._state = "aborted"

    @property
    def files(self) -> list[Path]:
        """The final paths of the parts written so far (published only after `commit()`)."""
        return sorted({p.final for p in self._done} | {p.final for p in self._open.values()})
