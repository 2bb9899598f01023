"""The dispatcher's use case: file each tier's queue into its fair backlog, admit the backlog's head into free slots,
and repair what lost messages and events left behind.

Per tier by priority, under a short tier lease: the tier queue's requests are filed into the backlog with
start tags (`mlops.admission`), then the backlog's head is admitted into the free slots at once and started.
Exactly once: a request starts only by winning its admission (the store admits only what is still waiting);
losers never call the start port. Now and then a sweep restarts a start whose dispatcher died (one
claimant, after asking the `find` port), applies a status SageMaker has and the ledger missed, and releases
slots of finished executions; a recount sets drifted counts right.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

from mlops.admission import Candidate, TierState, assign_tags, pick, tier_order
from mlops.builds.context import Backlog, Context, Received, Starts, received, waiting
from mlops.build_ports import ExecutionStatus, Filing, Message, Record
from mlops.builds.status import StatusRecorder
from mlops.errors import MlopsError
from mlops.requests import BuildRequest, NewerRequest, PipelineStatusEvent, RejectedRequest, parse_json, parse_request
from mlops.statuses import FROM_SAGEMAKER, RANK, STARTING, TERMINAL

LOG = logging.getLogger(__name__)
#: Admissions per round: each takes 3 transaction items (ledger, slot, backlog) plus one per tenant, and a
#: DynamoDB transaction holds at most 100 items. More free slots are filled by the next runs.
MAX_ADMISSIONS_PER_ROUND = 24


@dataclass
class DispatchReport:
    """What one dispatcher run did, per tier."""

    admitted: dict[str, int] = field(default_factory=dict)
    #: requests moved from the tier's queue into its fair backlog
    filed: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    duplicates: int = 0
    restarted: int = 0
    released_stale: int = 0
    #: executions whose missed status event the sweep applied from SageMaker's own answer (execution id -> status)
    reconciled: dict[str, str] = field(default_factory=dict)
    #: counts the sweep found drifted and corrected: "<tier>/tier.<count>" or "<tier>/tenant:<id>.<count>" -> [was, now]
    recounted: dict[str, list[int]] = field(default_factory=dict)


class Dispatcher:  # pylint: disable=too-many-instance-attributes  # what one dispatcher remembers between runs
    """`dispatch` (one scheduled run), and its parts `dispatch_tier`, `sweep`, `recount`."""

    def __init__(self, context: Context, starts: Starts, backlog: Backlog, status: StatusRecorder):
        self.context = context
        self.starts = starts
        self.backlog = backlog
        self.status = status
        self.owner = uuid.uuid4().hex
        #: when this dispatcher last swept (monotonic seconds), None before its first run
        self._last_sweep: float | None = None
        #: when this dispatcher last recounted the tiers' counts (its start counts as one)
        self._last_recount = time.monotonic()
        #: tier -> runs in a row that ended with requests still unfiled on the queue
        self._undrained: dict[str, int] = {}
        #: tier -> the `unfiled` count the last recount saw while the tier's queue was empty
        self._empty_queue_unfiled: dict[str, int] = {}

    def dispatch(self) -> DispatchReport:
        """One scheduled run: every tier, highest priority first; now and then, repair stuck slots."""
        report = DispatchReport()
        settings = self.context.settings
        every = settings.lease_seconds if settings.sweep_every_seconds is None else settings.sweep_every_seconds
        sweeping = self._last_sweep is None or time.monotonic() - self._last_sweep >= every
        if sweeping:
            self._last_sweep = time.monotonic()
        recounting = time.monotonic() - self._last_recount >= settings.recount_every_seconds
        if recounting:
            self._last_recount = time.monotonic()
        for tier in tier_order({name: t.priority for name, t in self.context.registry.platform.tiers.items()}):
            if sweeping:
                self.sweep(tier, report)
            if recounting:
                self.recount(tier, report)
            self.dispatch_tier(tier, report, file_anyway=sweeping)
        return report

    def recount(self, tier: str, report: DispatchReport) -> None:
        """Set the tier's counts right from its slots and backlog.

        The count of requests not yet filed is only taken as drifted when the tier's queue was empty at two
        sweeps in a row while the counter kept the same non-zero value: a request is counted just before its
        message is sent, so one empty look can be that moment.
        """
        ctx = self.context
        empty = ctx.queues.depth(ctx.names.tier_queue(tier)) == 0

        def drifted(counted: int) -> bool:
            seen = self._empty_queue_unfiled.pop(tier, None)
            if empty:
                self._empty_queue_unfiled[tier] = counted
            return empty and counted != 0 and seen == counted

        for fix in ctx.store.recount(tier, ctx.limit(tier), drifted):
            report.recounted[f"{tier}/{fix.name}"] = [fix.was, fix.now]
            LOG.warning("recount: %s %s was %d, its items say %d: corrected", tier, fix.name, fix.was, fix.now)

    def sweep(self, tier: str, report: DispatchReport) -> None:
        """Repair what a lost message or event left behind, for every slot held longer than the lease.

        - an execution that SageMaker has (an ARN) and that the ledger still shows running: its status is
          asked (the `status_of` port) and, if the ledger missed it (a terminal event that went to the DLQ,
          an `Executing` event never delivered), applied as the event would have been: status, slot release
          or handover, notification. So a slot never leaks for longer than one sweep period after its end;
        - an execution still STARTING without an ARN (its starter died, or its start failed for a while):
          started again, after asking the `find` port;
        - a slot of a finished execution (a release that never happened): released.
        One read of the tier's old slots, one record read per old slot, one status call per running one.
        """
        ctx = self.context
        for slot in ctx.store.old_slots(tier, ctx.stale_before()):
            eid = slot.execution_id
            record = ctx.store.execution(eid)
            if record is None or record["status"] in TERMINAL:
                if ctx.store.release(tier, slot.tenant, eid):
                    report.released_stale += 1
            elif record.get("pipeline_execution_arn") and ctx.status_of is not None:
                self._reconcile(record, report, ctx.status_of)
            elif record["status"] == STARTING:
                try:
                    request = parse_request(parse_json(record["request"]))
                except NewerRequest:
                    continue  # a newer release's sweep restarts it
                self._restart(request, tier, record, report)

    def _restart(self, request: BuildRequest, tier: str, record: Record, report: DispatchReport) -> bool:
        """Take over a start whose starter vanished (STARTING for longer than the lease; one claimant) and start it."""
        ctx = self.context
        attempt = int(record.get("start_attempt", 1))
        if not ctx.store.claim_restart(request.execution_id, attempt, ctx.stale_before(), ctx.clock()):
            return False
        self.starts.start(request, tier, attempt=attempt + 1)
        report.restarted += 1
        return True

    def _reconcile(self, record: Record, report: DispatchReport, status_of: ExecutionStatus) -> None:
        """Compare a running execution with SageMaker; apply a status the ledger missed (one log line each)."""
        eid, arn = record["execution_id"], record["pipeline_execution_arn"]
        try:
            status = status_of(arn)
        except MlopsError as exc:  # asked again at the next sweep
            LOG.warning("reconcile: cannot read the status of %s: %s", eid, exc.one_line())
            return
        if status not in FROM_SAGEMAKER or RANK[FROM_SAGEMAKER[status]] <= RANK[record["status"]]:
            return
        try:
            outcome = self.status.record_status(PipelineStatusEvent(
                execution_id=eid, status=status, pipeline_execution_arn=arn, at=self.context.clock(),
                started_at=record.get("started_at")))
        except MlopsError as exc:  # e.g. a transaction conflict: nothing was written, the next sweep tries again
            LOG.warning("reconcile: %s not applied now: %s", eid, exc.one_line())
            return
        if outcome.result == "applied":
            report.reconciled[eid] = FROM_SAGEMAKER[status]
            LOG.warning("reconcile: %s was %s in the ledger and %s in SageMaker: applied (%s)", eid, record["status"],
                        status, outcome.detail or "slot released")

    def dispatch_tier(self, tier: str, report: DispatchReport, file_anyway: bool = False) -> None:
        """File what the tier's queue holds into its fair backlog, then admit what fits, in start-tag order.

        `file_anyway` (on sweep runs) looks at the queue even when the counter says nothing is unfiled, so a
        counter that went wrong can delay a request but never strand it.
        """
        ctx = self.context
        limit = ctx.limit(tier)
        if ctx.settings.tier_lease_ms:
            state = ctx.store.lease_tier(tier, limit, self.owner, int(time.time() * 1000), ctx.settings.tier_lease_ms)
            if state is None:
                if file_anyway:  # only when the counter says nothing is unfiled: otherwise the lease holder files
                    state = ctx.store.tier_counts(tier, limit)
                    if state.unfiled <= 0:
                        self._file(tier, state, report, lease_owner=None)
                return  # nothing to do, or another dispatcher is on it
            lease_ended = False
            try:
                if self._file_then_admit(tier, state, report, file_anyway):
                    lease_ended = self._admit(tier, limit, state, report, lease_owner=self.owner)
            finally:
                if not lease_ended:
                    ctx.store.end_lease(tier, self.owner)
            return
        state = ctx.store.tier_counts(tier, limit)  # small; the backlog is read only when there is room
        if self._file_then_admit(tier, state, report, file_anyway):
            self._admit(tier, limit, state, report, lease_owner=None)

    def _file_then_admit(self, tier: str, state: TierState, report: DispatchReport, file_anyway: bool) -> bool:
        """File the queue; True if admission may follow now.

        Admission waits while a burst is still being filed: a request filed after admissions began would
        start behind tenants that were filed first, so the queue's order would decide after all. It waits
        at most `undrained_rounds` runs of this dispatcher in a row, so a tier whose arrivals outpace one run's
        filing still admits.
        """
        if state.unfiled <= 0 and not file_anyway:
            return True
        if self._file(tier, state, report, lease_owner=self.owner if self.context.settings.tier_lease_ms else None):
            self._undrained[tier] = 0
            return True
        self._undrained[tier] = self._undrained.get(tier, 0) + 1
        return self._undrained[tier] > self.context.settings.undrained_rounds

    def _file(self, tier: str, state: TierState, report: DispatchReport, lease_owner: str | None) -> bool:
        """Move requests from the tier's queue into its backlog with their start tags (mlops.admission).

        Up to `receives_per_round` receives of 10; per batch of 3 receives, one read of the tenants' next tags
        and one filing. Messages are deleted only after it: a dispatcher that dies before loses nothing, the
        message comes back after its visibility timeout, and filing it again finds it filed. True if the
        queue was drained (a receive came back short).
        """
        ctx = self.context
        queue = ctx.names.tier_queue(tier)
        receives = 0
        while receives < ctx.settings.receives_per_round:
            messages: list[Message] = []
            drained = False
            for _ in range(3):
                got = ctx.queues.receive(queue, 10, ctx.settings.lease_seconds)
                receives += 1
                messages += got
                drained = len(got) < 10
                if drained or receives >= ctx.settings.receives_per_round:
                    break
            handled: list[str] = []
            arrivals = self._arrivals(queue, messages, handled, report)
            try:
                if arrivals and not self._file_batch(tier, state, arrivals, handled, report, lease_owner):
                    ctx.queues.change_visibility(queue, [(m.receipt, 0) for m in messages if m.receipt not in handled])
                    return False
            finally:
                if handled:
                    ctx.queues.delete(queue, handled)
            if drained:
                return True
        return False

    def _file_batch(self, tier: str, state: TierState, arrivals: list[Candidate], handled: list[str],
                    report: DispatchReport, lease_owner: str | None) -> bool:
        """One filing (retried without the requests that turn out to be filed or gone); False if the tier moved
        under us (another dispatcher filed for the same tenants): try again later."""
        ctx = self.context
        pending = arrivals
        while pending:
            old = ctx.store.next_tags(tier, sorted({c.tenant for c in pending}))
            tagged, new = assign_tags(state.clock, old, pending)
            filed = ctx.store.file(tier, [Filing(c.tenant, received(c).request.execution_id, c.tag, c.requested_at,
                                                 received(c).message.body) for c in tagged], old, new, lease_owner)
            if filed.ok:
                handled += [received(c).message.receipt for c in tagged]
                report.filed[tier] = report.filed.get(tier, 0) + len(tagged)
                return True
            if not filed.unknown and not filed.copies:
                return False
            for candidate in pending:
                message, request = received(candidate).message, received(candidate).request
                if request.execution_id in filed.unknown:
                    ctx.queues.dead_letter(ctx.names.tier_queue(tier), message.body,
                                           f"request {request.execution_id} is not in the ledger (queued outside the "
                                           "trigger); send it to the trigger instead")
                    report.rejected += 1
                elif request.execution_id in filed.copies:
                    report.duplicates += 1  # filed before, or no longer waiting: this message is a copy
                else:
                    continue
                handled.append(message.receipt)
            pending = [c for c in pending if received(c).request.execution_id not in filed.unknown | filed.copies]
        return True

    def _arrivals(self, queue: str, messages: list[Message], handled: list[str], report: DispatchReport) -> list[Candidate]:
        """Parse received messages; a malformed one goes to the dead-letter queue with its reason, a second copy of a
        request received in the same batch is dropped as a duplicate (one filing holds a request once)."""
        arrivals: list[Candidate] = []
        seen: set[str] = set()
        for message in messages:
            try:
                request = parse_request(parse_json(message.body))
            except NewerRequest as exc:  # not handled: visible again after the lease, for a newer dispatcher
                LOG.info("message left on %s: %s", queue, exc.one_line())
                continue
            except RejectedRequest as exc:
                self.context.queues.dead_letter(queue, message.body, exc.one_line())
                handled.append(message.receipt)
                report.rejected += 1
                continue
            if request.execution_id in seen:
                handled.append(message.receipt)
                report.duplicates += 1
                continue
            seen.add(request.execution_id)
            arrivals.append(Candidate(ref=Received(message, request), tenant=request.tenant, requested_at=request.requested_at))
        return arrivals

    def _admit(self, tier: str, limit: int, state: TierState, report: DispatchReport, lease_owner: str | None) -> bool:
        """Admit the head of the backlog into the free slots: one read, one admission, the starts. True if the
        admission ended the lease."""
        if state.free <= 0 or state.waiting <= 0:
            return False
        ctx = self.context
        caps = ctx.caps()
        room = min(state.free, MAX_ADMISSIONS_PER_ROUND)
        head = self.backlog.head(tier, room + min(10, len(caps)))
        skip: set[str] = set()
        while head:
            chosen = pick(head, room, skip)
            if not chosen:
                return False
            admitted = ctx.store.admit(tier, limit, [waiting(c).entry for c in chosen], ctx.clock(), caps=caps,
                                       clock=max(c.tag for c in chosen), lease_owner=lease_owner)
            if admitted.ok:
                report.admitted[tier] = report.admitted.get(tier, 0) + len(chosen)
                self.starts.start_admitted(tier, [waiting(c).request for c in chosen])
                return lease_owner is not None
            if admitted.refused:
                return False  # full, the lease lost, or another dispatcher admitted first: the next run
            for candidate in chosen:
                entry, request = waiting(candidate).entry, waiting(candidate).request
                if request.execution_id in admitted.gone:
                    self._not_queued(request, tier, admitted.gone[request.execution_id], report)
                    ctx.store.take_out(tier, entry)  # no longer waiting here
                    head.remove(candidate)
            skip |= admitted.capped  # at their cap: the others go first
        return False

    def _not_queued(self, request: BuildRequest, tier: str, record: Record | None, report: DispatchReport) -> None:
        """A backlog entry whose request is no longer QUEUED: a copy (counted), or a start whose dispatcher vanished
        (taken over once stale; otherwise the sweep looks again after the lease)."""
        if record is None:
            return
        if record["status"] == STARTING:
            self._restart(request, record.get("tier", tier), record, report)
        else:
            report.duplicates += 1
