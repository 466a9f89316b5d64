"""Single-file sinks: a Parquet file written batch by batch, atomically (write aside, rename)."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .schema import conform


class ParquetFileSink:
    """Stream tables of one schema into a zstd Parquet file; it appears only on `close()`."""

    def __init__(self, path: str | os.PathLike[str], schema: pa.Schema) -> None:
        self.path = Path(path)
        self.schema = conform(schema.empty_table(), schema).schema
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        """Append a batch (conformed to the sink's schema)."""
        if table.num_rows:
            self.writer.write_table(conform(table, self.schema))
            self.rows += table.num_rows

    def close(self) -> None:
        """Finish the file and move it into place."""
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the partial file."""
        self.writer.close()
        self.tmp.unlink(missing_ok=True)
