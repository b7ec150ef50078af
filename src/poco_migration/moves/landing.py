"""Landing: the source rows a move judges, copied into temporary tables of the move's own
target transaction, so that its rules, mapping and duplicate rule run set-based there.

PostgreSQL to PostgreSQL, the rows are piped from ``COPY (...) TO STDOUT`` into ``COPY
... FROM STDIN``, binary, with no Python per row; the source query casts each value to
the landing's type, which the binary format needs exactly (a source column wider than
the contract's lands all the same). Any other pair (a SQLite source or target) streams
the rows through Python in chunks, the fastest portable way. The source only ever
answers one read-only query per batch of keys.

Two things SQL cannot judge exactly are settled while the rows land:

- **text no target can store** (a NUL, bytes that were not UTF-8: only a SQLite source
  holds them): the value is replaced by a stand-in the landing can hold and the row is
  flagged (``rules.UNSTORABLE``) for the ``invalid_text`` rule;
- **the fold key** of the duplicate rule, which must equal Python's
  ``str.strip().casefold()``: PostgreSQL's ``lower()`` folds neither ``ß`` nor ``ς`` nor
  ``ﬁ`` as casefold does, and neither database trims Unicode's white space by default.
  ASCII text folds the same in SQL (``fold_key``); only the rows whose folded column is
  not ASCII are folded in Python, into the folds table, keyed by the row's landing
  order. A market of ASCII reviews pays nothing for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

from poco_migration.moves.rules import UNSTORABLE, storable, storable_text
from poco_migration.moves.sql import CHUNK_ROWS, chunked, insert_rows, pipe

SEQ, FOLD = "land_seq", "land_fold"
ASCII_WHITESPACE = "".join(filter(str.isspace, map(chr, range(128))))


def fold(text: str) -> str:
    """What makes two texts "the same" for the duplicate rule: trimmed and case-folded."""
    return text.strip().casefold()


class ascii_fold(GenericFunction[str]):
    """``fold`` in SQL, exact for ASCII text: trimmed of Python's ASCII white space and
    lower-cased in the C collation (only A-Z change, whatever the database's locale)."""

    type = sa.Text()
    inherit_cache = True


def _trimmed(element: ascii_fold, compiler: Any, **kw: Any) -> str:
    (text,) = element.clauses
    return f"trim({compiler.process(text, **kw)}, {compiler.process(sa.literal(ASCII_WHITESPACE), **kw)})"


@compiles(ascii_fold)
def _ascii_fold(element: ascii_fold, compiler: Any, **kw: Any) -> str:
    return f"lower({_trimmed(element, compiler, **kw)})"  # SQLite's lower() changes A-Z only


@compiles(ascii_fold, "postgresql")
def _ascii_fold_postgresql(element: ascii_fold, compiler: Any, **kw: Any) -> str:
    return f'lower(({_trimmed(element, compiler, **kw)}) COLLATE "C")'


def _wide(type_: sa.types.TypeEngine[Any], exact: bool) -> sa.types.TypeEngine[Any]:
    """The landing's type for a source column: strings as text; integers as 64-bit, or where
    the rows come through Python into PostgreSQL (a SQLite source holds 1e20 or 7.5 in an
    integer column) as numeric, so that the rules judge such a number instead of COPY
    refusing the whole market. SQLite's own landing keeps any value as it is."""
    if isinstance(type_, sa.Integer):
        return sa.Numeric() if exact else sa.BigInteger()
    if isinstance(type_, sa.String):
        return sa.Text()
    return type_


@dataclass(frozen=True)
class Landing:
    """A move's landing tables: the landed rows in source order, and the Python folds of the
    rows whose folded column is not ASCII (``folded`` names it; None where no rule folds)."""

    rows: sa.Table
    folds: sa.Table
    text_columns: tuple[str, ...]
    folded: str | None
    piped: bool

    @classmethod
    def for_query(
        cls, domain: str, query: sa.Select, rules: tuple[Sequence[str], str | None], dialects: tuple[str, str]
    ) -> Landing:
        """The landing of ``query``'s rows for a domain whose rules check the text of some
        columns and fold one (``rules``), from a source into a target (their ``dialects``)."""
        text_columns, folded = rules
        piped = dialects == ("postgresql", "postgresql")
        exact = dialects[1] == "postgresql" and not piped
        metadata = sa.MetaData()
        seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite's rowid is its INTEGER key
        rows = sa.Table(
            f"poco_migration_land_{domain}",
            metadata,
            sa.Column(SEQ, seq, primary_key=True, autoincrement=True),
            *(sa.Column(c.name, _wide(c.type, exact)) for c in query.selected_columns),
            sa.Column(UNSTORABLE, sa.Boolean, nullable=False, server_default=sa.text("false")),
            prefixes=["TEMPORARY"],
        )
        folds = sa.Table(
            f"poco_migration_land_{domain}_folds",
            metadata,
            sa.Column(SEQ, seq, primary_key=True, autoincrement=False),
            sa.Column(FOLD, sa.Text),
            prefixes=["TEMPORARY"],
        )
        return cls(rows, folds, tuple(text_columns), folded, piped)

    @property
    def source_columns(self) -> list[str]:
        return [c.name for c in self.rows.columns if c.name not in (SEQ, UNSTORABLE)]

    def fold_key(self) -> sa.ColumnElement[str]:
        """The duplicate rule's key of a landed row: its Python fold, or the ASCII fold in SQL
        (read from ``rows`` outer-joined to ``folds``, see ``joined``)."""
        assert self.folded is not None  # only a domain that folds asks for the key
        return sa.func.coalesce(self.folds.c[FOLD], ascii_fold(self.rows.c[self.folded]))

    def joined(self) -> sa.FromClause:
        return self.rows.outerjoin(self.folds, self.folds.c[SEQ] == self.rows.c[SEQ])

    def fill(self, conn: Connection, source: Engine, queries: Iterable[sa.Select]) -> int:
        """Land every query's rows in order; the number of rows landed."""
        self.rows.create(conn)
        self.folds.create(conn)
        with source.connect() as src:
            for query in queries:
                if self.piped:
                    pipe(src, conn, self._typed(query), self.rows.name, self.source_columns)
                else:
                    self._stream(src, conn, query)
        if self.piped and self.folded is not None:
            self._fold_non_ascii(conn)
        return int(conn.execute(sa.select(sa.func.count()).select_from(self.rows)).scalar_one())

    def latest(self, conn: Connection, columns: Sequence[str], as_of: dt.datetime) -> dt.datetime | None:
        """The newest change among the landed rows: the next watermark. A timestamp later than
        the run itself is not believed: one row dated in the future must not hide every real
        change after it (it is simply read again next time)."""
        newest = [sa.func.max(sa.case((self.rows.c[c] <= as_of, self.rows.c[c]))) for c in columns]
        seen = [value for value in conn.execute(sa.select(*newest)).one() if value is not None]
        return max(seen, default=None)

    def _typed(self, query: sa.Select) -> sa.Select:
        """The query with each value cast to its landing column's type (binary COPY's need)."""
        cast = [sa.cast(c, self.rows.c[c.name].type).label(c.name) for c in query.selected_columns]
        return query.with_only_columns(*cast, maintain_column_froms=True)

    def _stream(self, src: Connection, conn: Connection, query: sa.Select) -> None:
        result = src.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(query)
        names = list(result.keys())
        checked = [names.index(c) for c in self.text_columns]
        folded = names.index(self.folded) if self.folded is not None else None
        last = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(self.rows.c[SEQ]), 0))).scalar_one())
        for chunk in chunked(result.tuples(), CHUNK_ROWS):
            landed, folds = [], []
            for seq, row in enumerate(chunk, start=last + 1):
                bad = [not storable_text(value) for value in row]
                values = [storable(value) if unfit else value for value, unfit in zip(row, bad, strict=True)]
                unstorable = any(bad[i] for i in checked)
                landed.append({SEQ: seq, **dict(zip(names, values, strict=True)), UNSTORABLE: unstorable})
                text = row[folded] if folded is not None else None
                if isinstance(text, str) and not text.isascii():
                    folds.append({SEQ: seq, FOLD: storable(fold(text))})
            insert_rows(conn, self.rows, landed)
            insert_rows(conn, self.folds, folds)
            last += len(chunk)

    def _fold_non_ascii(self, conn: Connection) -> None:
        """Fold in Python the landed rows whose folded column is not ASCII, a page at a time."""
        assert self.folded is not None  # called only where a rule folds
        seq, text = self.rows.c[SEQ], self.rows.c[self.folded]
        non_ascii = sa.select(seq, text).where(text.is_not(None), sa.func.octet_length(text) != sa.func.length(text))
        last = 0
        while page := conn.execute(non_ascii.where(seq > last).order_by(seq).limit(CHUNK_ROWS)).all():
            insert_rows(conn, self.folds, [{SEQ: n, FOLD: fold(str(value))} for n, value in page])
            last = page[-1][0]
