"""The dispatcher's use case over the in-memory ports: filing, fair admission within the limits, repairs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from builds_world import TIERS, World, event, request

import mlops.builds.dispatcher
from mlops.builds import DispatchReport
from mlops.statuses import FAILED, QUEUED, STARTING, SUCCEEDED


def _queue(world: World, tier: str) -> str:
    return world.registry.names().tier_queue(tier)


def test_queued_requests_are_filed_then_admitted_round_robin_by_tenant(world: World) -> None:
    service = world.service(direct_start=False)
    acme = [service.submit(request("acme", n)) for n in range(3)]  # a burst of one tenant first
    initech = service.submit(request("initech", 9))
    report = service.dispatch()
    assert (report.filed, report.admitted) == ({"gold": 4}, {"gold": 3})
    assert {world.status(o.execution_id) for o in (acme[0], acme[1], initech)} == {STARTING}
    assert world.status(acme[2].execution_id) == QUEUED, "initech's first goes before acme's third"
    assert world.queues.depth(_queue(world, "gold")) == 0
    state = world.tier("gold")
    assert (state.inflight, state.waiting, state.unfiled) == (3, 1, 0)
    assert world.pipelines.starts == {o.execution_id: 1 for o in (acme[0], acme[1], initech)}


def test_a_tier_never_runs_more_than_its_limit(world: World) -> None:
    service = world.service(direct_start=False)
    submitted = [service.submit(request(t, n)).execution_id for n in range(5) for t in ("acme", "initech", "globex", "umbrella")]
    limits = {tier: limit for tier, (limit, _) in TIERS.items()}
    for _ in range(40):
        service.dispatch()
        for tier, limit in limits.items():
            assert world.tier(tier).inflight <= limit
        running = [eid for eid in submitted if world.status(eid) == STARTING]
        for eid in running[:2]:
            service.record_status(event(eid, "Succeeded"))
        if all(world.status(eid) == SUCCEEDED for eid in submitted):
            break
    assert {world.status(eid) for eid in submitted} == {SUCCEEDED}
    assert world.pipelines.duplicates == 0 and sorted(world.pipelines.starts) == sorted(submitted)
    assert all((world.tier(t).inflight, world.tier(t).waiting, world.tier(t).slots) == (0, 0, []) for t in limits)


def test_a_copy_of_a_message_is_counted_once_and_one_queued_elsewhere_is_dead_lettered(world: World) -> None:
    service = world.service(direct_start=False)
    queued = request("acme", 1)
    service.submit(queued)
    world.queues.send(_queue(world, "gold"), queued.to_message())  # delivered twice
    world.queues.send(_queue(world, "gold"), request("acme", 2).to_message())  # never through the trigger
    world.queues.send(_queue(world, "gold"), json.dumps({"source": "ci", "tenant": "acme"}))  # malformed
    report = service.dispatch()
    assert (report.filed, report.admitted, report.duplicates, report.rejected) == ({"gold": 1}, {"gold": 1}, 1, 2)
    reasons = sorted(reason for _, reason in world.queues.dead[_queue(world, "gold")])
    assert reasons[0].startswith("malformed build request") and "is not in the ledger" in reasons[1]
    assert world.queues.depth(_queue(world, "gold")) == 0
    assert world.pipelines.starts == {queued.execution_id: 1}


def test_a_tenant_at_its_cap_lets_the_others_go_first(world_factory: Any) -> None:
    world = world_factory({"acme": "gold", "initech": "gold"}, overrides={"acme": {"overrides": {"max_concurrent_builds": 1}}})
    service = world.service()
    assert [service.submit(request("acme", n)).result for n in range(2)] == ["started", "queued"]
    assert service.submit(request("initech", 9)).result == "queued"
    assert service.dispatch().admitted == {"gold": 1}
    state = world.tier("gold")
    assert (state.tenants["acme"].running, state.tenants["acme"].waiting, state.tenants["initech"].running) == (1, 1, 1)


def test_more_free_slots_than_a_round_holds_are_filled_by_the_next_runs(world_factory: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mlops.builds.dispatcher, "MAX_ADMISSIONS_PER_ROUND", 2)
    world = world_factory({"alpha": "gold", "bravo": "gold", "charlie": "gold"})
    service = world.service(direct_start=False)
    for tenant in ("alpha", "bravo", "charlie"):
        service.submit(request(tenant, 1))
    assert [service.dispatch().admitted for _ in range(2)] == [{"gold": 2}, {"gold": 1}]


def test_the_account_quota_goes_to_the_higher_priority_tier(world_factory: Any) -> None:
    from fakes import FakeBuildStore

    world = world_factory(store=FakeBuildStore(account_quota=1))
    service = world.service(handover=False)
    first = service.submit(request("umbrella", 1))
    gold, silver = service.submit(request("acme", 2)), service.submit(request("globex", 3))
    assert (first.result, gold.result, silver.result) == ("started", "queued", "queued")
    service.record_status(event(first.execution_id, "Succeeded"))
    assert service.dispatch().admitted == {"gold": 1}
    assert (world.status(silver.execution_id), world.store.account["inflight"]) == (QUEUED, 1)


def test_the_sweep_releases_the_slot_of_an_execution_that_ended(world: World) -> None:
    service = world.service()
    started = service.submit(request("globex", 1))
    world.store.advance(started.execution_id, SUCCEEDED, "2026-01-01T01:00:00+00:00", "test", {})  # its release was lost
    report = DispatchReport()
    service.sweep("silver", report)
    assert report.released_stale == 0, "not before the lease"
    world.clock.jump(120)
    service.sweep("silver", report)
    assert report.released_stale == 1 and world.tier("silver").inflight == 0


def test_the_sweep_applies_a_terminal_event_that_never_arrived(world: World) -> None:
    service = world.service()
    first, second = service.submit(request("umbrella", 1)), service.submit(request("umbrella", 2))
    service.dispatch()  # files the second
    world.clock.jump(120)
    assert service.dispatch().reconciled == {}, "still executing on SageMaker"
    world.pipelines.statuses[first.pipeline_execution_arn] = "Succeeded"
    report = DispatchReport()
    service.sweep("bronze", report)
    assert report.reconciled == {first.execution_id: SUCCEEDED}
    assert (world.status(first.execution_id), world.status(second.execution_id)) == (SUCCEEDED, STARTING)
    assert world.tier("bronze").slots == [second.execution_id]


def test_a_backlog_entry_that_no_longer_reads_is_withdrawn(world: World) -> None:
    service = world.service(handover=False)
    running, waiting = service.submit(request("umbrella", 1)), service.submit(request("umbrella", 2))
    service.dispatch()
    [entry] = world.store.backlog_head("bronze", 5)
    world.store.backlogs["bronze"][entry.position] = type(entry)(entry.position, entry.tenant, entry.execution_id, entry.tag,
                                                                 "{not json")
    service.record_status(event(running.execution_id, "Succeeded"))
    service.dispatch()
    record = world.store.execution(waiting.execution_id)
    assert record["status"] == FAILED and "cannot be read" in record["failure_reason"]
    assert [body for body, _ in world.queues.dead[_queue(world, "bronze")]] == ["{not json"]
    state = world.tier("bronze")
    assert (state.inflight, state.waiting, world.store.backlog_head("bronze", 5)) == (0, 0, [])


def test_drifted_counts_are_set_right_by_the_recount(world: World) -> None:
    service = world.service(handover=False, settings={"recount_every_seconds": 0})
    service.submit(request("umbrella", 1))
    world.store.counters["bronze"] |= {"inflight": 2, "waiting": 5, "unfiled": 3}
    assert service.dispatch().recounted == {"bronze/tier.inflight": [2, 1], "bronze/tier.waiting": [5, 3]}
    assert service.dispatch().recounted == {"bronze/tier.waiting": [3, 0], "bronze/tier.unfiled": [3, 0]}
    assert service.dispatch().recounted == {}
