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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import sqlalchemy as sa

from poco_migration import schemas
from poco_migration.plan import GLOBAL_MARKET

T = TypeVar("T")
Row = dict[str, Any]

BATCH_ROWS = 5_000
ROWS_PER_DEFECT = 100  # the contract's default max_quarantine_ratio, 0.01, as a whole number
EPOCH = dt.datetime(2019, 1, 1)
SNAPSHOT = dt.datetime(2024, 9, 30, 23, 59, 59)  # the POCO platform as the migration first sees it
SITE = "https://www.po.co"
EMAIL_DOMAINS = ("example.com", "example.org")

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
    m.code: m
    for m in (
        Market(
            "IN",
            weight=30,
            languages={"en": 55, "hi": 45},
            first_names=("aarav", "priya", "rahul", "ananya", "vikram", "sneha", "arjun", "kavya"),
            surnames=("sharma", "patel", "singh", "iyer", "reddy", "gupta", "nair", "das"),
            cities=("Mumbai", "Delhi", "Bengaluru", "Hyderabad", "Chennai"),
        ),
        Market(
            "ID",
            weight=14,
            languages={"id": 85, "en": 15},
            first_names=("budi", "siti", "agus", "dewi", "rizky", "putri"),
            surnames=("santoso", "wijaya", "saputra", "lestari", "hidayat", "pratama"),
            cities=("Jakarta", "Surabaya", "Bandung", "Medan"),
        ),
        Market(
            "GL",
            weight=12,
            languages={"en": 70, "es": 8, "fr": 6, "de": 6, "it": 5, "pl": 5},
            first_names=("alex", "sam", "maria", "david", "lena", "omar", "yuki", "noah"),
            surnames=("smith", "garcia", "mueller", "kowalski", "tanaka", "silva", "brown", "hassan"),
            cities=("Dubai", "London", "Istanbul", "Online"),
        ),
        Market(
            "IT",
            weight=10,
            languages={"it": 90, "en": 10},
            first_names=("marco", "giulia", "luca", "francesca", "alessandro", "chiara"),
            surnames=("rossi", "russo", "ferrari", "esposito", "bianchi", "romano"),
            cities=("Milano", "Roma", "Napoli", "Torino"),
        ),
        Market(
            "ES",
            weight=8,
            languages={"es": 90, "en": 10},
            first_names=("javier", "lucia", "carlos", "marta", "pablo", "elena"),
            surnames=("garcia", "fernandez", "lopez", "martinez", "sanchez", "perez"),
            cities=("Madrid", "Barcelona", "Valencia", "Sevilla"),
        ),
        Market(
            "DE",
            weight=7,
            languages={"de": 90, "en": 10},
            first_names=("lukas", "anna", "felix", "laura", "jonas", "lea"),
            surnames=("mueller", "schmidt", "schneider", "fischer", "weber", "wagner"),
            cities=("Berlin", "München", "Hamburg", "Köln"),
        ),
        Market(
            "FR",
            weight=6,
            languages={"fr": 92, "en": 8},
            first_names=("lucas", "chloe", "hugo", "lea", "louis", "manon"),
            surnames=("martin", "bernard", "dubois", "thomas", "robert", "petit"),
            cities=("Paris", "Lyon", "Marseille", "Lille"),
        ),
        Market(
            "MY",
            weight=5,
            languages={"ms": 60, "en": 40},
            first_names=("ahmad", "nurul", "wei", "siti", "raj", "aisyah"),
            surnames=("abdullah", "tan", "lim", "ismail", "kumar", "wong"),
            cities=("Kuala Lumpur", "Penang", "Johor Bahru"),
        ),
        Market(
            "PH",
            weight=3,
            languages={"tl": 55, "en": 45},
            first_names=("juan", "maria", "jose", "angel", "mark", "kristine"),
            surnames=("delacruz", "santos", "reyes", "garcia", "bautista", "mendoza"),
            cities=("Manila", "Cebu", "Davao", "Quezon City"),
        ),
        Market(
            "TH",
            weight=3,
            languages={"th": 85, "en": 15},
            first_names=("somchai", "suda", "anan", "ploy", "niran", "malee"),
            surnames=("saetang", "srisuk", "wongsa", "chaiyaporn", "boonmee", "thongdee"),
            cities=("Bangkok", "Chiang Mai", "Phuket"),
        ),
        Market(
            "PL",
            weight=2,
            languages={"pl": 90, "en": 10},
            first_names=("jakub", "zofia", "kacper", "julia", "piotr", "anna"),
            surnames=("nowak", "kowalski", "wisniewski", "wojcik", "kaminski", "lewandowski"),
            cities=("Warszawa", "Kraków", "Wrocław", "Gdańsk"),
        ),
    )
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


