"""The redirect map's files: an nginx ``map`` for the POCO web servers and a CSV for
people and audits, and :func:`export`, a market's build, validation and write.

The nginx file is what the servers are given, so it is written the way nginx reads
it: keys are the request URI as a client sends it (``$request_uri``), values that
nginx would misread are refused, and the file is replaced atomically. Nothing is
written for a map that :func:`.validate.validate` refuses.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import sqlalchemy as sa
from requests.utils import requote_uri

from poco_migration.files import replacing
from poco_migration.redirects.build import Redirect, build_map, page_urls
from poco_migration.redirects.rules import Rules
from poco_migration.redirects.validate import RedirectError, validate

NGINX_VARIABLE = re.compile(r"^\$[a-z_][a-z0-9_]*$")
# What nginx cannot take literally in a map value: `$` starts a variable and has no escape.
NGINX_UNSAFE_VALUE = re.compile(r"[$\s\x00-\x1f\x7f]")


class Export(NamedTuple):
    """What :func:`export` wrote for a market: how many redirects, how many per rule, the files."""

    market: str
    redirects: int
    by_rule: dict[str, int]
    nginx_file: Path
    csv_file: Path


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
    with replacing(Path(path)) as out:
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
    with replacing(Path(path)) as out:
        writer = csv.writer(out)
        writer.writerow(Redirect._fields)
        for redirect in redirects:
            writer.writerow(redirect)
            count += 1
    return count


def export(
    source_engine: sa.Engine,
    target_engine: sa.Engine,
    market: str,
    rules: Rules,
    out_dir: str | os.PathLike[str],
    *,
    redirects: Sequence[Redirect] | None = None,
) -> Export:
    """A market's cutover: build its map, refuse it if :func:`.validate.validate` finds a problem,
    else write ``poco_redirects_<market>.map`` (variable ``$poco_redirect_<market>``)
    and ``poco_redirects_<market>.csv`` in ``out_dir``.

    ``redirects`` is the market's map when the caller has already built it
    (:func:`build_map` with the same engines and rules), so that a cutover that
    also probes the map builds it once; without it, the map is built here.

    One nginx variable per market, because nginx keeps one ``map`` per variable:
    each market's site (``/<locale>/`` on www.po.co) uses its own.
    """
    if redirects is None:
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
