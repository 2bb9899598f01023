"""The status path's use case: SageMaker's status-change events into the ledger, the end of a build handing its slot on.

An event moves its execution's status forward only (a duplicate or late event changes nothing). The terminal
one records the end, the tenant x model's newest training and the slot, handed straight to the backlog's
head or released, all at once, then starts the successor and notifies. A batch of events is looked at first
(`begin_batch`): its ends in a tier read the backlog's head once, and its `Executing` events ride on its
terminal writes.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from mlops.admission import Candidate, tier_order
from mlops.builds.context import Backlog, Context, Outcome, Starts, waiting
from mlops.build_ports import Ended, Ending, Handover, Rider
from mlops.errors import MlopsError
from mlops.requests import PipelineStatusEvent, parse_execution_description
from mlops.statuses import EXECUTING, FAILED, FROM_SAGEMAKER, RANK, SUCCEEDED, TERMINAL

LOG = logging.getLogger(__name__)
#: Characters of a failed job's log tail kept in the ledger (an item holds at most 400 KB).
LOG_TAIL_CHARS = 4000
#: Successors a handover tries (the backlog's head, then the next) before the end only releases the slot.
HANDOVER_ATTEMPTS = 2
#: A batch's `Executing` events one terminal write carries at most.
RIDERS_PER_TRANSACTION = 20
#: How many executions' last known status rank a service remembers (skips duplicate and late events).
KNOWN_STATUS_MEMORY = 50_000


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return round((datetime.fromisoformat(end.replace("Z", "+00:00"))
                      - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds(), 3)
    except ValueError:
        return None


class StatusRecorder:
    """`record_status` (one event), `begin_batch` / `end_batch` (around a batch of them)."""

    def __init__(self, context: Context, starts: Starts, backlog: Backlog):
        self.context = context
        self.starts = starts
        self.backlog = backlog
        #: execution id -> the status rank its record is known to have reached (ranks only grow)
        self._known: OrderedDict[str, int] = OrderedDict()
        #: the status batch this thread is in: its ends per tier, and the backlog heads read for them
        self._batch = threading.local()

    def record_status(self, event: PipelineStatusEvent) -> Outcome:
        """Apply one status-change event; on the terminal one hand the slot on (or release it) and notify.

        An event whose status this service already saw applied (or found superseded) for the execution is
        answered without a call: ranks only grow, so what was known stays true. That makes the duplicate
        terminal event and the late `Executing` of a batch free.
        """
        eid = event.execution_id
        rank = RANK[FROM_SAGEMAKER[event.status]]
        if self._known.get(eid, 0) >= rank:
            return Outcome(eid, "stale", FROM_SAGEMAKER[event.status], detail="already recorded")
        outcome = self._record_status(event)
        if outcome.result in ("applied", "stale") and outcome.detail != "unconfirmed":
            self._remember(eid, rank)
        return outcome

    def _remember(self, execution_id: str, rank: int) -> None:
        """The record of `execution_id` has reached `rank` (events at or below it need no call)."""
        self._known[execution_id] = max(rank, self._known.pop(execution_id, 0))
        while len(self._known) > KNOWN_STATUS_MEMORY:
            self._known.popitem(last=False)

    def _record_status(self, event: PipelineStatusEvent) -> Outcome:  # pylint: disable=too-many-return-statements
        ctx, eid = self.context, event.execution_id
        status = FROM_SAGEMAKER[event.status]
        fields: dict[str, Any] = {"pipeline_execution_arn": event.pipeline_execution_arn}
        if event.started_at:
            fields["started_at"] = event.started_at
        if status not in TERMINAL:
            applied = ctx.store.advance(eid, status, event.at, "sagemaker", fields)
            # a refusal may also mean "not recorded yet": not remembered
            return Outcome(eid, "applied", status) if applied else Outcome(eid, "stale", status, detail="unconfirmed")
        ended_at = event.ended_at or event.at
        fields |= {"ended_at": ended_at, "duration_seconds": _seconds_between(event.started_at, ended_at)}
        if status == SUCCEEDED:
            fields["model_package_arn"] = self._model_package_of(event.pipeline_execution_arn)
        if status == FAILED:
            fields |= self._failure_fields(event.pipeline_execution_arn)
        tier, tenant = self._owner(eid)
        if tier is None:
            return Outcome(eid, "ignored", status, detail="not an execution of this platform")
        model, trained = self._what_ended(event, status, tenant, ended_at)
        ending = Ending(eid, tier, tenant, model, status, event.at, fields, trained)
        successors = self._successors(tier) if ctx.settings.handover else None
        ended, successor = self._end(ending, successors)
        if not ended.ok and not ended.condition_failed:
            raise MlopsError(f"the end of {eid} was not recorded: transaction {'conflict' if ended.conflict else 'cancelled'}",
                             "nothing was written; the status event is retried")
        if not ended.ok and not ended.status_refused and ended.no_slot:
            # The slot is not where the registry says (the tenant changed tier while it ran): ask the ledger.
            moved = self._end_where_the_ledger_says(ending, event)
            if moved is None:
                return Outcome(eid, "ignored", status, detail="not in the ledger")
            ended, trained = moved
        if not ended.ok and ended.status_refused:
            old = ended.existing
            if trained is None and old and old.get("status") == SUCCEEDED:
                ctx.store.record_trained(old)  # newer-wins: repairs a delivery that died before writing it
            if old and old.get("status") in TERMINAL and not old.get("notified") and not ctx.notify(eid):
                return Outcome(eid, "stale", status, detail="unconfirmed")  # the notification is still owed
            return Outcome(eid, "stale", status)
        record = None
        if status == SUCCEEDED and trained is None:  # an event without our description: the ledger has the version
            record = ctx.store.execution(eid)
            if record is not None:
                ctx.store.record_trained(record)  # the retraining check's "newest training" of this tenant x model
        handed = None
        if successor is not None:
            handed = waiting(successor).request.execution_id
            self.starts.start_handed_over(tier, waiting(successor).request)
        if not ctx.notify(eid, record):
            return Outcome(eid, "applied", status, detail="unconfirmed")  # a redelivery may still notify
        return Outcome(eid, "applied", status, detail=f"slot handed to {handed}" if handed else None)

    def _what_ended(self, event: PipelineStatusEvent, status: str, tenant: str,
                    ended_at: str) -> tuple[str, dict[str, Any] | None]:
        """The model of an ending execution and, for a success whose description is ours, the training to record
        (the description names the version: no ledger read)."""
        eid = event.execution_id
        described = parse_execution_description(event.description)
        if described and described["tenant"] != tenant:
            described = None
        model = eid[len(tenant) + 1:-13]  # `<tenant>-<model>-<12 hex>`
        if described:
            model = described["model"] or model
        elif model not in self.context.registry.platform.models:
            model = (self.context.store.execution(eid) or {}).get("model") or model
        if status != SUCCEEDED or not described:
            return model, None
        return model, {"tenant": tenant, "model": model, "execution_id": eid, "version": described["version"],
                       "ended_at": ended_at, "started_at": event.started_at}

    def _end_where_the_ledger_says(self, ending: Ending, event: PipelineStatusEvent) -> tuple[Ended, dict[str, Any] | None] | None:
        """The end of an execution whose slot is not where the registry says, from its record (None: not in the
        ledger). Without any slot, the status and the state are still written, the state first (both are
        idempotent), so that a redelivery after a crash in between finishes the job."""
        record = self.context.store.execution(ending.execution_id)
        if record is None:
            return None
        trained = record | {"ended_at": ending.fields["ended_at"], "started_at": event.started_at or record.get("started_at")} \
            if ending.status == SUCCEEDED else None
        ending = Ending(ending.execution_id, record["tier"], record["tenant"], record["model"], ending.status, ending.at,
                        ending.fields, trained)
        ended, _ = self._end(ending)
        if not ended.ok and not ended.status_refused:  # no slot at all: record the status anyway
            self.context.store.end_without_slot(ending)
            trained = trained or {}  # recorded (or not newer): not again
        return ended, trained

    def begin_batch(self, events: list[PipelineStatusEvent]) -> None:
        """Before a batch of status events (per thread: the local runtime runs several consumers over one service).

        Counts the batch's terminal events per tier (from the registry, no call), so that the first handover
        of a tier reads the backlog's head for all of them at once; and keeps its `Executing` events, so that
        the batch's first terminal writes record them too (`RIDERS_PER_TRANSACTION` at most) instead of a
        write each. The handler puts terminal events first for that.
        """
        ends: dict[str, set[str]] = {}
        riders: dict[str, PipelineStatusEvent] = {}
        for event in events:
            status, eid = FROM_SAGEMAKER[event.status], event.execution_id
            tier = self._registry_owner(eid)[0]
            if self._known.get(eid, 0) >= RANK[status] or tier is None:
                continue
            if status in TERMINAL:
                ends.setdefault(tier, set()).add(eid)
            elif status == EXECUTING:
                riders.setdefault(eid, event)
        self._batch.expected = {tier: len(eids) for tier, eids in ends.items()}
        self._batch.heads = {}
        self._batch.riders = riders

    def end_batch(self) -> None:
        """After the batch: nothing of it is kept (another batch, another moment)."""
        self._batch.expected, self._batch.heads, self._batch.riders = {}, None, {}

    def _riders(self, *busy: str) -> list[Rider]:
        """The batch's `Executing` events that can ride on a terminal write (not for an execution the write already
        changes: an item may appear once in a transaction)."""
        pending: dict[str, PipelineStatusEvent] = getattr(self._batch, "riders", None) or {}
        riders = []
        for eid, event in pending.items():
            if eid in busy or self._known.get(eid, 0) >= RANK[EXECUTING]:
                continue
            riders.append(Rider(eid, event.at, {"pipeline_execution_arn": event.pipeline_execution_arn,
                                                "started_at": event.started_at}))
            if len(riders) >= RIDERS_PER_TRANSACTION:
                break
        return riders

    def _successors(self, tier: str) -> Iterator[Candidate]:
        """Who the slot goes to, in tag order: the backlog's head, then the next ones if the first cannot take it
        (another handover or dispatcher admitted it, or its tenant is at its cap). Inside a batch the head is
        read once for all the batch's ends in the tier; outside, a read of two (a spare for a collision)."""
        heads = getattr(self._batch, "heads", None)
        if heads is None:  # not in a batch
            yield from self.backlog.head(tier, 2)
            return
        while True:
            queue, complete = heads.get(tier, (deque(), False))
            if not queue:
                if complete:
                    return
                want = self._batch.expected.get(tier, 1) + 1
                found = self.backlog.head(tier, want)
                queue, complete = deque(found), len(found) < want
                heads[tier] = (queue, complete)
                if not queue:
                    return
            yield queue.popleft()

    def _end(self, ending: Ending, successors: Iterator[Candidate] | None = None) -> tuple[Ended, Candidate | None]:
        """The end, all at once: the status, the tenant x model's state (the build ends; with `trained`, it is the
        newest training unless a newer one is recorded) and the slot, released or handed to the first of
        `successors` (the backlog's head).

        Tried again without the training when only a newer training refused it; with the next successor when only
        the successor's own conditions refused (taken by someone else, its tenant at its cap), at most
        `HANDOVER_ATTEMPTS` of them; without any when the tier's rules refused (full, a burst still unfiled, a
        higher tier waiting under the account quota) or on a conflict: the end is recorded in any case. Returns
        what the last try did and the successor if it got the slot.
        """
        ctx, now = self.context, self.context.clock()
        tries = 0
        successor = next(successors, None) if successors is not None else None
        riders = self._riders(ending.execution_id, waiting(successor).request.execution_id if successor else ending.execution_id)
        while True:
            handover = None
            if successor is not None:
                tries += 1
                handover = Handover(ctx.limit(ending.tier), waiting(successor).entry, now, cap=ctx.caps().get(successor.tenant),
                                    higher=self._higher_tiers(ending.tier))
            ended = ctx.store.end(ending, riders, handover)
            if ended.ok:
                for rider in riders:  # recorded: their own events in the batch cost nothing
                    self._batch.riders.pop(rider.execution_id, None)
                    self._remember(rider.execution_id, RANK[EXECUTING])
                return ended, successor
            if ended.status_refused or ended.no_slot:
                return ended, None
            if riders and (ended.conflict or ended.rider_refused):
                riders = []  # written by their own events, one by one, as without a batch
                continue
            retry = False
            if ending.trained and ended.newer_training:
                ending, retry = Ending(ending.execution_id, ending.tier, ending.tenant, ending.model, ending.status, ending.at,
                                       ending.fields), True
            if successor is not None and (ended.conflict or ended.successor_refused or ended.tier_refused):
                only_its_own = not ended.conflict and not ended.tier_refused
                successor = next(successors, None) if only_its_own and successors is not None and tries < HANDOVER_ATTEMPTS else None
                retry = True
            if not retry:
                return ended, None

    def _higher_tiers(self, tier: str) -> tuple[str, ...]:
        """The tiers that come before `tier` by priority."""
        order = tier_order({name: t.priority for name, t in self.context.registry.platform.tiers.items()})
        return tuple(order[:order.index(tier)])

    def _model_package_of(self, execution_arn: str | None) -> str | None:
        """The model package the execution registered, from the `model_package` port; never fails the event
        (a SageMaker hiccup costs the ARN, not the status and the slot)."""
        port = self.context.model_package
        if port is None or not execution_arn:
            return None
        try:
            return port(execution_arn)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # best effort, logged
            LOG.warning("model package of %s not found: %s: %s", execution_arn, type(exc).__name__, exc)
            return None

    def _failure_fields(self, execution_arn: str | None) -> dict[str, Any]:
        """The fields of a failed execution's failing step, reason and log tail, from the `failure_of` port; never
        fails the event (a SageMaker or CloudWatch hiccup costs the detail, not the status and the slot)."""
        port = self.context.failure_of
        if port is None or not execution_arn:
            return {}
        try:
            found = port(execution_arn) or {}
        except Exception as exc:  # pylint: disable=broad-exception-caught  # best effort, logged
            LOG.warning("failure of %s not found: %s: %s", execution_arn, type(exc).__name__, exc)
            return {}
        fields = {"failed_step": found.get("step"), "failure_reason": str(found.get("reason") or "")[:1000] or None,
                  "failure_log": found.get("log"), "log_tail": str(found.get("log_tail") or "")[-LOG_TAIL_CHARS:] or None}
        return {k: v for k, v in fields.items() if v}

    def _registry_owner(self, execution_id: str) -> tuple[str | None, str]:
        """(tier, tenant) of an execution id `<tenant>-<model>-<12 hex>`, from the registry (no call); (None, "")
        when no tenant or more than one matches."""
        matches = [(t.tier, t.id) for t in self.context.registry.tenants.values() for m in t.models
                   if execution_id.startswith(f"{t.id}-{m}-") and len(execution_id) == len(t.id) + len(m) + 14]
        return matches[0] if len(matches) == 1 else (None, "")

    def _owner(self, execution_id: str) -> tuple[str | None, str]:
        """(tier, tenant) of an execution, from the registry, else from its record."""
        tier, tenant = self._registry_owner(execution_id)
        if tier is not None:
            return tier, tenant
        record = self.context.store.execution(execution_id)
        return (record["tier"], record["tenant"]) if record else (None, "")
