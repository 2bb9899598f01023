"""The local Lambda runtime as a detached process: `python -m mlops.local.runtime_process --env-file F`.

`mlops local up` starts it next to the moto server (pid in `state.json`, output in `runtime.log`) and
`mlops local down` stops it. It plays what AWS does for the platform's Lambdas and moto does not: the SQS
event source mappings (uploads → trigger, status → status) and the dispatcher's schedule, calling the real
handlers under `lambda/` with SQS batch events (`mlops.local.lambda_runtime.standard_runtime`).

The handlers read their environment as on AWS (docs/trigger.md, "Lambda environment"): this process sets
the `MLOPS_*` variables Terraform gives the functions, from the registry's names, and the endpoint and
fake credentials from the env file of `mlops local up`. Nothing here decides anything.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

MODULE = "mlops.local.runtime_process"
LOG = logging.getLogger(MODULE)


def read_env_file(path: Path) -> dict[str, str]:
    """The `export K=V` lines of the env file written by `mlops local up`."""
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, value = line.partition("=")
        if sep:
            env[name.strip()] = " ".join(shlex.split(value)) if value else ""
    return env


def lambda_environment(names: Any, root: Path, topic_arn: str | None = None) -> dict[str, str]:
    """What Terraform sets on the trigger, dispatcher and status functions (docs/trigger.md)."""
    env = {"MLOPS_PROJECT": names.project, "MLOPS_LEDGER_TABLE": names.ledger_table(),
           "MLOPS_SLOTS_TABLE": names.slots_table(), "MLOPS_MAX_RECEIVES": "5", "MLOPS_ROOT": str(root)}
    if topic_arn:
        env["MLOPS_NOTIFICATIONS_TOPIC"] = topic_arn
    return env


def _topic_arn(sns: Any, names: Any) -> str | None:
    """The notifications topic Terraform created, if any (its name starts with the project)."""
    try:
        topics = [t["TopicArn"] for t in sns.list_topics().get("Topics", [])]
    except Exception:  # pylint: disable=broad-exception-caught  # notifications are optional
        return None
    mine = [t for t in topics if t.rsplit(":", 1)[-1].startswith(names.project) and "notif" in t.rsplit(":", 1)[-1]]
    return mine[0] if mine else None


def run(env_file: Path, lambda_dir: Path | None, every_seconds: float, stop: threading.Event) -> None:
    """Set the Lambda environment, then step the runtime until `stop` is set."""
    os.environ.update(read_env_file(env_file))
    import boto3  # pylint: disable=import-outside-toplevel  # after the endpoint is in the environment

    from mlops.config.tenants import load_from_settings  # pylint: disable=import-outside-toplevel
    from mlops.local.lambda_runtime import standard_runtime  # pylint: disable=import-outside-toplevel
    from mlops.settings import Settings  # pylint: disable=import-outside-toplevel

    settings = Settings.from_env()
    names = load_from_settings(settings).names()
    for name, value in lambda_environment(names, settings.root, _topic_arn(boto3.client("sns"), names)).items():
        os.environ.setdefault(name, value)
    runtime = standard_runtime(boto3.client("sqs"), names, lambda_dir or settings.root / "lambda", every_seconds)
    LOG.info("local Lambda runtime: %s → trigger, %s → status, dispatcher every %.1f s",
             names.events_queue("uploads"), names.events_queue("status"), every_seconds)
    while not stop.is_set():
        try:
            handled = runtime.step()
        except Exception:  # pylint: disable=broad-exception-caught  # e.g. the server restarting: keep polling
            LOG.exception("runtime step failed; retrying")
            handled = 0
            stop.wait(1.0)
        if not handled:
            stop.wait(runtime.idle_sleep_seconds)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", required=True, type=Path, help="env file of `mlops local up`")
    parser.add_argument("--lambda-dir", type=Path, help="folder of the handlers (default: <root>/lambda)")
    parser.add_argument("--every", type=float, default=2.0, help="dispatcher schedule, seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    run(args.env_file, args.lambda_dir, args.every, stop)
    LOG.info("stopped after %.0f s", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
