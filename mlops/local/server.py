"""The local AWS process: a moto server on loopback, run detached by `mlops local up`.

`python -m mlops.local.server --port 0 --ready-file F` binds a free port itself (no race between picking
a port and binding it), then writes `{"pid", "host", "port"}` to F atomically so the parent knows where it
listens. It serves until SIGTERM or SIGINT. Request logging is off: the log would grow with every call.
moto's application is served as moto's own threaded server serves it, behind its middlewares: an SDK's retry
of a call that already succeeded gets that call's answer again (mlops.local.retried_requests), Lambda Invoke
runs the function moto holds (mlops.local.lambda_api), with `--engine-record-bucket`, pipeline
executions are run by the local engine (mlops.local.pipelines_api), and, with `--state-dir`, SageMaker
endpoints are served by local model servers (mlops.local.endpoints_api).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from pathlib import Path
from types import TracebackType
from typing import Any


class ThreadedServer:
    """moto's application on loopback in a thread of this process, served as `mlops local up` serves it.

    What moto.server.ThreadedMotoServer does, plus the answer kept for an SDK's retry
    (mlops.local.retried_requests): Terraform's provider retries a create whose answer a busy machine lost,
    and without it gets a 409 "already exists" that real AWS would not produce. Tests and benches that need a
    server outside their own process use this one. `with ThreadedServer() as url:` yields the endpoint URL.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, engine: dict[str, Any] | None = None,
                 endpoints: dict[str, Any] | None = None):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        from mlops.local.retried_requests import RetriedRequests

        app: Any = DomainDispatcherApplication(create_backend_app)
        if engine is not None:  # SageMaker Pipelines executions run by the local engine (mlops.local.pipelines_api)
            from mlops.local.pipelines_api import PipelinesApi

            app = PipelinesApi(app, endpoint_url=lambda: self.url, **engine)
        if endpoints is not None:  # SageMaker endpoints served by local model servers (mlops.local.endpoints_api)
            from mlops.local.endpoints_api import EndpointsApi

            app = EndpointsApi(app, endpoint_url=lambda: self.url, **endpoints)
        from mlops.local.lambda_api import LambdaApi  # Lambda Invoke runs the function moto holds

        app = LambdaApi(app, endpoint_url=lambda: self.url)
        self.app = RetriedRequests(app)
        self._server = make_server(host, port, self.app, True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)

    @property
    def host_and_port(self) -> tuple[str, int]:
        """Where the server listens (the port it bound when asked for port 0)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """The endpoint URL for boto3 and Terraform."""
        host, port = self.host_and_port
        return f"http://{host}:{port}"

    def start(self) -> str:
        """Serve in a daemon thread; returns the endpoint URL."""
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run a moto server until a termination signal arrives."""
    parser = argparse.ArgumentParser(prog="python -m mlops.local.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback by default)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    parser.add_argument("--ready-file", type=Path, required=True, help="where to write the pid, host and port once listening")
    parser.add_argument("--engine-record-bucket",
                        help="run pipeline executions with the local engine, keeping its records in this bucket")
    parser.add_argument("--engine-dir", type=Path, help="the engine's work folders (with --engine-record-bucket)")
    parser.add_argument("--state-dir", type=Path,
                        help="serve SageMaker endpoints with local model servers, kept under <state dir>/endpoints")
    args = parser.parse_args(argv)
    if bool(args.engine_record_bucket) != bool(args.engine_dir):
        parser.error("--engine-record-bucket and --engine-dir go together")

    from mlops.local import moto_patches

    # moto checks a DynamoDB condition and writes in separate steps, and walks SQS queues without a lock;
    # real AWS is atomic per call, and tier admission (`inflight < limit`) depends on it under concurrency.
    moto_patches.atomic()  # for the server's life: never undone
    moto_patches.reads_linear()  # DynamoDB reads cost what they return, not the table size (bench/retrain_scan.py)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    engine = {"record_bucket": args.engine_record_bucket, "engine_dir": args.engine_dir} if args.engine_dir else None
    endpoints = {"state_dir": args.state_dir} if args.state_dir else None
    server = ThreadedServer(args.host, args.port, engine=engine, endpoints=endpoints)
    server.start()
    host, port = server.host_and_port

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    tmp = args.ready_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "host": host, "port": port}), encoding="utf-8")
    os.replace(tmp, args.ready_file)
    print(f"moto server listening on http://{host}:{port} (pid {os.getpid()})", flush=True)
    stop.wait()
    server.stop()
    print("moto server stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
