"""A Jira-compatible REST endpoint on loopback, for tests only.

It speaks the subset the ``jira`` client (3.10) uses to create and find issues:

* ``GET  /rest/api/2/serverInfo``            (``deploymentType`` picks Cloud or Server behaviour)
* ``GET  /rest/api/2/field``                  (the client's field-name cache)
* ``POST /rest/api/2/issue``                  (create)
* ``GET  /rest/api/2/issue/{key}``            (read back)
* ``GET|POST /rest/api/2/search``             (Server/Data Center ``search_issues``)
* ``GET|POST /rest/api/2/search/jql`` and ``/rest/api/3/search/jql`` (Cloud ``enhanced_search_issues``)

JQL support is what the backend sends: ``project = "X"`` and ``labels = "y"`` joined by ``AND``,
with an optional ``ORDER BY``. Knobs make the failure modes reproducible:

* ``create_delay_s``: sleep after the issue was stored and before answering (a client timeout
  shorter than this sees a failed request although the issue exists);
* ``hold_create``: store the issue, then hold the answer until the server closes, so any client
  timeout fires however slow the machine is (no race between two clocks);
* ``search_lag``: a new issue stays invisible to the next N search requests;
* ``fail_create_status``: answer creates with this HTTP status and store nothing.

::

    with FakeJira() as jira:
        backend = JiraTicketBackend(jira.url, "bot", "token", project="SUP")
        ...
        jira.issues      # what was created
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

__all__ = ["FakeJira"]

_CLAUSE = re.compile(r'^\s*(project|labels)\s*=\s*"?([^"]*?)"?\s*$', re.IGNORECASE)


class FakeJira:
    """A threaded HTTP server speaking a small part of Jira's REST API v2 (and the v3 search)."""

    def __init__(
        self,
        *,
        deployment: str = "Cloud",
        project: str = "SUP",
        user: str = "bot@example.com",
        token: str = "secret-token",
        create_delay_s: float = 0.0,
        search_lag: int = 0,
        fail_create_status: int | None = None,
        hold_create: bool = False,
    ) -> None:
        self.deployment = deployment
        self.project = project
        self.credentials = (user, token)
        self.create_delay_s = create_delay_s
        self.search_lag = search_lag
        self.fail_create_status = fail_create_status
        self.hold_create = hold_create
        self._closing = threading.Event()
        self.issues: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self._hidden: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-jira", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeJira:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()  # releases held create answers
        self._server.shutdown()
        self._server.server_close()

    def requests_to(self, method: str, path_part: str) -> int:
        """How many requests with ``method`` hit a path containing ``path_part``."""
        return sum(1 for m, p in self.requests if m == method and path_part in p)

    # ------------------------------------------------------------------ behaviour

    def _create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.fail_create_status:
            return self.fail_create_status, {"errorMessages": ["injected failure"], "errors": {}}
        fields = body.get("fields", {})
        project = (fields.get("project") or {}).get("key")
        if project != self.project:
            return 400, {"errorMessages": [], "errors": {"project": "project is required"}}
        if not fields.get("summary"):
            return 400, {"errorMessages": [], "errors": {"summary": "You must specify a summary of the issue."}}
        with self._lock:
            number = len(self.issues) + 1
            issue = {
                "id": str(10000 + number),
                "key": f"{self.project}-{number}",
                "fields": {
                    "summary": fields["summary"],
                    "description": fields.get("description", ""),
                    "labels": list(fields.get("labels", [])),
                    "priority": fields.get("priority"),
                    "issuetype": fields.get("issuetype"),
                    "project": {"key": project},
                    "created": f"2026-11-21T10:{number:02d}:00.000+0000",
                },
            }
            self.issues.append(issue)
            self._hidden[issue["key"]] = self.search_lag
        if self.create_delay_s:
            time.sleep(self.create_delay_s)
        if self.hold_create:
            self._closing.wait(timeout=120)
        return 201, {"id": issue["id"], "key": issue["key"], "self": f"{self.url}/rest/api/2/issue/{issue['id']}"}

    def _search(self, jql: str) -> list[dict[str, Any]]:
        where = re.split(r"\border\s+by\b", jql, flags=re.IGNORECASE)[0]
        clauses = [c for c in re.split(r"\band\b", where, flags=re.IGNORECASE) if c.strip()]
        wanted: list[tuple[str, str]] = []
        for clause in clauses:
            match = _CLAUSE.match(clause)
            if not match:
                raise ValueError(f"unsupported JQL clause: {clause.strip()!r}")
            wanted.append((match.group(1).lower(), match.group(2)))
        found = []
        with self._lock:
            for issue in self.issues:
                if self._hidden.get(issue["key"], 0) > 0:
                    continue
                fields = issue["fields"]
                if all(
                    (fields["project"]["key"] == value) if name == "project" else (value in fields["labels"])
                    for name, value in wanted
                ):
                    found.append(issue)
            for key in self._hidden:
                self._hidden[key] = max(0, self._hidden[key] - 1)
        return found

    def _issue_json(self, issue: dict[str, Any]) -> dict[str, Any]:
        return {**issue, "self": f"{self.url}/rest/api/2/issue/{issue['id']}"}

    # ------------------------------------------------------------------ HTTP

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                return

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json;charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def _authorised(self) -> bool:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return False
                user, _, token = base64.b64decode(header[6:]).decode().partition(":")
                return (user, token) == fake.credentials

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}") if length else {}

            def _route(self, method: str) -> None:
                parsed = urlparse(self.path)
                path = parsed.path
                fake.requests.append((method, path))
                body = self._body() if method == "POST" else {}
                if not self._authorised():
                    self._send(401, {"errorMessages": ["You are not authenticated."]})
                    return
                query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
                if method == "GET" and path == "/rest/api/2/serverInfo":
                    self._send(
                        200,
                        {
                            "baseUrl": fake.url,
                            "version": "1001.0.0" if fake.deployment == "Cloud" else "9.12.0",
                            "versionNumbers": [1001, 0, 0] if fake.deployment == "Cloud" else [9, 12, 0],
                            "deploymentType": fake.deployment,
                            "serverTitle": "Fake Jira",
                        },
                    )
                elif method == "GET" and path == "/rest/api/2/field":
                    self._send(
                        200,
                        [
                            {"id": "summary", "name": "Summary", "clauseNames": ["summary"]},
                            {"id": "labels", "name": "Labels", "clauseNames": ["labels"]},
                            {"id": "created", "name": "Created", "clauseNames": ["created"]},
                        ],
                    )
                elif method == "POST" and path == "/rest/api/2/issue":
                    status, payload = fake._create(body)
                    self._send(status, payload)
                elif method == "GET" and path.startswith("/rest/api/2/issue/"):
                    ident = path.rsplit("/", 1)[-1]
                    issue = next((i for i in fake.issues if ident in (i["key"], i["id"])), None)
                    if issue is None:
                        self._send(404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."]})
                    else:
                        self._send(200, fake._issue_json(issue))
                elif path in ("/rest/api/2/search", "/rest/api/2/search/jql", "/rest/api/3/search/jql"):
                    params = body if method == "POST" else query
                    try:
                        issues = fake._search(str(params.get("jql", "")))
                    except ValueError as exc:
                        self._send(400, {"errorMessages": [str(exc)]})
                        return
                    limit = int(params.get("maxResults") or 50)
                    page = [fake._issue_json(i) for i in issues[:limit]]
                    if path.endswith("/jql"):
                        self._send(200, {"issues": page, "isLast": True})
                    else:
                        self._send(200, {"startAt": 0, "maxResults": limit, "total": len(issues), "issues": page})
                else:
                    self._send(404, {"errorMessages": [f"no fake route for {method} {path}"]})

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                self._route("GET")

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                self._route("POST")

        return Handler
