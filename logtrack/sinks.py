"""Single-file sinks: a Parquet file written batch by batch, atomically (write aside, rename)."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .schema import conform

ROW_GROUP_ROWS = 128 * 1024
# Columns whose values repeat (worth a dictionary) and whose min/max help readers skip row groups;
# statistics on long free-text columns cost time and say nothing useful.
_DICTIONARY = ["client_ip", "method", "scheme", "host", "protocol", "referer", "user_agent", "remote_user",
               "source", "path", "event_name", "reason", "browser", "os", "device", "channel"]
_STATISTICS = ["ts", "status", "line", "event_name", "start"]


class ParquetFileSink:
    """Stream tables of one schema into a zstd Parquet file; it appears only on `close()`."""

    def __init__(self, path: str | os.PathLike[str], schema: pa.Schema) -> None:
        self.path = Path(path)
        self.schema = conform(schema.empty_table(), schema).schema
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        names = set(self.schema.names)
        self.writer = pq.ParquetWriter(
            self.tmp, self.schema, compression="zstd",
            use_dictionary=[c for c in _DICTIONARY if c in names],
            write_statistics=[c for c in _STATISTICS if c in names],
        )
        self.rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, table: pa.Table) -> None:
        """Append a batch (conformed to the sink's schema); rows are grouped ~128k per row group."""
        if table.num_rows:
            self._pending.append(conform(table, self.schema))
            self._pending_rows += table.num_rows
            self.rows += table.num_rows
            if self._pending_rows >= ROW_GROUP_ROWS:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            self.writer.write_table(pa.concat_tables(self._pending), row_group_size=max(self._pending_rows, 1))
            self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        """Finish the file and move it into place."""
        self._flush()
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the partial file."""
        self._pending = []
        self.writer.close()
        self.tmp.unlink(missing_ok=True)
