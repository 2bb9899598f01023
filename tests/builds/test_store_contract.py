"""The in-memory build store answers as the DynamoDB store does: one scenario, both stores, the same transcript.

The scenario goes through the use cases (direct starts, queueing, duplicates, filing with copies and strangers,
fair admission, handovers in and out of a batch with riders, refused and failing starts, the sweep, the
recount) and then asks the stores' edge cases directly (conditions that fail alone, together, on a record
that does not exist). Both runs see the same clock, the same pipeline and the same queues; every answer and,
at the end, every record, tier, backlog, tenant x model state and the account counter are compared.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builds_world import TENANTS, World, event, request, upload_body, write_registry
from fakes import FakeBuildStore
from support.trigger_stack import provision, subscriptions

from mlops.builds import DispatchReport
from mlops.build_ports import BacklogEntry, Ending, Filing, Handover, NewRequest, Rider
from mlops.local import moto_patches
from mlops.requests import StartRejected
from mlops.statuses import EXECUTING, FAILED, SUCCEEDED

QUOTA = 20


def _plain(value: Any) -> Any:
    """An answer as plain data (dataclasses, sets and tuples unfolded) for comparison."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **_plain(dataclasses.asdict(value))}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if hasattr(value, "as_dict"):
        return _plain(value.as_dict())
    return value


