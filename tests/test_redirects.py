"""Redirects: the rules, the map built from both databases, its validation, its files,
and the live checks over HTTP against a local server."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from poco_migration import schemas
from poco_migration.plan import load_plan
from poco_migration.redirects.app import app_retirement_notice, check_app_retired
from poco_migration.redirects.build import Redirect, build_map, page_urls
from poco_migration.redirects.outputs import export, write_csv, write_nginx_map
from poco_migration.redirects.probe import probe
from poco_migration.redirects.rules import DEFAULT_RULES, PAGE_KINDS, RulesError, load_rules
from poco_migration.redirects.server import app_routes, nginx_map_routes, notice_response, serve
from poco_migration.redirects.validate import Problem, RedirectError, validate

RULES = load_rules()
POCO = "https://www.po.co"
MI = "https://www.mi.com"
GLOBAL = f"{MI}/global"

# --- The rules -------------------------------------------------------------------------


def test_the_shipped_rules() -> None:
    assert RULES.target_host == "www.mi.com"
    assert RULES.destination == f"{GLOBAL}/"
    assert RULES.global_locale == "global"
    assert RULES.locale_markets == frozenset()
    assert RULES.locales["GL"] == "global"
    assert RULES.locales["IT"] == "it"
    assert {market: RULES.locale(market) for market in (*load_plan().codes, "XX", None)} == dict.fromkeys(
        (*load_plan().codes, "XX", None), "global"
    )
    assert app_retirement_notice(RULES) == {
        "status": 410,
        "headers": {"Content-Type": "application/json", "Link": f'<{MI}/global/store/>; rel="alternate"'},
        "body": {
            "app": "POCO Store",
            "message": (
                "The POCO Store app closed on 31 December 2024. POCO phones, your points and your reviews "
                "are now on the Mi Store."
            ),
            "mi_store_url": f"{MI}/global/store/",
            "retired_on": "2024-12-31",
        },
    }


def _drop(raw: dict[str, Any], *keys: str) -> None:
    node = raw
    for key in keys[:-1]:
        node = node[key]
    del node[keys[-1]]


def _set(value: Any, *keys: str) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        node = raw
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


def _both(*edits: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        for one in edits:
            one(raw)

    return edit


def _edited_rules(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """The shipped rules with ``edit`` applied, written to a file of the test's own."""
    raw = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "redirects.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda raw: _drop(raw, "target_host"), "rules.target_host: missing"),
        (lambda raw: _drop(raw, "targets", "account"), "targets.account: missing"),
        (_set(f"{MI}/{{locale}}/blog/", "targets", "blog"), "targets.blog: unknown field"),
        (_set("http://www.mi.com/{locale}/poco/", "targets", "home"), "targets.home: http://www.mi.com/global/poco/"),
        (_set("https://shop.example.com/{locale}/", "targets", "store"), "targets.store: https://shop.example.com/"),
        (_set(f"{MI}/{{locale}}/support/{{mi_product_id}}/", "targets", "support"), "targets.support: unknown"),
        (_set(f"{MI}/{{locale}}/poco/{{oops/", "targets", "other"), "targets.other: "),
        (_set("it", "locales", "it"), "locales.it: not an upper-case two-letter market code"),
        (_set("It/x", "locales", "IT"), "locales.IT: 'It/x' is not a locale path"),
        (_set(f"{POCO}/global/", "destination"), "destination: https://www.po.co/global/ is not on www.mi.com"),
        (_set("http://www.mi.com/global/", "destination"), "destination: http://www.mi.com/global/ is not an https"),
        (_set(f"{GLOBAL}/poco/", "destination"), f"destination: {GLOBAL}/poco/ is not https://www.mi.com/<locale>/"),
        (_set(GLOBAL, "destination"), f"destination: {GLOBAL} is not https://www.mi.com/<locale>/"),
        (_set(f"{GLOBAL}/?x=1", "destination"), f"destination: {GLOBAL}/?x=1 is not https://www.mi.com/<locale>/"),
        (lambda raw: _drop(raw, "destination"), "rules.destination: missing"),
        (
            _set(f"{MI}/it/poco/", "targets", "home"),
            f"targets.home: {MI}/it/poco/ is not under the destination {GLOBAL}/",
        ),
        (
            _set(f"{GLOBAL}/../it/poco/", "targets", "other"),
            f"targets.other: {GLOBAL}/../it/poco/ is not under the destination {GLOBAL}/",
        ),
        (
            _set(f"{GLOBAL}/%2E%2e/it/poco/", "targets", "store"),
            f"targets.store: {GLOBAL}/%2E%2e/it/poco/ is not under the destination {GLOBAL}/",
        ),
        (
            _set(f"{GLOBAL}/poco\\..\\..\\it/", "targets", "community"),
            f"targets.community: {GLOBAL}/poco\\..\\..\\it/ is not under the destination {GLOBAL}/",
        ),
        (
            _set(f"{MI}/globalx/poco/", "targets", "fallback"),
            f"targets.fallback: {MI}/globalx/poco/ is not under the destination {GLOBAL}/",
        ),
        (
            _both(_set(["IT"], "locale_markets"), _set(f"{MI}/fr/support/", "targets", "support")),
            f"targets.support: {MI}/fr/support/ is not under the destination {GLOBAL}/",
        ),
        (lambda raw: _drop(raw, "locale_markets"), "rules.locale_markets: missing"),
        (_set("IT", "locale_markets"), "locale_markets: expected a list of market codes (empty: none), got 'IT'"),
        (_set(None, "locale_markets"), "locale_markets: expected a list of market codes (empty: none), got None"),
        (_set(["it"], "locale_markets"), "locale_markets[0]: 'it' is not an upper-case two-letter market code"),
        (_set(["IT", False], "locale_markets"), "locale_markets[1]: False is not an upper-case two-letter market"),
        (_set(["IT", "XX"], "locale_markets"), "locale_markets[1]: 'XX' is not a market of the plan (IT, PL, TH,"),
        (_set(["IT", "ES", "IT"], "locale_markets"), "locale_markets[2]: 'IT' is listed twice"),
        (
            _both(_set(["IT"], "locale_markets"), lambda raw: _drop(raw, "locales", "IT")),
            "locale_markets[0]: 'IT' has no locale in locales",
        ),
        (_set([], "poco_hosts"), "poco_hosts: expected a non-empty list"),
        (_set("www.mi.com", "poco_hosts", 0), "target_host: www.mi.com is a POCO host"),
        (_set("api", "app", "api_base_path"), "app.api_base_path: 'api' must start and end with /"),
        (_set(["/v1/cart"], "app", "endpoints"), "app.endpoints[0]: '/v1/cart' must be relative"),
        (_set("soon", "app", "notice", "retired_on"), "app.notice.retired_on: 'soon' is not a date"),
        (_set("http://www.mi.com/", "app", "notice", "mi_store_url"), "app.notice.mi_store_url: http://"),
        (_set("", "app", "notice", "message"), "app.notice.message: expected a non-empty text"),
    ],
)
def test_a_bad_rule_is_refused_with_its_field(tmp_path: Path, edit, message: str) -> None:
    path = _edited_rules(tmp_path, edit)
    with pytest.raises(RulesError) as refused:
        load_rules(path)
    assert str(refused.value).startswith(f"{path}: {message}")


