"""Every POCO URL redirected to mi.com in one hop, and the POCO Store app retired.

When a market's site closes, each of its pages (``poco_site_pages``) must answer a
single 301 straight to its new home on mi.com: a product to the same product on
mi.com, a review to that product's reviews, a moved initiative to the POCO
section's page for it, and so on (``config/redirects.yaml`` holds the rules, because
the targets are an editorial decision, not code). All of them under the one
destination POCO announced, https://www.mi.com/global/, unless the configuration
opts a market in to its own mi.com locale (``locale_markets``). The map is built from the
databases, checked as a whole (:func:`validate`), written out as an nginx ``map`` and
a CSV, and once deployed verified over HTTP (:func:`probe`). The app's API answers
410 Gone with a pointer to the Mi Store (:func:`check_app_retired`).

``export`` is the one call a market's cutover needs: build, validate, write.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import string
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import requests
import sqlalchemy as sa
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from urllib3.util.retry import Retry

from poco_migration import schemas
from poco_migration.config_files import PROJECT, read_yaml
from poco_migration.plan import load_plan

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_RULES = PROJECT / "config" / "redirects.yaml"
PAGE_KINDS = ("home", "product", "review", "initiative", "community", "store", "support", "account", "other")
FALLBACK = "fallback"
RULE_FIELDS = {"poco_hosts", "target_host", "destination", "locale_markets", "locales", "targets", "app"}
# The placeholders each target template may use, beyond {locale}.
PLACEHOLDERS = {"product": {"mi_product_id"}, "review": {"mi_product_id"}, "initiative": {"mi_initiative_id"}}
BATCH_ROWS = 5_000
# A review id as the POCO site prints it: the only refs that may be cast to a bigint.
REVIEW_ID = r"^[1-9][0-9]{0,17}$"
MARKET_CODE = re.compile(r"^[A-Z]{2}$")
LOCALE = re.compile(r"^[a-z0-9-]+$")
# The destination's path: one locale, e.g. /global/.
DESTINATION_PATH = re.compile(r"^/([a-z0-9-]+)/$")
# What a browser takes as a path separator (WHATWG URL: a backslash too, for https).
PATH_SEPARATOR = re.compile(r"[/\\]")
NGINX_VARIABLE = re.compile(r"^\$[a-z_][a-z0-9_]*$")
# What nginx cannot take literally in a map value: `$` starts a variable and has no escape.
NGINX_UNSAFE_VALUE = re.compile(r"[$\s\x00-\x1f\x7f]")


class RulesError(ValueError):
    """A redirect configuration that cannot be used; the message names the file and the field."""


class RedirectError(RuntimeError):
    """A redirect map that must not be deployed (it has problems)."""


@dataclass(frozen=True)
class AppRules:
    """The retired app: where its API lives and the notice it answers with."""

    api_base_path: str
    endpoints: tuple[str, ...]
    link_rel: str
    name: str
    message: str
    mi_store_url: str
    retired_on: dt.date


@dataclass(frozen=True)
class Rules:
    """The redirect rules of ``config/redirects.yaml``, validated."""

    poco_hosts: frozenset[str]
    target_host: str
    destination: str
    # The destination's locale path (``global``), read from ``destination``.
    global_locale: str
    locales: Mapping[str, str]
    locale_markets: frozenset[str]
    targets: Mapping[str, str]
    app: AppRules

    def locale(self, market: str | None) -> str:
        """The ``{locale}`` of a page of ``market``: the destination's, as POCO announced,
        unless the configuration opted the market in to its own (``locale_markets``)."""
        return self.locales[market] if market in self.locale_markets else self.global_locale

    def root_paths(self, market: str | None) -> tuple[str, ...]:
        """The paths on ``target_host`` that a target of ``market`` may be under."""
        own = (f"/{self.locales[market]}/",) if market in self.locale_markets else ()
        return (f"/{self.global_locale}/", *own)


class Redirect(NamedTuple):
    """One POCO URL and where it goes; ``rule`` is the target template used (a page
    kind or ``fallback``), so that reports can count the fallbacks."""

    source: str
    target: str
    market: str | None
    kind: str | None
    ref: str | None
    rule: str


class Problem(NamedTuple):
    """Why a redirect map must not be deployed: ``kind`` is one of ``missing``,
    ``duplicate``, ``loop``, ``chain``, ``poco_target``, ``not_https``, ``off_host``,
    ``off_destination``."""

    kind: str
    source: str
    detail: str


class ProbeResult(NamedTuple):
    """One URL asked over HTTP; ``reason`` is None when it passed, else one of
    ``wrong_status``, ``wrong_location``, ``chain``, ``error``."""

    source: str
    url: str
    expected: str
    status: int | None
    location: str | None
    reason: str | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class ProbeReport:
    results: tuple[ProbeResult, ...]
    elapsed: float

    @property
    def failures(self) -> tuple[ProbeResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


@dataclass(frozen=True)
class CheckResult:
    """The app check: the URLs asked, and what was wrong with their answers."""

    checked: tuple[str, ...]
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


class Export(NamedTuple):
    market: str
    redirects: int
    by_rule: dict[str, int]
    nginx_file: Path
    csv_file: Path


# --- Rules -----------------------------------------------------------------------------


def load_rules(path: str | os.PathLike[str] | None = None) -> Rules:
    """Load and validate the rules (``POCO_MIGRATION_REDIRECTS`` or ``config/redirects.yaml``
    by default), so that a bad edit fails the DAG parse rather than the cutover."""
    source = Path(path or os.environ.get("POCO_MIGRATION_REDIRECTS") or DEFAULT_RULES)
    raw = read_yaml(source, "redirect rules", RulesError)
    try:
        return _rules(raw)
    except RulesError as exc:
        raise RulesError(f"{source}: {exc}") from None


def _rules(raw: Any) -> Rules:
    top = _fields(raw, "rules", RULE_FIELDS)
    target_host = _text(top["target_host"], "target_host").lower()
    hosts = top["poco_hosts"]
    if not isinstance(hosts, list) or not hosts:
        raise RulesError("poco_hosts: expected a non-empty list of host names")
    poco_hosts = frozenset(_text(h, f"poco_hosts[{i}]").lower() for i, h in enumerate(hosts))
    if target_host in poco_hosts:
        raise RulesError(f"target_host: {target_host} is a POCO host")
    destination, global_locale = _destination(top["destination"], target_host)
    locales = _locales(top["locales"])
    targets = _fields(top["targets"], "targets", {*PAGE_KINDS, FALLBACK})
    for kind, template in targets.items():
        _template(template, f"targets.{kind}", PLACEHOLDERS.get(kind, set()))
    rules = Rules(
        poco_hosts=poco_hosts,
        target_host=target_host,
        destination=destination,
        global_locale=global_locale,
        locales=locales,
        locale_markets=_locale_markets(top["locale_markets"], locales),
        targets=targets,
        app=_app(top["app"]),
    )
    _check_targets(rules)
    return rules


def _fields(value: Any, field: str, keys: set[str]) -> dict[str, Any]:
    """A mapping with exactly ``keys``: a typo must not silently drop a rule."""
    if not isinstance(value, dict):
        raise RulesError(f"{field}: expected a mapping")
    unknown = sorted(set(value) - keys, key=str)
    if unknown:
        raise RulesError(f"{field}.{unknown[0]}: unknown field (allowed: {', '.join(sorted(keys))})")
    missing = sorted(keys - set(value))
    if missing:
        raise RulesError(f"{field}.{missing[0]}: missing")
    return value


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RulesError(f"{field}: expected a non-empty text, got {value!r}")
    return value


def _https(value: Any, field: str, host: str | None = None) -> str:
    url = _text(value, field)
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise RulesError(f"{field}: {url} is not an https URL")
    if host is not None and parts.netloc.lower() != host:
        raise RulesError(f"{field}: {url} is not on {host}")
    return url


def _locales(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise RulesError("locales: expected a mapping of market codes to mi.com locale paths")
    for market, locale in value.items():
        if not isinstance(market, str) or not MARKET_CODE.match(market):
            raise RulesError(f"locales.{market}: not an upper-case two-letter market code")
        if not isinstance(locale, str) or not LOCALE.match(locale):
            raise RulesError(f"locales.{market}: {locale!r} is not a locale path (lower-case letters, digits, -)")
    return value


def _destination(value: Any, host: str) -> tuple[str, str]:
    """The destination POCO announced and its locale path, the ``{locale}`` of every market
    that keeps the default; one locale, so that "under the destination" is unambiguous."""
    url = _https(value, "destination", host)
    parts = urlsplit(url)
    path = DESTINATION_PATH.match(parts.path)
    if path is None or parts.query or parts.fragment:
        raise RulesError(f"destination: {url} is not https://{host}/<locale>/ (one locale path, ending with /)")
    return url, path[1]


def _locale_markets(value: Any, locales: Mapping[str, str]) -> frozenset[str]:
    """The markets opted in to their own locale: each a market of the plan with a locale,
    so that a typo cannot silently send a market elsewhere, or nowhere."""
    if not isinstance(value, list):
        raise RulesError(f"locale_markets: expected a list of market codes (empty: none), got {value!r}")
    plan_markets = load_plan().codes if value else ()  # the default needs no plan
    for i, market in enumerate(value):
        field = f"locale_markets[{i}]"
        if not isinstance(market, str) or not MARKET_CODE.match(market):
            raise RulesError(f"{field}: {market!r} is not an upper-case two-letter market code")
        if market not in plan_markets:
            raise RulesError(f"{field}: {market!r} is not a market of the plan ({', '.join(plan_markets)})")
        if market not in locales:
            raise RulesError(f"{field}: {market!r} has no locale in locales")
        if market in value[:i]:
            raise RulesError(f"{field}: {market!r} is listed twice")
    return frozenset(value)


def _template(value: Any, field: str, extra: set[str]) -> None:
    """A template may only use ``{locale}`` and its kind's placeholders."""
    template = _text(value, field)
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise RulesError(f"{field}: {exc}") from exc
    unknown = sorted(names - {"locale", *extra})
    if unknown:
        allowed = ", ".join(sorted({"locale", *extra}))
        raise RulesError(f"{field}: unknown placeholder {{{unknown[0]}}} (allowed: {allowed})")


