"""The build store on DynamoDB (`mlops.build_ports.BuildStore`): the ledger and tier-slots tables, one intent per method.

Each intent is one conditional write or one `TransactWriteItems` over both tables, whose items
`mlops.aws.ledger` and `mlops.aws.slots` build. Which condition failed (the transaction's cancellation
reasons, with the ledger item as it was via `ALL_OLD`, so no extra read) becomes the intent's answer here:
nothing above this module knows an item, a key or a condition. The guarantees are these writes':

- a request is recorded once (`attribute_not_exists`), started only from QUEUED (`status = QUEUED`), and
  filed once (`filed_tag`), so exactly one caller ever wins the right to start it;
- a tier's counter update is conditional on its limit (and the account's quota), a tenant's on its cap;
- a status only moves forward (`status_rank <`), and the end, the slot given back or handed over, and the
  tenant x model state change in one transaction, so a slot is released once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlops.admission import TierState
from mlops.aws.dynamo import TxItem, TxOutcome, transact
from mlops.aws.ledger import Ledger, public
from mlops.aws.slots import Slots
from mlops.build_ports import (Admitted, BacklogEntry, Correction, Ended, Ending, Filed, Filing, Handover, NewRequest, Record,
                                Recorded, Rider, Slot)
from mlops.requests import BuildRequest
from mlops.statuses import EXECUTING, FAILED, QUEUED, STARTING


class DynamoBuildStore:  # pylint: disable=too-many-public-methods  # one method per intent (mlops.build_ports.BuildStore)
    """The ledger and the tier slots behind one boto3 DynamoDB client."""

    def __init__(self, ledger: Ledger, slots: Slots):
        self.ledger = ledger
        self.slots = slots

    @classmethod
    def of(cls, client: Any, ledger_table: str, slots_table: str, account_quota: int | None = None) -> "DynamoBuildStore":
        """The store of two tables reached with one client (a transaction spans both)."""
        return cls(Ledger(client, ledger_table), Slots(client, slots_table, account_quota))

    def _transact(self, items: list[TxItem]) -> TxOutcome:
        return transact(self.slots.client, items)

    @staticmethod
    def _old(outcome: TxOutcome, name: str) -> Record | None:
        """The ledger item a failed write found (without its keys), if it asked for it."""
        old = outcome.old.get(name)
        return public(old) if old else None

    # -- the trigger ------------------------------------------------------------------------------------
    def _new(self, new: NewRequest, status: str) -> list[TxItem]:
        return [self.ledger.new_item(new.request, new.tier, new.instance_type, new.instance_count, status, new.at),
                self.ledger.state_request_item(new.request)]

    def admit_new(self, new: NewRequest, limit: int, tenant_cap: int | None) -> Recorded:
        """The request STARTING with a slot, in one transaction conditional on the request being new and the tier
        having room with nobody waiting."""
        request = new.request
        outcome = self._transact([*self._new(new, STARTING), *self.slots.admit_items(
            new.tier, limit, request.tenant, request.execution_id, new.at, tenant_cap=tenant_cap)])
        if outcome.ok:
            return Recorded("admitted")
        if "ledger" in outcome.failed:
            return Recorded("duplicate", self._old(outcome, "ledger"))
        return Recorded("no_room")

    def queue_new(self, new: NewRequest) -> Recorded:
        """The request QUEUED, counted as waiting and not yet filed, in one transaction conditional on it being new."""
        outcome = self._transact([*self._new(new, QUEUED), *self.slots.enqueue_items(new.tier, new.request.tenant)])
        if outcome.ok:
            return Recorded("queued")
        if "ledger" in outcome.failed:
            return Recorded("duplicate", self._old(outcome, "ledger"))
        return Recorded("conflict" if outcome.conflict else "cancelled")

    def record_started(self, execution_id: str, arn: str, at: str) -> bool:
        """STARTING -> EXECUTING with the ARN, unless a status event got there first."""
        return self.ledger.record_started(execution_id, arn, at)

    def fail_start(self, request: BuildRequest, tier: str, reason: str, at: str) -> None:
        """FAILED, no longer active, the slot given back: one transaction."""
        eid = request.execution_id
        self._transact([self.ledger.status_item(eid, FAILED, at, "dispatcher", {"failure_reason": reason, "ended_at": at}),
                        self.ledger.state_end_item(request.tenant, request.model, eid),
                        *self.slots.release_items(tier, request.tenant, eid)])

    def record_upload(self, request: BuildRequest) -> bool:
        """The tenant x model's newest data, newer-wins."""
        return self.ledger.record_upload(request)

    def record_rejected(self, upload: dict[str, Any], reason: str, at: str) -> Record | None:
        """A refused upload's record, once."""
        return self.ledger.record_rejected(upload, reason, at)

    def rejected(self, rejection_id: str) -> Record | None:
        """A refused upload's record."""
        return self.ledger.get_rejected(rejection_id)

    def mark_rejected_notified(self, rejection_id: str) -> None:
        """A refused upload was notified."""
        self.ledger.set_rejected_notified(rejection_id)

    # -- the dispatcher ---------------------------------------------------------------------------------
    def lease_tier(self, tier: str, limit: int, owner: str, now_ms: int, lease_ms: int) -> TierState | None:
        """One conditional update of the tier's counter that also reads it."""
        return self.slots.lease(tier, limit, owner, now_ms, lease_ms)

    def end_lease(self, tier: str, owner: str) -> None:
        """The lease back, if still `owner`'s."""
        self.slots.end_lease(tier, owner)

    def tier_counts(self, tier: str, limit: int) -> TierState:
        """The tier's counter (one small read)."""
        return self.slots.read_counter(tier, limit)

    def next_tags(self, tier: str, tenants: list[str]) -> dict[str, int]:
        """The tenants' next start tags (BatchGetItem)."""
        return self.slots.next_tags(tier, tenants)

    def file(self, tier: str, filings: list[Filing], old_tags: dict[str, int], new_tags: dict[str, int],
             lease_owner: str | None) -> Filed:
        """One transaction: each request's ledger mark (only once, only while QUEUED), its backlog item, the tenants'
        next tags (conditional on the values read) and the counter's `unfiled` (only while the lease is ours)."""
        items = [self.ledger.file_item(f.execution_id, f.tag) for f in filings]
        items += self.slots.file_items(tier, [(f.tenant, f.tag, f.requested_at, f.execution_id, f.body) for f in filings],
                                       old_tags, new_tags, lease_owner)
        outcome = self._transact(items)
        if outcome.ok:
            return Filed(True)
        gone = {f.execution_id for f in filings if f"ledger:{f.execution_id}" in outcome.failed}
        unknown = {eid for eid in gone if f"ledger:{eid}" not in outcome.old}
        return Filed(False, unknown=frozenset(unknown), copies=frozenset(gone - unknown))

    def backlog_head(self, tier: str, count: int) -> list[BacklogEntry]:
        """One strongly consistent query of the backlog, in start-tag order (the execution id ends the sort key)."""
        return [BacklogEntry(position=str(item["sk"]), tenant=str(item.get("tenant", "")),
                             execution_id=str(item["sk"]).rsplit("#", 1)[-1], tag=int(item.get("tag", 0)),
                             body=str(item.get("request", "")))
                for item in self.slots.backlog_head(tier, count)]

    def admit(self, tier: str, limit: int, entries: list[BacklogEntry], at: str, *, caps: dict[str, int],
              clock: int, lease_owner: str | None) -> Admitted:
        """One transaction: each request QUEUED -> STARTING, the counter (`inflight <= limit - k`, the clock, the
        lease), one update per tenant (its cap), a slot item each, the entries out of the backlog."""
        items = [TxItem(f"ledger:{e.execution_id}", self.ledger.start_item(e.execution_id, at).op) for e in entries]
        items += self.slots.admit_many_items(tier, limit, [(e.tenant, e.execution_id, e.position) for e in entries], at,
                                             caps=caps, clock=clock, lease_owner=lease_owner)
        outcome = self._transact(items)
        if outcome.ok:
            return Admitted(True)
        if outcome.conflict or outcome.failed & {"counter", "account"} or not outcome.failed:
            return Admitted(False, refused=True)
        gone = {e.execution_id: self._old(outcome, f"ledger:{e.execution_id}") for e in entries
                if {f"ledger:{e.execution_id}", f"backlog:{e.execution_id}"} & outcome.failed}
        capped = {e.tenant for e in entries if e.execution_id not in gone and f"tenant:{e.tenant}" in outcome.failed}
        return Admitted(False, gone=gone, capped=frozenset(capped))

    def take_out(self, tier: str, entry: BacklogEntry) -> None:
        """Out of the backlog and the waiting counts (a count already at zero: only out of the backlog)."""
        outcome = self._transact(self.slots.withdraw_items(tier, entry.position, entry.tenant))
        if not outcome.ok and "unfile" not in outcome.failed:
            self._transact([self.slots.unfile_item(tier, entry.position)])

    def fail_queued(self, execution_id: str, reason: str, at: str) -> bool:
        """A strongly consistent read; if QUEUED, the status (rank-guarded) and the tenant x model's end."""
        recorded = self.ledger.get(execution_id)
        if recorded is None or recorded["status"] != QUEUED:
            return False
        self.ledger.write(self.ledger.status_item(execution_id, FAILED, at, "dispatcher", {"failure_reason": reason, "ended_at": at}))
        self.ledger.write(self.ledger.state_end_item(recorded["tenant"], recorded["model"], execution_id))
        return True

    def old_slots(self, tier: str, admitted_before: str) -> list[Slot]:
        """One query of the tier's slot items, filtered by admission time."""
        return [Slot(str(item["execution_id"]), str(item["tenant"])) for item in self.slots.old_slots(tier, admitted_before)]

    def release(self, tier: str, tenant: str, execution_id: str) -> bool:
        """The release transaction on its own (the slot item must exist: released once)."""
        return self.slots.release(tier, tenant, execution_id)

    def claim_restart(self, execution_id: str, attempt: int, stale_before: str, at: str) -> bool:
        """One conditional update (`start_attempt` and `starting_at` compared)."""
        return self.ledger.claim_restart(execution_id, attempt, stale_before, at)

    def recount(self, tier: str, limit: int, unfiled_drifted: Callable[[int], bool]) -> list[Correction]:
        """The tier with its slots (one query), its backlog's tenants, one conditional update per drifted item."""
        return [Correction(tenant, count, was, now)
                for (tenant, count), (was, now) in self.slots.recount(tier, limit, unfiled_drifted).items()]

    # -- the status path --------------------------------------------------------------------------------
    def advance(self, execution_id: str, status: str, at: str, source: str, fields: dict[str, Any]) -> bool:
        """One rank-guarded update."""
        return self.ledger.write(self.ledger.status_item(execution_id, status, at, source, fields))

    def end(self, ending: Ending, riders: list[Rider], handover: Handover | None) -> Ended:
        """One transaction: the status (rank-guarded), the tenant x model state (with the training: newer-wins),
        the riders' `Executing` (each rank-guarded), and the slot released or handed to the successor."""
        eid, tier, tenant = ending.execution_id, ending.tier, ending.tenant
        items = [self.ledger.status_item(eid, ending.status, ending.at, "sagemaker", ending.fields),
                 self.ledger.state_end_item(tenant, ending.model, eid, ending.trained)]
        items += [TxItem(f"exec:{r.execution_id}", self.ledger.status_item(r.execution_id, EXECUTING, r.at, "sagemaker", r.fields).op)
                  for r in riders]
        own: set[str] = set()
        if handover is None:
            items += self.slots.release_items(tier, tenant, eid)
        else:
            after = handover.successor
            items.append(TxItem(f"ledger:{after.execution_id}", self.ledger.start_item(after.execution_id, handover.at).op))
            items += self.slots.handover_items(tier, handover.limit, (tenant, eid),
                                               (after.tenant, after.execution_id, after.position, after.tag), handover.at,
                                               cap=handover.cap, higher=handover.higher)
            own = {*(f"{kind}:{after.execution_id}" for kind in ("ledger", "backlog", "slot")), f"tenant:{after.tenant}"}
        outcome = self._transact(items)
        if outcome.ok:
            return Ended(True)
        failed = outcome.failed
        others = {name for name in failed - {"ledger", "slot", "state"} if not name.startswith("exec:")}
        return Ended(False, conflict=outcome.conflict, status_refused="ledger" in failed, existing=self._old(outcome, "ledger"),
                     no_slot="slot" in failed, rider_refused=any(name.startswith("exec:") for name in failed),
                     newer_training="state" in failed, successor_refused=bool(others & own), tier_refused=bool(others - own))

    def end_without_slot(self, ending: Ending) -> None:
        """The state first (idempotent; without the training when a newer one is recorded), then the status."""
        eid = ending.execution_id
        if not self.ledger.write(self.ledger.state_end_item(ending.tenant, ending.model, eid, ending.trained)) and ending.trained:
            self.ledger.write(self.ledger.state_end_item(ending.tenant, ending.model, eid))
        self.ledger.write(self.ledger.status_item(eid, ending.status, ending.at, "sagemaker", ending.fields))

    def record_trained(self, record: Record) -> bool:
        """Newer-wins update of the tenant x model state."""
        return self.ledger.record_trained(record)

    # -- records ----------------------------------------------------------------------------------------
    def execution(self, execution_id: str) -> Record | None:
        """A strongly consistent read."""
        return self.ledger.get(execution_id)

    def mark_notified(self, execution_id: str) -> None:
        """`notified` set on the execution."""
        self.ledger.set_fields(execution_id, {"notified": True})

    def tier_state(self, tier: str, limit: int) -> TierState:
        """One strongly consistent query of the tier."""
        return self.slots.read_tier(tier, limit)
