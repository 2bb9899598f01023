"""A stand-in for two GitLab REST APIs on loopback, shared by the report and CI tests.

Merge-request notes, `POST /api/v4/projects/:id/merge_requests/:iid/notes`: 401 without the expected bearer
token (when `GitLabNotes.token` is set), `answer_status` otherwise (403 with GitLab's message when a test
sets it to refuse) and the note's id.

Generic packages (docs: user/packages/generic_packages, "Publish a package file" and "Download package
file"), `PUT` and `GET /api/v4/projects/:id/packages/generic/:package_name/:package_version/:file_name`:
401 without a `JOB-TOKEN` in `GitLabNotes.job_tokens` (when that is set), 400 for a name, version or file
name GitLab's documented patterns refuse, 201 `{"message": "201 Created"}` for an upload, the file's bytes
(`application/octet-stream`) for a download and 404 for a file never uploaded. A second upload of a file
adds it again and a download returns the latest, as GitLab does with duplicates allowed.

Anything else is 404. Every request is kept in `received`; uploaded files in `packages`.
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

NOTES_PATH = re.compile(r"/api/v4/projects/(\d+)/merge_requests/(\d+)/notes")
PACKAGE_PATH = re.compile(r"/api/v4/projects/(?P<project>[^/]+)/packages/generic/(?P<name>[^/]+)/(?P<version>[^/]+)"
                          r"/(?P<file>[^/?]+)")
# The documented patterns: names and file names of letters, digits, dots, hyphens and underscores; the
# version validated by \A(\.?[\w\+-]+\.?)+\z.
PACKAGE_NAME = re.compile(r"[A-Za-z0-9._-]+")
PACKAGE_VERSION = re.compile(r"(\.?[\w+-]+\.?)+", re.ASCII)


class GitLabNotes(BaseHTTPRequestHandler):
    """Both APIs; class attributes are the state a test sets and reads."""

    received: list[dict[str, Any]] = []
    answer_status = 201
    token: str | None = None
    job_tokens: frozenset[str] | None = None
    # (project id, package name, version, file name) -> the file's bytes
    packages: dict[tuple[str, str, str, str], bytes] = {}

    def _answer(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, status: int, answer: dict[str, Any]) -> None:
        self._answer(status, json.dumps(answer).encode())

    def _package(self) -> tuple[str, str, str, str] | None:
        """The package file the path names, or None after answering 401 / 400 / 404."""
        match = PACKAGE_PATH.fullmatch(self.path)
        if not match:
            self._json(404, {"message": "404 Not found"})
            return None
        if self.job_tokens is not None and self.headers.get("JOB-TOKEN") not in self.job_tokens:
            self._json(401, {"message": "401 Unauthorized"})
            return None
        if not (PACKAGE_NAME.fullmatch(match["name"]) and PACKAGE_VERSION.fullmatch(match["version"])
                and PACKAGE_NAME.fullmatch(match["file"])):
            self._json(400, {"error": "package_name, package_version or file_name is invalid"})
            return None
        return match["project"], match["name"], match["version"], match["file"]

    def do_POST(self) -> None:  # pylint: disable=invalid-name  # http.server's method naming
        """A merge-request note: record the request and answer as GitLab would."""
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        auth = self.headers.get("Authorization")
        type(self).received.append({"method": "POST", "path": self.path, "auth": auth, "body": body})
        if self.token is not None and auth != f"Bearer {self.token}":
            self._json(401, {"message": "401 Unauthorized"})
        elif not NOTES_PATH.fullmatch(self.path):
            self._json(404, {"message": "404 Not found"})
        elif self.answer_status >= 400:
            self._json(self.answer_status, {"message": "403 Forbidden"})
        else:
            self._json(self.answer_status, {"id": NOTE_ID, "body": body.get("body")})

    def do_PUT(self) -> None:  # pylint: disable=invalid-name  # http.server's method naming
        """Publish a package file."""
        content = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append({"method": "PUT", "path": self.path, "job_token": self.headers.get("JOB-TOKEN")})
        key = self._package()
        if key is not None:
            type(self).packages[key] = content
            self._json(201, {"message": "201 Created"})

    def do_GET(self) -> None:  # pylint: disable=invalid-name  # http.server's method naming
        """Download a package file."""
        type(self).received.append({"method": "GET", "path": self.path, "job_token": self.headers.get("JOB-TOKEN")})
        key = self._package()
        if key is None:
            return
        if key not in self.packages:
            self._json(404, {"message": "404 Package Not Found"})
        else:
            self._answer(200, self.packages[key], "application/octet-stream")

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin  # http.server's signature
        return


@contextmanager
def serve(token: str | None = None, job_tokens: frozenset[str] | None = None) -> Iterator[str]:
    """Run the stand-in (fresh state; `token` for notes, `job_tokens` for packages, expected if given).

    Yields its CI_API_V4_URL.
    """
    GitLabNotes.received, GitLabNotes.answer_status, GitLabNotes.token = [], 201, token
    GitLabNotes.job_tokens, GitLabNotes.packages = job_tokens, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), GitLabNotes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    finally:
        server.shutdown()
        server.server_close()
