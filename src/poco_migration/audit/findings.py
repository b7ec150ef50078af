"""What the audit finds about one key, from what each side holds for it.

The contract's "exactly one place": every in-scope POCO row is under its ``source_ref``
in the Xiaomi table or in the quarantine, never both, never neither; nothing is there
without a POCO row; and a moved row reads as the contract maps its POCO row now.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from poco_migration.status import mask_email

MISSING = "missing"  # in scope on POCO, in neither place
NO_SOURCE = "no source row"  # in the target or the quarantine, with no POCO row
BOTH = "moved and quarantined"
DIFFERS = "differs"  # a moved row's column is not the contract's mapping of its POCO row
KINDS = (MISSING, NO_SOURCE, BOTH, DIFFERS)

EMAIL = re.compile(r"[^\s@<>\"']+@[^\s@<>\"']+")
SHOWN_CHARACTERS = 120


@dataclass(frozen=True)
class Finding:
    domain: str
    market: str | None  # None: no POCO row says which market it is
    source_ref: str
    kind: str
    column: str | None = None
    source: str | None = None  # the value the contract maps the POCO row to
    target: str | None = None  # the value in the Xiaomi table

    def as_json(self) -> dict[str, Any]:
        return {
            "market": self.market,
            "domain": self.domain,
            "source_ref": self.source_ref,
            "kind": self.kind,
            "column": self.column,
            "source": shown(self.source),
            "target": shown(self.target),
        }

    def __str__(self) -> str:
        where = f" {self.column}: POCO maps to {shown(self.source)!r}, Xiaomi has {shown(self.target)!r}"
        return f"{self.source_ref} {self.kind}" + (where if self.kind == DIFFERS else "")


def shown(value: str | None) -> str | None:
    """A value as a report may show it: emails masked, long text cut."""
    if value is None:
        return None
    masked = EMAIL.sub(lambda m: mask_email(m.group(0)) or "", value)
    return masked if len(masked) <= SHOWN_CHARACTERS else masked[:SHOWN_CHARACTERS] + "..."


@dataclass(frozen=True)
class Holdings:
    """What the two sides hold for one key."""

    source: Mapping[str, Any] | None  # the POCO row as the contract maps it, or None
    target: Mapping[str, Any] | None  # the Xiaomi row, or None
    quarantined: str | None  # the quarantine's market for the key, if quarantined
    held: bool  # moved, then invalid on POCO: kept as it was, by the contract


def judge(domain: str, ref: str, columns: tuple[str, ...], holds: Holdings) -> Iterator[Finding]:
    source, target = holds.source, holds.target
    market = source["row_market"] if source is not None else holds.quarantined
    if target is not None and holds.quarantined is not None:
        yield Finding(domain, market, ref, BOTH)
    if source is None:
        if target is not None or holds.quarantined is not None:
            yield Finding(domain, market, ref, NO_SOURCE)
        return
    if target is None:
        if holds.quarantined is None and source["in_scope"]:
            yield Finding(domain, market, ref, MISSING)
        return
    if holds.held:
        return
    for column in columns:
        if source[column] != target[column]:
            yield Finding(domain, market, ref, DIFFERS, column, source[column], target[column])
