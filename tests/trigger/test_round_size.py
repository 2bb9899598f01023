"""A round admits no more than one DynamoDB transaction can hold; more free slots are filled by later runs."""

from __future__ import annotations

from typing import Any

import pytest
from trigger_helpers import request

import mlops.builds.dispatcher
from mlops.aws.slots import Slots


def test_the_largest_round_fits_in_one_transaction() -> None:
    from mlops.aws.ledger import Ledger

    k = mlops.builds.dispatcher.MAX_ADMISSIONS_PER_ROUND
    ledger, slots = Ledger(None, "ledger"), Slots(None, "slots", account_quota=500)
    admits = [(f"tenant{i}", f"tenant{i}-churn-{i:012x}", f"{i:012d}#t#e{i}") for i in range(k)]  # all different tenants
    items = [ledger.start_item(eid, "now") for _, eid, _ in admits]
    items += slots.admit_many_items("gold", 1000, admits, "now", caps={t: 5 for t, _, _ in admits}, clock=k, lease_owner="me")
    assert len(items) <= 100
    assert len(items) == 3 * k + k + 2  # ledger + slot + backlog per admission, one per tenant, counter, account


def test_more_free_slots_than_a_round_holds_are_filled_by_the_next_runs(stack_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mlops.builds.dispatcher, "MAX_ADMISSIONS_PER_ROUND", 2)
    stack = stack_factory({"alpha": "gold", "bravo": "gold", "charlie": "gold"})
    service = stack.service(direct_start=False)
    for tenant in ("alpha", "bravo", "charlie"):
        assert service.submit(request(tenant, 1)).result == "queued"
    assert service.dispatch().admitted == {"gold": 2}
    assert service.dispatch().admitted == {"gold": 1}
    state = service.slots.read_tier("gold", 3)
    assert (state.inflight, state.waiting) == (3, 0)