def scenario(world: World) -> list[Any]:  # pylint: disable=too-many-locals,too-many-statements  # one story, told once
    """Everything asked of the store, with each answer."""
    said: list[Any] = []
    service = world.service(settings={"sweep_every_seconds": 10.0 ** 6})
    queued = world.service(direct_start=False)
    say = said.append
    names = world.registry.names()

    gold = [service.submit(request("acme", n)) for n in range(1, 4)]
    say(gold)
    say([service.submit(request("acme", 4)), queued.submit(request("initech", 5)), queued.submit(request("initech", 6))])
    say([service.submit(request("umbrella", 1)), service.submit(request("umbrella", 2)), service.submit(request("acme", 1))])
    world.queues.send(names.tier_queue("gold"), request("initech", 5).to_message())  # a copy
    world.queues.send(names.tier_queue("gold"), request("globex", 9).to_message())  # never through the trigger
    say(service.dispatch())
    say(service.record_status(event(gold[0].execution_id, "Executing")))
    say(service.record_status(event(gold[0].execution_id, "Succeeded", at="2026-01-01T02:00:00+00:00")))
    batch = [event(gold[1].execution_id, "Succeeded", at="2026-01-01T01:00:00+00:00"),
             event(request("acme", 4).execution_id, "Executing"), event(gold[2].execution_id, "Failed")]
    service.begin_batch(batch)
    say([service.record_status(e) for e in batch])
    service.end_batch()
    world.pipelines.refuse[request("umbrella", 2).execution_id] = StartRejected("SageMaker refused: ValidationException: x")
    say(service.record_status(event(request("umbrella", 1).execution_id, "Stopped")))
    world.pipelines.fail[request("globex", 7).execution_id] = [ConnectionError("unreachable")]
    say(service.submit(request("globex", 7)))
    world.clock.jump(600)
    report = DispatchReport()
    service.sweep("silver", report)
    service.recount("gold", report)
    say(report)
    say(service.accept(upload_body(world.registry, "globex", "data/churn/day2.csv")))
    say(service.record_rejected_upload(upload_body(world.registry, "acme", "elsewhere/x.csv"), "not under data/<model>/"))
    say(service.record_rejected_upload(upload_body(world.registry, "acme", "elsewhere/x.csv"), "again"))

    store, at = world.store, world.clock
    waiting = [request("umbrella", n) for n in (20, 21)]
    for req in waiting:
        say(store.queue_new(NewRequest(req, "bronze", "ml.m5.large", 1, at())))
    say(store.admit_new(NewRequest(request("umbrella", 22), "bronze", "ml.m5.large", 1, at()), 1, None))
    say(store.admit_new(NewRequest(waiting[0], "bronze", "ml.m5.large", 1, at()), 1, None))
    tags = store.next_tags("bronze", ["umbrella", "nobody"])
    say(tags)
    filings = [Filing("umbrella", r.execution_id, tags.get("umbrella", 0) + i + 1, r.requested_at, r.to_message())
               for i, r in enumerate(waiting)]
    say(store.file("bronze", filings, {"umbrella": 0}, {"umbrella": 9}, None))  # the tenant's tag moved meanwhile
    new_tags = {"umbrella": tags.get("umbrella", 0) + 3}
    say(store.file("bronze", filings, tags, new_tags, "not-the-lease-holder"))
    say(store.file("bronze", filings, tags, new_tags, None))
    say(store.file("bronze", [*filings, Filing("umbrella", "umbrella-churn-000000000000", 40, "x", "{}")], new_tags,
                   {"umbrella": 99}, None))
    head = store.backlog_head("bronze", 5)
    say(head)
    say(store.lease_tier("bronze", 1, "me", 1_000, 500))
    say(store.lease_tier("bronze", 1, "other", 1_200, 500))
    say(store.admit("bronze", 1, head[:1], at(), caps={}, clock=7, lease_owner="other"))
    say(store.admit("bronze", 2, head[:1], at(), caps={"umbrella": 0}, clock=7, lease_owner="me"))
    say(store.admit("bronze", 2, head[:1], at(), caps={}, clock=7, lease_owner="me"))
    say(store.admit("bronze", 3, head, at(), caps={}, clock=8, lease_owner=None))
    say(store.tier_counts("bronze", 1))
    store.end_lease("bronze", "me")
    say(store.lease_tier("bronze", 3, "other", 1_300, 500))
    say(store.claim_restart(waiting[0].execution_id, 1, "2000-01-01", at()))
    say(store.claim_restart(waiting[0].execution_id, 1, "2999-01-01", at()))
    say(store.claim_restart(waiting[0].execution_id, 1, "2999-01-01", at()))
    say(store.record_started(waiting[0].execution_id, "arn:w0", at()))
    say(store.record_started(waiting[0].execution_id, "arn:again", at()))
    ending = Ending(waiting[0].execution_id, "bronze", "umbrella", "churn", SUCCEEDED, at(), {"ended_at": "2026-01-02T00:00:00+00:00"},
                    {"tenant": "umbrella", "model": "churn", "execution_id": waiting[0].execution_id, "version": "2.0.0",
                     "ended_at": "2026-01-02T00:00:00+00:00"})
    say(store.end(dataclasses.replace(ending, tier="silver"), [], None))
    say(store.end(ending, [Rider(request("initech", 6).execution_id, at(), {"started_at": "x"})],
                  Handover(1, head[1], at(), cap=None, higher=("gold", "silver"))))
    say(store.end(ending, [], None))
    say(store.end(ending, [], None))
    say(store.end_without_slot(dataclasses.replace(ending, execution_id=waiting[1].execution_id, status=FAILED)))
    say(store.advance(waiting[1].execution_id, EXECUTING, at(), "sagemaker", {"pipeline_execution_arn": "arn:w1"}))
    say(store.record_trained({"tenant": "umbrella", "model": "churn", "execution_id": "older", "ended_at": "2025-01-01T00:00:00Z"}))
    say(store.fail_queued(waiting[1].execution_id, "cannot be read", at()))
    say(store.release("bronze", "umbrella", waiting[1].execution_id))
    say(store.old_slots("bronze", "2999-01-01"))
    say(store.recount("bronze", 1, lambda counted: True))
    say(store.recount("bronze", 1, lambda counted: False))
    say(store.execution("nobody-churn-000000000000"))
    say(store.rejected("nobody"))
    said += _silver_ends(world)
    return said


def _silver_ends(world: World) -> list[Any]:
    """The end's refusals one by one, in silver, where globex 7 and the upload of day 2 run (the tier is full)."""
    store, at, said = world.store, world.clock, []
    say = said.append
    running, waiting = request("globex", 7).execution_id, request("globex", 42)
    say(store.queue_new(NewRequest(waiting, "silver", "ml.m5.large", 1, at())))  # waits, not filed yet
    say(store.admit_new(NewRequest(request("globex", 40), "silver", "ml.m5.large", 1, at()), 3, None))  # someone waits
    stranger = BacklogEntry("000000000001#x#globex-churn-000000000001", "globex", "globex-churn-000000000001", 1, "{}")
    ending = Ending(running, "silver", "globex", "churn", SUCCEEDED, at(), {"ended_at": "2026-01-01T03:00:00+00:00"},
                    {"tenant": "globex", "model": "churn", "execution_id": running, "version": "1.0.7",
                     "ended_at": "2026-01-01T03:00:00+00:00"})
    say(store.end(ending, [], Handover(2, stranger, at())))  # a burst unfiled, and no such successor
    tags = store.next_tags("silver", ["globex"])
    say(store.file("silver", [Filing("globex", waiting.execution_id, tags.get("globex", 0) + 1, waiting.requested_at,
                                     waiting.to_message())], tags, {"globex": tags.get("globex", 0) + 2}, None))
    say(store.end(ending, [], Handover(2, stranger, at())))  # no such successor, alone
    say(store.record_trained({"tenant": "globex", "model": "churn", "execution_id": "newer", "ended_at": "2027-01-01T00:00:00Z"}))
    say(store.end(ending, [Rider(request("acme", 1).execution_id, at(), {})], None))  # an older training, a rider ended
    head = store.backlog_head("silver", 5)[0]
    say(store.end(ending, [], Handover(2, head, at(), cap=0)))  # the successor's tenant at its cap
    say(store.end(ending, [], Handover(2, head, at(), higher=("gold",))))
    say(store.end(dataclasses.replace(ending, trained=None), [], Handover(2, head, at())))
    say(store.queue_new(NewRequest(request("globex", 41), "silver", "ml.m5.large", 1, at())))
    say(store.recount("silver", 2, lambda counted: True))
    say(store.old_slots("silver", "2999-01-01"))
    return said