def _check_targets(rules: Rules) -> None:
    """Every template renders to https on the target host, under the destination (or, for
    an opted-in market, its own locale) for the default and for each opted-in market:
    checked at load so that a bad edit fails the DAG parse, not a cutover's gate."""
    for kind, template in rules.targets.items():
        for market in (None, *sorted(rules.locale_markets)):
            url = template.format(locale=rules.locale(market), mi_product_id=1, mi_initiative_id=1)
            field = f"targets.{kind}" + (f" ({market})" if market else "")
            _https(url, field, rules.target_host)
            off = _off_destination(url, urlsplit(url).path, market, rules)
            if off:
                raise RulesError(f"{field}: {off}")


def _app(value: Any) -> AppRules:
    app = _fields(value, "app", {"api_base_path", "endpoints", "link_rel", "notice"})
    notice = _fields(app["notice"], "app.notice", {"app", "message", "mi_store_url", "retired_on"})
    base = _text(app["api_base_path"], "app.api_base_path")
    if not (base.startswith("/") and base.endswith("/")):
        raise RulesError(f"app.api_base_path: {base!r} must start and end with /")
    endpoints = app["endpoints"]
    if not isinstance(endpoints, list):
        raise RulesError("app.endpoints: expected a list of paths below api_base_path")
    for i, endpoint in enumerate(endpoints):
        if _text(endpoint, f"app.endpoints[{i}]").startswith("/"):
            raise RulesError(f"app.endpoints[{i}]: {endpoint!r} must be relative to api_base_path (no leading /)")
    if not isinstance(notice["retired_on"], dt.date):
        raise RulesError(f"app.notice.retired_on: {notice['retired_on']!r} is not a date (YYYY-MM-DD)")
    return AppRules(
        api_base_path=base,
        endpoints=tuple(endpoints),
        link_rel=_text(app["link_rel"], "app.link_rel"),
        name=_text(notice["app"], "app.notice.app"),
        message=_text(notice["message"], "app.notice.message"),
        mi_store_url=_https(notice["mi_store_url"], "app.notice.mi_store_url"),
        retired_on=notice["retired_on"],
    )


