"""One person's migration, as support answers it: every POCO row of theirs and where it is now.

For each POCO user a query names (``people.find``): their points (balance, tier, the
market's rate, every ledger entry credited and their sum against the converted
balance), each review (moved with its ``mi_reviews`` id and status, quarantined with
its reason, held, waiting for the next sync, or out of scope and why), each
participation with its initiative's state, and their market's state. Every row that
did not move carries the sentence to tell the person (``advice``). Read only, from
the POCO source and the bookkeeping; emails leave masked. Recording who asked is the
caller's (``lookup_log``), so that this module stays a pure read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from poco_migration import operations, schemas, status
from poco_migration.moves.initiatives import IN_SCOPE as INITIATIVES_IN_SCOPE
from poco_migration.moves.points import convert
from poco_migration.moves.sql import market_expr
from poco_migration.plan import GLOBAL_MARKET, Plan
from poco_migration.refs import of_user, source_ref
from poco_migration.support import advice
from poco_migration.support.people import Query, find

MOVED, QUARANTINED, HELD, PENDING, OUT_OF_SCOPE = "moved", "quarantined", "held", "pending", "out of scope"
PAUSED = "paused"


@dataclass(frozen=True)
class Market:
    """A market as the lookup shows it, and the phase its advice is given in."""

    market: str
    state: str
    paused: str | None  # the reason an operator gave, while the market is paused
    cutover: str
    shutdown: str
    frozen_at: str | None

    @property
    def closed(self) -> bool:
        return self.frozen_at is not None

    def advise(self, situation: str) -> str:
        return advice.advice(situation, closed=self.closed, cutover=self.cutover, shutdown=self.shutdown)


def look_up(source: Engine, target: Engine, plan: Plan, query: Query) -> dict[str, Any]:
    """Everything support may say about the people a query names."""
    with source.connect() as src, target.connect() as tgt:
        found = find(src, query)
        markets = _markets(source, target, plan)
        people = [_person(src, tgt, plan, markets, user_id) for user_id in found]
    return {"query": {"kind": query.kind, "value": query.shown}, "found": len(people), "people": people}


def _markets(source: Engine, target: Engine, plan: Plan) -> dict[str, Market]:
    """Every market's state: paused, else cut over when every domain is, else frozen, syncing
    (some domain moved) or not started."""
    cells: dict[str, list[str]] = {}
    for cell in status.cells(source, target, plan):
        cells.setdefault(cell.market, []).append(cell.state)
    with target.connect() as conn:
        paused = operations.paused_markets(conn)
    frozen = status.frozen_at(source)
    return {m: _market(m, states, paused, frozen.get(m), plan) for m, states in cells.items()}


def _market(
    code: str, states: list[str], paused: dict[str, str | None], frozen: dt.datetime | None, plan: Plan
) -> Market:
    if set(states) == {status.CUT_OVER}:
        state = status.CUT_OVER
    elif frozen is not None:
        state = status.FROZEN
    elif set(states) == {status.NOT_STARTED}:
        state = status.NOT_STARTED
    else:
        state = status.SYNCING
    return Market(
        market=code,
        state=PAUSED if code in paused else state,
        paused=paused.get(code, "") if code in paused else None,
        cutover=plan.market(code).cutover.isoformat(),
        shutdown=plan.shutdown.isoformat(),
        frozen_at=frozen.isoformat(sep=" ", timespec="seconds") if frozen else None,
    )


def _person(src: Connection, tgt: Connection, plan: Plan, markets: dict[str, Market], user_id: int) -> dict[str, Any]:
    u = schemas.poco_users
    row = src.execute(
        sa.select(u.c.mi_account_id, u.c.email, market_expr(u.c.market, plan).label("market")).where(
            u.c.user_id == user_id
        )
    ).first()
    market = markets[row.market if row else GLOBAL_MARKET]
    return {
        "user_id": user_id,
        "mi_account_id": row.mi_account_id if row else None,
        "email": status.mask_email(row.email) if row else None,
        "user_exists": row is not None,
        "market": market.__dict__ | {"closed": market.closed},
        "points": _points(src, tgt, plan, market, user_id),
        "reviews": _reviews(src, tgt, market, user_id),
        "participations": _participations(src, tgt, plan, markets, user_id, market.market),
    }


def _places(tgt: Connection, domain: str, refs: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """Where each source_ref of a domain is in the bookkeeping: moved (or held, which is
    moved and then invalid on POCO) with no reason, or quarantined with its reason."""
    keys = list(refs)
    m, q, h = schemas.moved, schemas.quarantine, schemas.held
    places: dict[str, tuple[str, str | None]] = {}
    # In this order, so that a held row (also in ``moved``) reads as held.
    for place, table, reason in ((MOVED, m, sa.null()), (HELD, h, h.c.reason), (QUARANTINED, q, q.c.reason)):
        rows = tgt.execute(
            sa.select(table.c.source_ref, reason).where(table.c.domain == domain, table.c.source_ref.in_(keys))
        )
        places.update({ref: (place, why) for ref, why in rows.tuples()})
    return places


def _not_moved(place: str, reason: str | None, market: Market, otherwise: str) -> dict[str, Any]:
    """The place, reason and advice of a row; ``otherwise`` is the situation of a row in
    neither place (pending, or one of the ways to be out of scope)."""
    if place == MOVED:
        return {"where": MOVED, "reason": None, "advice": None}
    if place in (QUARANTINED, HELD):
        situation = reason if place == QUARANTINED and reason else advice.HELD
        return {"where": place, "reason": reason, "advice": market.advise(situation)}
    where = PENDING if otherwise == advice.PENDING else OUT_OF_SCOPE
    return {"where": where, "reason": None if where == PENDING else otherwise, "advice": market.advise(otherwise)}


def _points(src: Connection, tgt: Connection, plan: Plan, market: Market, user_id: int) -> dict[str, Any] | None:
    a = schemas.poco_points_accounts
    account = src.execute(sa.select(a.c.balance, a.c.tier).where(a.c.user_id == user_id)).first()
    if account is None:
        return None
    rate = plan.market(market.market).conversion_rate
    converted = convert(account.balance, rate) if account.balance is not None and account.balance >= 0 else None
    ref = source_ref("points", user_id)
    place, reason = _places(tgt, "points", [ref]).get(ref, ("", None))
    ledger = _ledger(tgt, user_id)
    credited = sum(entry["delta"] for entry in ledger)
    otherwise = advice.ZERO_BALANCE if account.balance == 0 and not ledger else advice.PENDING
    found = _not_moved(place, reason, market, otherwise)
    if place == MOVED and credited != converted:  # changed on POCO since: the next sync adjusts it
        found["advice"] = market.advise(advice.PENDING)
    return {
        "balance": account.balance,
        "tier": account.tier,
        "conversion_rate": str(rate),
        "converted": converted,
        "ledger": ledger,
        "credited": credited,
        "balanced": converted is not None and credited == converted,
        **found,
    }


def _ledger(tgt: Connection, user_id: int) -> list[dict[str, Any]]:
    """Every ledger entry credited to the user: the opening credit and its adjustments."""
    ledger = schemas.mi_points_ledger
    columns = (ledger.c.source_ref, ledger.c.delta, ledger.c.reason, ledger.c.expires_at, ledger.c.created_at)
    query = sa.select(*columns).where(of_user(ledger.c.source_ref, sa.literal(user_id))).order_by(ledger.c.entry_id)
    return [
        {
            "source_ref": entry.source_ref,
            "delta": entry.delta,
            "reason": entry.reason,
            "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
            "created_at": entry.created_at.isoformat(sep=" ") if entry.created_at else None,
        }
        for entry in tgt.execute(query)
    ]


def _reviews(src: Connection, tgt: Connection, market: Market, user_id: int) -> list[dict[str, Any]]:
    r = schemas.poco_reviews
    rows = src.execute(
        sa.select(r.c.review_id, r.c.sku, r.c.rating, r.c.status).where(r.c.user_id == user_id).order_by(r.c.review_id)
    ).all()
    refs = {source_ref("reviews", row.review_id): row for row in rows}
    places = _places(tgt, "reviews", refs)
    moved = _moved_reviews(tgt, list(refs))
    out = []
    for ref, row in refs.items():
        place, reason = places.get(ref, ("", None))
        otherwise = advice.DELETED_BEFORE_MOVE if row.status == "deleted" else advice.PENDING
        mi_review_id, mi_status = moved.get(ref, (None, None))
        out.append(
            {
                "review_id": row.review_id,
                "source_ref": ref,
                "sku": row.sku,
                "rating": row.rating,
                "poco_status": row.status,
                "mi_review_id": mi_review_id,
                "mi_status": mi_status,
                **_not_moved(place, reason, market, otherwise),
            }
        )
    return out


def _moved_reviews(tgt: Connection, refs: list[str]) -> dict[str, tuple[int, str]]:
    mi = schemas.mi_reviews
    query = sa.select(mi.c.source_ref, mi.c.review_id, mi.c.status).where(mi.c.source_ref.in_(refs))
    return {ref: (review_id, state) for ref, review_id, state in tgt.execute(query).tuples()}


def _participations(
    src: Connection, tgt: Connection, plan: Plan, markets: dict[str, Market], user_id: int, user_market: str
) -> list[dict[str, Any]]:
    """Each participation goes with its initiative's market, with the user's (``user_market``)
    where the initiative does not exist."""
    p, i = schemas.poco_initiative_participants, schemas.poco_initiatives
    query = (
        sa.select(
            p.c.initiative_id,
            p.c.status,
            p.c.reward_points,
            i.c.kind,
            i.c.title,
            i.c.status.label("initiative_status"),
            i.c.initiative_id.is_not(None).label("initiative_exists"),
            market_expr(i.c.market, plan).label("market"),
        )
        .select_from(p.outerjoin(i, i.c.initiative_id == p.c.initiative_id))
        .where(p.c.user_id == user_id)
        .order_by(p.c.initiative_id)
    )
    rows = src.execute(query).all()
    refs = {source_ref("participants", row.initiative_id, user_id): row for row in rows}
    places = _places(tgt, "participants", refs)
    initiatives = _moved_initiatives(tgt, [row.initiative_id for row in rows])
    out = []
    for ref, row in refs.items():
        market = markets[row.market if row.initiative_exists else user_market]
        place, reason = places.get(ref, ("", None))
        in_scope = row.initiative_status in INITIATIVES_IN_SCOPE
        out.append(
            {
                "initiative_id": row.initiative_id,
                "source_ref": ref,
                "market": market.market,
                "status": row.status,
                "reward_points": row.reward_points,
                "initiative": {
                    "exists": bool(row.initiative_exists),
                    "kind": row.kind,
                    "title": row.title,
                    "poco_status": row.initiative_status,
                    **initiatives.get(row.initiative_id, {"mi_initiative_id": None, "mi_status": None}),
                },
                **_not_moved(place, reason, market, advice.PENDING if in_scope else advice.INITIATIVE_NOT_IN_SCOPE),
            }
        )
    return out


def _moved_initiatives(tgt: Connection, initiative_ids: list[int]) -> dict[int, dict[str, Any]]:
    mi = schemas.mi_initiatives
    refs = {source_ref("initiatives", initiative_id): initiative_id for initiative_id in initiative_ids}
    query = sa.select(mi.c.source_ref, mi.c.initiative_id, mi.c.status).where(mi.c.source_ref.in_(refs))
    return {
        refs[ref]: {"mi_initiative_id": mi_id, "mi_status": state} for ref, mi_id, state in tgt.execute(query).tuples()
    }


def render_text(result: dict[str, Any]) -> str:
    """The ``lookup`` command's answer: one block per person, each row with where it is and,
    where it did not move, what to tell the person."""
    if not result["people"]:
        return "no POCO user matches"
    return "\n\n".join(_person_text(person) for person in result["people"])


def _person_text(person: dict[str, Any]) -> str:
    m = person["market"]
    who = f"Mi account {person['mi_account_id'] or 'none linked'}, {person['email'] or 'no user row'}"
    paused = f" (paused: {m['paused']})" if m["paused"] is not None else ""
    lines = [
        f"POCO user {person['user_id']} ({who}); market {m['market']}: {m['state']}{paused}, cutover {m['cutover']}"
    ]
    points = person["points"]
    if points is None:
        lines.append("points: no POCO points account")
    else:
        lines.append(
            f"points: POCO {points['balance']} ({points['tier']}) x {points['conversion_rate']} = {points['converted']}"
            f" Mi points; credited {points['credited']} in {len(points['ledger'])} entries: {_where(points)}"
        )
        lines += [
            f"  {e['source_ref']}  {e['delta']:+d}  {e['reason']}  expires {e['expires_at']}" for e in points["ledger"]
        ]
    lines.append(f"reviews: {len(person['reviews'])}")
    for r in person["reviews"]:
        moved = f" -> mi_reviews {r['mi_review_id']} ({r['mi_status']})" if r["mi_review_id"] is not None else ""
        lines.append(f"  {r['source_ref']}  {r['sku']}  rating {r['rating']}  {r['poco_status']}{moved}: {_where(r)}")
    lines.append(f"participations: {len(person['participations'])}")
    for p in person["participations"]:
        i = p["initiative"]
        state = f"{i['kind']} {i['poco_status']}, on Mi: {i['mi_status'] or 'not moved'}"
        lines.append(
            f"  {p['source_ref']}  {i['title']} ({state})  {p['status']}  {p['reward_points']} pts: {_where(p)}"
        )
    return "\n".join(lines)


def _where(row: dict[str, Any]) -> str:
    where = f"{row['where']} ({row['reason']})" if row["reason"] else row["where"]
    return f"{where}; tell: {row['advice']}" if row["advice"] else where
