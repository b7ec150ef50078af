"""The retention archive of the whole POCO source, written at the shutdown.

One gzip-compressed CSV per source table, streamed (never a table in memory), and a
``SHA256SUMS`` manifest in the format ``sha256sum -c`` reads, so that whoever keeps
the archive can prove years later that it is what the migration left. Users' emails
are kept masked (``status.mask_email``): the archive is a record of the platform, not
a mailing list, and is the one output that would otherwise hold them.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
from pathlib import Path

import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.status import mask_email

CHUNK_ROWS = 10_000
PERSONAL = {"email"}


def export_source(source: sa.Engine, out_dir: str | os.PathLike[str]) -> dict[str, int]:
    """Write every source table and the manifest into ``out_dir``; return rows per table."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    sums: list[str] = []
    with source.connect() as conn:
        for table in schemas.SOURCE.sorted_tables:
            path = out / f"{table.name}.csv.gz"
            counts[table.name] = _write_table(conn, table, path)
            sums.append(f"{_sha256(path)}  {path.name}")
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="utf-8")
    return counts


def _write_table(conn: sa.Connection, table: sa.Table, path: Path) -> int:
    rows = 0
    order = list(table.primary_key.columns) or list(table.columns)
    result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(
        sa.select(table).order_by(*order)
    )
    # mtime=0: the same source gives the same bytes, and so the same checksum.
    with gzip.GzipFile(path, "wb", mtime=0) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.columns.keys())
        masked = [column.name in PERSONAL for column in table.columns]
        for row in result.tuples():
            writer.writerow([mask_email(v) if personal else v for v, personal in zip(row, masked, strict=True)])
            rows += 1
    return rows


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(out_dir: str | os.PathLike[str]) -> list[str]:
    """The files whose checksum no longer matches the manifest (empty: the archive is intact)."""
    out = Path(out_dir)
    bad = []
    for line in (out / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        expected, name = line.split("  ", 1)
        if _sha256(out / name) != expected:
            bad.append(name)
    return bad
