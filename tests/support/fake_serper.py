"""A Serper-compatible search server on loopback, for attack tests of the web fallback.

It answers ``POST /search`` with ``{"organic": [{"title", "link", "snippet"}, ...]}`` from a function of
the query (set ``server.results``), and records every request body, so a test can check what left
the machine::

    with FakeSerper() as serper:
        serper.results = lambda q: [{"title": "Help", "link": "https://help.example/a", "snippet": "..."}]
        settings = Settings(serper_url=serper.url, serper_api_key="k", ...)
        serper.requests[0]["q"]          # the query as sent
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeSerper"]

Results = Callable[[str], list[dict[str, Any]]]


class FakeSerper:
    """A loopback HTTP server speaking Serper's search API (start/stop, or use as a context manager)."""

    def __init__(self, results: Results | None = None) -> None:
        self.results: Results = results or (lambda _q: [])
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    body = {}
                owner.requests.append(body)
                owner.headers.append(dict(self.headers))
                organic = owner.results(str(body.get("q", "")))
                payload = json.dumps({"searchParameters": {"q": body.get("q")}, "organic": organic}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: Any) -> None:  # keep test output quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-serper", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/search"

    def start(self) -> FakeSerper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSerper:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