PRODUCTS = (
    Product("F6PRO", "POCO F6 Pro", True, ("12+256", "12+512", "16+1TB"), ("Black", "White")),
    Product("F6", "POCO F6", True, ("8+256", "12+512"), ("Black", "Green", "Titanium")),
    Product("X6PRO", "POCO X6 Pro 5G", True, ("8+256", "12+512"), ("Black", "Grey", "Yellow")),
    Product("X6", "POCO X6 5G", True, ("8+256", "12+256", "12+512"), ("Black", "White", "Blue")),
    Product("M6PRO", "POCO M6 Pro", True, ("8+256", "12+512"), ("Black", "Blue", "Purple")),
    Product("M6", "POCO M6", True, ("6+128", "8+256"), ("Black", "Silver")),
    Product("C65", "POCO C65", True, ("6+128", "8+256"), ("Black", "Blue", "Purple")),
    Product("F5PRO", "POCO F5 Pro", False, ("12+256", "12+512"), ("Black", "White")),
    Product("PAD", "POCO Pad", True, ("8+256",), ("Grey", "Blue")),
    Product("WATCH", "POCO Watch", True, ("",), ("Black", "Ivory", "Blue")),
    Product("BUDSPRO", "POCO Buds Pro", False, ("",), ("Midnight Black", "Cyber Yellow")),
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
    "en": Texts(
        ("Great value for money", "Fast and smooth", "Battery lasts all day", "Not bad, not perfect", "Love it 😍"),
        (
            "Battery easily lasts a full day of heavy use.",
            "The screen is bright and super smooth.",
            "Camera is good in daylight, a bit noisy at night.",
            "Charging from 0 to 100% takes about 20 minutes 🔥",
            "Gaming performance is excellent, no lag at all.",
            "Gets a little warm when gaming, otherwise perfect.",
            "Best phone I've had for this price 👍",
        ),
    ),
    "it": Texts(
        ("Ottimo rapporto qualità/prezzo", "Veloce e fluido", "Batteria infinita", "Buono ma non perfetto"),
        (
            "La batteria dura tranquillamente tutto il giorno.",
            "Lo schermo è luminoso e fluidissimo.",
            "La fotocamera di notte poteva essere migliore.",
            "Si ricarica in una ventina di minuti ⚡",
            "Nei giochi non perde un colpo.",
            "Consegna veloce, confezione perfetta 👍",
        ),
    ),
    "es": Texts(
        ("Relación calidad-precio increíble", "Muy rápido", "Buena batería", "Cumple, sin más"),
        (
            "La batería aguanta todo el día sin problema.",
            "La pantalla se ve genial, muy fluida.",
            "La cámara nocturna podría mejorar.",
            "Carga rapidísima, en media hora está al 100% 🔋",
            "Para jugar va de lujo.",
            "Se calienta un poco con juegos pesados.",
        ),
    ),
    "fr": Texts(
        ("Excellent rapport qualité-prix", "Rapide et fluide", "Autonomie au top", "Correct sans plus"),
        (
            "L'autonomie tient largement la journée.",
            "L'écran est lumineux et très fluide.",
            "Les photos de nuit sont un peu bruitées.",
            "La charge rapide est bluffante ⚡",
            "Parfait pour jouer, aucun ralentissement.",
            "Livraison rapide, rien à redire 👌",
        ),
    ),
    "de": Texts(
        ("Top Preis-Leistung", "Schnell und flüssig", "Akku hält ewig", "Gut, aber nicht perfekt"),
        (
            "Der Akku hält locker einen ganzen Tag.",
            "Das Display ist hell und super flüssig.",
            "Nachtaufnahmen könnten besser sein.",
            "Lädt in gut 20 Minuten voll ⚡",
            "Beim Zocken läuft alles ruckelfrei.",
            "Wird beim Spielen etwas warm, sonst top 👍",
        ),
    ),
    "pl": Texts(
        ("Świetny stosunek jakości do ceny", "Szybki i płynny", "Bateria trzyma długo", "Dobry, ale nie idealny"),
        (
            "Bateria spokojnie wytrzymuje cały dzień.",
            "Ekran jest jasny i bardzo płynny.",
            "Zdjęcia nocą mogłyby być lepsze.",
            "Ładowanie trwa około 20 minut ⚡",
            "W grach działa bez zarzutu.",
            "Szybka dostawa, polecam 👍",
        ),
    ),
    "th": Texts(
        ("คุ้มค่ามาก", "เร็วและลื่นไหล", "แบตอึดมาก", "ดีแต่ยังไม่สุด"),
        (
            "แบตเตอรี่ใช้ได้ทั้งวันสบายๆ",
            "หน้าจอสว่างและลื่นมาก",
            "กล้องถ่ายกลางคืนยังไม่ค่อยดี",
            "ชาร์จเร็วมาก ประมาณ 20 นาทีเต็ม ⚡",
            "เล่นเกมลื่น ไม่มีกระตุก",
            "ส่งของไว แพ็คมาดี 👍",
        ),
    ),
    "hi": Texts(
        ("पैसा वसूल फ़ोन", "तेज़ और स्मूथ", "बैटरी बहुत बढ़िया", "ठीक-ठाक है"),
        (
            "बैटरी आराम से पूरा दिन चल जाती है।",
            "डिस्प्ले बहुत ब्राइट और स्मूथ है।",
            "रात में कैमरा थोड़ा कमज़ोर है।",
            "चार्जिंग बहुत तेज़ है, 20 मिनट में फुल ⚡",
            "गेमिंग में कोई लैग नहीं है।",
            "इस कीमत में सबसे अच्छा फ़ोन 👍",
        ),
    ),
    "id": Texts(
        ("Harga murah kualitas mantap", "Cepat dan lancar", "Baterai awet", "Lumayan"),
        (
            "Baterainya awet, seharian aman.",
            "Layarnya terang dan sangat mulus.",
            "Kamera malam masih kurang bagus.",
            "Ngecas cepat banget, 20 menit penuh ⚡",
            "Main game lancar tanpa lag.",
            "Pengiriman cepat, packing rapi 👍",
        ),
    ),
    "ms": Texts(
        ("Berbaloi-baloi", "Laju dan lancar", "Bateri tahan lama", "Boleh tahan"),
        (
            "Bateri boleh tahan sehari suntuk.",
            "Skrin terang dan sangat lancar.",
            "Kamera waktu malam kurang memuaskan.",
            "Cas sangat laju, 20 minit penuh ⚡",
            "Main game lancar, tiada lag.",
            "Penghantaran cepat, terima kasih 👍",
        ),
    ),
    "tl": Texts(
        ("Sulit sa presyo", "Mabilis at smooth", "Matagal ang baterya", "Okay lang"),
        (
            "Tumatagal ang baterya buong araw.",
            "Maliwanag at sobrang smooth ng screen.",
            "Medyo mahina ang camera sa gabi.",
            "Ang bilis mag-charge, 20 minuto lang ⚡",
            "Walang lag kahit naglalaro.",
            "Mabilis ang delivery, salamat 👍",
        ),
    ),
}
REVIEWS_PER_LINKED_USER = {0: 12, 1: 22, 2: 22, 3: 18, 4: 12, 5: 8, 6: 6}  # mean 2.44
REVIEW_STATUSES = {"published": 86, "pending": 6, "hidden": 5, "deleted": 3}
RATINGS = {5: 45, 4: 30, 3: 12, 2: 6, 1: 7}
TITLE_RATE, EDITED_RATE, HELPFUL_VOTES_MEAN = 0.7, 0.15, 3.0
REVIEW_PAGE_EVERY = 20  # the site pages that show a review: a sample

# --- Initiatives ---------------------------------------------------------------------

INITIATIVE_TITLES: dict[str, tuple[str, ...]] = {
    "campaign": ("{product} launch offer", "Mid-year sale: up to 30% off {product}", "Trade in for a {product}"),
    "event": ("{product} fan meetup {city}", "POCO community day {city}", "{product} hands-on {city}"),
    "contest": ("Shot on {product} photo contest", "POCO gaming cup {city}", "Design a {product} wallpaper"),
    "beta_program": ("HyperOS beta for {product}", "{product} camera update beta", "Early access: {product} firmware"),
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

STATIC_PAGES = (  # (kind, path below the market's root)
    ("home", ""),
    ("community", "community"),
    ("community", "community/forum"),
    ("store", "store"),
    ("support", "support"),
    ("support", "support/warranty"),
    ("account", "account"),
    ("account", "account/points"),
    ("other", "about"),
    ("other", "privacy-policy"),
    ("other", "terms-of-use"),
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