def test_an_unreadable_rules_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read the redirect rules"):
        load_rules(tmp_path / "nowhere.yaml")


# --- Building the map from the databases -----------------------------------------------

PRODUCTS = [
    {"sku": "F6", "name": "POCO F6", "mi_product_id": 900100},
    {"sku": "X7", "name": "POCO X7", "mi_product_id": None},
    {"sku": "Z0", "name": "POCO Z0", "mi_product_id": 0},
]
REVIEWS = [
    {"review_id": 10, "user_id": 1, "sku": "F6", "rating": 5, "body": "great", "status": "published"},
    {"review_id": 11, "user_id": 1, "sku": "X7", "rating": 4, "body": "good", "status": "published"},
    {"review_id": 12, "user_id": 1, "sku": "GHOST", "rating": 3, "body": "ok", "status": "published"},
]
MOVED_INITIATIVES = [
    {"initiative_id": 501, "brand": "POCO", "market": "IT", "source_ref": "poco:initiative:5"},
    {"initiative_id": 502, "brand": "POCO", "market": "GL", "source_ref": "poco:initiative:7"},
]
# (url, market, kind, ref) -> (target, rule). Every market's pages land under mi.com/global,
# as POCO announced, the IT site's like the global site's.
PAGES = {
    (f"{POCO}/it/", "IT", "home", None): (f"{GLOBAL}/poco/", "home"),
    (f"{POCO}/it/product/F6", "IT", "product", "F6"): (f"{GLOBAL}/product/900100/", "product"),
    (f"{POCO}/it/product/X7", "IT", "product", "X7"): (f"{GLOBAL}/poco/", "fallback"),  # no mi_product_id
    (f"{POCO}/it/product/Z0", "IT", "product", "Z0"): (f"{GLOBAL}/poco/", "fallback"),  # not a product id
    (f"{POCO}/it/product/NOPE", "IT", "product", "NOPE"): (f"{GLOBAL}/poco/", "fallback"),  # unknown sku
    (f"{POCO}/it/product/none", "IT", "product", None): (f"{GLOBAL}/poco/", "fallback"),
    (f"{POCO}/it/review/10", "IT", "review", "10"): (f"{GLOBAL}/product/900100/reviews/", "review"),
    (f"{POCO}/it/review/11", "IT", "review", "11"): (f"{GLOBAL}/poco/", "fallback"),  # unmapped product
    (f"{POCO}/it/review/12", "IT", "review", "12"): (f"{GLOBAL}/poco/", "fallback"),  # unknown sku
    (f"{POCO}/it/review/99", "IT", "review", "99"): (f"{GLOBAL}/poco/", "fallback"),  # no such review
    (f"{POCO}/it/review/abc", "IT", "review", "abc"): (f"{GLOBAL}/poco/", "fallback"),  # not an id
    (f"{POCO}/it/review/010", "IT", "review", "010"): (f"{GLOBAL}/poco/", "fallback"),  # not as POCO prints ids
    (f"{POCO}/it/initiative/5", "IT", "initiative", "5"): (f"{GLOBAL}/poco/initiatives/501/", "initiative"),
    (f"{POCO}/it/initiative/6", "IT", "initiative", "6"): (f"{GLOBAL}/poco/", "fallback"),  # not moved
    (f"{POCO}/it/support/warranty", "IT", "support", None): (f"{GLOBAL}/support/", "support"),
    (f"{POCO}/it/account/points", "IT", "account", None): (f"{GLOBAL}/account/", "account"),
    (f"{POCO}/it/store", "IT", "store", None): (f"{GLOBAL}/poco/", "store"),
    (f"{POCO}/it/community/forum", "IT", "community", None): (f"{GLOBAL}/poco/", "community"),
    (f"{POCO}/it/about", "IT", "other", None): (f"{GLOBAL}/poco/", "other"),
    (f"{POCO}/it/blog", "IT", "blog", None): (f"{GLOBAL}/poco/", "fallback"),  # unknown kind
    (f"{POCO}/it/fallback", "IT", "fallback", None): (f"{GLOBAL}/poco/", "fallback"),
    (f"{POCO}/global/", "GL", "home", None): (f"{GLOBAL}/poco/", "home"),
    (f"{POCO}/global/product/F6", "GL", "product", "F6"): (f"{GLOBAL}/product/900100/", "product"),
    (f"{POCO}/global/initiative/7", "GL", "initiative", "7"): (f"{GLOBAL}/poco/initiatives/502/", "initiative"),
    (f"{POCO}/es/support", "ES", "support", None): (f"{GLOBAL}/support/", "support"),
    (f"{POCO}/xx/product/F6", "XX", "product", "F6"): (f"{GLOBAL}/product/900100/", "product"),  # not in the plan
    (f"{POCO}/it/orphan", None, "home", None): (f"{GLOBAL}/poco/", "home"),  # no market
}


