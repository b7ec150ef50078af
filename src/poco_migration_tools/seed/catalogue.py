"""The seed's catalogue: the synthetic POCO platform as data, apart from the generator.

Markets with their languages, names and cities, the POCO line-up, review texts,
initiative titles, and the rates at which the platform's rows (and its defects)
occur. ``generator.py`` reads these tables; changing how the platform looks is an
edit here, not in the code that writes it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from poco_migration.plan import GLOBAL_MARKET

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