# --- Building the map ------------------------------------------------------------------


def build_map(
    source_engine: sa.Engine, target_engine: sa.Engine, market: str | None, rules: Rules
) -> Iterator[Redirect]:
    """The redirect of every POCO page of ``market`` (every market when None), by URL.

    Streamed: one query joins each page to what it needs from the source (the
    product's ``mi_product_id``; for a review, its product's), so that no table is
    held in memory; only the moved initiatives' ids, a short list, are read first,
    from the target, which lives in another database.
    """
    initiatives = _moved_initiatives(target_engine)
    with source_engine.connect() as conn:
        for row in conn.execution_options(yield_per=BATCH_ROWS).execute(_pages_query(market)):
            target, rule = _target(row, rules, initiatives)
            yield Redirect(row.url, target, row.market, row.kind, row.ref, rule)


def page_urls(source_engine: sa.Engine, market: str | None) -> Iterator[str]:
    """Every POCO URL of ``market`` (every market when None): what a map must cover."""
    pages = schemas.poco_site_pages
    query = sa.select(pages.c.url)
    if market is not None:
        query = query.where(pages.c.market == market)
    with source_engine.connect() as conn:
        yield from conn.execution_options(yield_per=BATCH_ROWS).scalars(query)


def _moved_initiatives(target_engine: sa.Engine) -> dict[str, int]:
    """source_ref -> mi_initiatives id of every moved POCO initiative."""
    initiatives = schemas.mi_initiatives
    query = sa.select(initiatives.c.source_ref, initiatives.c.initiative_id).where(
        initiatives.c.source_ref.startswith("poco:initiative:", autoescape=True)
    )
    with target_engine.connect() as conn:
        return dict(conn.execute(query).tuples().all())


