"""A local stand-in for the POCO web servers: the redirects of a generated nginx map,
and the retired app's API, on 127.0.0.1.

Rehearsals and tests have no nginx and no app gateway; they serve the files the
cutover generated, exactly as nginx would answer with them, so that the probe
checks over HTTP what the real servers will be given. With a real base URL
configured (see ``tasks.publish_redirects``) the probe asks the real servers.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from poco_migration.redirects.app import app_retirement_notice
from poco_migration.redirects.rules import Rules

# status, headers, body
Response = tuple[int, dict[str, str], bytes]

NOT_FOUND: Response = (404, {"Content-Type": "text/plain"}, b"not found")
_ENTRY = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"\s+"((?:[^"\\]|\\.)*)";$')
_ESCAPE = re.compile(r"\\(.)")


def nginx_map_routes(path: Path) -> dict[str, Response]:
    """What nginx answers with `return 301 $poco_redirect;` and the map file at ``path``."""
    routes: dict[str, Response] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = _ENTRY.match(line)
        if entry:
            routes[_ESCAPE.sub(r"\1", entry[1])] = (301, {"Location": _ESCAPE.sub(r"\1", entry[2])}, b"")
    return routes


def notice_response(notice: Mapping[str, Any]) -> Response:
    """The response of ``app_retirement_notice``, as the API gateway would send it."""
    return notice["status"], dict(notice["headers"]), json.dumps(notice["body"]).encode()


def app_routes(rules: Rules, response: Response | None = None) -> dict[str, Response]:
    """The retired app's API base and sample endpoints, each answering ``response``
    (by default the configured 410 notice)."""
    answer = response or notice_response(app_retirement_notice(rules))
    base = rules.app.api_base_path
    return {base + endpoint: answer for endpoint in ("", *rules.app.endpoints)}


@contextmanager
def serve(routes: Mapping[str, Response]) -> Iterator[str]:
    """Serve ``routes`` (request URI -> response, 404 otherwise); yield the base URL.

    Request URIs match ignoring case, as nginx map strings do. HTTP/1.1 with
    keep-alive, so that a probe's sessions reuse their connections.
    """
    table = {uri.lower(): response for uri, response in routes.items()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status, headers, body = table.get(self.path.lower(), NOT_FOUND)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # a probe opens dozens of connections at once

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
