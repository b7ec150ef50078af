"""The seed's catalogue: the synthetic POCO platform as data, apart from the generator.

Markets with their languages, names and cities, the POCO line-up, review texts,
initiative titles, and the rates at which the platform's rows (and its defects)
occur. ``generator.py`` reads these tables; changing how the platform looks is an
edit here or in ``catalogue.yaml``, not in the code that writes it.

The long tables (the markets, the products, the review texts per language, the
initiative titles, the static pages) live in ``catalogue.yaml`` beside this module,
shipped as package data: they are content, not code, and spelt out in Python they
were the same six-line shape over and over. This module keeps the dataclasses, the
small constants and rates, and turns the YAML into the same objects as before (same
names, types and values, in the file's order: the generator's one seeded
``random.Random`` walks these mappings and tuples in order, so the order is part of
the seed's output).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any, TypeVar

import yaml

from poco_migration.plan import GLOBAL_MARKET

BATCH_ROWS = 5_000
ROWS_PER_DEFECT = 100  # the contract's default max_quarantine_ratio, 0.01, as a whole number
EPOCH = dt.datetime(2019, 1, 1)
SNAPSHOT = dt.datetime(2024, 9, 30, 23, 59, 59)  # the POCO platform as the migration first sees it
SITE = "https://www.po.co"
EMAIL_DOMAINS = ("example.com", "example.org")

# --- The YAML ------------------------------------------------------------------------


def _load() -> dict[str, Any]:
    text = resources.files("poco_migration_tools.seed").joinpath("catalogue.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("catalogue.yaml: expected a mapping at the top")
    return data


_T = TypeVar("_T")


def _scalar(value: Any, kind: type[_T], where: str) -> _T:
    """``value`` if it is exactly a ``kind`` (a bool is no int here)."""
    if type(value) is not kind:
        raise ValueError(f"catalogue.yaml: {where} must be a {kind.__name__}, not {value!r}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    """A YAML list of strings as a tuple; an unquoted yes/no/1.0 would be a bool or a number."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"catalogue.yaml: {where} must be a list of strings, not {value!r}")
    return tuple(value)


def _weights(value: Any, where: str) -> dict[str, int]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(w, int) and not isinstance(w, bool) for k, w in value.items()
    ):
        raise ValueError(f"catalogue.yaml: {where} must map strings to whole numbers, not {value!r}")
    return dict(value)


_DATA = _load()

# --- Markets -------------------------------------------------------------------------


@dataclass(frozen=True)
class Market:
    code: str
    weight: int  # relative number of users
    languages: Mapping[str, int]  # review language -> weight
    first_names: tuple[str, ...]
    surnames: tuple[str, ...]
    cities: tuple[str, ...]

    @property
    def path(self) -> str:
        return "global" if self.code == GLOBAL_MARKET else self.code.lower()


MARKETS: dict[str, Market] = {
    code: Market(
        code,
        weight=_scalar(market["weight"], int, f"markets.{code}.weight"),
        languages=_weights(market["languages"], f"markets.{code}.languages"),
        first_names=_strings(market["first_names"], f"markets.{code}.first_names"),
        surnames=_strings(market["surnames"], f"markets.{code}.surnames"),
        cities=_strings(market["cities"], f"markets.{code}.cities"),
    )
    for code, market in _DATA["markets"].items()
}
# A market that the plan names but this table does not know: small, English, generic.
DEFAULT_MARKET = replace(MARKETS[GLOBAL_MARKET], code="", weight=4, languages={"en": 1})
NO_MARKET_EVERY = 60  # one global-site user in this many signed up in the old app, which kept no market

# --- Catalogue -----------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    code: str
    name: str
    on_mi_com: bool  # False: sold out and never listed on mi.com, so its SKUs have no mi_product_id
    memories: tuple[str, ...]  # "" for accessories
    colours: tuple[str, ...]


PRODUCTS = tuple(
    Product(
        code,
        _scalar(product["name"], str, f"products.{code}.name"),
        _scalar(product["on_mi_com"], bool, f"products.{code}.on_mi_com"),
        _strings(product["memories"], f"products.{code}.memories"),
        _strings(product["colours"], f"products.{code}.colours"),
    )
    for code, product in _DATA["products"].items()
)
LEGACY_SKUS = ("POCO-F1-6-128-BLU", "POCO-X3NFC-6-128-GRY", "POCO-M3-4-64-YEL")  # reviewed, never catalogued


@dataclass(frozen=True)
class Sku:
    sku: str
    name: str
    mapped: bool


def _variant(memory: str) -> tuple[str, str]:
    """("12+512" -> "12-512", "12GB+512GB"); accessories have no memory."""
    if not memory:
        return "", ""
    ram, storage = memory.split("+")
    return f"{ram}-{storage}-", f" {ram}GB+{storage}{'' if storage.endswith('TB') else 'GB'}"


def _skus() -> Iterator[Sku]:
    for product in PRODUCTS:
        for memory, colour in itertools.product(product.memories, product.colours):
            code, label = _variant(memory)
            yield Sku(
                f"POCO-{product.code}-{code}{colour[:3].upper()}", f"{product.name}{label} {colour}", product.on_mi_com
            )


CATALOGUE = tuple(_skus())
MAPPED_SKUS = tuple(s.sku for s in CATALOGUE if s.mapped)
UNMAPPED_SKUS = tuple(s.sku for s in CATALOGUE if not s.mapped) + LEGACY_SKUS
MI_PRODUCT_BASE = 20_100_000

# --- Users and points ----------------------------------------------------------------