def _pages_query(market: str | None) -> sa.Select:
    pages, reviews = schemas.poco_site_pages, schemas.poco_reviews
    product = schemas.poco_products.alias("product")
    reviewed = schemas.poco_products.alias("reviewed")
    # The ref is untrusted text: only a well-formed id is cast (PostgreSQL would fail
    # the whole query on one bad ref), and comparing the id column itself, not a cast
    # of it, lets both databases use the primary key.
    review_id = sa.case((pages.c.ref.regexp_match(REVIEW_ID), sa.cast(pages.c.ref, sa.BigInteger)))
    joined = (
        pages.outerjoin(product, sa.and_(pages.c.kind == "product", product.c.sku == pages.c.ref))
        .outerjoin(reviews, sa.and_(pages.c.kind == "review", reviews.c.review_id == review_id))
        .outerjoin(reviewed, reviewed.c.sku == reviews.c.sku)
    )
    query = (
        sa.select(
            pages.c.url,
            pages.c.market,
            pages.c.kind,
            pages.c.ref,
            sa.func.coalesce(product.c.mi_product_id, reviewed.c.mi_product_id).label("mi_product_id"),
        )
        .select_from(joined)
        .order_by(pages.c.url)
    )
    return query if market is None else query.where(pages.c.market == market)


def _target(row: sa.Row, rules: Rules, initiatives: Mapping[str, int]) -> tuple[str, str]:
    """The target of one page and the rule that gave it."""
    locale = rules.locale(row.market)
    kind = row.kind
    if kind in ("product", "review"):
        mapped = isinstance(row.mi_product_id, int) and row.mi_product_id > 0
        values = {"mi_product_id": row.mi_product_id} if mapped else None
    elif kind == "initiative":
        moved = initiatives.get(f"poco:initiative:{row.ref}")
        values = None if moved is None else {"mi_initiative_id": moved}
    else:
        values = {} if kind in PAGE_KINDS else None
    if values is None:
        return rules.targets[FALLBACK].format(locale=locale), FALLBACK
    return rules.targets[kind].format(locale=locale, **values), kind


# --- Validation ------------------------------------------------------------------------


