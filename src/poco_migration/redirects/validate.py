"""The redirect map checked as a whole before anything is written: every
:class:`Problem` that would make it unsafe to deploy.

The map is a gate. Its rows come from untrusted data (any URL can sit in
``poco_site_pages``), so the map is judged as built, whatever the templates said:
every POCO URL covered once, every target https on the allowed host and under the
destination (:meth:`.rules.Rules.off_destination`), none a POCO URL, none a second
hop or a loop. One linear pass, because a market has up to a million URLs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from poco_migration.redirects.build import Redirect
from poco_migration.redirects.rules import Rules


class RedirectError(RuntimeError):
    """A redirect map that must not be deployed (it has problems)."""


class Problem(NamedTuple):
    """Why a redirect map must not be deployed: ``kind`` is one of ``missing``,
    ``duplicate``, ``loop``, ``chain``, ``poco_target``, ``not_https``, ``off_host``,
    ``off_destination``."""

    kind: str
    source: str
    detail: str


def validate(redirects: Iterable[Redirect], rules: Rules, expected: Iterable[str]) -> list[Problem]:
    """Everything that would make the map unsafe to deploy, in one linear pass.

    ``expected`` is every POCO URL the map must cover (:func:`.build.page_urls`). Each
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
    off = rules.off_destination(target, parts.path, redirect.market)
    return Problem("off_destination", source, off) if off else None
