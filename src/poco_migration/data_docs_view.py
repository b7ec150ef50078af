"""The view GX renders the Data Docs pages with: GX's own, its templates compiled once per process.

GX builds a new Jinja environment for every site builder, so every move's context compiled
the same page templates again: in a rehearsal, that compiling was a seventh of the time.
The environments share one in-memory bytecode cache instead. Named by ``data_docs.add_site``
and imported by GX when it builds pages, so that Great Expectations is not imported with
``data_docs`` (the DAG files and the dashboard import it).
"""

from __future__ import annotations

from typing import Any

from great_expectations.render.view import DefaultJinjaPageView
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket


class _InMemory(BytecodeCache):
    """Compiled templates by Jinja's key (a hash of the template's name), for the life of the
    process; Jinja checks each source's checksum before it reuses one."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


COMPILED = _InMemory()


class PageView(DefaultJinjaPageView):
    """GX's page view, with the compiled templates shared by every move of the process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = COMPILED