def validate(redirects: Iterable[Redirect], rules: Rules, expected: Iterable[str]) -> list[Problem]:
    """Everything that would make the map unsafe to deploy, in one linear pass.

    ``expected`` is every POCO URL the map must cover (:func:`page_urls`). Each
    redirect gets at most one problem about its target, the most telling one: a
    loop, then a chain (the target is itself redirected: two hops), then a POCO
    target, then a target that is not https or not on the allowed host, then one
    not under the destination (nor under its market's own locale, when the market
    opted in to it): the map is checked as built, whatever the templates said.
    """
    first: dict[str, Redirect] = {}
    repeats: Counter[str] = Counter()
    for redirect in redirects:
        if redirect.source in first:
            repeats[redirect.source] += 1
        else:
            first[redirect.source] = redirect
    hops = _hops(first)
    problems = [p for redirect in first.values() if (p := _target_problem(redirect, hops, rules))]
    problems += [Problem("duplicate", s, f"mapped {n + 1} times") for s, n in repeats.items()]
    problems += [Problem("missing", url, "no redirect") for url in expected if url not in first]
    return problems


def _hops(redirects: Mapping[str, Redirect]) -> dict[str, str]:
    """``loop`` or ``chain`` for every source whose target is itself a source.

    Each source has one target, so the sources form a functional graph; walking
    each path once, and never again past a node already judged, keeps it linear.
    """
    edges = {source: r.target for source, r in redirects.items() if r.target in redirects}
    verdict: dict[str, str] = {}
    for start in edges:
        path: list[str] = []
        position: dict[str, int] = {}
        node = start
        while node in edges and node not in verdict and node not in position:
            position[node] = len(path)
            path.append(node)
            node = edges[node]
        cycle = set(path[position[node] :]) if node in position else set()
        verdict.update((n, "loop" if n in cycle else "chain") for n in path)
    return verdict


def _target_problem(redirect: Redirect, hops: Mapping[str, str], rules: Rules) -> Problem | None:
    source, target = redirect.source, redirect.target
    hop = hops.get(source)
    if hop == "loop":
        return Problem("loop", source, f"{target} redirects back to this URL")
    if hop == "chain":
        return Problem("chain", source, f"{target} is itself redirected")
    parts = urlsplit(target)
    if (parts.hostname or "").lower() in rules.poco_hosts:
        return Problem("poco_target", source, f"{target} is a POCO URL")
    if parts.scheme != "https":
        return Problem("not_https", source, f"{target} is not https")
    if parts.netloc.lower() != rules.target_host:
        return Problem("off_host", source, f"{target} is not on {rules.target_host}")
    off = _off_destination(target, parts.path, redirect.market, rules)
    return Problem("off_destination", source, off) if off else None


def _off_destination(target: str, path: str, market: str | None, rules: Rules) -> str | None:
    """Why ``target`` (https on the target host, ``path`` its path) is not where a page of
    ``market`` may go, or None: under the destination, or under the market's own locale
    when ``locale_markets`` lists it. Dot segments are refused, because a browser
    resolves ``/global/../it/`` to ``/it/``."""
    roots = rules.root_paths(market)
    if path.startswith(roots) and not _dot_segments(path):
        return None
    if market not in rules.locale_markets:
        because = f" (market {market} is not in locale_markets)" if market else ""
        return f"{target} is not under the destination {rules.destination}{because}"
    own = f"https://{rules.target_host}{roots[-1]}"
    return f"{target} is not under the destination {rules.destination} nor market {market}'s locale {own}"


def _dot_segments(path: str) -> bool:
    """Whether a browser would resolve ``path`` elsewhere: a ``.`` or ``..`` segment, also
    percent-encoded or after a backslash."""
    if "." not in path and "%" not in path:  # the common case, kept cheap for a million URLs
        return False
    return any(unquote(segment) in (".", "..") for segment in PATH_SEPARATOR.split(path))


# --- Output ----------------------------------------------------------------------------