UNLINKED_PER_MILLE = 65  # never linked a Xiaomi account
MI_ACCOUNT_BASE = 6_000_000_000
ACCOUNT_RATE = {True: 0.97, False: 0.6}  # has a points account, by "linked"
ZERO_BALANCE_RATE = 0.18  # of linked users' accounts: out of scope
TIERS = {"bronze": 50, "silver": 30, "gold": 15, "platinum": 5}
TIER_BALANCES = {"bronze": (10, 999), "silver": (1_000, 4_999), "gold": (5_000, 19_999), "platinum": (20_000, 60_000)}
EXPIRY_FROM, EXPIRY_DAYS, NO_EXPIRY_RATE = dt.date(2025, 1, 1), 730, 0.15
EARN_REASONS = {"purchase": 50, "review_reward": 20, "event_reward": 15, "referral": 10, "signup_bonus": 5}
SPEND_REASON = "redeem"
EARNINGS_PER_ACCOUNT, REDEMPTIONS_PER_ACCOUNT = (1, 6), (1, 2)
REDEEM_RATE = 0.4  # of accounts with a balance: redeemed some of it
EMPTY_HISTORY_RATE = 0.5  # of zero-balance accounts: never earned anything
DAMAGED_HISTORY_RATE = 0.005  # a transaction lost long ago: the deltas no longer add up to the balance

# --- Reviews -------------------------------------------------------------------------


@dataclass(frozen=True)
class Texts:
    titles: tuple[str, ...]
    sentences: tuple[str, ...]


TEXTS: dict[str, Texts] = {
    language: Texts(
        _strings(texts["titles"], f"texts.{language}.titles"),
        _strings(texts["sentences"], f"texts.{language}.sentences"),
    )
    for language, texts in _DATA["texts"].items()
}
REVIEWS_PER_LINKED_USER = {0: 12, 1: 22, 2: 22, 3: 18, 4: 12, 5: 8, 6: 6}  # mean 2.44
REVIEW_STATUSES = {"published": 86, "pending": 6, "hidden": 5, "deleted": 3}
RATINGS = {5: 45, 4: 30, 3: 12, 2: 6, 1: 7}
TITLE_RATE, EDITED_RATE, HELPFUL_VOTES_MEAN = 0.7, 0.15, 3.0
REVIEW_PAGE_EVERY = 20  # the site pages that show a review: a sample

# --- Initiatives ---------------------------------------------------------------------

INITIATIVE_TITLES: dict[str, tuple[str, ...]] = {
    kind: _strings(titles, f"initiative_titles.{kind}") for kind, titles in _DATA["initiative_titles"].items()
}


@dataclass(frozen=True)
class Window:
    weight: int
    first_start: dt.datetime
    last_start: dt.datetime
    days: tuple[int, int]  # how long it runs


INITIATIVE_STATUSES: dict[str, Window] = {
    "ended": Window(55, dt.datetime(2021, 1, 1), dt.datetime(2024, 8, 15), (3, 45)),
    "active": Window(30, dt.datetime(2024, 8, 1), dt.datetime(2024, 9, 25), (60, 90)),
    "draft": Window(8, dt.datetime(2024, 10, 15), dt.datetime(2024, 12, 15), (3, 14)),
    "cancelled": Window(7, dt.datetime(2022, 1, 1), dt.datetime(2024, 11, 30), (3, 30)),
}
INITIATIVE_STATUS_WEIGHTS = {status: window.weight for status, window in INITIATIVE_STATUSES.items()}
INITIATIVE_KIND_WEIGHTS = dict.fromkeys(INITIATIVE_TITLES, 1)
MOVING_STATUSES = ("active", "ended")
# Enough initiatives that the largest market passes 100 in-scope ones (room for one
# invalid_dates defect) at scale 1,000, growing with the square root of the users beyond.
INITIATIVES_BASE, INITIATIVES_PER_ROOT_USER = len(INITIATIVE_TITLES) * len(INITIATIVE_STATUSES), 8
PARTICIPATIONS_PER_USER = 1.5
PARTICIPANT_STATUSES = {"joined": 80, "winner": 8, "withdrawn": 12}
REWARD_POINTS = {"joined": (0, 100), "winner": (500, 5_000), "withdrawn": (0, 0)}

# --- Site ----------------------------------------------------------------------------

STATIC_PAGES: tuple[tuple[str, str], ...] = tuple(  # (kind, path below the market's root)
    (kind, path) for kind, path in (_strings(page, "static_pages[]") for page in _DATA["static_pages"])
)

# --- Defects -------------------------------------------------------------------------

# Per domain, the quarantine reasons that the seed plants, in the order they take
# turns: the ones that need a rare kind of row (an unlinked user, an earlier review)
# come first, so that they get the first room of the largest market.
DEFECTS: dict[str, tuple[str, ...]] = {
    "points": ("unlinked_account", "negative_balance"),
    "reviews": ("unlinked_account", "duplicate", "unmapped_product", "invalid_rating", "empty_body"),
    "initiatives": ("invalid_dates",),
    "participants": ("unlinked_account", "orphan"),
}
# The orphan rule's three cases, taking turns across markets so that each is planted.
ORPHAN_CASES = ("quarantined", "out_of_scope", "gone")
# The defects that any linked user's review can take: the column spoiled, and the values to spoil it with.
REVIEW_FLAWS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "unmapped_product": ("sku", UNMAPPED_SKUS),
    "invalid_rating": ("rating", (0, 6, -1, 10)),
    "empty_body": ("body", ("", " ", "   ", "\n\t ")),
}