def snapshot(world: World, execution_ids: list[str]) -> dict[str, Any]:
    """What the store holds at the end."""
    store = world.store
    states = {}
    for tenant in TENANTS:
        for model in ("churn", "house-prices"):
            state = _state(store, tenant, model)
            if state:
                states[f"{tenant}/{model}"] = {k: sorted(v) if k == "active" else v for k, v in state.items()}
    return {"executions": {eid: store.execution(eid) for eid in execution_ids},
            "tiers": {tier: store.tier_state(tier, limit) for tier, limit in (("gold", 3), ("silver", 2), ("bronze", 1))},
            "backlogs": {tier: store.backlog_head(tier, 50) for tier in ("gold", "silver", "bronze")},
            "states": states, "account": _account(store)}


def _state(store: Any, tenant: str, model: str) -> dict[str, Any]:
    if isinstance(store, FakeBuildStore):
        return dict(store.states.get((tenant, model), {}))
    from mlops.aws.dynamo import from_attrs
    from mlops.aws.ledger import state_key

    item = store.ledger.client.get_item(TableName=store.ledger.table, Key=state_key(tenant, model), ConsistentRead=True).get("Item")
    return {k: v for k, v in from_attrs(item or {}).items() if k not in ("pk", "sk")}


def _account(store: Any) -> int:
    return store.account.get("inflight", 0) if isinstance(store, FakeBuildStore) else store.slots.account_inflight()


@pytest.fixture
def dynamo_store(aws: None, tmp_path: Path) -> Iterator[Any]:
    """The DynamoDB store on in-process moto, its tables as Terraform declares them."""
    del aws
    import boto3

    from mlops.aws.build_store import DynamoBuildStore

    undo = moto_patches.atomic()
    registry = write_registry(tmp_path / "moto-registry", TENANTS)
    names = registry.names()
    provision(boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("sagemaker"), names, list(registry.platform.tiers),
              subscriptions(registry))
    yield DynamoBuildStore.of(boto3.client("dynamodb"), names.ledger_table(), names.slots_table(), QUOTA)
    undo()


def test_the_fake_store_answers_and_holds_what_the_dynamodb_store_does(dynamo_store: Any, tmp_path: Path) -> None:
    registry = write_registry(tmp_path / "registry", TENANTS)
    fake = World(registry, store=FakeBuildStore(account_quota=QUOTA))
    real = World(registry, store=dynamo_store)
    said = {name: _plain(scenario(world)) for name, world in (("fake", fake), ("dynamodb", real))}
    for step, (expected, got) in enumerate(zip(said["dynamodb"], said["fake"])):
        assert got == expected, f"answer {step} differs"
    assert len(said["fake"]) == len(said["dynamodb"])
    execution_ids = sorted(fake.store.executions)
    assert execution_ids == sorted(record["execution_id"] for record in dynamo_store.ledger.scan())
    assert list(fake.store.refused.values()) == dynamo_store.ledger.rejected()
    expected, got = _plain(snapshot(real, execution_ids)), _plain(snapshot(fake, execution_ids))
    for part in expected:
        assert got[part] == expected[part], f"{part} differs"
    assert fake.pipelines.starts == real.pipelines.starts and fake.pipelines.duplicates == 0
    assert fake.queues.dead == real.queues.dead and fake.notifier.sent == real.notifier.sent
