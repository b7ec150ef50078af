"""Data Docs after real moves: one site, one copy of its assets, every page readable offline."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import great_expectations
import pytest
from migration import LATER, Migration
from sources import ACCOUNTS, USERS, account, insert, linked_users, update

from poco_migration.data_docs import CDN, VENDOR
from poco_migration.data_docs_view import COMPILED

GX_STATIC = Path(great_expectations.__file__).parent / "render" / "view" / "static"
# Each move of points runs three checkpoints: extract (1 suite), staged (1), reconciled (3).
PAGES_PER_MOVE = 5
TITLE = "Data documentation compiled by Great Expectations"


@pytest.fixture
def docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data_docs"
    monkeypatch.setenv("POCO_MIGRATION_DATA_DOCS", str(root))
    return root


class Tags(HTMLParser):
    """The <link>, <script>, <img> and <a> tags of a page: their text and their URL."""

    def __init__(self, page: Path) -> None:
        super().__init__()
        self.assets: list[tuple[str, str]] = []
        self.anchors: list[str] = []
        self.title = ""
        self._in_title = False
        self.feed(page.read_text(encoding="utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        url = dict(attrs).get("src" if tag in ("script", "img") else "href")
        if tag in ("link", "script", "img") and url is not None:
            self.assets.append((self.get_starttag_text() or "", url))
        if tag == "a" and url is not None:
            self.anchors.append(url)
        self._in_title = tag == "title" and not self.title

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title, self._in_title = data, False


def files(root: Path) -> dict[str, int]:
    """Every file under ``root`` (GX's ``.DS_Store`` aside), by relative path, with its size."""
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def expected_assets() -> dict[str, int]:
    gx = {path: size for path, size in files(GX_STATIC).items() if not path.endswith(".DS_Store")}
    return gx | {f"vendor/{path}": size for path, size in files(VENDOR).items()}


def pages(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.html") if not p.is_relative_to(root / "static"))


def move_points(mig: Migration, *markets: str, **kwargs) -> list[str]:
    """The Data Docs URL of every checkpoint of the moves, which must all have passed."""
    urls = []
    for market in markets:
        result = mig.run("points", market, **kwargs)
        assert [c.success for c in result.checkpoints] == [True] * 3, result.message
        urls += [c.data_docs for c in result.checkpoints]
    return urls


def test_one_site_with_one_copy_of_its_assets_and_every_page_offline(mig: Migration, docs: Path) -> None:
    insert(mig.source, USERS, *linked_users(1, 4), *linked_users(10, 3, market="PL"))
    insert(mig.source, ACCOUNTS, *(account(uid, 100 * uid) for uid in (1, 2, 3, 4, 10, 11, 12)))

    urls = move_points(mig, "IT", "PL")
    assets = files(docs / "static")
    assert assets == expected_assets()
    assert (len(assets), sum(assets.values())) == (53, 7_461_552)
    assert len(pages(docs / "validations")) == 2 * PAGES_PER_MOVE

    # Two more moves add their pages, and not a byte of assets; a site without its list of
    # pages (one written before the list existed) has it made again from its pages on disk.
    (docs / ".pages").unlink()
    for uid in (1, 10):
        update(mig.source, ACCOUNTS, {"user_id": uid}, balance=5, updated_at=LATER - dt.timedelta(hours=1))
    urls += move_points(mig, "IT", "PL", as_of=LATER)
    assert files(docs / "static") == assets
    assert [d for d in docs.rglob("static") if d.is_dir()] == [docs / "static"]
    checkpoint_pages = pages(docs / "validations")
    assert len(checkpoint_pages) == 4 * PAGES_PER_MOVE

    # Each checkpoint's URL is its first page, in the one site.
    assert len(urls) == 4 * 3
    assert all(url.startswith(f"file://{docs}/validations/") for url in urls)
    assert {Path(url.removeprefix("file://")) for url in urls} <= set(checkpoint_pages)
    assert Tags(Path(urls[0].removeprefix("file://"))).title == TITLE
    # GX rendered them with the site's view, which keeps the compiled page templates for the process.
    assert COMPILED.code, "GX's pages were not rendered by data_docs_view.PageView"

    # Every asset of every page is a relative URL to a file of the site: nothing from a CDN.
    for page in pages(docs):
        for tag, url in Tags(page).assets:
            assert "http://" not in tag and "https://" not in tag, (page, tag)
            target = (page.parent / unquote(url)).resolve()
            assert target.is_file() and target.is_relative_to(docs), (page, url)
    assert all((VENDOR / path).is_file() for path in CDN.values())

    # The index lists every checkpoint page, from every move.
    index = Tags(docs / "index.html")
    listed = {(docs / unquote(href)).resolve() for href in index.anchors}
    assert listed == set(checkpoint_pages)
    assert len(index.anchors) == 4 * PAGES_PER_MOVE
