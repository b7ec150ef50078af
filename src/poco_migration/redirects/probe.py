"""The deployed map verified over HTTP: each POCO URL must answer exactly one 301 to
its target (:func:`probe`).

A map that validates can still be deployed wrong (a stale file, a missing server
block, a rule of the server's own that redirects first), so every URL is asked on
the servers themselves, redirects not followed: a second hop is itself a failure.
A million URLs are asked with bounded concurrency, keep-alive sessions per thread
(:class:`Sessions`, which the app's check shares), timeouts and retries.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from poco_migration.redirects.build import Redirect
from poco_migration.redirects.outputs import request_uri

T = TypeVar("T")
R = TypeVar("R")


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
    with Sessions(retries) as sessions:
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


class Sessions:
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

    def __enter__(self) -> Sessions:
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