def _expected(market: str | None) -> list[Redirect]:
    return sorted(
        Redirect(url, target, page_market, kind, ref, rule)
        for (url, page_market, kind, ref), (target, rule) in PAGES.items()
        if market in (None, page_market)
    )


def _seed(
    source_engine: sa.Engine, target_engine: sa.Engine, pages: Iterable[tuple[str, str | None, str, str | None]]
) -> tuple[sa.Engine, sa.Engine]:
    """The products, reviews and moved initiatives above, and ``pages`` (url, market, kind, ref)."""
    rows = [{"url": url, "market": market, "kind": kind, "ref": ref} for url, market, kind, ref in pages]
    with source_engine.begin() as conn:
        conn.execute(sa.insert(schemas.poco_products), PRODUCTS)
        conn.execute(sa.insert(schemas.poco_reviews), REVIEWS)
        conn.execute(sa.insert(schemas.poco_site_pages), rows)
    with target_engine.begin() as conn:
        conn.execute(sa.insert(schemas.mi_initiatives), MOVED_INITIATIVES)
    return source_engine, target_engine


@pytest.fixture
def site(source_engine: sa.Engine, target_engine: sa.Engine) -> tuple[sa.Engine, sa.Engine]:
    """A small POCO source with a page of every kind and every way a ref can fail to map."""
    return _seed(source_engine, target_engine, PAGES)


