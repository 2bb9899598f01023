"""In-memory stand-ins of the build use cases' ports: the build store, the queues, the pipeline start, the notifier.

`FakeBuildStore` keeps what the DynamoDB store keeps (execution records with their history, the tenant x
model state, each tier's counter, tenant counts, slots and fair backlog, the account counter) and applies
each intent as the DynamoDB store's transaction does: every condition is checked first, then everything is
written or nothing. tests/builds/test_store_contract.py runs the same scenario against it and against the
DynamoDB store on moto and compares the answers and what both hold, so it cannot drift.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from mlops.admission import TenantState, TierState
from mlops.aws.ledger import trained_values, utc_text
from mlops.build_ports import (Admitted, BacklogEntry, Correction, Ended, Ending, Filed, Filing, Handover, Message, NewRequest,
                                Record, Recorded, Rider, Slot)
from mlops.requests import BuildRequest
from mlops.statuses import EXECUTING, FAILED, QUEUED, RANK, REJECTED, STARTING


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    """What a store keeps of a record: no None values (DynamoDB keeps none)."""
    return {k: (_drop_none(v) if isinstance(v, dict) else v) for k, v in values.items() if v is not None}


class _Tx:
    """One all-or-nothing write: named checks first, then the writes, only if every check passed."""

    def __init__(self) -> None:
        self.failed: set[str] = set()
        self.writes: list[Callable[[], None]] = []
        self.names: set[str] = set()

    def check(self, name: str, ok: bool) -> None:
        """A condition of the write named `name` (one write per item: DynamoDB refuses a transaction that names an
        item twice)."""
        if name in self.names:
            raise AssertionError(f"one transaction writes {name} twice: DynamoDB refuses it (ValidationException)")
        self.names.add(name)
        if not ok:
            self.failed.add(name)

    def write(self, apply: Callable[[], None]) -> None:
        """A change made only if every check passes."""
        self.writes.append(apply)

    def commit(self) -> bool:
        """Apply the writes if nothing failed; whether they were applied."""
        if self.failed:
            return False
        for apply in self.writes:
            apply()
        return True


@dataclass
class FakeBuildStore:  # pylint: disable=too-many-instance-attributes,too-many-public-methods  # one method per intent
    """The ledger and the tier slots in memory (`mlops.build_ports.BuildStore`)."""

    account_quota: int | None = None
    executions: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (tenant, model) -> the retraining check's state
    states: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    counters: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (tier, tenant) -> running, waiting, next_tag
    tenant_counts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    #: (tier, execution id) -> tenant, admitted_at
    slots: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    #: tier -> position -> entry
    backlogs: dict[str, dict[str, BacklogEntry]] = field(default_factory=dict)
    account: dict[str, int] = field(default_factory=dict)
    #: the next this many transactional writes are cancelled by a conflict (nothing written)
    conflicts: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # -- the building blocks, each one DynamoDB item's condition and change ----------------------------------
    def _conflicted(self) -> bool:
        if self.conflicts > 0:
            self.conflicts -= 1
            return True
        return False

    def _counter(self, tier: str) -> dict[str, Any]:
        return self.counters.setdefault(tier, {})

    def _tenant(self, tier: str, tenant: str) -> dict[str, int]:
        return self.tenant_counts.setdefault((tier, tenant), {})

    @staticmethod
    def _add(item: dict[str, Any], name: str, delta: int) -> None:
        item[name] = item.get(name, 0) + delta

    def _state(self, tenant: str, model: str) -> dict[str, Any]:
        return self.states.setdefault((tenant, model), {})

    def _status_check(self, tx: _Tx, name: str, execution_id: str, status: str, at: str, source: str,
                      fields: dict[str, Any]) -> None:
        """`Ledger.status_item`: only to a later status of a recorded execution."""
        record = self.executions.get(execution_id)
        tx.check(name, record is not None and record["status_rank"] < RANK[status])

        def apply() -> None:
            entry = {"status": status, "at": at, "source": source}
            if fields.get("failure_reason"):
                entry["detail"] = str(fields["failure_reason"])[:500]
            self.executions[execution_id] |= _drop_none(dict(fields)) | {"status": status, "status_rank": RANK[status],
                                                                        "status_time": at}
            self.executions[execution_id]["history"].append(entry)
        tx.write(apply)

    def _start_check(self, tx: _Tx, name: str, execution_id: str, at: str, source: str) -> None:
        """`Ledger.start_item`: QUEUED -> STARTING, only from QUEUED."""
        record = self.executions.get(execution_id)
        tx.check(name, record is not None and record["status"] == QUEUED)

        def apply() -> None:
            self.executions[execution_id] |= {"status": STARTING, "status_rank": RANK[STARTING], "status_time": at,
                                              "starting_at": at, "start_attempt": 1}
            self.executions[execution_id]["history"].append({"status": STARTING, "at": at, "source": source})
        tx.write(apply)

    def _state_end(self, tx: _Tx, tenant: str, model: str, execution_id: str, trained: dict[str, Any] | None) -> None:
        """`Ledger.state_end_item`: no longer active; with a training, the newest unless a newer one is recorded."""
        values = trained_values(trained) if trained else None
        if values:
            recorded = self.states.get((tenant, model), {}).get("trained_ended_at")
            tx.check("state", recorded is None or recorded < values["trained_ended_at"])

        def apply() -> None:
            state = self._state(tenant, model)
            state.update(values or {})
            active = set(state.get("active", ())) - {execution_id}
            if active:
                state["active"] = active
            else:
                state.pop("active", None)
        tx.write(apply)

    def _release(self, tx: _Tx, tier: str, tenant: str, execution_id: str) -> None:
        """`Slots.release_items`: the slot must exist."""
        tx.check("slot", (tier, execution_id) in self.slots)

        def apply() -> None:
            del self.slots[(tier, execution_id)]
            self._add(self._counter(tier), "inflight", -1)
            self._add(self._tenant(tier, tenant), "running", -1)
            if self.account_quota is not None:
                self._add(self.account, "inflight", -1)
        tx.write(apply)

    def _take_slot(self, tx: _Tx, name: str, tier: str, tenant: str, execution_id: str, at: str) -> None:
        tx.check(name, (tier, execution_id) not in self.slots)
        tx.write(lambda: self.slots.__setitem__((tier, execution_id), {"tenant": tenant, "admitted_at": at}))

    def _new_record(self, new: NewRequest, status: str) -> dict[str, Any]:
        request = new.request
        record = _drop_none({
            "execution_id": request.execution_id, "request_digest": request.digest, "tenant": request.tenant,
            "model": request.model, "tier": new.tier, "source": request.source, "version": request.version,
            "git_commit": request.git_commit, "image_uri": request.image_uri, "image_digest": request.image_digest,
            "data_uri": request.data_uri, "reason": request.reason, "parameters": dict(request.parameters),
            "links": dict(request.links), "requested_at": request.requested_at, "instance_type": new.instance_type,
            "instance_count": new.instance_count, "status": status, "status_rank": RANK[status], "status_time": new.at,
            "history": [{"status": QUEUED, "at": request.requested_at, "source": request.source}]
            + ([{"status": status, "at": new.at, "source": "trigger"}] if status != QUEUED else []),
            "request": request.to_message()})
        if status == STARTING:
            record |= {"starting_at": new.at, "start_attempt": 1}
        return record

    def _record_new(self, tx: _Tx, new: NewRequest, status: str) -> None:
        request = new.request
        tx.check("ledger", request.execution_id not in self.executions)

        def apply() -> None:
            self.executions[request.execution_id] = self._new_record(new, status)
            state = self._state(request.tenant, request.model)
            state |= {"tenant": request.tenant, "model": request.model}
            state["active"] = set(state.get("active", ())) | {request.execution_id}
        tx.write(apply)

    def _existing(self, execution_id: str) -> Record | None:
        record = self.executions.get(execution_id)
        return copy.deepcopy(record) if record is not None else None

    # -- the trigger --------------------------------------------------------------------------------------
    def admit_new(self, new: NewRequest, limit: int, tenant_cap: int | None) -> Recorded:
        """As one transaction: the record STARTING, the counter (room, nobody waiting), the tenant (cap), the slot."""
        with self.lock:
            eid, tier, tenant = new.request.execution_id, new.tier, new.request.tenant
            if self._conflicted():
                return Recorded("no_room")
            tx = _Tx()
            self._record_new(tx, new, STARTING)
            counter = self.counters.get(tier, {})
            tx.check("counter", ("inflight" not in counter or counter["inflight"] < limit) and counter.get("waiting", 0) <= 0)
            running = self.tenant_counts.get((tier, tenant), {}).get("running")
            tx.check("tenant", tenant_cap is None or running is None or running < tenant_cap)
            self._take_slot(tx, "slot", tier, tenant, eid, new.at)
            if self.account_quota is not None:
                tx.check("account", self.account.get("inflight", 0) < self.account_quota)
                tx.write(lambda: self._add(self.account, "inflight", 1))
            tx.write(lambda: (self._add(self._counter(tier), "inflight", 1), self._counter(tier).__setitem__("limit", limit)))
            tx.write(lambda: self._add(self._tenant(tier, tenant), "running", 1))
            if tx.commit():
                return Recorded("admitted")
            if "ledger" in tx.failed:
                return Recorded("duplicate", self._existing(eid))
            return Recorded("no_room")

    def queue_new(self, new: NewRequest) -> Recorded:
        """As one transaction: the record QUEUED, the tenant's and the tier's waiting count, the tier's unfiled."""
        with self.lock:
            if self._conflicted():
                return Recorded("conflict")
            tx = _Tx()
            self._record_new(tx, new, QUEUED)
            tx.write(lambda: self._add(self._tenant(new.tier, new.request.tenant), "waiting", 1))
            tx.write(lambda: (self._add(self._counter(new.tier), "waiting", 1), self._add(self._counter(new.tier), "unfiled", 1)))
            if tx.commit():
                return Recorded("queued")
            return Recorded("duplicate", self._existing(new.request.execution_id))

    def record_started(self, execution_id: str, arn: str, at: str) -> bool:
        """STARTING -> EXECUTING with the ARN; else only the ARN, if missing."""
        with self.lock:
            tx = _Tx()
            self._status_check(tx, "ledger", execution_id, EXECUTING, at, "dispatcher",
                               {"pipeline_execution_arn": arn, "started_at": at})
            if tx.commit():
                return True
            if execution_id in self.executions:
                self.executions[execution_id].setdefault("pipeline_execution_arn", arn)
            return False

    def fail_start(self, request: BuildRequest, tier: str, reason: str, at: str) -> None:
        """As one transaction: FAILED, the tenant x model's end, the release."""
        with self.lock:
            eid = request.execution_id
            tx = _Tx()
            self._status_check(tx, "ledger", eid, FAILED, at, "dispatcher", {"failure_reason": reason, "ended_at": at})
            self._state_end(tx, request.tenant, request.model, eid, None)
            self._release(tx, tier, request.tenant, eid)
            tx.commit()

    def record_upload(self, request: BuildRequest) -> bool:
        """Newer-wins on the state's `uploaded_at`."""
        with self.lock:
            at = utc_text(request.requested_at) or request.requested_at
            state = self.states.get((request.tenant, request.model), {})
            if state.get("uploaded_at") is not None and not state["uploaded_at"] < at:
                return False
            self._state(request.tenant, request.model).update(_drop_none(
                {"tenant": request.tenant, "model": request.model, "uploaded_at": at, "upload_uri": request.data_uri}))
            return True

    def record_rejected(self, upload: dict[str, Any], reason: str, at: str) -> Record | None:
        """Once per upload id."""
        with self.lock:
            if upload["id"] in self.refused:
                return None
            record = {"execution_id": upload["id"], "tenant": upload["tenant"], "model": upload.get("model"), "source": "upload",
                      "status": REJECTED, "status_time": at, "requested_at": utc_text(upload["at"]) or at,
                      "data_uri": upload["data_uri"], "reason": f"upload {upload['data_uri']}", "failure_reason": reason[:1000],
                      "history": [{"status": REJECTED, "at": at, "source": "trigger", "detail": reason[:500]}]}
            self.refused[upload["id"]] = _drop_none(copy.deepcopy(record))
            return record

    def rejected(self, rejection_id: str) -> Record | None:
        """A refused upload's record."""
        with self.lock:
            record = self.refused.get(rejection_id)
            return copy.deepcopy(record) if record is not None else None

    def mark_rejected_notified(self, rejection_id: str) -> None:
        """`notified` set (the record is made if missing, as an unconditional update makes it)."""
        with self.lock:
            self.refused.setdefault(rejection_id, {})["notified"] = True

    # -- the dispatcher -----------------------------------------------------------------------------------
    def _counts(self, tier: str, limit: int) -> TierState:
        counter = self.counters.get(tier, {})
        return TierState(tier=tier, limit=limit, inflight=counter.get("inflight", 0), waiting=counter.get("waiting", 0),
                         clock=counter.get("vclock", 0), unfiled=counter.get("unfiled", 0))

    def lease_tier(self, tier: str, limit: int, owner: str, now_ms: int, lease_ms: int) -> TierState | None:
        """Work to do (room and someone waiting, or something unfiled) and no lease held."""
        with self.lock:
            counter = self.counters.get(tier, {})
            work = (counter.get("inflight", 0) < limit if "inflight" in counter else True) and counter.get("waiting", -1) > 0
            work = work or counter.get("unfiled", -1) > 0
            if not work or counter.get("lease_until", -1) >= now_ms:
                return None
            self._counter(tier).update({"lease_owner": owner, "lease_until": now_ms + lease_ms})
            return self._counts(tier, limit)

    def end_lease(self, tier: str, owner: str) -> None:
        """Only if the lease is `owner`'s."""
        with self.lock:
            counter = self.counters.get(tier, {})
            if counter.get("lease_owner") == owner:
                counter["lease_until"] = 0

    def tier_counts(self, tier: str, limit: int) -> TierState:
        """The counter's counts."""
        with self.lock:
            return self._counts(tier, limit)

    def next_tags(self, tier: str, tenants: list[str]) -> dict[str, int]:
        """The tenants that have counts (the others are 0 to the caller)."""
        with self.lock:
            return {t: int(self.tenant_counts[(tier, t)].get("next_tag", 0)) for t in tenants if (tier, t) in self.tenant_counts}

    def file(self, tier: str, filings: list[Filing], old_tags: dict[str, int], new_tags: dict[str, int],
             lease_owner: str | None) -> Filed:
        """As one transaction: the records' filed marks, the backlog entries, the next tags, the counter."""
        with self.lock:
            if self._conflicted():
                return Filed(False)
            tx = _Tx()
            backlog = self.backlogs.setdefault(tier, {})
            for f in filings:
                record = self.executions.get(f.execution_id)
                tx.check(f"ledger:{f.execution_id}", record is not None and record["status"] == QUEUED and "filed_tag" not in record)
                position = f"{f.tag:012d}#{f.requested_at}#{f.execution_id}"
                tx.check(f"backlog:{f.execution_id}", position not in backlog)
                entry = BacklogEntry(position, f.tenant, f.execution_id, f.tag, f.body)
                tx.write(lambda f=f, entry=entry: (self.executions[f.execution_id].__setitem__("filed_tag", f.tag),
                                                   backlog.__setitem__(entry.position, entry)))
            for tenant, tag in new_tags.items():
                current = self.tenant_counts.get((tier, tenant), {}).get("next_tag")
                old = old_tags.get(tenant, 0)
                tx.check(f"tenant:{tenant}", current == old or (old == 0 and current is None))
                tx.write(lambda tenant=tenant, tag=tag: self._tenant(tier, tenant).__setitem__("next_tag", tag))
            if lease_owner is not None:
                tx.check("counter", self.counters.get(tier, {}).get("lease_owner") == lease_owner)
            tx.write(lambda: self._add(self._counter(tier), "unfiled", -len(filings)))
            if tx.commit():
                return Filed(True)
            gone = {f.execution_id for f in filings if f"ledger:{f.execution_id}" in tx.failed}
            unknown = {eid for eid in gone if eid not in self.executions}
            return Filed(False, unknown=frozenset(unknown), copies=frozenset(gone - unknown))

    def backlog_head(self, tier: str, count: int) -> list[BacklogEntry]:
        """In position order: start tag, then request time."""
        with self.lock:
            backlog = self.backlogs.get(tier, {})
            return [backlog[p] for p in sorted(backlog)[:count]]

    def admit(self, tier: str, limit: int, entries: list[BacklogEntry], at: str, *, caps: dict[str, int],
              clock: int, lease_owner: str | None) -> Admitted:
        """As one transaction: the records STARTING, the counter, the tenants, the slots, out of the backlog."""
        with self.lock:
            if self._conflicted():
                return Admitted(False, refused=True)
            k, tx = len(entries), _Tx()
            counter = self.counters.get(tier, {})
            tx.check("counter", ("inflight" not in counter or counter["inflight"] <= limit - k)
                     and (lease_owner is None or counter.get("lease_owner") == lease_owner))

            def move_counter() -> None:
                counter = self._counter(tier)
                self._add(counter, "inflight", k)
                self._add(counter, "waiting", -k)
                counter.update({"limit": limit, "vclock": clock})
                if lease_owner is not None:
                    counter["lease_until"] = 0
            tx.write(move_counter)
            per_tenant: dict[str, int] = {}
            for e in entries:
                per_tenant[e.tenant] = per_tenant.get(e.tenant, 0) + 1
            for tenant, n in per_tenant.items():
                running = self.tenant_counts.get((tier, tenant), {}).get("running")
                cap = caps.get(tenant)
                tx.check(f"tenant:{tenant}", cap is None or running is None or running <= cap - n)
                tx.write(lambda tenant=tenant, n=n: (self._add(self._tenant(tier, tenant), "running", n),
                                                     self._add(self._tenant(tier, tenant), "waiting", -n)))
            backlog = self.backlogs.setdefault(tier, {})
            for e in entries:
                self._start_check(tx, f"ledger:{e.execution_id}", e.execution_id, at, "dispatcher")
                self._take_slot(tx, f"slot:{e.execution_id}", tier, e.tenant, e.execution_id, at)
                tx.check(f"backlog:{e.execution_id}", e.position in backlog)
                tx.write(lambda e=e: backlog.pop(e.position))
            if self.account_quota is not None:
                tx.check("account", self.account.get("inflight", 0) <= self.account_quota - k)
                tx.write(lambda: self._add(self.account, "inflight", k))
            if tx.commit():
                return Admitted(True)
            if tx.failed & {"counter", "account"}:
                return Admitted(False, refused=True)
            gone = {e.execution_id: self._existing(e.execution_id) for e in entries
                    if {f"ledger:{e.execution_id}", f"backlog:{e.execution_id}"} & tx.failed}
            capped = {e.tenant for e in entries if e.execution_id not in gone and f"tenant:{e.tenant}" in tx.failed}
            return Admitted(False, gone=gone, capped=frozenset(capped))

    def take_out(self, tier: str, entry: BacklogEntry) -> None:
        """Out of the backlog, and out of the waiting counts while they are above zero."""
        with self.lock:
            backlog = self.backlogs.setdefault(tier, {})
            tx = _Tx()
            tx.check("unfile", entry.position in backlog)
            tx.check("counter", self.counters.get(tier, {}).get("waiting", 0) > 0)
            tx.check("tenant", self.tenant_counts.get((tier, entry.tenant), {}).get("waiting", 0) > 0)
            tx.write(lambda: (backlog.pop(entry.position), self._add(self._counter(tier), "waiting", -1),
                              self._add(self._tenant(tier, entry.tenant), "waiting", -1)))
            if not tx.commit() and "unfile" not in tx.failed:
                backlog.pop(entry.position)

    def fail_queued(self, execution_id: str, reason: str, at: str) -> bool:
        """FAILED and no longer active, if QUEUED."""
        with self.lock:
            record = self.executions.get(execution_id)
            if record is None or record["status"] != QUEUED:
                return False
            tx = _Tx()
            self._status_check(tx, "ledger", execution_id, FAILED, at, "dispatcher", {"failure_reason": reason, "ended_at": at})
            tx.commit()
            tx = _Tx()
            self._state_end(tx, record["tenant"], record["model"], execution_id, None)
            tx.commit()
            return True

    def old_slots(self, tier: str, admitted_before: str) -> list[Slot]:
        """Slots taken before the time, in execution id order."""
        with self.lock:
            return [Slot(eid, slot["tenant"]) for (t, eid), slot in sorted(self.slots.items())
                    if t == tier and slot["admitted_at"] < admitted_before]

    def release(self, tier: str, tenant: str, execution_id: str) -> bool:
        """The release on its own."""
        with self.lock:
            tx = _Tx()
            self._release(tx, tier, tenant, execution_id)
            return tx.commit()

    def claim_restart(self, execution_id: str, attempt: int, stale_before: str, at: str) -> bool:
        """STARTING at `attempt` since before `stale_before`: the next attempt is the caller's."""
        with self.lock:
            record = self.executions.get(execution_id)
            if record is None or record["status"] != STARTING or record.get("start_attempt") != attempt \
                    or not record.get("starting_at", "") < stale_before:
                return False
            record |= {"start_attempt": attempt + 1, "starting_at": at}
            return True

    def recount(self, tier: str, limit: int, unfiled_drifted: Callable[[int], bool]) -> list[Correction]:
        """Counts from the slots and the backlog, the tier's first, then each tenant's."""
        with self.lock:
            state = self._tier(tier, limit)
            slots: dict[str, int] = {}
            for tenant in state.slot_tenants.values():
                slots[tenant] = slots.get(tenant, 0) + 1
            filed: dict[str, int] = {}
            for entry in self.backlogs.get(tier, {}).values():
                filed[entry.tenant] = filed.get(entry.tenant, 0) + 1
            unfiled = 0 if unfiled_drifted(state.unfiled) else max(0, state.unfiled)
            fixes = self._correct(tier, None, {"inflight": state.inflight, "waiting": state.waiting, "unfiled": state.unfiled},
                                  {"inflight": sum(slots.values()), "waiting": sum(filed.values()) + unfiled, "unfiled": unfiled})
            for tenant in sorted(set(state.tenants) | set(slots) | set(filed)):
                known = state.tenants.get(tenant, TenantState())
                was, now = {"running": known.running}, {"running": slots.get(tenant, 0)}
                if unfiled == 0:
                    was["waiting"], now["waiting"] = known.waiting, filed.get(tenant, 0)
                fixes += self._correct(tier, tenant, was, now)
            return fixes

    def _correct(self, tier: str, tenant: str | None, was: dict[str, int], now: dict[str, int]) -> list[Correction]:
        changed = {name: value for name, value in now.items() if was.get(name, 0) != value}
        if changed:
            (self._counter(tier) if tenant is None else self._tenant(tier, tenant)).update(changed)
        return [Correction(tenant, name, was.get(name, 0), value) for name, value in changed.items()]

    # -- the status path ----------------------------------------------------------------------------------
    def advance(self, execution_id: str, status: str, at: str, source: str, fields: dict[str, Any]) -> bool:
        """Only to a later status."""
        with self.lock:
            tx = _Tx()
            self._status_check(tx, "ledger", execution_id, status, at, source, fields)
            return tx.commit()

    def end(self, ending: Ending, riders: list[Rider], handover: Handover | None) -> Ended:
        """As one transaction: the status, the state, the riders, the slot released or handed over."""
        with self.lock:
            if self._conflicted():
                return Ended(False, conflict=True)
            eid, tier, tenant = ending.execution_id, ending.tier, ending.tenant
            tx = _Tx()
            self._status_check(tx, "ledger", eid, ending.status, ending.at, "sagemaker", ending.fields)
            self._state_end(tx, tenant, ending.model, eid, ending.trained)
            for rider in riders:
                self._status_check(tx, f"exec:{rider.execution_id}", rider.execution_id, EXECUTING, rider.at, "sagemaker",
                                   rider.fields)
            own: set[str] = set()
            if handover is None:
                self._release(tx, tier, tenant, eid)
            else:
                own = self._handover(tx, ending, handover)
            if tx.commit():
                return Ended(True)
            others = {name for name in tx.failed - {"ledger", "slot", "state"} if not name.startswith("exec:")}
            return Ended(False, status_refused="ledger" in tx.failed,
                         existing=self._existing(eid) if "ledger" in tx.failed else None, no_slot="slot" in tx.failed,
                         rider_refused=any(name.startswith("exec:") for name in tx.failed),
                         newer_training="state" in tx.failed, successor_refused=bool(others & own), tier_refused=bool(others - own))

    def _handover(self, tx: _Tx, ending: Ending, handover: Handover) -> set[str]:
        """`Slots.handover_items` and the successor's start; the names of the successor's own checks."""
        tier, tenant, eid, after = ending.tier, ending.tenant, ending.execution_id, handover.successor
        sid, cap = after.execution_id, handover.cap
        tx.check("slot", (tier, eid) in self.slots)
        tx.write(lambda: self.slots.pop((tier, eid)))
        counter = self.counters.get(tier, {})
        room = "inflight" in counter and counter["inflight"] <= handover.limit
        tx.check("counter", room and counter.get("waiting", 0) > 0 and not counter.get("unfiled", 0) > 0)
        tx.write(lambda: (self._add(self._counter(tier), "waiting", -1),
                          self._counter(tier).update({"vclock": after.tag, "limit": handover.limit})))
        running = self.tenant_counts.get((tier, after.tenant), {}).get("running")
        if after.tenant == tenant:
            tx.check(f"tenant:{after.tenant}", cap is None or (running is not None and running <= cap))
            tx.write(lambda: self._add(self._tenant(tier, after.tenant), "waiting", -1))
        else:
            tx.check(f"tenant:{after.tenant}", cap is None or running is None or running < cap)
            tx.write(lambda: (self._add(self._tenant(tier, tenant), "running", -1),
                              self._add(self._tenant(tier, after.tenant), "running", 1),
                              self._add(self._tenant(tier, after.tenant), "waiting", -1)))
        self._take_slot(tx, f"slot:{sid}", tier, after.tenant, sid, handover.at)
        backlog = self.backlogs.setdefault(tier, {})
        tx.check(f"backlog:{sid}", after.position in backlog)
        tx.write(lambda: backlog.pop(after.position))
        self._start_check(tx, f"ledger:{sid}", sid, handover.at, "dispatcher")
        if self.account_quota is not None:
            for other in handover.higher:
                higher = self.counters.get(other, {})
                tx.check(f"higher:{other}", "waiting" not in higher or higher["waiting"] <= 0
                         or ("inflight" in higher and "limit" in higher and higher["inflight"] >= higher["limit"]))
        return {f"ledger:{sid}", f"backlog:{sid}", f"slot:{sid}", f"tenant:{after.tenant}"}

    def end_without_slot(self, ending: Ending) -> None:
        """The state first, then the status."""
        with self.lock:
            tx = _Tx()
            self._state_end(tx, ending.tenant, ending.model, ending.execution_id, ending.trained)
            if not tx.commit() and ending.trained:
                tx = _Tx()
                self._state_end(tx, ending.tenant, ending.model, ending.execution_id, None)
                tx.commit()
            tx = _Tx()
            self._status_check(tx, "ledger", ending.execution_id, ending.status, ending.at, "sagemaker", ending.fields)
            tx.commit()

    def record_trained(self, record: Record) -> bool:
        """Newer-wins on the state's `trained_ended_at`."""
        with self.lock:
            values = trained_values(record)
            if not values:
                return False
            recorded = self.states.get((values["tenant"], values["model"]), {}).get("trained_ended_at")
            if recorded is not None and not recorded < values["trained_ended_at"]:
                return False
            self._state(values["tenant"], values["model"]).update(values)
            return True

    # -- records ------------------------------------------------------------------------------------------
    def execution(self, execution_id: str) -> Record | None:
        """A copy of the record."""
        with self.lock:
            return self._existing(execution_id)

    def mark_notified(self, execution_id: str) -> None:
        """`notified` set on a recorded execution."""
        with self.lock:
            if execution_id in self.executions:
                self.executions[execution_id]["notified"] = True

    def _tier(self, tier: str, limit: int) -> TierState:
        state = self._counts(tier, limit)
        state.tenants = {t: TenantState(c.get("running", 0), c.get("waiting", 0), c.get("next_tag", 0))
                         for (tr, t), c in sorted(self.tenant_counts.items()) if tr == tier}
        state.slot_tenants = {eid: slot["tenant"] for (tr, eid), slot in sorted(self.slots.items()) if tr == tier}
        state.slots = list(state.slot_tenants)
        return state

    def tier_state(self, tier: str, limit: int) -> TierState:
        """The whole tier."""
        with self.lock:
            return self._tier(tier, limit)


