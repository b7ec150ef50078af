"""A deterministic synthetic POCO platform, for rehearsals, tests and demonstrations.

Why it is built the way it is:

* **Deterministic.** A rehearsal that fails must fail again on the same data, so one
  ``random.Random(seed)`` drives every choice, in a fixed order (markets, then users in
  id order), and nothing else feeds the data: no clock, no ``hash()`` of a string, no
  set iteration. The same ``(scale, seed)`` gives the same rows on every backend.
* **Streamed.** Scale 1,000,000 must run in the memory that scale 1,000 needs, so rows
  come out user by user and go to the database in batches of ``BATCH_ROWS``. What is
  kept is per market and small (the catalogue, the market's initiatives, counters),
  never per user. Whether a user linked a Xiaomi account is a keyed mix of the user_id
  rather than a stored flag, so that the participant pass can avoid unlinked users
  knowing only each market's range of user ids.
* **Dirty, but never too dirty.** The migration has to prove that it catches every
  quarantine reason of the contract, so each one is present; a rehearsal on seeded
  data has to end green, so no gate may fail. ``_Budget`` therefore counts each
  (domain, market)'s in-scope rows as they are generated and lets a defect in only
  while the defects stay within one per ``ROWS_PER_DEFECT`` rows counted so far. The
  count only grows, so the final ratio holds as well. Defect classes take turns,
  least used first, and the largest markets are generated first, so that every class
  appears as soon as one market is big enough to afford them. Rows that a rule would
  quarantine as a side effect (an unlinked user's balance or review, a participant of
  a draft, cancelled or invalid initiative) are only ever written as such defects.
* **Looks real.** Uneven markets, each with its languages, names and cities; the real
  POCO line-up with colour and memory variants; reviews in eleven languages, Thai and
  Devanagari scripts and emoji included; histories of points that add up, except a
  few that were damaged long ago and that the migration must not trust.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.plan import GLOBAL_MARKET
from poco_migration_tools.seed.catalogue import (
    ACCOUNT_RATE,
    BATCH_ROWS,
    CATALOGUE,
    DAMAGED_HISTORY_RATE,
    DEFAULT_MARKET,
    DEFECTS,
    EARN_REASONS,
    EARNINGS_PER_ACCOUNT,
    EDITED_RATE,
    EMAIL_DOMAINS,
    EMPTY_HISTORY_RATE,
    EPOCH,
    EXPIRY_DAYS,
    EXPIRY_FROM,
    HELPFUL_VOTES_MEAN,
    INITIATIVE_KIND_WEIGHTS,
    INITIATIVE_STATUS_WEIGHTS,
    INITIATIVE_STATUSES,
    INITIATIVE_TITLES,
    INITIATIVES_BASE,
    INITIATIVES_PER_ROOT_USER,
    MAPPED_SKUS,
    MARKETS,
    MI_ACCOUNT_BASE,
    MI_PRODUCT_BASE,
    MOVING_STATUSES,
    NO_EXPIRY_RATE,
    NO_MARKET_EVERY,
    ORPHAN_CASES,
    PARTICIPANT_STATUSES,
    PARTICIPATIONS_PER_USER,
    PRODUCTS,
    RATINGS,
    REDEEM_RATE,
    REDEMPTIONS_PER_ACCOUNT,
    REVIEW_FLAWS,
    REVIEW_PAGE_EVERY,
    REVIEW_STATUSES,
    REVIEWS_PER_LINKED_USER,
    REWARD_POINTS,
    ROWS_PER_DEFECT,
    SITE,
    SNAPSHOT,
    SPEND_REASON,
    STATIC_PAGES,
    TEXTS,
    TIER_BALANCES,
    TIERS,
    TITLE_RATE,
    UNLINKED_PER_MILLE,
    ZERO_BALANCE_RATE,
    Market,
)

T = TypeVar("T")
Row = dict[str, Any]


def seed_source(
    engine: sa.Engine,
    *,
    scale: int = 1000,
    seed: int = 42,
    markets: Sequence[str],
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Drop and recreate the POCO tables, fill them with about ``scale`` users' worth of
    platform, and return the number of rows written per table."""
    if scale < 1:
        raise ValueError(f"scale must be at least 1, not {scale}")
    schemas.SOURCE.drop_all(engine)
    schemas.SOURCE.create_all(engine)
    with engine.begin() as conn:
        writer = _Writer(conn)
        _Seeder(random.Random(seed), writer, progress or _silent).run(scale, markets)
        writer.close()
    return writer.counts


