"""The redirect rules: ``config/redirects.yaml`` loaded into :class:`Rules`, and refused
with the file and the field when it cannot be used.

Where each kind of POCO page goes is an editorial decision, not code, so it lives
in that file: one target template per page kind (and ``fallback``), all under the
one destination POCO announced, https://www.mi.com/global/, unless a market is
opted in to its own mi.com locale (``locale_markets``); and the POCO Store app's
end-of-life notice (:class:`AppRules`). Everything is checked when the rules are
loaded, so that a bad edit fails the DAG parse rather than a market's cutover.
What "under the destination" means (:meth:`Rules.off_destination`) is defined here
once: the load checks the templates with it and ``validate`` every built target.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from poco_migration.config_files import PROJECT, read_yaml
from poco_migration.plan import load_plan

DEFAULT_RULES = PROJECT / "config" / "redirects.yaml"
PAGE_KINDS = ("home", "product", "review", "initiative", "community", "store", "support", "account", "other")
FALLBACK = "fallback"
RULE_FIELDS = {"poco_hosts", "target_host", "destination", "locale_markets", "locales", "targets", "app"}
# The placeholders each target template may use, beyond {locale}.
PLACEHOLDERS = {"product": {"mi_product_id"}, "review": {"mi_product_id"}, "initiative": {"mi_initiative_id"}}
MARKET_CODE = re.compile(r"^[A-Z]{2}$")
LOCALE = re.compile(r"^[a-z0-9-]+$")
# The destination's path: one locale, e.g. /global/.
DESTINATION_PATH = re.compile(r"^/([a-z0-9-]+)/$")
# What a browser takes as a path separator (WHATWG URL: a backslash too, for https).
PATH_SEPARATOR = re.compile(r"[/\\]")


class RulesError(ValueError):
    """A redirect configuration that cannot be used; the message names the file and the field."""


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

    def off_destination(self, target: str, path: str, market: str | None) -> str | None:
        """Why ``target`` (https on the target host, ``path`` its path) is not where a page of
        ``market`` may go, or None: under the destination, or under the market's own locale
        when ``locale_markets`` lists it. Dot segments are refused, because a browser
        resolves ``/global/../it/`` to ``/it/``."""
        roots = self.root_paths(market)
        if path.startswith(roots) and not _dot_segments(path):
            return None
        if market not in self.locale_markets:
            because = f" (market {market} is not in locale_markets)" if market else ""
            return f"{target} is not under the destination {self.destination}{because}"
        own = f"https://{self.target_host}{roots[-1]}"
        return f"{target} is not under the destination {self.destination} nor market {market}'s locale {own}"


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
            off = rules.off_destination(url, urlsplit(url).path, market)
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


def _dot_segments(path: str) -> bool:
    """Whether a browser would resolve ``path`` elsewhere: a ``.`` or ``..`` segment, also
    percent-encoded or after a backslash."""
    if "." not in path and "%" not in path:  # the common case, kept cheap for a million URLs
        return False
    return any(unquote(segment) in (".", "..") for segment in PATH_SEPARATOR.split(path))
