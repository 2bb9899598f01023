"""A stand-in for GitLab's merge-request notes API on loopback, shared by the report and CI tests.

`POST /api/v4/projects/:id/merge_requests/:iid/notes` answers as GitLab does: 401 without the expected
bearer token (when `GitLabNotes.token` is set), 404 for another path, `answer_status` otherwise (403 with
GitLab's message when a test sets it to refuse) and the note's id. Every request is kept in `received`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NOTE_ID = 77


class GitLabNotes(BaseHTTPRequestHandler):
    """The notes endpoint; class attributes are the state a test sets and reads."""

    received: list[dict[str, Any]] = []
    answer_status = 201
    token: str | None = None

    def do_POST(self) -> None:  # pylint: disable=invalid-name  # http.server's method naming
        """Record the request and answer as GitLab would."""
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        auth = self.headers.get("Authorization")
        type(self).received.append({"path": self.path, "auth": auth, "body": body})
        if self.token is not None and auth != f"Bearer {self.token}":
            status, answer = 401, {"message": "401 Unauthorized"}
        elif not re.fullmatch(r"/api/v4/projects/(\d+)/merge_requests/(\d+)/notes", self.path):
            status, answer = 404, {"message": "404 Not found"}
        elif self.answer_status >= 400:
            status, answer = self.answer_status, {"message": "403 Forbidden"}
        else:
            status, answer = self.answer_status, {"id": NOTE_ID, "body": body.get("body")}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin  # http.server's signature
        return


@contextmanager
def serve(token: str | None = None) -> Iterator[str]:
    """Run the stand-in (fresh state, `token` expected if given); yields its CI_API_V4_URL."""
    GitLabNotes.received, GitLabNotes.answer_status, GitLabNotes.token = [], 201, token
    server = ThreadingHTTPServer(("127.0.0.1", 0), GitLabNotes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    finally:
        server.shutdown()
        server.server_close()
