"""A webhook sink that shows the migration's alerts: POST JSON to /alerts, GET / lists them."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ALERTS: list = []


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ALERTS.append(json.loads(body or b"{}"))
        print(json.dumps(ALERTS[-1]), flush=True)
        self.send_response(200)
        self.end_headers()

    def do_GET(self) -> None:
        page = json.dumps(ALERTS, indent=2).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(page)


ThreadingHTTPServer(("0.0.0.0", 8000), Sink).serve_forever()
