"""The audit of one domain: the POCO source against the Xiaomi target, straight from both.

It reads the source tables, the Xiaomi tables, the quarantine and the held rows; never
the stage, never the move's rules or mapping (``contract`` writes the mapping out
again). Rows are compared by range checksums (``ranges``); quarantined rows, which the
source counts and the Xiaomi tables do not hold, are looked up one by one on the source
and taken out of its sums, so that a quarantine spread over every range does not make
every range differ. Rows the contract lets differ from "in scope, moved as mapped now"
(moved, then left scope or held) make their range differ and are judged row by row
(``findings``), like any other.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from poco_migration import schemas
from poco_migration.audit.contract import MAPPINGS, Mapping, market_of
from poco_migration.audit.findings import Finding, Holdings, judge
from poco_migration.audit.ranges import Buckets, Side, bisect
from poco_migration.audit.values import prepare
from poco_migration.plan import Plan
from poco_migration.refs import ref_ids, source_ref

log = logging.getLogger(__name__)

LISTED = 50  # findings kept per market and domain for the report; all are counted
LOOKUP_CHUNK = 500

Key = tuple[int, ...]


@dataclass
class DomainAudit:
    domain: str
    compared: Counter[str] = field(default_factory=Counter)  # POCO rows compared, per market
    counts: Counter[tuple[str | None, str]] = field(default_factory=Counter)  # (market, kind)
    listed: dict[str | None, list[Finding]] = field(default_factory=dict)
    held: Counter[str | None] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)  # ranges, differing ranges, rows read
    seconds: float = 0.0

    def add(self, finding: Finding) -> None:
        self.counts[(finding.market, finding.kind)] += 1
        kept = self.listed.setdefault(finding.market, [])
        if len(kept) < LISTED:
            kept.append(finding)

    def differences(self, market: str | None) -> int:
        return sum(n for (m, _), n in self.counts.items() if m == market)


def _key(row: Any, mapping: Mapping) -> Key:
    return (row.k1,) if mapping.key_count == 1 else (row.k1, row.k2)


def _target_rows(mapping: Mapping) -> sa.Subquery:
    """The Xiaomi rows with whether each is held (moved, then invalid on POCO). The sums do not
    read ``held``, so PostgreSQL drops the join from them (held's key makes it unique)."""
    rows = mapping.target().subquery("xiaomi_rows")
    held = schemas.held
    joined = rows.outerjoin(held, sa.and_(held.c.domain == mapping.domain, held.c.source_ref == rows.c.ref))
    return sa.select(rows, held.c.source_ref.is_not(None).label("held")).select_from(joined).subquery("xiaomi")


def _sides(mapping: Mapping, plan: Plan, src: Connection, tgt: Connection) -> tuple[Side, Side]:
    keys, typed = ("k1", "k2")[: mapping.key_count], src.dialect.name == tgt.dialect.name == "postgresql"
    poco = mapping.source(plan).subquery("poco")
    xiaomi = _target_rows(mapping)
    in_scope = sa.func.coalesce(poco.c.in_scope, sa.false())
    entries = mapping.target_entries().subquery("entries") if typed and mapping.target_entries else None
    return (
        Side(src, poco, in_scope, keys, mapping.kinds, ("row_market", "in_scope"), typed),
        Side(tgt, xiaomi, sa.true(), keys, mapping.kinds, ("held",), typed, entries),
    )


def _quarantined(tgt: Connection, domain: str) -> dict[Key, str]:
    q = schemas.quarantine
    rows = tgt.execute(sa.select(q.c.source_ref, q.c.market).where(q.c.domain == domain)).tuples()
    return {ref_ids(ref): market for ref, market in rows}


def _lookup(side: Side, mapping: Mapping, keys: Iterable[Key]) -> dict[Key, dict[str, Any]]:
    """The rows of the given keys, each with its row hash (on POCO, by the primary key's index)."""
    rows = side.rows
    key_columns = [rows.c.k1] if mapping.key_count == 1 else [rows.c.k1, rows.c.k2]
    query = side.reads().add_columns(side.counted.label("counted"), side.row_hash().label("h"))
    ordered, found = sorted(keys), {}
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[start : start + LOOKUP_CHUNK]
        for row in side.conn.execute(query.where(sa.tuple_(*key_columns).in_(chunk))):
            found[_key(row, mapping)] = dict(row._mapping)
    return found


def _unweighed(tgt: Connection, query: sa.Select) -> set[Key]:
    """The keys of ``Mapping.target_unweighed``, which the range sums cannot see."""
    rows: Iterable[tuple[int]] = tgt.execute(query).tuples()
    return {(int(k1),) for (k1,) in rows}


def _key_range(src: Connection, mapping: Mapping) -> Buckets:
    """Ranges sized from the source's keys: their lowest, highest and how many."""
    key = mapping.source_key
    low, high, rows = src.execute(sa.select(sa.func.min(key), sa.func.max(key), sa.func.count())).tuples().one()
    return Buckets.spanning(low, high, rows)


def _read(side: Side, mapping: Mapping, level: Buckets, ids: list[int]) -> dict[Key, dict[str, Any]]:
    return {_key(row, mapping): dict(row._mapping) for row in side.rows_in(level, ids)}


def audit_domain(domain: str, source: Engine, target: Engine, plan: Plan) -> DomainAudit:
    mapping, result = MAPPINGS[domain], DomainAudit(domain)
    began = time.monotonic()
    with source.connect() as src, target.connect() as tgt:
        prepare(src)
        prepare(tgt)
        poco, xiaomi = _sides(mapping, plan, src, tgt)
        quarantined = _quarantined(tgt, domain)
        looked_up = _lookup(poco, mapping, quarantined)
        apart = [(key[0], row["h"]) for key, row in looked_up.items() if row["counted"]]
        judged: set[Key] = set()
        raw_markets: Counter[str | None] = Counter()
        ranges = bisect(poco, xiaomi, _key_range(src, mapping), apart, result.stats, raw_markets)
        for level, ids in ranges:
            ours, theirs = _read(poco, mapping, level, ids), _read(xiaomi, mapping, level, ids)
            result.stats["rows read"] += len(ours) + len(theirs)
            judged |= _judge_keys(result, mapping, set(ours) | set(theirs), (ours, theirs), quarantined)
        if xiaomi.entries is not None and mapping.target_unweighed is not None:
            unweighed = _unweighed(tgt, mapping.target_unweighed()) - judged
            found = _lookup(poco, mapping, unweighed), _lookup(xiaomi, mapping, unweighed)
            judged |= _judge_keys(result, mapping, unweighed, found, quarantined)
        for key in sorted(set(quarantined) - judged):
            _judge(result, mapping, key, looked_up.get(key), None, quarantined)
    for raw, count in raw_markets.items():
        result.compared[market_of(raw, plan)] += count
    result.seconds = time.monotonic() - began
    return result


def _judge_keys(
    result: DomainAudit,
    mapping: Mapping,
    keys: set[Key],
    found: tuple[dict[Key, dict[str, Any]], dict[Key, dict[str, Any]]],
    quarantined: dict[Key, str],
) -> set[Key]:
    """Judge each key against the rows found for it on POCO and on Xiaomi; the keys judged."""
    ours, theirs = found
    for key in sorted(keys):
        _judge(result, mapping, key, ours.get(key), theirs.get(key), quarantined)
    return keys


def _judge(
    result: DomainAudit,
    mapping: Mapping,
    key: Key,
    source_row: dict[str, Any] | None,
    target_row: dict[str, Any] | None,
    quarantined: dict[Key, str],
) -> None:
    held = bool(target_row and target_row["held"])
    if held:
        result.held[source_row["row_market"] if source_row else None] += 1
    holds = Holdings(source_row, target_row, quarantined.get(key), held)
    for finding in judge(mapping.domain, source_ref(mapping.domain, *key), mapping.columns, holds):
        result.add(finding)


@dataclass
class Audit:
    """One audit: which markets it answers for, and each domain's comparison."""

    markets: list[str]
    domains: list[DomainAudit]
    audited_at: dt.datetime

    def cell(self, market: str | None, domain: DomainAudit) -> dict[str, Any]:
        differences = domain.differences(market)
        return {
            "market": market,
            "domain": domain.domain,
            "compared": domain.compared.get(market, 0) if market else 0,
            "held": domain.held.get(market, 0),
            "differences": differences,
            "by_kind": dict(sorted((kind, n) for (m, kind), n in domain.counts.items() if m == market)),
            "findings": [f.as_json() for f in domain.listed.get(market, [])],
            "verdict": "passed" if differences == 0 else "differs",
        }

    def cells(self) -> list[dict[str, Any]]:
        """Per market and domain; rows that no POCO row places in a market come last, as ``None``."""
        cells = [self.cell(m, d) for m in self.markets for d in self.domains]
        return cells + [self.cell(None, d) for d in self.domains if d.differences(None)]

    @property
    def passed(self) -> bool:
        return all(cell["verdict"] == "passed" for cell in self.cells())


def run_audit(
    source: Engine, target: Engine, plan: Plan, markets: Iterable[str], domains: Iterable[str] = schemas.DOMAINS
) -> Audit:
    """Audit each domain whole (a target row has no market until its POCO row gives one) and
    answer for the markets asked: differences of other markets are not theirs to fail on."""
    audited = [audit_domain(domain, source, target, plan) for domain in domains]
    for domain in audited:
        log.info(
            "audit %s: %d POCO rows compared in %.1fs, %d ranges (%d differing), %d differences",
            domain.domain,
            sum(domain.compared.values()),
            domain.seconds,
            domain.stats["ranges"],
            domain.stats["differing ranges"],
            sum(domain.counts.values()),
        )
    return Audit(sorted(markets), audited, dt.datetime.now(dt.UTC).replace(tzinfo=None))
