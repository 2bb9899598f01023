"""Bench: many queued build requests, many tenants, concurrent dispatchers, duplicated completion events.

Queues N requests (default 10,000) from T tenants (default 1,000) on three tiers through the real trigger
path, then runs D concurrent dispatchers (default 8) against simulated pipelines on in-process moto: each
execution sends the `Executing` event SageMaker sends at a start, runs for a while, then its terminal
status event is delivered twice (plus a late `Executing` event, out of order) to the status queue,
consumed by the real status handler (two consumers) through the local event source mapping; the status
handler hands each freed slot to the backlog's head. A watcher thread samples running executions per
tier the whole time.

Calls are counted per role: the trigger, the dispatcher, the status handler, the start port (one
StartPipelineExecution here, whoever calls it), the event source mapping (AWS's poller on Lambda, not
the functions' calls), and idle polls (a dispatcher's tier lease refused: their number follows the
clock, not the requests).

Demand is skewed on purpose (every tenant asks for at least two builds, a few ask for many, Zipf) and
queued in bursts, one tenant after another, which is the worst order for a FIFO queue. Fairness is Jain's
index over the builds each tenant of a tier got in the first `tenants × 2` admissions of that tier, the
stretch in which every tenant still waits and the tier is saturated: 1.0 is perfect round-robin.

Prints figures; asserts nothing about time. Example: `python bench/dispatch.py --requests 2000 --tenants 200`.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
ROOT = Path(__file__).resolve().parents[1]


class CallCounter:
    """Counts AWS calls per role with a botocore event hook on each client."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def watch(self, client: Any, role: str) -> Any:
        """Count every call `client` makes under `role`; returns the client."""
        def count(event_name: str, **_: Any) -> None:
            with self._lock:
                self.calls[(role, event_name.split(".")[-1])] += 1

        def idle(event_name: str, parsed: dict[str, Any], **_: Any) -> None:
            # A dispatcher's tier lease refused: the tier was full, empty or taken (a poll with no work).
            if role == "dispatcher" and event_name.endswith("UpdateItem") and \
                    parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                with self._lock:
                    self.calls[("idle", "UpdateItem")] += 1

        client.meta.events.register("before-call.*.*", count)
        client.meta.events.register("after-call.dynamodb.UpdateItem", idle)
        return client

    def total(self, *roles: str) -> int:
        """Calls made under any of `roles`."""
        return sum(n for (role, _), n in self.calls.items() if role in roles)


def build_registry(tenants: int, limits: dict[str, int], shares: dict[str, float]) -> Any:
    """A platform with three tiers and `tenants` tenants spread over them by `shares`."""
    from mlops.config.platform import Platform
    from mlops.config.tenants import Registry, Tenant

    platform = Platform(project="bench", models=["churn"], tiers={
        tier: {"instance_type": "ml.m5.large", "max_concurrent_builds": limit, "priority": prio}
        for (tier, limit), prio in zip(limits.items(), (10, 5, 1))})
    registry = Registry(platform=platform)
    cut = 0
    for tier, share in shares.items():
        count = round(tenants * share) if tier != list(shares)[-1] else tenants - cut
        for i in range(cut, cut + count):
            tid = f"t{i:04d}"
            registry.tenants[tid] = Tenant(id=tid, display_name=tid, tier=tier, models=["churn"])
        cut += count
    return registry


def demand(registry: Any, total: int, limits: dict[str, int], rng: random.Random, minimum: int = 2) -> dict[str, int]:
    """Requests per tenant: `minimum` each, the rest Zipf-skewed inside a tier, tiers in proportion to limits."""
    by_tier: dict[str, list[str]] = defaultdict(list)
    for tid, tenant in registry.tenants.items():
        by_tier[tenant.tier].append(tid)
    counts = {tid: minimum for tid in registry.tenants}
    extra = total - minimum * len(counts)
    weight = sum(limits.values())
    for tier, tenants in by_tier.items():
        share = extra * limits[tier] // weight if tier != list(by_tier)[-1] else extra - sum(c - minimum for c in counts.values())
        ranks = tenants[:]
        rng.shuffle(ranks)
        weights = [1 / (r + 1) ** 1.1 for r in range(len(ranks))]
        for tid in rng.choices(ranks, weights=weights, k=max(0, share)):
            counts[tid] += 1
    return counts