def write_nginx_map(
    redirects: Iterable[Redirect], path: str | os.PathLike[str], variable: str = "$poco_redirect"
) -> int:
    """Write ``map $request_uri <variable> { "<path>" "<target>"; ... }``; returns the count.

    Keys are the request URI (path and query) as a client sends it, percent-encoded
    the way browsers and ``requests`` do, because that is what ``$request_uri``
    holds. nginx matches map strings ignoring case, so keys that differ only in case
    are refused rather than left to fail the nginx reload. The file is replaced
    atomically: nginx never reads half of it.
    """
    if not NGINX_VARIABLE.match(variable):
        raise ValueError(f"{variable!r} is not an nginx variable name")
    keys: set[str] = set()
    with _replacing(Path(path)) as out:
        out.write(f"map $request_uri {variable} {{\n")
        for redirect in redirects:
            key = request_uri(redirect.source)
            if key.lower() in keys:
                raise ValueError(f"{redirect.source}: nginx key {key} repeats (nginx ignores case)")
            keys.add(key.lower())
            out.write(f"    {_nginx_string(key)} {_nginx_string(_nginx_value(redirect.target))};\n")
        out.write("}\n")
    return len(keys)


def write_csv(redirects: Iterable[Redirect], path: str | os.PathLike[str]) -> int:
    """Write the map as CSV (source, target, market, kind, ref, rule), for people and audits."""
    count = 0
    with _replacing(Path(path)) as out:
        writer = csv.writer(out)
        writer.writerow(Redirect._fields)
        for redirect in redirects:
            writer.writerow(redirect)
            count += 1
    return count


def export(
    source_engine: sa.Engine, target_engine: sa.Engine, market: str, rules: Rules, out_dir: str | os.PathLike[str]
) -> Export:
    """A market's cutover: build its map, refuse it if :func:`validate` finds a problem,
    else write ``poco_redirects_<market>.map`` (variable ``$poco_redirect_<market>``)
    and ``poco_redirects_<market>.csv`` in ``out_dir``.

    One nginx variable per market, because nginx keeps one ``map`` per variable:
    each market's site (``/<locale>/`` on www.po.co) uses its own.
    """
    redirects = list(build_map(source_engine, target_engine, market, rules))
    problems = validate(redirects, rules, page_urls(source_engine, market))
    if problems:
        shown = "; ".join(f"{p.kind} {p.source}: {p.detail}" for p in problems[:10])
        raise RedirectError(f"{market}: {len(problems)} redirect problem(s), nothing written: {shown}")
    name = f"poco_redirects_{market.lower()}"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nginx_map, csv_path = out / f"{name}.map", out / f"{name}.csv"
    write_nginx_map(redirects, nginx_map, f"$poco_redirect_{market.lower()}")
    write_csv(redirects, csv_path)
    return Export(market, len(redirects), dict(Counter(r.rule for r in redirects)), nginx_map, csv_path)


def request_uri(url: str) -> str:
    """The path and query of ``url`` as a client sends them (what ``$request_uri`` holds)."""
    parts = urlsplit(url)
    return requote_uri((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))


def _nginx_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _nginx_value(target: str) -> str:
    if NGINX_UNSAFE_VALUE.search(target):
        raise ValueError(f"{target!r}: nginx cannot hold a $, a space or a control character in a map value")
    return target