def test_every_page_kind_maps_to_its_target(site: tuple[sa.Engine, sa.Engine]) -> None:
    assert sorted(build_map(*site, None, RULES)) == _expected(None)


def test_one_market_maps_only_its_pages(site: tuple[sa.Engine, sa.Engine]) -> None:
    assert sorted(build_map(*site, "GL", RULES)) == _expected("GL")
    assert sorted(page_urls(site[0], "GL")) == [r.source for r in _expected("GL")]


def test_export_writes_the_market_files(site: tuple[sa.Engine, sa.Engine], tmp_path: Path) -> None:
    done = export(*site, "ES", RULES, tmp_path)
    assert done == (
        "ES",
        1,
        {"support": 1},
        tmp_path / "poco_redirects_es.map",
        tmp_path / "poco_redirects_es.csv",
    )
    assert done.nginx_file.read_text(encoding="utf-8") == (
        f'map $request_uri $poco_redirect_es {{\n    "/es/support" "{GLOBAL}/support/";\n}}\n'
    )


def test_export_refuses_a_map_with_problems(site: tuple[sa.Engine, sa.Engine], tmp_path: Path) -> None:
    # An untrusted page row whose URL is its own target: the redirect would loop.
    with site[0].begin() as conn:
        conn.execute(sa.insert(schemas.poco_site_pages), {"url": f"{GLOBAL}/poco/", "market": "ES", "kind": "home"})
    with pytest.raises(RedirectError, match=r"^ES: 1 redirect problem\(s\), nothing written: loop https://www\.mi"):
        export(*site, "ES", RULES, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_cutover_builds_its_map_once_and_probes_what_it_wrote(
    site: tuple[sa.Engine, sa.Engine], connections: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poco_migration.redirects import build
    from poco_migration.tasks import publish_redirects

    built: list[str | None] = []  # the market of each page query the builder ran
    pages_query = build._pages_query

    def counted(market: str | None) -> sa.Select:
        built.append(market)
        return pages_query(market)

    monkeypatch.setattr(build, "_pages_query", counted)
    monkeypatch.setenv("POCO_MIGRATION_OUTPUT", str(tmp_path))
    monkeypatch.delenv("POCO_REDIRECTS_BASE_URL", raising=False)
    nginx_map = tmp_path / "redirects" / "poco_redirects_it.map"
    assert publish_redirects("IT") == {"redirects": 21, "probed": 21, "map": str(nginx_map)}
    assert built == ["IT"]
    assert len(nginx_map_routes(nginx_map)) == 21


# --- Every market of the plan, every kind of page --------------------------------------

MARKETS = load_plan().codes
# (path below the market's POCO site, kind, ref) -> (path below the mi.com locale, rule):
# a page of every kind, and each way a ref falls back.
KIND_PAGES = {
    ("", "home", None): ("poco/", "home"),
    ("product/F6", "product", "F6"): ("product/900100/", "product"),
    ("review/10", "review", "10"): ("product/900100/reviews/", "review"),
    ("initiative/5", "initiative", "5"): ("poco/initiatives/501/", "initiative"),
    ("community/forum", "community", None): ("poco/", "community"),
    ("store", "store", None): ("poco/", "store"),
    ("support/warranty", "support", None): ("support/", "support"),
    ("account/points", "account", None): ("account/", "account"),
    ("about", "other", None): ("poco/", "other"),
    ("product/X7", "product", "X7"): ("poco/", "fallback"),  # an unmapped product
    ("review/11", "review", "11"): ("poco/", "fallback"),  # a review of an unmapped product
    ("initiative/6", "initiative", "6"): ("poco/", "fallback"),  # an initiative that has not moved
    ("blog", "blog", None): ("poco/", "fallback"),  # an unknown kind
}


def _market_url(market: str, path: str) -> str:
    return f"{POCO}/{market.lower()}/{path}"


def _market_expected(own_locales: Mapping[str, str]) -> list[Redirect]:
    """The exact redirect of every page of every market: under mi.com/global, or under
    the market's own locale for the markets in ``own_locales``."""
    return sorted(
        Redirect(_market_url(m, path), f"{MI}/{own_locales.get(m, 'global')}/{below}", m, kind, ref, rule)
        for m in MARKETS
        for (path, kind, ref), (below, rule) in KIND_PAGES.items()
    )


@pytest.fixture
def every_market(source_engine: sa.Engine, target_engine: sa.Engine) -> tuple[sa.Engine, sa.Engine]:
    """Each market of the plan with a page of every kind (:data:`KIND_PAGES`)."""
    pages = [(_market_url(m, path), m, kind, ref) for m in MARKETS for path, kind, ref in KIND_PAGES]
    return _seed(source_engine, target_engine, pages)


def test_the_kind_pages_cover_every_kind_and_the_plan_every_market() -> None:
    assert {kind for _, kind, _ in KIND_PAGES} == {*PAGE_KINDS, "blog"}
    assert set(MARKETS) == {"IT", "PL", "TH", "ES", "FR", "DE", "MY", "PH", "ID", "IN", "GL"}


def test_by_default_every_market_lands_under_mi_com_global(
    every_market: tuple[sa.Engine, sa.Engine], tmp_path: Path
) -> None:
    expected = _market_expected({})
    assert sorted(build_map(*every_market, None, RULES)) == expected
    assert all(r.target.startswith(f"{GLOBAL}/") for r in expected)
    for market in MARKETS:
        done = export(*every_market, market, RULES, tmp_path)
        assert (done.redirects, done.by_rule) == (len(KIND_PAGES), {**dict.fromkeys(PAGE_KINDS, 1), "fallback": 4})
        assert sorted(build_map(*every_market, market, RULES)) == [r for r in expected if r.market == market]


def test_a_market_opted_in_to_its_locale_goes_there_alone(
    every_market: tuple[sa.Engine, sa.Engine], tmp_path: Path
) -> None:
    rules = load_rules(_edited_rules(tmp_path, _set(["IT"], "locale_markets")))
    assert rules.locale_markets == frozenset({"IT"})
    redirects = sorted(build_map(*every_market, None, rules))
    assert redirects == _market_expected({"IT": "it"})
    assert {r.market for r in redirects if not r.target.startswith(f"{GLOBAL}/")} == {"IT"}
    assert validate(redirects, rules, page_urls(every_market[0], None)) == []
    # The same map under the shipped rules, where IT's option is off, is refused: IT's pages only.
    assert validate(redirects, RULES, []) == [
        Problem(
            "off_destination",
            r.source,
            f"{r.target} is not under the destination {GLOBAL}/ (market IT is not in locale_markets)",
        )
        for r in redirects
        if r.market == "IT"
    ]


# --- Validation ------------------------------------------------------------------------


def _r(path: str, target: str) -> Redirect:
    return Redirect(f"{POCO}/it/{path}", target, "IT", "other", None, "other")


A, B, C = f"{POCO}/it/a", f"{POCO}/it/b", f"{POCO}/it/c"
GOOD = f"{GLOBAL}/poco/"


@pytest.mark.parametrize(
    ("redirects", "expected", "problems"),
    [
        pytest.param([_r("a", GOOD), _r("b", GOOD)], [A, B], [], id="clean"),
        pytest.param(
            [_r("a", B), _r("b", GOOD)], [A, B], [Problem("chain", A, f"{B} is itself redirected")], id="chain"
        ),
        pytest.param([_r("a", A)], [A], [Problem("loop", A, f"{A} redirects back to this URL")], id="self-loop"),
        pytest.param(
            [_r("c", A), _r("a", B), _r("b", A)],
            [A, B, C],
            [
                Problem("chain", C, f"{A} is itself redirected"),
                Problem("loop", A, f"{B} redirects back to this URL"),
                Problem("loop", B, f"{A} redirects back to this URL"),
            ],
            id="loop-and-a-chain-into-it",
        ),
        pytest.param(
            [_r("a", "https://shop.example.com/poco/")],
            [A],
            [Problem("off_host", A, "https://shop.example.com/poco/ is not on www.mi.com")],
            id="off-host",
        ),
        pytest.param(
            [_r("a", f"{MI}:8443/global/")],
            [A],
            [Problem("off_host", A, f"{MI}:8443/global/ is not on www.mi.com")],
            id="off-host-port",
        ),
        pytest.param(
            [_r("a", "http://www.mi.com/it/poco/")],
            [A],
            [Problem("not_https", A, "http://www.mi.com/it/poco/ is not https")],
            id="not-https",
        ),
        pytest.param(
            [_r("a", "https://po.co/it/gone")],
            [A],
            [Problem("poco_target", A, "https://po.co/it/gone is a POCO URL")],
            id="poco-target",
        ),
        pytest.param(
            [_r("a", f"{MI}/it/poco/")],
            [A],
            [
                Problem(
                    "off_destination",
                    A,
                    f"{MI}/it/poco/ is not under the destination {GLOBAL}/ (market IT is not in locale_markets)",
                )
            ],
            id="off-destination",
        ),
        pytest.param(
            [_r("a", f"{GLOBAL}/../it/")],
            [A],
            [
                Problem(
                    "off_destination",
                    A,
                    f"{GLOBAL}/../it/ is not under the destination {GLOBAL}/ (market IT is not in locale_markets)",
                )
            ],
            id="off-destination-by-dot-segments",
        ),
        pytest.param(
            [Redirect(A, f"{MI}/global", None, "home", None, "home")],
            [A],
            [Problem("off_destination", A, f"{MI}/global is not under the destination {GLOBAL}/")],
            id="off-destination-without-market",
        ),
        pytest.param([_r("a", GOOD)], [A, B], [Problem("missing", B, "no redirect")], id="missing"),
        pytest.param(
            [_r("a", GOOD), _r("a", f"{GLOBAL}/support/"), _r("a", GOOD)],
            [A],
            [Problem("duplicate", A, "mapped 3 times")],
            id="duplicate",
        ),
    ],
)
def test_validate_finds_each_problem(redirects: list[Redirect], expected: list[str], problems: list[Problem]) -> None:
    assert validate(redirects, RULES, expected) == problems


IT_LOCALE_ON = dataclasses.replace(RULES, locale_markets=frozenset({"IT"}))
ES_A = f"{POCO}/es/a"


@pytest.mark.parametrize(
    ("redirect", "problems"),
    [
        pytest.param(_r("a", f"{MI}/it/poco/"), [], id="its-locale"),
        pytest.param(_r("a", GOOD), [], id="the-destination"),
        pytest.param(
            _r("a", f"{MI}/fr/poco/"),
            [
                Problem(
                    "off_destination",
                    A,
                    f"{MI}/fr/poco/ is not under the destination {GLOBAL}/ nor market IT's locale {MI}/it/",
                )
            ],
            id="another-locale",
        ),
        pytest.param(
            _r("a", f"{MI}/it/%2e%2E/fr/"),
            [
                Problem(
                    "off_destination",
                    A,
                    f"{MI}/it/%2e%2E/fr/ is not under the destination {GLOBAL}/ nor market IT's locale {MI}/it/",
                )
            ],
            id="another-locale-by-encoded-dot-segments",
        ),
        pytest.param(
            Redirect(ES_A, f"{MI}/es/poco/", "ES", "home", None, "home"),
            [
                Problem(
                    "off_destination",
                    ES_A,
                    f"{MI}/es/poco/ is not under the destination {GLOBAL}/ (market ES is not in locale_markets)",
                )
            ],
            id="another-market-keeps-the-default",
        ),
        pytest.param(
            Redirect(ES_A, f"{MI}/it/poco/", "ES", "home", None, "home"),
            [
                Problem(
                    "off_destination",
                    ES_A,
                    f"{MI}/it/poco/ is not under the destination {GLOBAL}/ (market ES is not in locale_markets)",
                )
            ],
            id="another-market-to-the-opted-in-locale",
        ),
    ],
)
def test_validate_lets_an_opted_in_market_use_its_locale_and_no_other(
    redirect: Redirect, problems: list[Problem]
) -> None:
    assert validate([redirect], IT_LOCALE_ON, [redirect.source]) == problems


# --- Files -----------------------------------------------------------------------------

TINY = [
    Redirect(f"{POCO}/it/product/F6", f"{GLOBAL}/product/900100/", "IT", "product", "F6", "product"),
    Redirect(f"{POCO}/it/search?q=poco f6", f"{GLOBAL}/poco/", "IT", "other", None, "other"),
    Redirect(f'{POCO}/it/say"hi"', f"{GLOBAL}/poco/", "IT", "other", None, "other"),
]


def test_nginx_map_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "it.map"
    assert write_nginx_map(TINY, path) == 3
    assert path.read_text(encoding="utf-8") == (
        "map $request_uri $poco_redirect {\n"
        '    "/it/product/F6" "https://www.mi.com/global/product/900100/";\n'
        '    "/it/search?q=poco%20f6" "https://www.mi.com/global/poco/";\n'
        '    "/it/say%22hi%22" "https://www.mi.com/global/poco/";\n'
        "}\n"
    )


def test_csv_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "it.csv"
    assert write_csv(TINY, path) == 3
    assert path.read_bytes().decode() == (
        "source,target,market,kind,ref,rule\r\n"
        "https://www.po.co/it/product/F6,https://www.mi.com/global/product/900100/,IT,product,F6,product\r\n"
        "https://www.po.co/it/search?q=poco f6,https://www.mi.com/global/poco/,IT,other,,other\r\n"
        '"https://www.po.co/it/say""hi""",https://www.mi.com/global/poco/,IT,other,,other\r\n'
    )


@pytest.mark.parametrize(
    ("redirects", "variable", "message"),
    [
        ([_r("a", f"{GLOBAL}/$uri")], "$poco_redirect", "nginx cannot hold a \\$"),
        ([_r("a", f"{GLOBAL}/ x")], "$poco_redirect", "nginx cannot hold a \\$, a space"),
        ([_r("a", GOOD), _r("A", GOOD)], "$poco_redirect", "nginx key /it/A repeats"),
        ([_r("a", GOOD)], "poco_redirect", "is not an nginx variable name"),
    ],
)
def test_nginx_map_refuses_what_nginx_would_misread(
    tmp_path: Path, redirects: list[Redirect], variable: str, message: str
) -> None:
    path = tmp_path / "it.map"
    with pytest.raises(ValueError, match=message):
        write_nginx_map(redirects, path, variable)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


# --- Over HTTP -------------------------------------------------------------------------


def test_probe_catches_every_miss_and_only_those(tmp_path: Path) -> None:
    redirects = [_r(f"page/{i}", f"{GLOBAL}/poco/p{i}/") for i in range(60)]
    write_nginx_map(redirects, tmp_path / "it.map")
    routes = nginx_map_routes(tmp_path / "it.map")
    routes["/it/page/1"] = (301, {"Location": f"{GLOBAL}/poco/"}, b"")
    routes["/it/page/2"] = (302, {"Location": f"{GLOBAL}/poco/p2/"}, b"")
    del routes["/it/page/3"]
    routes["/it/page/4"] = (301, {"Location": "/it/page/5"}, b"")
    routes["/it/page/6"] = (301, {"Location": f"{POCO}/it/page/7"}, b"")
    routes["/it/page/8"] = (301, {}, b"")
    with serve(routes) as base:
        report = probe(base, redirects, concurrency=8)
    assert len(report.results) == 60
    assert not report.ok
    assert [(r.source, r.status, r.location, r.reason, r.detail) for r in report.failures] == [
        (
            f"{POCO}/it/page/1",
            301,
            f"{GLOBAL}/poco/",
            "wrong_location",
            f"Location {GLOBAL}/poco/ instead of {GLOBAL}/poco/p1/",
        ),
        (f"{POCO}/it/page/2", 302, f"{GLOBAL}/poco/p2/", "wrong_status", "302 instead of 301"),
        (f"{POCO}/it/page/3", 404, None, "wrong_status", "404 instead of 301"),
        (f"{POCO}/it/page/4", 301, "/it/page/5", "chain", "Location /it/page/5 is a POCO URL"),
        (f"{POCO}/it/page/6", 301, f"{POCO}/it/page/7", "chain", f"Location {POCO}/it/page/7 is a POCO URL"),
        (f"{POCO}/it/page/8", 301, None, "wrong_location", "no Location header"),
    ]
    assert report.failures[0].url == f"{base}/it/page/1"


def test_probe_reports_a_server_that_does_not_answer() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    report = probe(f"http://127.0.0.1:{port}", [_r("a", GOOD)], timeout=1, retries=1)
    (result,) = report.results
    assert (result.reason, result.status) == ("error", None)
    assert result.detail.startswith("ConnectionError: ")


def test_the_retired_app_passes_against_the_right_answer() -> None:
    with serve(app_routes(RULES)) as base:
        result = check_app_retired(base, RULES)
    assert result.ok
    assert result.checked == (
        f"{base}/api/",
        f"{base}/api/v1/products",
        f"{base}/api/v1/cart",
        f"{base}/api/v1/account/points",
    )


def test_the_retired_app_fails_against_wrong_answers() -> None:
    notice = app_retirement_notice(RULES)
    status, headers, body = notice_response(notice)
    link = headers["Link"]
    routes = app_routes(RULES, (status, headers, body))
    routes["/api/"] = (410, {"Content-Type": "application/json"}, body)  # no Link header
    routes["/api/v1/products"] = (200, {**headers, "Content-Type": "application/json; charset=utf-8"}, body)
    del routes["/api/v1/cart"]
    routes["/api/v1/account/points"] = (410, headers, b'{"message": "bye"}')
    with serve(routes) as base:
        result = check_app_retired(base, RULES)
    assert result.failures == (
        f"{base}/api/: Link None instead of {link!r}",
        f"{base}/api/v1/products: status 200 instead of 410",
        f"{base}/api/v1/cart: status 404 instead of 410",
        f"{base}/api/v1/cart: Content-Type 'text/plain' instead of 'application/json'",
        f"{base}/api/v1/cart: Link None instead of {link!r}",
        f"{base}/api/v1/cart: body 'not found' is not the notice",
        f'{base}/api/v1/account/points: body \'{{"message": "bye"}}\' is not the notice',
    )
