"""A lost answer: the SDK's retry of a create that moto already did gets that create's answer, not a 409.

Against the real local AWS server process: an IAM `CreateRole` (query protocol) sent as the AWS SDKs send
it, with `amz-sdk-invocation-id` and `amz-sdk-request: attempt=N`. Attempt 2 of the same invocation gets
attempt 1's answer; a new invocation with the same body gets AWS's `EntityAlreadyExists`. The same holds for
the server tests start in a thread of their own process (mlops.local.server.ThreadedServer).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops.local.retried_requests import RetriedRequests

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                            "Principal": {"Service": "lambda.amazonaws.com"}}]})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The local AWS server process (`python -m mlops.local.server`): its endpoint and its log."""
    folder = tmp_path_factory.mktemp("server")
    ready, log = folder / "ready.json", folder / "server.log"
    with open(log, "wb") as output, subprocess.Popen(
            [sys.executable, "-m", "mlops.local.server", "--port", "0", "--ready-file", str(ready)],
            stdout=output, stderr=subprocess.STDOUT) as process:
        try:
            deadline = time.monotonic() + 30
            while not ready.exists():
                assert process.poll() is None and time.monotonic() < deadline, log.read_text(encoding="utf-8")
                time.sleep(0.05)
            info = json.loads(ready.read_text(encoding="utf-8"))
            yield f"http://{info['host']}:{info['port']}", log
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def _create_role(endpoint: str, name: str, invocation: str, attempt: int) -> tuple[int, str]:
    body = urllib.parse.urlencode({"Action": "CreateRole", "Version": "2010-05-08", "RoleName": name,
                                   "AssumeRolePolicyDocument": TRUST}).encode()
    request = urllib.request.Request(endpoint, data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261206/us-east-1/iam/aws4_request, "
                         "SignedHeaders=host, Signature=0",
        "amz-sdk-invocation-id": invocation, "amz-sdk-request": f"attempt={attempt}; max=25"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.slow
def test_a_retried_create_gets_its_answer_again_and_a_new_one_gets_409(server: tuple[str, Path]) -> None:
    endpoint, log = server
    first = _create_role(endpoint, "lost-answer", "inv-1", 1)
    assert first[0] == 200 and "<RoleName>lost-answer</RoleName>" in first[1]
    assert _create_role(endpoint, "lost-answer", "inv-1", 2) == first       # the SDK's retry: same answer
    status, body = _create_role(endpoint, "lost-answer", "inv-2", 1)        # a new call: AWS's answer
    assert status == 409 and "EntityAlreadyExists" in body
    assert "attempt 2 of invocation inv-1 (POST /) already succeeded: its answer is given again" in \
        log.read_text(encoding="utf-8")


def test_the_server_tests_run_in_a_thread_answers_a_retry_the_same_way() -> None:
    """The in-process server the Terraform and isolation tests use behaves as the local AWS process does."""
    from mlops.local.server import ThreadedServer

    with ThreadedServer() as endpoint:
        first = _create_role(endpoint, "lost-answer", "inv-1", 1)
        assert first[0] == 200
        assert _create_role(endpoint, "lost-answer", "inv-1", 2) == first
        assert _create_role(endpoint, "lost-answer", "inv-2", 1)[0] == 409


def _app(calls: list[str], status: str = "200 OK") -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(environ["REQUEST_METHOD"])
        start_response(status, [("Content-Type", "text/plain")])
        return [f"answer {len(calls)}".encode()]
    return app


def _call(middleware: RetriedRequests, method: str, invocation: str, attempt: int) -> tuple[str, bytes]:
    seen: dict[str, str] = {}
    environ = {"REQUEST_METHOD": method, "PATH_INFO": "/", "HTTP_AMZ_SDK_INVOCATION_ID": invocation,
               "HTTP_AMZ_SDK_REQUEST": f"attempt={attempt}; max=3"}
    body = b"".join(middleware(environ, lambda status, headers: seen.update(status=status)))
    return seen["status"], body


@pytest.mark.parametrize("method, status, attempt, replayed", [
    pytest.param("POST", "200 OK", 2, True, id="retry-of-a-success"),
    pytest.param("POST", "200 OK", 1, False, id="first-attempt-again-runs"),
    pytest.param("POST", "500 INTERNAL SERVER ERROR", 2, False, id="retry-of-a-failure-runs"),
    pytest.param("GET", "200 OK", 2, False, id="reads-always-run"),
])
def test_only_a_retry_of_a_call_that_changed_something_is_answered_again(method: str, status: str, attempt: int,
                                                                         replayed: bool) -> None:
    calls: list[str] = []
    middleware = RetriedRequests(_app(calls, status))
    first = _call(middleware, method, "inv", 1)
    again = _call(middleware, method, "inv", attempt)
    assert (again == first) is replayed and len(calls) == (1 if replayed else 2)
    assert middleware.replayed == int(replayed)


def test_kept_answers_expire() -> None:
    now = [0.0]
    calls: list[str] = []
    middleware = RetriedRequests(_app(calls), clock=lambda: now[0])
    _call(middleware, "POST", "inv", 1)
    now[0] = 301.0
    _call(middleware, "POST", "inv", 2)
    assert len(calls) == 2
