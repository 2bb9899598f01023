"""What the stand-ins in front of moto share: reading a JSON request and asking moto for its answer.

Each stand-in (`pipelines_api`, `endpoints_api`, `lambda_api`) is a WSGI middleware around moto's application
in the local AWS server; these helpers read a request's JSON body without consuming it, and call the wrapped
application to keep its answer (status, headers, body) to be changed or passed on.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

#: A WSGI answer kept whole: status line, headers, body.
Answer = tuple[str, list[tuple[str, str]], bytes]


def json_request(environ: dict[str, Any]) -> dict[str, Any] | None:
    """The request's JSON body (`{}` when empty), or None when it is not JSON; the body stays readable for moto."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return None
    return request if isinstance(request, dict) else None


def answer_of(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> Answer:
    """The wrapped application's answer to a request, kept to be changed or passed on."""
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        del exc_info
        answer.update(status=status, headers=headers)
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
    return answer["status"], answer["headers"], body
