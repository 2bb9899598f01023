"""The local AWS process: a moto server on loopback, run detached by `mlops local up`.

`python -m mlops.local.server --port 0 --ready-file F` binds a free port itself (no race between picking
a port and binding it), then writes `{"pid", "host", "port"}` to F atomically so the parent knows where it
listens. It serves until SIGTERM or SIGINT. Request logging is off: the log would grow with every call.
moto's application is served as moto's own threaded server serves it, behind one middleware: an SDK's retry
of a call that already succeeded gets that call's answer again (mlops.local.retried_requests).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run a moto server until a termination signal arrives."""
    parser = argparse.ArgumentParser(prog="python -m mlops.local.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback by default)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    parser.add_argument("--ready-file", type=Path, required=True, help="where to write the pid, host and port once listening")
    args = parser.parse_args(argv)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    from mlops.local.lambda_runtime import make_moto_dynamodb_atomic, make_moto_reads_linear
    from mlops.local.retried_requests import RetriedRequests

    # moto checks a DynamoDB condition and writes in separate steps, and walks SQS queues without a lock;
    # real AWS is atomic per call, and tier admission (`inflight < limit`) depends on it under concurrency.
    make_moto_dynamodb_atomic()
    make_moto_reads_linear()  # DynamoDB reads cost what they return, not the table size (bench/retrain_scan.py)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    # As moto.server.ThreadedMotoServer serves it: threaded, moto's request handler.
    app = RetriedRequests(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, True, request_handler=MotoRequestHandler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    host, port = server.server_address[:2]

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    tmp = args.ready_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "host": host, "port": port}), encoding="utf-8")
    os.replace(tmp, args.ready_file)
    print(f"moto server listening on http://{host}:{port} (pid {os.getpid()})", flush=True)
    stop.wait()
    server.shutdown()
    serving.join()
    print("moto server stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