def main() -> None:  # pylint: disable=too-many-locals,too-many-statements  # a bench reads top to bottom
    """Run the bench and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--dispatchers", type=int, default=8)
    parser.add_argument("--limits", default="gold=12,silver=8,bronze=4", help="tier=limit,... (three tiers, by priority)")
    parser.add_argument("--duration", type=float, default=0.4, help="mean simulated build time in seconds")
    parser.add_argument("--tick", type=float, default=0.2, help="seconds between runs of each dispatcher")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    import os

    os.environ.update(_ENV)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the handlers' per-record logs would drown the figures
    import boto3
    from moto import mock_aws

    from mlops.aws.ledger import Ledger
    from mlops.aws.queues import Queues
    from mlops.aws.slots import Slots
    from mlops.builds import BuildService, DispatchSettings, HandlerConfig, use_service
    from mlops.local import moto_patches
    from mlops.local.lambda_runtime import EventSourceMapping, load_handler
    sys.path.insert(0, str(ROOT / "tests"))  # test support (tests/support): the trigger's resources as Terraform declares them
    from support.trigger_stack import MotoPipelineStarter, SimulatedSageMaker, provision, subscriptions
    from mlops.requests import BuildRequest

    limits = {k: int(v) for k, v in (p.split("=") for p in args.limits.split(","))}
    rng = random.Random(args.seed)
    registry = build_registry(args.tenants, limits, dict(zip(limits, (0.2, 0.3, 0.5))))
    names = registry.names()
    counts = demand(registry, args.requests, limits, rng)
    calls = CallCounter()

    with mock_aws():
        moto_patches.atomic()  # for the bench's life, as the local AWS runs
        moto_patches.reads_linear()  # as the local AWS runs: a Query costs what it returns, not the table size
        urls = provision(boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("sagemaker"), names,
                         list(limits), subscriptions(registry))
        admissions: list[tuple[float, str, str]] = []
        # the start port is called by the dispatcher (admissions) and the status handler (handovers): its own line
        starter = MotoPipelineStarter(calls.watch(boto3.client("sagemaker"), "start"), names)
        sim = SimulatedSageMaker(starter, boto3.client("sqs"), urls[names.events_queue("status")],
                                 {t: tenant.tier for t, tenant in registry.tenants.items()},
                                 duration=lambda: rng.uniform(0.5, 1.5) * args.duration, deliveries=2)

        def start(request: BuildRequest, token: str) -> str:
            admissions.append((time.monotonic(), registry.tenants[request.tenant].tier, request.tenant))
            return sim(request, token)

        def service(role: str) -> BuildService:
            dynamodb = calls.watch(boto3.client("dynamodb"), role)
            return BuildService(registry=registry, ledger=Ledger(dynamodb, names.ledger_table()),
                                slots=Slots(dynamodb, names.slots_table()), queues=Queues(calls.watch(boto3.client("sqs"), role)),
                                start=start, find=sim.find, direct_start=False,
                                settings=DispatchSettings(lease_seconds=120))

        trigger = service("trigger")
        order = list(counts)
        rng.shuffle(order)
        began = time.monotonic()
        for tid in order:  # bursts: one tenant after another, in a shuffled order
            for n in range(counts[tid]):
                trigger.submit(BuildRequest(source="ci", tenant=tid, model="churn", version="1.0.0", dedup_id=str(n),
                                            reason="bench"))
        queued_in = time.monotonic() - began
        print(f"queued {sum(counts.values())} requests from {len(counts)} tenants in {queued_in:.1f} s "
              f"({calls.total('trigger') / sum(counts.values()):.2f} AWS calls per request on the trigger path)", flush=True)

        status_service = service("status")
        use_service(lambda: (status_service, HandlerConfig(max_receives=5)))
        handler = load_handler(ROOT / "lambda", "status")
        stop = threading.Event()
        samples: dict[str, list[tuple[float, int]]] = defaultdict(list)

        def watcher() -> None:
            while not stop.is_set():
                now, running = time.monotonic(), sim.running()
                for tier in limits:
                    samples[tier].append((now, running.get(tier, 0)))
                time.sleep(0.005)

        failed_runs: list[str] = []

        def dispatcher(svc: BuildService) -> None:
            while not stop.is_set():
                try:
                    svc.dispatch()
                except Exception as exc:  # pylint: disable=broad-exception-caught  # a failed Lambda run; the next one comes
                    failed_runs.append(f"{type(exc).__name__}: {exc}")
                stop.wait(args.tick * rng.uniform(0.5, 1.5))

        def status_consumer() -> None:
            mapping = EventSourceMapping(calls.watch(boto3.client("sqs"), "esm"), names.events_queue("status"), handler, "status")
            while not stop.is_set():
                if not mapping.poll_once():
                    stop.wait(0.02)

        def pipelines() -> None:
            while not stop.is_set():
                sim.tick(time.monotonic())
                stop.wait(0.01)

        threads = [threading.Thread(target=watcher), threading.Thread(target=pipelines)]
        threads += [threading.Thread(target=status_consumer) for _ in range(2)]
        threads += [threading.Thread(target=dispatcher, args=(service("dispatcher"),)) for _ in range(args.dispatchers)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        total = sum(counts.values())
        last = 0
        while time.monotonic() - began < args.timeout:
            done = sim.finished
            if done >= total and not any(sim.running().values()):
                break
            if done - last >= total // 10:
                print(f"  {done}/{total} finished after {time.monotonic() - began:.0f} s", flush=True)
                last = done
            time.sleep(0.2)
        # let the last status events drain
        drain = time.monotonic() + 30
        while time.monotonic() < drain and any(trigger.slots.read_counter(t, lim).inflight for t, lim in limits.items()):
            time.sleep(0.1)
        wall = time.monotonic() - began
        stop.set()
        for thread in threads:
            thread.join()
        use_service(None)

        report(args, limits, registry, counts, starter, admissions, samples, calls, wall, trigger)
        print(f"failed dispatcher runs: {len(failed_runs)}" + (f" (first: {failed_runs[0]})" if failed_runs else ""))


def report(args: Any, limits: dict[str, int], registry: Any, counts: dict[str, int], starter: Any,  # pylint: disable=too-many-locals
           admissions: list[tuple[float, str, str]], samples: dict[str, list[tuple[float, int]]], calls: CallCounter,
           wall: float, trigger: Any) -> None:
    """Print the figures."""
    from mlops.admission import jain_index

    total = sum(counts.values())
    print(f"\nexecutions started: {len(starter.starts)} of {total} requests; duplicate starts: {starter.duplicates}")
    by_tier_tenants: dict[str, list[str]] = defaultdict(list)
    for tid, tenant in registry.tenants.items():
        by_tier_tenants[tenant.tier].append(tid)
    for tier, limit in limits.items():
        peak = max((n for _, n in samples[tier]), default=0)
        tenants = by_tier_tenants[tier]
        window = [a for a in admissions if a[1] == tier][: len(tenants) * 2]
        got = Counter(t for _, _, t in window)
        jain = jain_index([got.get(t, 0) for t in tenants])
        start, end = (window[0][0], window[-1][0]) if window else (0.0, 0.0)
        inside = [n for t, n in samples[tier] if start <= t <= end]
        saturated = sum(1 for n in inside if n == limit) / len(inside) if inside else 0.0
        state = trigger.slots.read_tier(tier, limit)
        print(f"tier {tier:<7} limit {limit:>3}  max concurrent {peak:>3}  tenants {len(tenants):>4}  requests "
              f"{sum(counts[t] for t in tenants):>5}  Jain (first {len(window)} admissions) {jain:.3f}  "
              f"saturated {saturated:.0%} of that time  end state inflight={state.inflight} waiting={state.waiting}")
    per_op: dict[str, Counter[str]] = defaultdict(Counter)
    for (role, op), n in calls.calls.items():
        per_op[role][op] += n
    # Per request that went through: the trigger path per request queued, the rest per execution started
    # (a run cut short by --timeout would otherwise spread its calls over requests never dispatched).
    started = max(1, len(starter.starts))
    for role in ("trigger", "dispatcher", "status", "start", "esm"):
        per = total if role == "trigger" else started
        ops = ", ".join(f"{op} {n / per:.2f}" for op, n in per_op[role].most_common())
        print(f"AWS calls per request, {role:<10}: {calls.total(role) / per:.2f}  ({ops})")
    idle = calls.total("idle")
    work = calls.total("dispatcher", "status", "start")
    print(f"AWS calls per started request, dispatcher + status handler + start: {work / started:.2f}, "
          f"of which idle polls (tier lease refused: full, empty or taken) {idle / started:.2f}; "
          f"without them {(work - idle) / started:.2f}"
          f"  (+ event source mapping {calls.total('esm') / started:.2f}, + trigger {calls.total('trigger') / total:.2f})")
    print(f"wall time (dispatch phase): {wall:.1f} s  ({total / wall:.0f} requests/s, {args.dispatchers} dispatchers)")


if __name__ == "__main__":
    main()
