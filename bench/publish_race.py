"""Publishing with N concurrent racers: how many attempts does each publish take?

Starts a moto server on loopback (the local AWS), creates an immutable ECR repository, publishes a first
release, then lets N publishers (threads, each with its own boto3 client and its own image) publish the same
model at once, all starting from the same computed version, as N pipelines merged at the same moment would.
Prints attempts per publish (p50, p99, max) and wall time per round; the goal is at most 3 attempts at p99
with 20 racers. Checks, too, that every racer got its own version and that no tag names two images.

    .venv/bin/python bench/publish_race.py --racers 20 --rounds 5
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
from mlops.local.server import ThreadedServer

from mlops import image


def percentile(values: list[int], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return float(ordered[int(rank) - 1])


def one_round(endpoint: str, racers: int, workdir: Path, slots: float) -> tuple[list[int], float]:
    """One race; returns attempts per racer and the wall time."""
    repository = f"bench-{uuid.uuid4().hex[:8]}/churn"
    client = boto3.client("ecr", region_name="us-east-1", endpoint_url=endpoint)
    client.create_repository(repositoryName=repository, imageTagMutability="IMMUTABLE")
    seed = image.write_oci_archive(workdir / f"{repository.replace('/', '-')}-seed.tar", {"seed": b"seed"})
    image.publish(client, model="churn", repository=repository, version="0.1.0", image=seed)
    built = [image.write_oci_archive(workdir / f"{repository.replace('/', '-')}-{i}.tar", {"racer": str(i).encode()})
             for i in range(racers)]
    attempts: list[int] = [0] * racers
    barrier = threading.Barrier(racers + 1)

    def race(i: int) -> None:
        own = boto3.session.Session().client("ecr", region_name="us-east-1", endpoint_url=endpoint)
        barrier.wait()
        attempts[i] = image.publish(own, model="churn", repository=repository, version="0.2.0", image=built[i],
                                    jitter_slots=slots).attempts

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    tags: dict[str, str] = {}
    for page in client.get_paginator("describe_images").paginate(repositoryName=repository):
        for detail in page["imageDetails"]:
            for tag in detail.get("imageTags", []):
                if tag in tags:
                    raise SystemExit(f"tag {tag} names two images")
                tags[tag] = detail["imageDigest"]
    if len(tags) != racers + 1 or 0 in attempts:
        raise SystemExit(f"expected {racers + 1} tags, found {len(tags)}; attempts {attempts}")
    return attempts, elapsed


def start_server(port: int, how: str) -> object:
    """A moto server on loopback, in its own process or in a thread of this one."""
    if how == "thread":
        server = ThreadedServer(port=port)
        server.start()
        return server
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    # pylint: disable-next=consider-using-with  # the server lives until stop_server()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("moto server did not start")


def stop_server(server: object) -> None:
    """Stop what start_server started."""
    if isinstance(server, subprocess.Popen):
        server.terminate()
        server.wait(timeout=10)
    else:
        server.stop()  # type: ignore[attr-defined]


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--racers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--server", choices=["process", "thread"], default="process",
                        help="moto in its own process (as mlops local up runs it) or in a thread of this one")
    parser.add_argument("--jitter-slots", type=float, default=image.JITTER_SLOTS,
                        help="the first retry waits up to this many turns (see mlops.image.jitter)")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "bench")
    with socket_port() as port:
        endpoint = f"http://127.0.0.1:{port}"
    server = start_server(port, args.server)
    all_attempts: list[int] = []
    try:
        with tempfile.TemporaryDirectory(prefix="publish-race-") as tmp:
            for number in range(1, args.rounds + 1):
                attempts, elapsed = one_round(endpoint, args.racers, Path(tmp), args.jitter_slots)
                all_attempts.extend(attempts)
                print(f"round {number}: {args.racers} racers, attempts p50 {percentile(attempts, 50):.0f} "
                      f"p99 {percentile(attempts, 99):.0f} max {max(attempts)}, {elapsed:.2f} s")
    finally:
        stop_server(server)
    print(f"all rounds: {len(all_attempts)} publishes, attempts mean {statistics.mean(all_attempts):.2f} "
          f"p50 {percentile(all_attempts, 50):.0f} p99 {percentile(all_attempts, 99):.0f} max {max(all_attempts)} "
          f"(goal: p99 <= 3 with 20 racers)")


class socket_port:  # pylint: disable=invalid-name  # used like a function in a with statement
    """A free TCP port on loopback (closed again before the server binds it)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    main()
