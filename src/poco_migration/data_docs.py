"""Data Docs: one site for every checkpoint of every move, readable without the internet.

Every move validates in a GX context of its own, in memory, that knows only its own
results. Each writes its pages into the one site directory (``gates.data_docs_dir()``),
so GX's static assets are there once, not once per move; GX's own index is not built,
because GX drops from it, and from the disk, every page its context does not know: the
index is written here instead, from a list of the pages (``.pages``) that each publication
appends to. Each move's context builds its own Jinja environment, so GX's page templates
are compiled once per process and their bytecode shared (``data_docs_view``): compiling them for
every checkpoint, and walking the whole site for the index, were a third of a rehearsal.

GX's pages load bootstrap, jQuery, vega and the rest from public CDNs, and so render
unstyled on a host without internet. The same files, fetched from the npm registry
(``npm pack <package>@<version of the CDN URL>``), are in ``data_docs_vendor/`` with
their licences; they are copied into the site once, and each page GX writes has its
CDN URLs rewritten to relative ones, which also load through the dashboard's
``/data-docs/`` route.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

SITE = "poco_migration"
VENDOR = Path(__file__).resolve().parent / "data_docs_vendor"
TEMPLATES = Path(__file__).resolve().parent / "templates"

# Every CDN URL of GX 1.24.1's page template (render/view/templates/page.j2 and
# js_script_imports.j2), and its copy in data_docs_vendor/.
CDN = {
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table@1.19.1/dist/bootstrap-table.min.css"
    ),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap@4.3.1/dist/css/bootstrap.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker@1.9.0/dist/css/bootstrap-datepicker.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "forevolve-bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css"
    ),
    "https://cdn.jsdelivr.net/npm/vega@5": "vega@5.33.1/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite@5.23.0/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed@6.29.0/build/vega-embed.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fortawesome-fontawesome-free@6.6.0/css/all.min.css"
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery@3.7.1/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js@1.12.9/dist/umd/popper.min.js"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap@4.3.1/dist/js/bootstrap.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table@1.19.1/dist/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker@1.9.0/dist/js/bootstrap-datepicker.min.js"
    ),
}
# GX's logo, which its pages load from GX's bucket (with a time stamp); GX ships the same image.
GX_IMAGES = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"

_TAG = re.compile(r"<(?:link|script|img)\b[^>]*>")
_URL = re.compile(r'\b(?:href|src)="([^"]*)"')
# Subresource integrity and CORS mode: a browser refuses a file:// script that asks for either.
_REMOTE_ONLY = re.compile(r'\s(?:integrity|crossorigin)="[^"]*"')


def add_site(context: Any, root: Path) -> None:
    """The one site, in ``root``, on the move's context; its pages rendered by ``PageView``."""
    view = {"module_name": "poco_migration.data_docs_view", "class_name": "PageView"}
    context.add_data_docs_site(
        SITE,
        {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(root)},
            "site_section_builders": {"expectations": {"view": view}, "validations": {"view": view}},
        },
    )


def publish(context: Any, root: Path, result: Any) -> str | None:
    """Builds the checkpoint's pages (its validations and their suites) into the site, made
    readable offline, and lists them in the index; the file:// URL of its first page."""
    validations = list(result.run_results)
    resources = [*validations, *(v.expectation_suite_identifier for v in validations)]
    context.build_data_docs(site_names=[SITE], resource_identifiers=resources, build_index=False)
    _copy_vendor(root)
    urls = [_url(context, resource) for resource in resources]
    pages = [Path(url.removeprefix("file://")) for url in urls]
    for page in pages:
        _replace(page, _localised(page.read_text(encoding="utf-8"), os.path.relpath(root, page.parent)))
    _write_index(root, [page.relative_to(root) for page in pages if page.is_relative_to(root / "validations")])
    return urls[0] if urls else None


def _url(context: Any, resource: Any) -> str:
    [site] = context.get_docs_sites_urls(resource_identifier=resource, site_name=SITE)
    return str(site["site_url"])


def _localised(html: str, root: str) -> str:
    """The page with every asset of its <link>, <script> and <img> tags loaded from the site,
    ``root`` being the relative path from the page to the site's directory."""

    def local(tag: re.Match[str]) -> str:
        url = _URL.search(tag.group(0))
        path = _local_path(url.group(1)) if url else None
        if url is None or path is None:
            return tag.group(0)
        start, end = url.span(1)
        return _REMOTE_ONLY.sub("", tag.group(0)[:start] + f"{root}/{path}" + tag.group(0)[end:])

    return _TAG.sub(local, html)


def _local_path(url: str) -> str | None:
    """Where in the site an asset is; GX's own relative paths are taken from ``static/`` on,
    as GX counts one directory too few for a validation page's favicon."""
    if url in CDN:
        return f"static/vendor/{CDN[url]}"
    if url.startswith(GX_IMAGES):
        return f"static/images/{url.removeprefix(GX_IMAGES).split('?')[0]}"
    if "static/" in url and "://" not in url:
        return url[url.index("static/") :]
    return None


def _copy_vendor(root: Path) -> None:
    """The vendored libraries into the site, once: a file already there is left alone."""
    for source in VENDOR.rglob("*"):
        target = root / "static" / "vendor" / source.relative_to(VENDOR)
        if source.is_file() and not (target.is_file() and target.stat().st_size == source.stat().st_size):
            target.parent.mkdir(parents=True, exist_ok=True)
            _replace(target, source.read_bytes())


def _write_index(root: Path, added: list[Path]) -> None:
    """``index.html``: every checkpoint page, newest first, from ``.pages``, the list the
    publications append to (made from the pages on disk where a site has none yet). Moves run
    side by side on a Celery worker: the lock keeps one move's index from overwriting
    another's newer one, and their lines apart."""
    listing = root / ".pages"
    with (root / ".index.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not listing.is_file():
            on_disk = [page.relative_to(root) for page in (root / "validations").rglob("*.html")]
            _replace(listing, "".join(f"{page.as_posix()}\n" for page in on_disk if page not in added))
        with listing.open("a", encoding="utf-8") as out:
            out.writelines(f"{page.as_posix()}\n" for page in added)
        pages = [_listed(Path(line)) for line in listing.read_text(encoding="utf-8").splitlines()]
        _replace(root / "index.html", _template().render(pages=sorted(pages, reverse=True)))


def _listed(page: Path) -> tuple[str, str, str, str, str]:
    """(run time, as shown, move, suite, href) of ``validations/<suite>/<move>/<run time>/<batch>.html``;
    the run time is GX's ``%Y%m%dT%H%M%S.%fZ``, shown to the second."""
    *suite, move, run_time, _ = page.parts[1:]
    shown = f"{run_time[:4]}-{run_time[4:6]}-{run_time[6:8]} {run_time[9:11]}:{run_time[11:13]}:{run_time[13:15]} UTC"
    return run_time, shown, move, ".".join(suite), quote(page.as_posix())


@cache
def _template() -> Any:
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    return environment.get_template("data_docs_index.html")


def _replace(path: Path, content: str | bytes) -> None:
    """Written beside and renamed into place: a reader (a browser, the dashboard) never
    sees half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "wb") as out:
        out.write(content.encode("utf-8") if isinstance(content, str) else content)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
