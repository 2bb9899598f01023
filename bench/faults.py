"""Bench: build requests through the real trigger path while faults are injected; nothing may be lost.

Submits N requests (default 1,000) from T tenants on three tiers (half started directly by the trigger,
half queued for the dispatchers) and runs concurrent dispatchers, two status consumers (the real status
handler through the local event source mapping) and simulated pipelines on in-process moto, as
bench/dispatch.py does. Meanwhile it injects, each with its own probability:

- throttled starts: StartPipelineExecution answers a temporary error (the sweep starts it again);
- transaction conflicts: a DynamoDB transaction of the trigger, a dispatcher or the status handler is
  cancelled with TransactionConflict (the trigger's caller sends the request again, as CI or SQS would);
- crashes between steps: a dispatcher run dies before a transaction, before deleting filed messages or just
  after a start; a status handler run dies before its transaction (SQS delivers the record again);
- duplicate and late events: every status event is delivered twice, and a late `Executing` after the end;
- lost events: every delivery of an execution's terminal event is dropped (the sweep asks SageMaker).

Then it waits until every request has ended in the ledger and every slot is free, and prints: requests
started exactly once, duplicate starts, requests lost (not ended), slots leaked, counts left (waiting,
unfiled), the faults injected, and the time to repair (from the last execution's end on "SageMaker" to a
clean ledger and free slots). Asserts nothing about time. Example: `python bench/faults.py --requests 1000`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dispatch import ROOT, _ENV, build_registry, demand  # noqa: E402  # pylint: disable=wrong-import-position  # after the path


class Crash(RuntimeError):
    """A Lambda run that dies in the middle (the runtime reports the invocation as failed)."""


class Faults:
    """Decides, counts and injects the faults (thread-safe)."""

    def __init__(self, rng: random.Random, rates: dict[str, float]):
        self.rng, self.rates = rng, rates
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()

    def fire(self, kind: str) -> bool:
        """True (and counted) with the probability of `kind`."""
        with self._lock:
            if self.rng.random() < self.rates.get(kind, 0.0):
                self.injected[kind] += 1
                return True
            return False

    def hook(self, client: Any, operation: str, kind: str, error: Any) -> Any:
        """Before each `operation` call of `client`, maybe raise `error()` (counted as `kind`)."""
        def maybe(**kwargs: Any) -> None:
            if self.fire(kind):
                raise error(kwargs)

        client.meta.events.register(f"before-call.*.{operation}", maybe)
        return client


def _conflict(kwargs: dict[str, Any]) -> Exception:
    from botocore.exceptions import ClientError

    count = len(json.loads(kwargs["params"]["body"] or b"{}").get("TransactItems", [])) or 1
    return ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled (injected)"},
                        "CancellationReasons": [{"Code": "None"}] * (count - 1) + [{"Code": "TransactionConflict"}]},
                       "TransactWriteItems")


def _crash(kwargs: dict[str, Any]) -> Exception:
    del kwargs
    return Crash("run died (injected)")


def main() -> None:  # pylint: disable=too-many-locals,too-many-statements  # a bench reads top to bottom
    """Run the bench and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--tenants", type=int, default=60)
    parser.add_argument("--dispatchers", type=int, default=3)
    parser.add_argument("--limits", default="gold=12,silver=8,bronze=4", help="tier=limit,... (three tiers, by priority)")
    parser.add_argument("--duration", type=float, default=0.3, help="mean simulated build time in seconds")
    parser.add_argument("--throttle", type=float, default=0.05, help="probability a start is throttled")
    parser.add_argument("--conflict", type=float, default=0.02, help="probability a transaction is cancelled by a conflict")
    parser.add_argument("--crash", type=float, default=0.01, help="probability a run dies at an injection point")
    parser.add_argument("--lost", type=float, default=0.05, help="probability an execution's terminal event is lost")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import os

    os.environ.update(_ENV)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")  # injected failures would drown the figures
    import logging

    logging.getLogger("mlops").setLevel(logging.CRITICAL)
    import boto3
    from moto import mock_aws

    from mlops.aws.ledger import Ledger
    from mlops.aws.queues import Queues
    from mlops.aws.slots import Slots
    from mlops.builds import BuildService, DispatchSettings, HandlerConfig, use_service
    from mlops.errors import MlopsError
    from mlops.local import moto_patches
    from mlops.local.lambda_runtime import EventSourceMapping, load_handler
    sys.path.insert(0, str(ROOT / "tests"))  # test support (tests/support): the trigger's resources as Terraform declares them
    from support.trigger_stack import MotoPipelineStarter, SimulatedSageMaker, provision, subscriptions
    from mlops.requests import BuildRequest

    limits = {k: int(v) for k, v in (p.split("=") for p in args.limits.split(","))}
    rng = random.Random(args.seed)
    faults = Faults(random.Random(args.seed + 1), {"throttle": args.throttle, "conflict": args.conflict,
                                                   "crash": args.crash, "lost": args.lost})
    registry = build_registry(args.tenants, limits, dict(zip(limits, (0.2, 0.3, 0.5))))
    names = registry.names()
    counts = demand(registry, args.requests, limits, rng)

    with mock_aws():
        moto_patches.atomic()  # for the bench's life, as the local AWS runs
        moto_patches.reads_linear()
        urls = provision(boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("sagemaker"), names,
                         list(limits), subscriptions(registry))
        starter = MotoPipelineStarter(boto3.client("sagemaker"), names)
        sim = SimulatedSageMaker(starter, boto3.client("sqs"), urls[names.events_queue("status")],
                                 {t: tenant.tier for t, tenant in registry.tenants.items()},
                                 duration=lambda: rng.uniform(0.5, 1.5) * args.duration, deliveries=2,
                                 lose=lambda: faults.fire("lost"))

        def start(request: BuildRequest, token: str) -> str:
            if faults.fire("throttle"):
                raise MlopsError("cannot start pipeline now: ThrottlingException: Rate exceeded (injected)")
            arn = sim(request, token)
            if faults.fire("crash"):
                raise Crash("run died just after StartPipelineExecution (injected)")
            return arn

        def service(role: str, direct: bool = False) -> BuildService:
            dynamodb = faults.hook(boto3.client("dynamodb"), "TransactWriteItems", "conflict", _conflict)
            sqs = boto3.client("sqs")
            if role in ("dispatcher", "status"):
                faults.hook(dynamodb, "TransactWriteItems", "crash", _crash)
            if role == "dispatcher":
                faults.hook(sqs, "DeleteMessageBatch", "crash", _crash)
            return BuildService(registry=registry, ledger=Ledger(dynamodb, names.ledger_table()),
                                slots=Slots(dynamodb, names.slots_table()), queues=Queues(sqs),
                                start=start, find=sim.find, direct_start=direct,
                                status_of=sim.status.get,
                                settings=DispatchSettings(lease_seconds=1, recount_every_seconds=2.0))

        status_service = service("status")
        use_service(lambda: (status_service, HandlerConfig(max_receives=5)))
        handler = load_handler(ROOT / "lambda", "status")
        stop = threading.Event()
        failed_runs: Counter[str] = Counter()

        def dispatcher(svc: BuildService) -> None:
            while not stop.is_set():
                try:
                    svc.dispatch()
                except Exception as exc:  # pylint: disable=broad-exception-caught  # a failed Lambda run; the next one comes
                    failed_runs[type(exc).__name__] += 1
                stop.wait(0.1 * rng.uniform(0.5, 1.5))

        def status_consumer() -> None:
            mapping = EventSourceMapping(boto3.client("sqs"), names.events_queue("status"), handler, "status")
            while not stop.is_set():
                if not mapping.poll_once():
                    stop.wait(0.02)

        def pipelines() -> None:
            while not stop.is_set():
                sim.tick(time.monotonic())
                stop.wait(0.01)

        threads = [threading.Thread(target=pipelines)]
        threads += [threading.Thread(target=status_consumer) for _ in range(2)]
        threads += [threading.Thread(target=dispatcher, args=(service("dispatcher"),)) for _ in range(args.dispatchers)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        triggers = [service("trigger", direct=True), service("trigger")]
        order = [(tid, n) for tid in counts for n in range(counts[tid])]
        rng.shuffle(order)
        submitted: list[str] = []
        resent = 0
        for i, (tid, n) in enumerate(order):
            request = BuildRequest(source="ci", tenant=tid, model="churn", version="1.0.0", dedup_id=str(n), reason="faults")
            while True:  # the caller (CI, SQS) sends a request again until the trigger answers
                try:
                    outcome = triggers[i % 2].submit(request)
                    break
                except MlopsError:
                    resent += 1
            submitted.append(outcome.execution_id)
        ledger = triggers[1].ledger
        print(f"submitted {len(submitted)} requests from {len(counts)} tenants in {time.monotonic() - began:.1f} s "
              f"({resent} sent again after an injected conflict)", flush=True)

        def clean() -> tuple[list[str], int]:
            open_ = [eid for eid in submitted if (ledger.get(eid) or {}).get("status") not in ("SUCCEEDED", "FAILED")]
            inflight = sum(ledger_state(t, lim).inflight for t, lim in limits.items())
            return open_, inflight

        def ledger_state(tier: str, limit: int) -> Any:
            return triggers[1].slots.read_tier(tier, limit)

        deadline = began + args.timeout
        open_, inflight = clean()
        while time.monotonic() < deadline and (open_ or inflight or sim.running()):
            time.sleep(1.0)
            open_, inflight = clean()
        ended = time.monotonic()
        stop.set()
        for thread in threads:
            thread.join()
        use_service(None)

        states = {tier: ledger_state(tier, limit) for tier, limit in limits.items()}
        statuses = Counter((ledger.get(eid) or {}).get("status", "missing") for eid in submitted)
        once = sum(1 for eid in set(submitted) if starter.starts.get(eid) == 1)
        print(f"\nrequests: {len(set(submitted))}  ended SUCCEEDED {statuses['SUCCEEDED']}, FAILED {statuses['FAILED']} "
              f"(with a reason), lost (not ended) {len(open_)}")
        print(f"started exactly once: {once}  duplicate starts: {starter.duplicates}  never started: "
              f"{sum(1 for eid in set(submitted) if eid not in starter.starts)}")
        print(f"slots leaked: {sum(s.inflight for s in states.values())} (slot items {sum(len(s.slots) for s in states.values())})  "
              f"counts left: waiting {sum(s.waiting for s in states.values())}, unfiled {sum(s.unfiled for s in states.values())}")
        print("faults injected: " + ", ".join(f"{kind} {faults.injected[kind]}" for kind in ("throttle", "conflict", "crash", "lost")))
        print("failed runs (dispatcher): " + (", ".join(f"{k} {v}" for k, v in failed_runs.items()) or "none"))
        for eid in open_[:10]:  # what is left, to see why
            item = ledger.get(eid) or {}
            print(f"  open: {eid} {item.get('status')} arn={'yes' if item.get('pipeline_execution_arn') else 'no'} "
                  f"attempt={item.get('start_attempt')} sagemaker={sim.status.get(item.get('pipeline_execution_arn', ''))}")
        for tier, state in states.items():
            for slot in state.slots:
                item = ledger.get(slot) or {}
                print(f"  slot left: {tier} {slot} ledger {item.get('status')}")
        repair = ended - sim.last_end if sim.last_end else 0.0
        print(f"time to repair (last end on SageMaker -> clean ledger and free slots): {repair:.1f} s; "
              f"wall time {ended - began:.1f} s")


if __name__ == "__main__":
    main()