def _silent(message: str) -> None:
    """The default progress callback."""


def _profile(code: str) -> Market:
    return MARKETS.get(code) or replace(DEFAULT_MARKET, code=code)


def _pick(rng: random.Random, weights: Mapping[T, int]) -> T:
    """A key of ``weights`` drawn in proportion to its value."""
    return rng.choices(tuple(weights), tuple(weights.values()))[0]


class _Writer:
    """Buffers rows per table and inserts them ``BATCH_ROWS`` at a time."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self._buffers: dict[sa.Table, list[Row]] = {t: [] for t in schemas.SOURCE.sorted_tables}
        self.counts = {t.name: 0 for t in schemas.SOURCE.sorted_tables}

    def add(self, table: sa.Table, row: Row) -> None:
        buffer = self._buffers[table]
        buffer.append(row)
        if len(buffer) >= BATCH_ROWS:
            self._flush(table)

    def close(self) -> None:
        for table in self._buffers:
            self._flush(table)

    def _flush(self, table: sa.Table) -> None:
        buffer = self._buffers[table]
        if buffer:
            self._conn.execute(table.insert(), buffer)
            self.counts[table.name] += len(buffer)
            buffer.clear()


class _Budget:
    """The room each (domain, market) gate leaves for defects, counted as rows are made.

    Every in-scope row goes through ``row`` (or ``claim``, for a row that exists only
    as a defect), which returns the reason to plant in it, if any."""

    def __init__(self) -> None:
        self._in_scope: Counter[tuple[str, str]] = Counter()
        self._defects: Counter[tuple[str, str]] = Counter()
        self._used: Counter[tuple[str, str]] = Counter()

    def claim(self, domain: str, market: str, offered: Sequence[str]) -> str | None:
        """Count one defective row and return its reason, if the gate has room and the
        reason whose turn it is is one of ``offered``; otherwise count nothing."""
        reason = min(DEFECTS[domain], key=lambda r: self._used[domain, r])
        gate = domain, market
        if reason not in offered or (self._defects[gate] + 1) * ROWS_PER_DEFECT > self._in_scope[gate] + 1:
            return None
        self._in_scope[gate] += 1
        self._defects[gate] += 1
        self._used[domain, reason] += 1
        return reason

    def row(self, domain: str, market: str, offered: Sequence[str]) -> str | None:
        """Count one in-scope row: defective (the reason is returned) or valid (None)."""
        reason = self.claim(domain, market, offered)
        if reason is None:
            self._in_scope[domain, market] += 1
        return reason


class _Linkage:
    """Which users linked a Xiaomi account, and which one: pure functions of the user_id.

    The key comes from the seeded generator, so a seed changes who is linked; the
    account number is an affine bijection modulo 2**32, so linked accounts are distinct."""

    MASK = 2**64 - 1

    def __init__(self, key: int) -> None:
        self._key = key

    def linked(self, user_id: int) -> bool:
        return self._mix(user_id) % 1000 >= UNLINKED_PER_MILLE

    def account(self, user_id: int) -> int:
        return MI_ACCOUNT_BASE + (user_id * 2_654_435_761 + self._key) % 2**32

    def _mix(self, user_id: int) -> int:
        """SplitMix64's finaliser: every bit of the user_id and the key reaches every bit."""
        x = (user_id * 0x9E3779B97F4A7C15 + self._key) & self.MASK
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & self.MASK
        return x ^ (x >> 31)


class _Picker:
    """Hands out, once each and in id order, the users of a range that pass a test."""

    def __init__(self, user_ids: range, test: Callable[[int], bool]) -> None:
        self._candidates = (u for u in user_ids if test(u))
        self._next = next(self._candidates, None)

    def available(self) -> bool:
        return self._next is not None

    def take(self) -> int:
        user_id = self._next
        if user_id is None:
            raise LookupError("no user left")
        self._next = next(self._candidates, None)
        return user_id


@dataclass(frozen=True)
class _User:
    user_id: int
    market: Market  # whose gates the user's rows count in (the global site's for a user without market)
    linked: bool
    language: str
    created_at: dt.datetime


@dataclass(frozen=True)
class _Initiative:
    initiative_id: int
    status: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    quarantined: bool

    @property
    def moves(self) -> bool:
        """In scope and valid: the only kind a real participant may join."""
        return self.status in MOVING_STATUSES and not self.quarantined


