"""The answer a client did not get, given again when its SDK retries the same call.

The AWS SDKs send every attempt of one API call with the same `amz-sdk-invocation-id` header and count the
attempts in `amz-sdk-request: attempt=N; max=M`. When an answer is lost on its way back (seen on a busy
machine: the AWS provider's SDK retried a `CreateRole` and a `CreateFunction` that moto had already done),
the retry reaches moto as a second create and gets "already exists" (409), which Terraform reports as a
failure, or retries for minutes. This WSGI middleware keeps the answers of the calls that changed something
(any method but GET and HEAD, answered 2xx) for a few minutes by invocation id, and answers a later attempt
of the same invocation with the kept answer, without running it again, and says so in the server log.
Different invocations, even with the same body, always run: a real duplicate still gets AWS's 409.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

LOG = logging.getLogger("mlops.local.retried_requests")
#: How long an answer is kept, and how many at most (oldest dropped first).
KEEP_SECONDS = 300.0
KEEP_ANSWERS = 2048
#: Answers larger than this are not kept (no create answers with megabytes).
KEEP_BYTES = 1 << 20

Answer = tuple[str, list[tuple[str, str]], bytes]


def _attempt(environ: dict[str, Any]) -> int:
    """The attempt number of `amz-sdk-request` (1 when absent or unreadable)."""
    for part in environ.get("HTTP_AMZ_SDK_REQUEST", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "attempt" and value.isdigit():
            return int(value)
    return 1


class RetriedRequests:
    """WSGI middleware: the kept answer for a retried attempt of a call that already succeeded."""

    def __init__(self, app: Callable[..., Iterable[bytes]], clock: Callable[[], float] = time.monotonic):
        self.app = app
        self.clock = clock
        self._answers: OrderedDict[str, tuple[float, Answer]] = OrderedDict()
        self._lock = threading.Lock()
        self.replayed = 0

    def _kept(self, invocation: str) -> Answer | None:
        with self._lock:
            now = self.clock()
            while self._answers and next(iter(self._answers.values()))[0] < now - KEEP_SECONDS:
                self._answers.popitem(last=False)
            found = self._answers.get(invocation)
            return found[1] if found else None

    def _keep(self, invocation: str, answer: Answer) -> None:
        with self._lock:
            self._answers[invocation] = (self.clock(), answer)
            while len(self._answers) > KEEP_ANSWERS:
                self._answers.popitem(last=False)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        invocation = environ.get("HTTP_AMZ_SDK_INVOCATION_ID", "")
        if not invocation or environ.get("REQUEST_METHOD", "GET") in ("GET", "HEAD"):
            return self.app(environ, start_response)
        if _attempt(environ) > 1:
            kept = self._kept(invocation)
            if kept is not None:
                self.replayed += 1
                LOG.warning("attempt %d of invocation %s (%s %s) already succeeded: its answer is given again",
                            _attempt(environ), invocation, environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
                status, headers, body = kept
                start_response(status, headers)
                return [body]
        seen: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen.update(status=status, headers=list(headers))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = self.app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if seen.get("status", "").startswith("2") and len(body) <= KEEP_BYTES:
            self._keep(invocation, (seen["status"], seen["headers"], body))
        return [body]