@contextmanager
def _replacing(path: Path) -> Iterator[IO[str]]:
    """A file written beside ``path`` and renamed over it once complete."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# --- Over HTTP -------------------------------------------------------------------------


def probe(
    base_url: str, redirects: Iterable[Redirect], concurrency: int = 32, timeout: float = 5, retries: int = 2
) -> ProbeReport:
    """Ask each POCO URL, on ``base_url`` instead of its own host, and require exactly
    one 301 whose Location is the expected target.

    Redirects are not followed: a second hop is itself the failure. At most
    ``concurrency`` requests are in flight, each worker thread with its own
    keep-alive session; connection and read errors are retried with backoff, answers never.
    """
    started = time.monotonic()
    base = base_url.rstrip("/")
    with _Sessions(retries) as sessions:
        results = tuple(_bounded_map(lambda r: _probe_one(sessions.get(), base, r, timeout), redirects, concurrency))
    return ProbeReport(results, time.monotonic() - started)


def _probe_one(session: requests.Session, base: str, redirect: Redirect, timeout: float) -> ProbeResult:
    url = base + request_uri(redirect.source)
    try:
        response = session.get(url, allow_redirects=False, timeout=timeout)
        response.close()
    except requests.RequestException as exc:
        return ProbeResult(redirect.source, url, redirect.target, None, None, "error", f"{type(exc).__name__}: {exc}")
    status, location = response.status_code, response.headers.get("Location")
    reason, detail = _judge(status, location, redirect, url, base)
    return ProbeResult(redirect.source, url, redirect.target, status, location, reason, detail)


def _judge(status: int, location: str | None, redirect: Redirect, url: str, base: str) -> tuple[str | None, str]:
    if status != 301:
        return "wrong_status", f"{status} instead of 301"
    if location is None:
        return "wrong_location", "no Location header"
    landing = urlsplit(urljoin(url, location)).netloc.lower()
    if landing in {urlsplit(base).netloc.lower(), urlsplit(redirect.source).netloc.lower()}:
        return "chain", f"Location {location} is a POCO URL"
    if location != redirect.target:
        return "wrong_location", f"Location {location} instead of {redirect.target}"
    return None, ""


def app_retirement_notice(rules: Rules) -> dict[str, Any]:
    """The exact answer of every URL of the retired app's API: what the API gateway is
    configured with, and what :func:`check_app_retired` expects."""
    app = rules.app
    return {
        "status": 410,
        "headers": {"Content-Type": "application/json", "Link": f'<{app.mi_store_url}>; rel="{app.link_rel}"'},
        "body": {
            "app": app.name,
            "message": app.message,
            "mi_store_url": app.mi_store_url,
            "retired_on": app.retired_on.isoformat(),
        },
    }


def check_app_retired(api_base_url: str, rules: Rules, timeout: float = 5, retries: int = 2) -> CheckResult:
    """Ask the app API's base path and its sample endpoints on ``api_base_url`` (scheme
    and host); each must give exactly :func:`app_retirement_notice`."""
    notice = app_retirement_notice(rules)
    base = api_base_url.rstrip("/") + rules.app.api_base_path
    urls = (base, *(base + endpoint for endpoint in rules.app.endpoints))
    with _Sessions(retries) as sessions:
        failures = [
            f"{url}: {problem}" for url in urls for problem in _retired_problems(sessions.get(), url, notice, timeout)
        ]
    return CheckResult(urls, tuple(failures))


def _retired_problems(session: requests.Session, url: str, notice: dict[str, Any], timeout: float) -> list[str]:
    try:
        response = session.get(url, allow_redirects=False, timeout=timeout)
    except requests.RequestException as exc:
        return [f"no answer ({type(exc).__name__})"]
    problems = []
    if response.status_code != notice["status"]:
        problems.append(f"status {response.status_code} instead of {notice['status']}")
    for header, expected in notice["headers"].items():
        got = response.headers.get(header)
        if header == "Content-Type" and got is not None:
            got = got.split(";")[0].strip()
        if got != expected:
            problems.append(f"{header} {got!r} instead of {expected!r}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if body != notice["body"]:
        problems.append(f"body {response.text[:200]!r} is not the notice")
    return problems


class _Sessions:
    """One ``requests.Session`` per thread (a Session is not thread-safe), each keeping
    its connection alive, all closed together at the end."""

    def __init__(self, retries: int) -> None:
        self._retry = Retry(total=retries, backoff_factor=0.2, allowed_methods={"GET"})
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[requests.Session] = []

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(max_retries=self._retry, pool_connections=1, pool_maxsize=1)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
            with self._lock:
                self._all.append(session)
        return session

    def __enter__(self) -> _Sessions:
        return self

    def __exit__(self, *exc: object) -> None:
        for session in self._all:
            session.close()


def _bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``fn`` over ``items`` on ``workers`` threads, in order, with a bounded number of
    items in flight: ``Executor.map`` would submit a million URLs up front."""
    window: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for item in items:
            window.append(pool.submit(fn, item))
            if len(window) >= 4 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