class _Seeder:
    def __init__(self, rng: random.Random, out: _Writer, progress: Callable[[str], None]) -> None:
        self.rng = rng
        self.out = out
        self.progress = progress
        self.budget = _Budget()
        self.link = _Linkage(rng.getrandbits(64))
        self.txn_ids = itertools.count(1)
        self.review_ids = itertools.count(1)
        self.initiative_ids = itertools.count(1)
        self.reviews_shown: Counter[str] = Counter()
        self.orphan_cases = itertools.cycle(ORPHAN_CASES)

    def run(self, scale: int, codes: Sequence[str]) -> None:
        """Largest markets first: they take the defect classes' first turns (see ``_Budget``)."""
        markets = sorted((_profile(c) for c in codes), key=lambda m: -m.weight)
        total = sum(m.weight for m in markets)
        self._products()
        first_id = 1
        for market in markets:
            users = max(1, round(scale * market.weight / total))
            self._market(market, range(first_id, first_id + users))
            first_id += users
            self.progress(f"{market.code}: {users} users")

    def _moment(self, start: dt.datetime, end: dt.datetime) -> dt.datetime:
        """A whole second between ``start`` and ``end`` (``start`` if the window is empty)."""
        seconds = max(int((end - start).total_seconds()), 0)
        return start + dt.timedelta(seconds=self.rng.randint(0, seconds))

    def _products(self) -> None:
        mi_ids = itertools.count(MI_PRODUCT_BASE, 100)
        for sku in CATALOGUE:
            mi_id = next(mi_ids) + self.rng.randrange(100) if sku.mapped else None
            self.out.add(schemas.poco_products, {"sku": sku.sku, "name": sku.name, "mi_product_id": mi_id})

    def _market(self, market: Market, user_ids: range) -> None:
        for kind, below in STATIC_PAGES:
            self._page(market, kind, below, None)
        for sku in CATALOGUE:
            self._page(market, "product", f"product/{sku.sku}", sku.sku)
        for index, user_id in enumerate(user_ids):
            self._user(market, user_id, index)
        initiatives = self._initiatives(market, len(user_ids))
        self._participants(market, user_ids, initiatives)
        self.out.add(schemas.poco_market_state, {"market": market.code, "frozen_at": None})

    def _page(self, market: Market, kind: str, below: str, ref: str | None) -> None:
        url = f"{SITE}/{market.path}/{below}"
        self.out.add(schemas.poco_site_pages, {"url": url, "market": market.code, "kind": kind, "ref": ref})

    # --- users, points, reviews ------------------------------------------------------

    def _user(self, market: Market, user_id: int, index: int) -> None:
        user = _User(
            user_id,
            market,
            self.link.linked(user_id),
            _pick(self.rng, market.languages),
            self._moment(EPOCH, SNAPSHOT - dt.timedelta(days=1)),
        )
        no_market = market.code == GLOBAL_MARKET and index % NO_MARKET_EVERY == NO_MARKET_EVERY // 2
        name = f"{self.rng.choice(market.first_names)}.{self.rng.choice(market.surnames)}{self.rng.randint(1, 9999)}"
        self.out.add(
            schemas.poco_users,
            {
                "user_id": user_id,
                "mi_account_id": self.link.account(user_id) if user.linked else None,
                "email": f"{name}@{self.rng.choice(EMAIL_DOMAINS)}",
                "market": None if no_market else market.code,
                "created_at": user.created_at,
                "updated_at": self._moment(user.created_at, SNAPSHOT),
            },
        )
        if self.rng.random() < ACCOUNT_RATE[user.linked]:
            self._points(user)
        self._reviews(user)

    def _points(self, user: _User) -> None:
        tier = _pick(self.rng, TIERS)
        balance = self._balance(user, tier)
        updated_at = self._history(user, balance)
        expires = (
            None if self.rng.random() < NO_EXPIRY_RATE else EXPIRY_FROM + dt.timedelta(self.rng.randrange(EXPIRY_DAYS))
        )
        self.out.add(
            schemas.poco_points_accounts,
            {
                "user_id": user.user_id,
                "balance": balance,
                "tier": tier,
                "expires_at": expires,
                "updated_at": updated_at,
            },
        )

    def _balance(self, user: _User, tier: str) -> int:
        """The balance, 0 (out of scope) unless the gate can take what it would cost."""
        earned = self.rng.randint(*TIER_BALANCES[tier])
        if not user.linked:
            return earned if self.budget.claim("points", user.market.code, ("unlinked_account",)) else 0
        if self.rng.random() < ZERO_BALANCE_RATE:
            return 0
        if self.budget.row("points", user.market.code, ("negative_balance",)):
            return -self.rng.randint(10, 500)  # redeemed twice during an outage
        return earned

    def _history(self, user: _User, balance: int) -> dt.datetime:
        """Write transactions whose deltas add up to ``balance``; return the last one's time."""
        if balance == 0 and self.rng.random() < EMPTY_HISTORY_RATE:
            return user.created_at
        extra = self.rng.randint(1, 20) * 50 if balance <= 0 or self.rng.random() < REDEEM_RATE else 0
        earned = max(balance, 0) + extra
        deltas = [(d, _pick(self.rng, EARN_REASONS)) for d in self._split(earned, *EARNINGS_PER_ACCOUNT)]
        deltas += [(-d, SPEND_REASON) for d in self._split(earned - balance, *REDEMPTIONS_PER_ACCOUNT)]
        if self.rng.random() < DAMAGED_HISTORY_RATE:
            del deltas[0]
        times = sorted(self._moment(user.created_at, SNAPSHOT) for _ in deltas)  # earnings come before redemptions
        for (delta, reason), created_at in zip(deltas, times, strict=True):
            self.out.add(
                schemas.poco_points_transactions,
                {
                    "txn_id": next(self.txn_ids),
                    "user_id": user.user_id,
                    "delta": delta,
                    "reason": reason,
                    "created_at": created_at,
                },
            )
        return times[-1] if times else user.created_at

    def _split(self, total: int, fewest: int, most: int) -> list[int]:
        """``total`` cut into between ``fewest`` and ``most`` positive parts (none for 0)."""
        if total <= 0:
            return []
        parts = min(self.rng.randint(fewest, most), total)
        cuts = sorted(self.rng.sample(range(1, total), parts - 1))
        return [b - a for a, b in zip((0, *cuts), (*cuts, total), strict=True)]

    def _reviews(self, user: _User) -> None:
        """A linked user reviews distinct SKUs, so that only a planted copy is a duplicate;
        an unlinked user writes a review only as a planted defect."""
        if not user.linked:
            if self.budget.claim("reviews", user.market.code, ("unlinked_account",)):
                self._write_review(user, self._review(user, self.rng.choice(MAPPED_SKUS), "published"))
            return
        original: Row | None = None  # the user's first valid, in-scope review
        flawed = False  # one planted defect per user at most
        count = _pick(self.rng, REVIEWS_PER_LINKED_USER)
        for sku in self.rng.sample(MAPPED_SKUS, count):
            review = self._review(user, sku, _pick(self.rng, REVIEW_STATUSES))
            if review["status"] != "deleted":
                offered = () if flawed else (*REVIEW_FLAWS, *(("duplicate",) if original else ()))
                reason = self.budget.row("reviews", user.market.code, offered)
                if reason:
                    review.update(self._repost(original) if reason == "duplicate" else self._flaw(reason))
                    flawed = True
                elif original is None:
                    original = review
            self._write_review(user, review)

    def _review(self, user: _User, sku: str, status: str) -> Row:
        texts = TEXTS[user.language]
        created_at = self._moment(user.created_at, SNAPSHOT)
        return {
            "review_id": next(self.review_ids),
            "user_id": user.user_id,
            "sku": sku,
            "rating": _pick(self.rng, RATINGS),
            "title": self.rng.choice(texts.titles) if self.rng.random() < TITLE_RATE else None,
            "body": " ".join(self.rng.sample(texts.sentences, self.rng.randint(1, 3))),
            "language": user.language,
            "status": status,
            "helpful_votes": int(self.rng.expovariate(1 / HELPFUL_VOTES_MEAN)),
            "created_at": created_at,
            "updated_at": self._moment(created_at, SNAPSHOT) if self.rng.random() < EDITED_RATE else created_at,
        }

    def _flaw(self, reason: str) -> Row:
        column, values = REVIEW_FLAWS[reason]
        return {column: self.rng.choice(values)}

    def _repost(self, original: Row | None) -> Row:
        """The user's earlier review posted again minutes later, in capitals, with stray spaces."""
        if original is None:
            raise ValueError("a duplicate needs an original")
        created_at = min(original["created_at"] + dt.timedelta(minutes=self.rng.randint(1, 30)), SNAPSHOT)
        body = f" {original['body'].upper()}\n"
        return {
            "sku": original["sku"],
            "title": original["title"],
            "body": body,
            "created_at": created_at,
            "updated_at": created_at,
        }

    def _write_review(self, user: _User, review: Row) -> None:
        self.out.add(schemas.poco_reviews, review)
        shown = self.reviews_shown[user.market.code]
        self.reviews_shown[user.market.code] += 1
        if shown % REVIEW_PAGE_EVERY == 0:
            ref = str(review["review_id"])
            self._page(user.market, "review", f"review/{ref}", ref)

    # --- initiatives and participants ------------------------------------------------

    def _initiatives(self, market: Market, users: int) -> list[_Initiative]:
        """Every kind in every status first, then a random mix; the list is per market and
        grows with the square root of its users only."""
        every = itertools.product(INITIATIVE_TITLES, INITIATIVE_STATUSES)
        mixed = (
            (_pick(self.rng, INITIATIVE_KIND_WEIGHTS), _pick(self.rng, INITIATIVE_STATUS_WEIGHTS))
            for _ in itertools.count()
        )
        count = INITIATIVES_BASE + INITIATIVES_PER_ROOT_USER * math.isqrt(users)
        return [
            self._initiative(market, kind, status)
            for kind, status in itertools.islice(itertools.chain(every, mixed), count)
        ]

    def _initiative(self, market: Market, kind: str, status: str) -> _Initiative:
        window = INITIATIVE_STATUSES[status]
        starts_at = self._moment(window.first_start, window.last_start)
        ends_at = starts_at + dt.timedelta(days=self.rng.randint(*window.days))
        invalid = status in MOVING_STATUSES and self.budget.row("initiatives", market.code, ("invalid_dates",))
        if invalid:
            starts_at, ends_at = ends_at, starts_at  # typed the wrong way round
        product = self.rng.choice(PRODUCTS).name
        title = self.rng.choice(INITIATIVE_TITLES[kind]).format(product=product, city=self.rng.choice(market.cities))
        initiative_id = next(self.initiative_ids)
        self.out.add(
            schemas.poco_initiatives,
            {
                "initiative_id": initiative_id,
                "market": market.code,
                "kind": kind,
                "title": title,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "status": status,
                "updated_at": min(starts_at, ends_at, SNAPSHOT) - dt.timedelta(minutes=self.rng.randint(0, 43_200)),
            },
        )
        self._page(market, "initiative", f"initiative/{initiative_id}", str(initiative_id))
        return _Initiative(initiative_id, status, starts_at, ends_at, bool(invalid))

    def _participants(self, market: Market, user_ids: range, initiatives: list[_Initiative]) -> None:
        """Linked users join initiatives that move. Planted defects: an unlinked user joins
        one, or a linked user is found in an initiative that is gone (an id allocated and
        never written), quarantined, or out of scope."""
        moving = [i for i in initiatives if i.moves]
        orphan_targets = {
            "quarantined": [i.initiative_id for i in initiatives if i.quarantined],
            "out_of_scope": [i.initiative_id for i in initiatives if i.status not in MOVING_STATUSES],
            "gone": [next(self.initiative_ids)],  # allocated, never written
        }
        pickers = {
            "unlinked_account": _Picker(user_ids, lambda u: not self.link.linked(u)),
            "orphan": _Picker(user_ids, self.link.linked),
        }
        mean = PARTICIPATIONS_PER_USER * len(user_ids) / max(len(moving), 1)
        for initiative in moving:
            joining = min(self.rng.randint(0, round(2 * mean)), len(user_ids))
            for offset in self.rng.sample(range(len(user_ids)), joining):
                if not self.link.linked(user_ids[offset]):
                    continue
                offered = [reason for reason, picker in pickers.items() if picker.available()]
                reason = self.budget.row("participants", market.code, offered)
                if reason is None:
                    self._participant(initiative, initiative.initiative_id, user_ids[offset])
                else:
                    target = self._orphan_target(orphan_targets) if reason == "orphan" else initiative.initiative_id
                    self._participant(initiative, target, pickers[reason].take())

    def _orphan_target(self, targets: dict[str, list[int]]) -> int:
        case = next(case for case in self.orphan_cases if targets[case])
        return self.rng.choice(targets[case])

    def _participant(self, initiative: _Initiative, initiative_id: int, user_id: int) -> None:
        status = _pick(self.rng, PARTICIPANT_STATUSES)
        joined_at = self._moment(initiative.starts_at - dt.timedelta(days=14), min(initiative.ends_at, SNAPSHOT))
        self.out.add(
            schemas.poco_initiative_participants,
            {
                "initiative_id": initiative_id,
                "user_id": user_id,
                "joined_at": joined_at,
                "reward_points": self.rng.randint(*REWARD_POINTS[status]),
                "status": status,
                "updated_at": self._moment(joined_at, SNAPSHOT),
            },
        )
