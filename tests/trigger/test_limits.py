"""Never over the limit, nothing lost: concurrent dispatchers against simulated pipelines, watched
continuously; a dispatcher that crashes mid-batch; poison and malformed messages."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from support.trigger_stack import SimulatedSageMaker
from trigger_helpers import LAMBDA_DIR, Stack, request

from mlops.builds import BuildService, HandlerConfig, use_service
from mlops.local.lambda_runtime import EventSourceMapping, load_handler

TENANTS = {**{f"g{i}": "gold" for i in range(4)}, **{f"s{i}": "silver" for i in range(3)}, **{f"b{i}": "bronze" for i in range(3)}}
LIMITS = {"gold": 3, "silver": 2, "bronze": 1}


def _simulate(stack: Stack) -> SimulatedSageMaker:
    rng = random.Random(7)
    sim = SimulatedSageMaker(stack.starter, stack.sqs, stack.urls[stack.names.events_queue("status")],
                             {t: stack.registry.tenants[t].tier for t in stack.registry.tenants},
                             duration=lambda: rng.uniform(0.02, 0.15))
    stack.starter = sim  # services built from now on start through the simulation
    return sim


class Watcher(threading.Thread):
    """Samples running executions per tier (SageMaker's view and the slot items) until stopped."""

    def __init__(self, stack: Stack, sim: SimulatedSageMaker):
        super().__init__(daemon=True)
        self.stack, self.sim = stack, sim
        self.stop = threading.Event()
        self.max_running: dict[str, int] = {}
        self.max_slots: dict[str, int] = {}
        self.samples = 0

    def run(self) -> None:
        import boto3

        dynamodb = boto3.client("dynamodb")
        while not self.stop.is_set():
            for tier, n in self.sim.running().items():
                self.max_running[tier] = max(self.max_running.get(tier, 0), n)
            for tier in LIMITS:
                slots = dynamodb.query(TableName=self.stack.names.slots_table(), KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
                                       ExpressionAttributeValues={":p": {"S": f"TIER#{tier}"}, ":s": {"S": "SLOT#"}},
                                       ConsistentRead=True)["Count"]
                self.max_slots[tier] = max(self.max_slots.get(tier, 0), slots)
            self.samples += 1
            time.sleep(0.002)


def _run(stack: Stack, sim: SimulatedSageMaker, dispatchers: list[BuildService], done: Callable[[], bool],
         crash: Callable[[int], bool] = lambda _: False, timeout: float = 90.0) -> Watcher:
    status_service = stack.service()
    use_service(lambda: (status_service, HandlerConfig(max_receives=5)))
    status = EventSourceMapping(stack.sqs, stack.names.events_queue("status"), load_handler(LAMBDA_DIR, "status"), "status")
    stop = threading.Event()
    watcher = Watcher(stack, sim)
    crashes = [0]

    def dispatch_loop(i: int, service: BuildService) -> None:
        while not stop.is_set():
            try:
                service.dispatch()
            except RuntimeError:
                crashes[0] += 1  # the Lambda died; its messages come back after the lease
            if crash(i):
                continue
            time.sleep(0.01)

    threads = [threading.Thread(target=dispatch_loop, args=(i, s), daemon=True) for i, s in enumerate(dispatchers)]
    watcher.start()
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not done() and time.monotonic() < deadline:
            sim.tick(time.monotonic())
            while status.poll_once():
                pass
            time.sleep(0.005)
    finally:
        stop.set()
        watcher.stop.set()
        for thread in threads:
            thread.join()
        watcher.join()
        use_service(None)
    return watcher


@pytest.mark.slow
@pytest.mark.parametrize("tier_lease_ms", [
    pytest.param(20_000, id="dispatchers-taking-turns"),
    pytest.param(0, id="dispatchers-racing-for-every-slot"),
])
def test_concurrent_dispatchers_never_exceed_a_tier_limit_and_start_everything_once(stack_factory: Any, tier_lease_ms: int) -> None:
    stack = stack_factory(TENANTS)
    sim = _simulate(stack)
    trigger = stack.service(direct_start=False)
    submitted = [trigger.submit(request(t, n)).execution_id for n in range(6) for t in TENANTS]
    dispatchers = [stack.service(lease_seconds=30, tier_lease_ms=tier_lease_ms) for _ in range(6)]
    watcher = _run(stack, sim, dispatchers, done=lambda: sim.finished >= len(submitted) and not any(sim.running().values()))
    ledger = {eid: trigger.ledger.get(eid)["status"] for eid in submitted}
    assert set(ledger.values()) == {"SUCCEEDED"}
    assert stack.starter.starter.duplicates == 0
    assert sorted(stack.starter.starter.starts) == sorted(submitted)
    assert watcher.samples > 50
    for tier, limit in LIMITS.items():
        assert watcher.max_running.get(tier, 0) <= limit, f"{tier}: {watcher.max_running} running with limit {limit}"
        assert watcher.max_slots.get(tier, 0) <= limit, f"{tier}: {watcher.max_slots} slots with limit {limit}"
        state = trigger.slots.read_tier(tier, limit)
        assert (state.inflight, state.waiting, state.slots) == (0, 0, [])
    assert watcher.max_running == LIMITS  # the load saturated every tier


class Crash(RuntimeError):
    """A dispatcher dying in the middle of its batch."""


@pytest.mark.slow
@pytest.mark.parametrize("service_name,where,marker", [
    pytest.param("dynamodb", "TransactWriteItems", b"filed_tag", id="received-before-filing"),
    pytest.param("sqs", "DeleteMessageBatch", b"", id="filed-before-deleting-the-messages"),
    pytest.param("sagemaker", "StartPipelineExecution", b"", id="after-admission-or-handover-before-start"),
])
def test_a_dispatcher_crashing_mid_batch_loses_no_request(stack_factory: Any, service_name: str, where: str, marker: bytes) -> None:
    stack = stack_factory(TENANTS)
    sim = _simulate(stack)
    trigger = stack.service(direct_start=False)
    submitted = [trigger.submit(request(t, n)).execution_id for n in range(3) for t in ("g0", "g1", "s0")]
    crashing = stack.service(lease_seconds=1)
    fired = []

    def die(**kwargs: Any) -> None:
        body = kwargs["params"].get("body", b"")
        if len(fired) < 2 and marker in (body if isinstance(body, bytes) else str(body).encode()):
            fired.append(where)
            raise Crash(f"dispatcher killed during {where}")

    client = {"sagemaker": stack.sagemaker, "dynamodb": crashing.ledger.client, "sqs": crashing.queues.client}[service_name]
    for operation in where.split("|"):
        client.meta.events.register(f"before-call.{service_name}.{operation}", die)
    healthy = [stack.service(lease_seconds=1) for _ in range(2)]
    try:
        _run(stack, sim, [crashing, *healthy], done=lambda: sim.finished >= len(submitted) and not any(sim.running().values()))
    finally:
        for operation in where.split("|"):
            client.meta.events.unregister(f"before-call.{service_name}.{operation}", die)
    assert fired  # it did die at least once, holding admitted messages
    assert {trigger.ledger.get(eid)["status"] for eid in submitted} == {"SUCCEEDED"}
    assert stack.starter.starter.duplicates == 0
    assert sorted(stack.starter.starter.starts) == sorted(submitted)