class Counting:
    """A store that counts the intents asked of it (`calls`)."""

    def __init__(self, store: Any):
        self.store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.store, name)
        if callable(value):
            self.calls[name] += 1
        return value


@dataclass
class _Queued:
    message_id: str
    body: str
    receipt: str = ""
    receive_count: int = 0
    visible_at: float = 0.0


class FakeQueues:
    """Queues in memory: messages hidden for a visibility timeout when received, deleted by their latest receipt, and
    dead-lettered with their reason. `now` is the clock of the visibility timeouts (seconds)."""

    def __init__(self, now: Callable[[], float] = time.monotonic):
        self.now = now
        self.messages: dict[str, list[_Queued]] = {}
        #: queue -> (body, reason) of every message put on its DLQ
        self.dead: dict[str, list[tuple[str, str]]] = {}
        self._ids = itertools.count(1)
        self.lock = threading.Lock()

    def send(self, queue: str, body: str) -> str:
        """Append a message."""
        with self.lock:
            message = _Queued(f"m{next(self._ids)}", body)
            self.messages.setdefault(queue, []).append(message)
            return message.message_id

    def depth(self, queue: str) -> int:
        """Every message, visible or not."""
        with self.lock:
            return len(self.messages.get(queue, []))

    def receive(self, queue: str, count: int, visibility_seconds: int, wait_seconds: int = 0) -> list[Message]:
        """The oldest visible messages, hidden for `visibility_seconds`."""
        del wait_seconds
        with self.lock:
            now, got = self.now(), []
            for message in self.messages.get(queue, []):
                if len(got) >= max(1, min(10, count)):
                    break
                if message.visible_at <= now:
                    message.receive_count += 1
                    message.receipt = f"{message.message_id}/{message.receive_count}"
                    message.visible_at = now + visibility_seconds
                    got.append(Message(message.message_id, message.receipt, message.body, message.receive_count))
            return got

    def delete(self, queue: str, receipts: list[str]) -> None:
        """Delete by receipt (an outdated receipt deletes nothing)."""
        with self.lock:
            self.messages[queue] = [m for m in self.messages.get(queue, []) if m.receipt not in receipts]

    def change_visibility(self, queue: str, receipts: list[tuple[str, int]]) -> None:
        """Hide or show received messages."""
        with self.lock:
            seconds = dict(receipts)
            for message in self.messages.get(queue, []):
                if message.receipt in seconds:
                    message.visible_at = self.now() + seconds[message.receipt]

    def dead_letter(self, queue: str, body: str, reason: str) -> None:
        """Onto the queue's DLQ, with the reason."""
        with self.lock:
            self.dead.setdefault(queue, []).append((body, reason))

    def bodies(self, queue: str) -> list[str]:
        """The bodies on a queue, oldest first."""
        with self.lock:
            return [m.body for m in self.messages.get(queue, [])]


class FakePipelines:
    """The start, find and status ports: starts counted per execution, an ARN per execution, statuses set by tests;
    `refuse` and `fail` make chosen starts fail for good or for now."""

    def __init__(self) -> None:
        self.starts: dict[str, int] = {}
        self.statuses: dict[str, str] = {}
        self.refuse: dict[str, Exception] = {}
        self.fail: dict[str, list[Exception]] = {}

    @staticmethod
    def arn(execution_id: str) -> str:
        """The ARN an execution gets."""
        return f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/{execution_id}"

    def __call__(self, request: BuildRequest, client_request_token: str) -> str:
        eid = request.execution_id
        assert client_request_token == request.client_request_token
        if eid in self.refuse:
            raise self.refuse[eid]
        if self.fail.get(eid):
            raise self.fail[eid].pop(0)
        self.starts[eid] = self.starts.get(eid, 0) + 1
        self.statuses.setdefault(self.arn(eid), "Executing")
        return self.arn(eid)

    def find(self, request: BuildRequest) -> str | None:
        """The ARN of an execution started for the request."""
        return self.arn(request.execution_id) if request.execution_id in self.starts else None

    def status(self, arn: str) -> str | None:
        """What SageMaker says of an execution."""
        return self.statuses.get(arn)

    @property
    def duplicates(self) -> int:
        """Starts beyond the first of an execution."""
        return sum(n - 1 for n in self.starts.values())


class SteppingClock:
    """ISO times that move forward by `step` seconds at each reading (both stores see the same times)."""

    def __init__(self, start: str = "2026-01-01T00:00:00+00:00", step: float = 1.0):
        self.at = datetime.fromisoformat(start).astimezone(timezone.utc)
        self.step = timedelta(seconds=step)

    def __call__(self) -> str:
        self.at += self.step
        return self.at.isoformat(timespec="microseconds")

    def jump(self, seconds: float) -> None:
        """Let time pass (leases run out)."""
        self.at += timedelta(seconds=seconds)


@dataclass
class FakeNotifier:
    """A notifier that takes everything (or nothing, with `down`) and remembers the subjects."""

    down: bool = False
    sent: list[str] = field(default_factory=list)
    enabled: bool = True

    def notify(self, item: dict[str, Any]) -> Any:
        """Remember the subject."""
        if self.down:
            return _NotifyResult(None, None, ["sns: down"])
        self.sent.append(f"[{item.get('status')}] {item.get('execution_id')}")
        return _NotifyResult("id", None, [])


@dataclass
class _NotifyResult:
    sns_message_id: str | None
    slack_ok: bool | None
    errors: list[str]
