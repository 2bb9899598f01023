"""The build request service: what the trigger, dispatcher and status Lambdas do, without the Lambda.

- `submit`   (trigger): check a request against the registry, record it in the ledger exactly once, then
  start it at once if its tier has a free slot and nobody waits, or queue it on the tier's queue.
- `dispatch` (dispatcher, on a schedule): per tier by priority, under a short tier lease, file the tier
  queue's requests into the tier's fair backlog (start tags, mlops.admission), then admit the backlog's
  head into the free slots with one transaction and start them.
- `record_status` (status): apply a SageMaker status-change event to the ledger (rank-guarded, so
  duplicates and late events do nothing) and, on the terminal one, release the slot in the same
  transaction and notify.

Exactly once, by construction: the only way to a pipeline start is winning a transaction whose ledger
write is conditional on the request being QUEUED (or not existing yet); losers never call the start
port. A start whose dispatcher died is retaken after a lease by one claimant (conditional update), which
asks the port whether the execution exists before starting it again with the same ClientRequestToken.

AWS access goes through the adapters in `mlops.aws`; the pipeline start is the `StartExecution` port.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mlops.admission import Candidate, TierState, assign_tags, pick, tier_order
from mlops.aws.dynamo import TxItem, TxOutcome, transact
from mlops.aws.ledger import EXECUTING, FAILED, FROM_SAGEMAKER, QUEUED, RANK, STARTING, SUCCEEDED, TERMINAL, Ledger, public
from mlops.aws.queues import Message, Queues
from mlops.aws.slots import Slots
from mlops.errors import MlopsError
from mlops.notify import Notifier
from mlops.pipeline.progress import model_package_port
from mlops.requests import (BuildRequest, NewerRequest, PipelineStatusEvent, RejectedRequest, StartExecution, StartRejected,
                            check_registry, parse_execution_description, parse_json, parse_request, rejected_upload, utc_now)

LOG = logging.getLogger(__name__)

#: Optional port: the ARN of an execution already started for this request, if any (crash recovery).
FindExecution = Callable[[BuildRequest], "str | None"]
#: Optional port: the model package a succeeded pipeline execution registered (by execution ARN), if any.
FindModelPackage = Callable[[str], "str | None"]
#: Optional port: an execution's status as SageMaker has it now (DescribePipelineExecution), by ARN.
ExecutionStatus = Callable[[str], "str | None"]
#: Optional port: why a failed pipeline execution failed (by execution ARN): `mlops.pipeline.progress.failure`'s
#: step, reason, log and log tail, or None.
FindFailure = Callable[[str], "dict[str, Any] | None"]
#: Characters of a failed job's log tail kept in the ledger item (an item holds at most 400 KB).
LOG_TAIL_CHARS = 4000
#: Admissions per round: each takes 3 transaction items (ledger, slot, backlog) plus one per tenant, and a
#: DynamoDB transaction holds at most 100 items. More free slots are filled by the next runs.
MAX_ADMISSIONS_PER_ROUND = 24
#: Successors a handover tries (the backlog's head, then the next) before the end only releases the slot.
HANDOVER_ATTEMPTS = 2
#: A batch's `Executing` writes one terminal transaction carries at most (it has ~10 items of its own, of 100).
RIDERS_PER_TRANSACTION = 20
#: How many executions' last known status rank a service remembers (skips duplicate and late events).
KNOWN_STATUS_MEMORY = 50_000


@dataclass(frozen=True)
class Outcome:
    """What happened to one request or event."""

    execution_id: str
    result: str  # started | delayed | queued | duplicate | applied | stale | ignored | failed | reconciled
    status: str | None = None
    pipeline_execution_arn: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for handler responses and the CLI."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


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
    #: counts the sweep found drifted and corrected: "<tier>/<item>.<count>" -> [was, now]
    recounted: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class DispatchSettings:
    """Knobs of the dispatcher (defaults fit AWS; the local runtime and tests shorten the lease)."""

    lease_seconds: int = 180
    #: receives (of 10) a dispatcher run may spend filing a tier's queue into its backlog
    receives_per_round: int = 200
    #: runs in a row a dispatcher holds admission back while a burst is still being filed
    undrained_rounds: int = 3
    #: how long one dispatcher has a tier to itself (0: no tier lease, dispatchers race; still never over)
    tier_lease_ms: int = 20_000
    #: look for stuck slots (and at each tier's queue, whatever its counter says) at most this often, in
    #: seconds; None: once per `lease_seconds`, the age a slot must reach before the sweep acts on it
    sweep_every_seconds: float | None = None
    #: starts that fail with a transient error are retried (after the lease) this many times in all
    max_start_attempts: int = 5
    #: how often, in seconds, a dispatcher recounts each tier's counts from its slots and backlog (its first
    #: recount comes one period after it starts)
    recount_every_seconds: float = 900.0
    #: the status handler hands a finished execution's slot straight to the backlog's head (one query, and the
    #: admission rides on the terminal transaction); off: it only releases, and the dispatcher admits
    handover: bool = True


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return round((datetime.fromisoformat(end.replace("Z", "+00:00"))
                      - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds(), 3)
    except ValueError:
        return None


class BuildService:  # pylint: disable=too-many-instance-attributes  # the ports and adapters it wires
    """Trigger, dispatcher and status logic over the ledger, the slots, the queues and the start port."""

    def __init__(self, *, registry: Any, ledger: Ledger, slots: Slots, queues: Queues, start: StartExecution,
                 find: FindExecution | None = None, notifier: Notifier | None = None,
                 settings: DispatchSettings = DispatchSettings(), clock: Callable[[], str] = utc_now,
                 direct_start: bool = True, model_package: FindModelPackage | None = None,
                 status_of: ExecutionStatus | None = None, failure_of: FindFailure | None = None):
        self.registry = registry
        self.names = registry.names()
        self.ledger = ledger
        self.slots = slots
        self.queues = queues
        self.start = start
        self.find = find
        self.notifier = notifier
        self.settings = settings
        self.clock = clock
        self.direct_start = direct_start
        self.model_package = model_package
        self.status_of = status_of
        self.failure_of = failure_of
        self.owner = uuid.uuid4().hex
        #: when this dispatcher last swept (monotonic seconds), None before its first run
        self._last_sweep: float | None = None
        #: when this dispatcher last recounted the tiers' counts (its start counts as one)
        self._last_recount = time.monotonic()
        #: tier -> runs in a row that ended with requests still unfiled on the queue
        self._undrained: dict[str, int] = {}
        #: execution id -> the status rank its ledger item is known to have reached (ranks only grow)
        self._known: OrderedDict[str, int] = OrderedDict()
        #: the status batch this thread is in: its ends per tier, and the backlog heads read for them
        self._batch = threading.local()
        #: tier -> the `unfiled` count the last recount saw while the tier's queue was empty
        self._empty_queue_unfiled: dict[str, int] = {}

    # -- trigger -------------------------------------------------------------------------------------
    def _tier_of(self, tenant_id: str) -> tuple[str, int, Any]:
        tenant = self.registry.tenant(tenant_id)
        return tenant.tier, self.registry.platform.tiers[tenant.tier].max_concurrent_builds, tenant

    def submit(self, request: BuildRequest) -> Outcome:
        """Accept one checked request: start it now, or queue it. Raises RejectedRequest if invalid."""
        tenant = check_registry(request, self.registry)
        tier, limit, _ = self._tier_of(tenant.id)
        effective = tenant.effective_tier(self.registry.platform.tiers)
        now = self.clock()
        eid = request.execution_id
        if self.direct_start:
            outcome = transact(self.slots.client, [
                self.ledger.new_item(request, tier, effective.instance_type, effective.instance_count, STARTING, now),
                self.ledger.state_request_item(request),
                *self.slots.admit_items(tier, limit, tenant.id, eid, now, tenant_cap=tenant.overrides.max_concurrent_builds)])
            if outcome.ok:
                return self._start(request, tier, attempt=1)
            if "ledger" in outcome.failed:
                return self._duplicate(request, outcome.old.get("ledger"))
        outcome = transact(self.slots.client, [
            self.ledger.new_item(request, tier, effective.instance_type, effective.instance_count, QUEUED, now),
            self.ledger.state_request_item(request),
            *self.slots.enqueue_items(tier, tenant.id)])
        if not outcome.ok:
            if "ledger" in outcome.failed:
                return self._duplicate(request, outcome.old.get("ledger"))
            raise MlopsError(f"could not queue {eid}: transaction {'conflict' if outcome.conflict else 'cancelled'}",
                             "retry: nothing was recorded")
        self.queues.send(self.names.tier_queue(tier), request.to_message())
        return Outcome(eid, "queued", QUEUED)

    def _duplicate(self, request: BuildRequest, old: dict[str, Any] | None) -> Outcome:
        """A request already in the ledger: report it; re-queue it if the first trigger died before sending."""
        item = public(old) if old else (self.ledger.get(request.execution_id) or {})
        status = item.get("status")
        if status == QUEUED and item.get("status_time", "") < self._stale_before():
            self.queues.send(self.names.tier_queue(item["tier"]), request.to_message())
            return Outcome(request.execution_id, "duplicate", status, detail="re-queued: the first delivery did not finish")
        return Outcome(request.execution_id, "duplicate", status, item.get("pipeline_execution_arn"))

    def _stale_before(self) -> str:
        now = datetime.fromisoformat(self.clock())
        return (now - timedelta(seconds=self.settings.lease_seconds)).isoformat(timespec="microseconds")

    def _start(self, request: BuildRequest, tier: str, attempt: int) -> Outcome:
        """Call the start port for an admitted request and record the result.

        A retaken start (attempt > 1) first asks the `find` port whether the execution exists: on AWS the
        ClientRequestToken already makes the second start a no-op, but moto ignores the token. A refusal
        for good (`StartRejected`: validation, no such pipeline or image) fails the request at once and frees
        its slot. Any other error is temporary (throttling, a limit, a conflict): the request keeps its slot as
        STARTING and the sweep starts it again once the lease has passed (the back-off), until
        `max_start_attempts`; nothing is raised, so one failing start never stops the others.
        """
        eid = request.execution_id
        try:
            arn = None if attempt == 1 or self.find is None else self.find(request)
            if arn is None:
                arn = self.start(request, request.client_request_token)
        except StartRejected as exc:
            self._fail_start(request, tier, exc.one_line())
            return Outcome(eid, "failed", FAILED, detail=exc.one_line())
        except Exception as exc:  # pylint: disable=broad-exception-caught  # temporary until proven otherwise
            error = f"{type(exc).__name__}: {exc.one_line() if isinstance(exc, MlopsError) else exc}"
            if attempt >= self.settings.max_start_attempts:
                reason = f"gave up after {attempt} start attempts: {error}"
                self._fail_start(request, tier, reason)
                return Outcome(eid, "failed", FAILED, detail=reason)
            LOG.warning("start of %s failed (attempt %d of %d), retried after the lease: %s", eid, attempt,
                        self.settings.max_start_attempts, error)
            return Outcome(eid, "delayed", STARTING, detail=f"start attempt {attempt} failed ({error}); "
                           f"retried in about {self.settings.lease_seconds} s")
        self.ledger.record_started(eid, arn, self.clock())
        return Outcome(eid, "started", STARTING, arn)

    def _fail_start(self, request: BuildRequest, tier: str, reason: str) -> None:
        now = self.clock()
        transact(self.slots.client, [
            self.ledger.status_item(request.execution_id, FAILED, now, "dispatcher", {"failure_reason": reason, "ended_at": now}),
            self.ledger.state_end_item(request.tenant, request.model, request.execution_id),
            *self.slots.release_items(tier, request.tenant, request.execution_id)])

    # -- dispatcher ------------------------------------------------------------------------------------
    def dispatch(self) -> DispatchReport:
        """One scheduled run: every tier, highest priority first; now and then, repair stuck slots."""
        report = DispatchReport()
        tiers = self.registry.platform.tiers
        every = self.settings.lease_seconds if self.settings.sweep_every_seconds is None else self.settings.sweep_every_seconds
        sweeping = self._last_sweep is None or time.monotonic() - self._last_sweep >= every
        if sweeping:
            self._last_sweep = time.monotonic()
        recounting = time.monotonic() - self._last_recount >= self.settings.recount_every_seconds
        if recounting:
            self._last_recount = time.monotonic()
        for tier in tier_order({name: t.priority for name, t in tiers.items()}):
            if sweeping:
                self.sweep(tier, report)
            if recounting:
                self.recount(tier, report)
            self.dispatch_tier(tier, report, file_anyway=sweeping)
        return report

    def recount(self, tier: str, report: DispatchReport) -> None:
        """Correct the tier's counts from its slots and backlog (mlops.aws.slots.Slots.recount).

        The count of requests not yet filed is only taken as drifted when the tier's queue was empty at two
        sweeps in a row while the counter kept the same non-zero value: a request is counted just before its
        message is sent, so one empty look can be that moment.
        """
        limit = self.registry.platform.tiers[tier].max_concurrent_builds
        empty = self.queues.depth(self.names.tier_queue(tier)) == 0

        def drifted(counted: int) -> bool:
            seen = self._empty_queue_unfiled.pop(tier, None)
            if empty:
                self._empty_queue_unfiled[tier] = counted
            return empty and counted != 0 and seen == counted

        for name, (was, now) in self.slots.recount(tier, limit, drifted).items():
            report.recounted[f"{tier}/{name}"] = [was, now]
            LOG.warning("recount: %s %s was %d, its items say %d: corrected", tier, name, was, now)

    def sweep(self, tier: str, report: DispatchReport) -> None:
        """Repair what a lost message or event left behind, for every slot held longer than the lease.

        - an execution that SageMaker has (an ARN) and that the ledger still shows running: its status is
          asked (the `status_of` port) and, if the ledger missed it (a terminal event that went to the DLQ,
          an `Executing` event never delivered), applied as the event would have been: status, slot release
          or handover, notification. So a slot never leaks for longer than one sweep period after its end;
        - an execution still STARTING without an ARN (its starter died, or its start failed for a while):
          started again, after asking the `find` port;
        - a slot of a finished execution (a release that never happened): released.
        One query of the tier's old slots, one ledger read per old slot, one status call per running one.
        """
        for slot in self.slots.old_slots(tier, self._stale_before()):
            eid = slot["execution_id"]
            item = self.ledger.get(eid)
            if item is None or item["status"] in TERMINAL:
                if self.slots.release(tier, slot["tenant"], eid):
                    report.released_stale += 1
            elif item.get("pipeline_execution_arn") and self.status_of is not None:
                self._reconcile(item, report, self.status_of)
            elif item["status"] == STARTING:
                try:
                    request = parse_request(parse_json(item["request"]))
                except NewerRequest:
                    continue  # a newer release's sweep restarts it
                if self.ledger.claim_restart(eid, int(item.get("start_attempt", 1)), self._stale_before(), self.clock()):
                    self._start(request, tier, attempt=int(item.get("start_attempt", 1)) + 1)
                    report.restarted += 1

    def _reconcile(self, item: dict[str, Any], report: DispatchReport, status_of: ExecutionStatus) -> None:
        """Compare a running ledger item with SageMaker; apply a status the ledger missed (one log line each)."""
        eid, arn = item["execution_id"], item["pipeline_execution_arn"]
        try:
            status = status_of(arn)
        except MlopsError as exc:  # asked again at the next sweep
            LOG.warning("reconcile: cannot read the status of %s: %s", eid, exc.one_line())
            return
        if status not in FROM_SAGEMAKER or RANK[FROM_SAGEMAKER[status]] <= RANK[item["status"]]:
            return
        try:
            outcome = self.record_status(PipelineStatusEvent(execution_id=eid, status=status, pipeline_execution_arn=arn,
                                                             at=self.clock(), started_at=item.get("started_at")))
        except MlopsError as exc:  # e.g. a transaction conflict: nothing was written, the next sweep tries again
            LOG.warning("reconcile: %s not applied now: %s", eid, exc.one_line())
            return
        if outcome.result == "applied":
            report.reconciled[eid] = FROM_SAGEMAKER[status]
            LOG.warning("reconcile: %s was %s in the ledger and %s in SageMaker: applied (%s)", eid, item["status"],
                        status, outcome.detail or "slot released")

    def dispatch_tier(self, tier: str, report: DispatchReport, file_anyway: bool = False) -> None:
        """File what the tier's queue holds into its fair backlog, then admit what fits, in start-tag order.

        `file_anyway` (on sweep runs) looks at the queue even when the counter says nothing is unfiled, so a
        counter that went wrong can delay a request but never strand it.
        """
        limit = self.registry.platform.tiers[tier].max_concurrent_builds
        if self.settings.tier_lease_ms:
            state = self.slots.lease(tier, limit, self.owner, int(time.time() * 1000), self.settings.tier_lease_ms)
            if state is None:
                if file_anyway:  # only when the counter says nothing is unfiled: otherwise the lease holder files
                    state = self.slots.read_counter(tier, limit)
                    if state.unfiled <= 0:
                        self._file(tier, state, report, lease_owner=None)
                return  # nothing to do, or another dispatcher is on it
            lease_ended = False
            try:
                if self._file_then_admit(tier, state, report, file_anyway):
                    lease_ended = self._admit(tier, limit, state, report, lease_owner=self.owner)
            finally:
                if not lease_ended:
                    self.slots.end_lease(tier, self.owner)
            return
        state = self.slots.read_counter(tier, limit)  # small; the backlog is read only when there is room
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
        if self._file(tier, state, report, lease_owner=self.owner if self.settings.tier_lease_ms else None):
            self._undrained[tier] = 0
            return True
        self._undrained[tier] = self._undrained.get(tier, 0) + 1
        return self._undrained[tier] > self.settings.undrained_rounds

    def _file(self, tier: str, state: TierState, report: DispatchReport, lease_owner: str | None) -> bool:
        """Move requests from the tier's queue into its backlog with their start tags (mlops.admission).

        Up to `receives_per_round` receives of 10; per batch of 3 receives, one BatchGetItem for the tenants'
        next tags and one transaction: each request's ledger mark (only once, only while QUEUED), its backlog
        item, the tenants' next tags (conditional on the values read) and the counter's `unfiled`. Messages
        are deleted only after that transaction: a dispatcher that dies before loses nothing, the message
        comes back after its visibility timeout, and filing it again fails on the ledger mark. True if the
        queue was drained (a receive came back short).
        """
        queue = self.names.tier_queue(tier)
        receives = 0
        while receives < self.settings.receives_per_round:
            messages: list[Message] = []
            drained = False
            for _ in range(3):
                got = self.queues.receive(queue, 10, self.settings.lease_seconds)
                receives += 1
                messages += got
                drained = len(got) < 10
                if drained or receives >= self.settings.receives_per_round:
                    break
            handled: list[str] = []
            arrivals = self._arrivals(queue, messages, handled, report)
            try:
                if arrivals and not self._file_batch(tier, state, arrivals, handled, report, lease_owner):
                    self.queues.change_visibility(queue, [(m.receipt, 0) for m in messages if m.receipt not in handled])
                    return False
            finally:
                if handled:
                    self.queues.delete(queue, handled)
            if drained:
                return True
        return False

    def _file_batch(self, tier: str, state: TierState, arrivals: list[Candidate], handled: list[str],  # pylint: disable=too-many-arguments
                    report: DispatchReport, lease_owner: str | None) -> bool:
        """One filing transaction (retried without the requests that turn out to be filed or gone); False if
        the tier's state moved under us (another dispatcher filed for the same tenants): try again later."""
        pending = arrivals
        while pending:
            old = self.slots.next_tags(tier, sorted({c.tenant for c in pending}))
            tagged, new = assign_tags(state.clock, old, pending)
            items = [self.ledger.file_item(c.ref[1].execution_id, c.tag) for c in tagged]
            items += self.slots.file_items(tier, [(c.tenant, c.tag, c.requested_at, c.ref[1].execution_id, c.ref[0].body)
                                                  for c in tagged], old, new, lease_owner)
            outcome = transact(self.slots.client, items)
            if outcome.ok:
                handled += [c.ref[0].receipt for c in tagged]
                report.filed[tier] = report.filed.get(tier, 0) + len(tagged)
                return True
            gone = {c.ref[1].execution_id for c in pending if f"ledger:{c.ref[1].execution_id}" in outcome.failed}
            if not gone:
                return False
            for candidate in pending:
                message, request = candidate.ref
                if request.execution_id not in gone:
                    continue
                item = outcome.old.get(f"ledger:{request.execution_id}")
                if item is None:
                    self.queues.dead_letter(self.names.tier_queue(tier), message.body,
                                            f"request {request.execution_id} is not in the ledger (queued outside the "
                                            "trigger); send it to the trigger instead")
                    report.rejected += 1
                else:
                    report.duplicates += 1  # filed before, or no longer waiting: this message is a copy
                handled.append(message.receipt)
            pending = [c for c in pending if c.ref[1].execution_id not in gone]
        return True

    def _arrivals(self, queue: str, messages: list[Message], handled: list[str], report: DispatchReport) -> list[Candidate]:
        """Parse received messages; a malformed one goes to the dead-letter queue with its reason."""
        arrivals = []
        for message in messages:
            try:
                request = parse_request(parse_json(message.body))
            except NewerRequest as exc:  # not handled: visible again after the lease, for a newer dispatcher
                LOG.info("message left on %s: %s", queue, exc.one_line())
                continue
            except RejectedRequest as exc:
                self.queues.dead_letter(queue, message.body, exc.one_line())
                handled.append(message.receipt)
                report.rejected += 1
                continue
            arrivals.append(Candidate(ref=(message, request), tenant=request.tenant, requested_at=request.requested_at))
        return arrivals

    def _admit(self, tier: str, limit: int, state: TierState, report: DispatchReport, lease_owner: str | None) -> bool:
        """Admit the head of the backlog into the free slots: one query, one transaction, the starts, one
        write of the starts. True if the transaction ended the lease."""
        if state.free <= 0 or state.waiting <= 0:
            return False
        caps = self._caps()
        room = min(state.free, MAX_ADMISSIONS_PER_ROUND)
        head = self._head(tier, room + min(10, len(caps)))
        skip: set[str] = set()
        while head:
            chosen = pick(head, room, skip)
            if not chosen:
                return False
            now = self.clock()
            items = [TxItem(f"ledger:{c.ref[1].execution_id}", self.ledger.start_item(c.ref[1].execution_id, now).op)
                     for c in chosen]
            items += self.slots.admit_many_items(tier, limit, [(c.tenant, c.ref[1].execution_id, c.ref[0]) for c in chosen], now,
                                                 caps=caps, clock=max(c.tag for c in chosen), lease_owner=lease_owner)
            outcome = transact(self.slots.client, items)
            if outcome.ok:
                report.admitted[tier] = report.admitted.get(tier, 0) + len(chosen)
                self._start_many(tier, [c.ref[1] for c in chosen])
                return lease_owner is not None
            if outcome.conflict or outcome.failed & {"counter", "account"} or not outcome.failed:
                return False  # full, the lease lost, or another dispatcher admitted first: the next run
            for candidate in chosen:
                sk, request = candidate.ref
                eid = request.execution_id
                if f"ledger:{eid}" in outcome.failed or f"backlog:{eid}" in outcome.failed:
                    self._not_queued(request, tier, outcome.old.get(f"ledger:{eid}"), report)
                    self._take_out(tier, sk, candidate.tenant)  # no longer waiting here
                    head.remove(candidate)
                elif f"tenant:{candidate.tenant}" in outcome.failed:
                    skip.add(candidate.tenant)  # at its cap: the others go first
        return False

    def _caps(self) -> dict[str, int]:
        """Tenants with their own concurrency cap inside their tier."""
        return {tid: t.overrides.max_concurrent_builds for tid, t in self.registry.tenants.items()
                if t.overrides.max_concurrent_builds is not None}

    def _head(self, tier: str, count: int) -> list[Candidate]:
        """The first `count` requests of the tier's backlog as candidates (one strongly consistent query)."""
        head = []
        for item in self.slots.backlog_head(tier, count):
            try:
                request = parse_request(parse_json(item["request"]))
            except NewerRequest:  # filed by a newer release: its dispatcher admits it
                continue
            except RejectedRequest as exc:  # it was checked when filed: only a hand-edited item gets here
                self._withdraw(tier, item, exc.one_line())
                continue
            head.append(Candidate(ref=(item["sk"], request), tenant=item["tenant"], requested_at=request.requested_at,
                                  tag=int(item["tag"])))
        return head

    def _withdraw(self, tier: str, item: dict[str, Any], reason: str) -> None:
        """A backlog item that no longer parses: its body to the tier queue's DLQ with the reason, its request
        FAILED in the ledger (the execution id ends its sort key), out of the backlog and the waiting counts."""
        sk, eid = str(item["sk"]), str(item["sk"]).rsplit("#", 1)[-1]
        reason = f"backlog item of {eid} cannot be read: {reason}"
        LOG.error("%s; dead-lettered and marked FAILED", reason)
        self.queues.dead_letter(self.names.tier_queue(tier), str(item.get("request", "")), reason)
        now = self.clock()
        recorded = self.ledger.get(eid)
        if recorded is not None and recorded["status"] == QUEUED:
            self.ledger.write(self.ledger.status_item(eid, FAILED, now, "dispatcher", {"failure_reason": reason, "ended_at": now}))
            self.ledger.write(self.ledger.state_end_item(recorded["tenant"], recorded["model"], eid))
        self._take_out(tier, sk, str(item.get("tenant", "")))

    def _take_out(self, tier: str, sk: str, tenant: str) -> None:
        """A backlog item out of the backlog and out of the waiting counts (a count already at zero: only the
        item; the recount repairs the rest)."""
        outcome = transact(self.slots.client, self.slots.withdraw_items(tier, sk, tenant))
        if not outcome.ok and "unfile" not in outcome.failed:
            transact(self.slots.client, [self.slots.unfile_item(tier, sk)])

    def _start_many(self, tier: str, requests: list[BuildRequest]) -> None:
        """Start admitted requests. Their ledger items stay STARTING until the pipeline's `Executing` event,
        which SageMaker sends when an execution starts, records the ARN (no write of our own: it would say
        the same thing once more). A refused start fails its request and frees its slot; a temporary error
        leaves that request to the sweep (which asks the `find` port before starting again) and the round
        goes on with the next one."""
        for request in requests:
            try:
                self.start(request, request.client_request_token)
            except StartRejected as exc:
                self._fail_start(request, tier, exc.one_line())
            except Exception as exc:  # pylint: disable=broad-exception-caught  # temporary: the sweep retries it
                LOG.warning("start of %s failed, retried after the lease: %s: %s", request.execution_id,
                            type(exc).__name__, exc)

    def _not_queued(self, request: BuildRequest, tier: str, item: dict[str, Any] | None, report: DispatchReport) -> None:
        """A backlog entry whose request the ledger no longer has as QUEUED: a copy (counted), or a start whose
        dispatcher vanished (taken over once stale; otherwise the sweep looks again after the lease)."""
        if item is None:
            return
        if item["status"] == STARTING and self.ledger.claim_restart(
                request.execution_id, int(item.get("start_attempt", 1)), self._stale_before(), self.clock()):
            self._start(request, item.get("tier", tier), attempt=int(item.get("start_attempt", 1)) + 1)
            report.restarted += 1
        elif item["status"] != STARTING:
            report.duplicates += 1

    # -- status ----------------------------------------------------------------------------------------
    def record_status(self, event: PipelineStatusEvent) -> Outcome:
        """Apply one status-change event; on the terminal one release the slot and notify.

        An event whose status this service already saw applied (or found superseded) for the execution is
        answered without a call: ledger ranks only grow, so what was known stays true. That makes the
        duplicate terminal event and the late `Executing` of a batch free.
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
        """The ledger item of `execution_id` has reached `rank` (events at or below it need no call)."""
        self._known[execution_id] = max(rank, self._known.pop(execution_id, 0))
        while len(self._known) > KNOWN_STATUS_MEMORY:
            self._known.popitem(last=False)

    def _record_status(self, event: PipelineStatusEvent) -> Outcome:  # pylint: disable=too-many-return-statements
        eid = event.execution_id
        status = FROM_SAGEMAKER[event.status]
        extra: dict[str, Any] = {"pipeline_execution_arn": event.pipeline_execution_arn}
        if event.started_at:
            extra["started_at"] = event.started_at
        if status not in TERMINAL:
            applied = self.ledger.write(self.ledger.status_item(eid, status, event.at, "sagemaker", extra))
            # a failed write may also mean "not in the ledger yet": not remembered
            return Outcome(eid, "applied", status) if applied else Outcome(eid, "stale", status, detail="unconfirmed")
        ended = event.ended_at or event.at
        extra |= {"ended_at": ended, "duration_seconds": _seconds_between(event.started_at, ended)}
        if status == SUCCEEDED:
            extra["model_package_arn"] = self._model_package_of(event.pipeline_execution_arn)
        if status == FAILED:
            extra |= self._failure_fields(event.pipeline_execution_arn)
        tier, tenant = self._owner(eid)
        if tier is None:
            return Outcome(eid, "ignored", status, detail="not an execution of this platform")
        model, trained = self._what_ended(event, status, tenant, ended)
        successors = self._successors(tier) if self.settings.handover else None
        outcome, successor = self._terminal(event, status, extra, (tier, tenant, model), trained, successors)
        if not outcome.ok and not outcome.failed:
            raise MlopsError(f"the end of {eid} was not recorded: transaction {'conflict' if outcome.conflict else 'cancelled'}",
                             "nothing was written; the status event is retried")
        if not outcome.ok and "ledger" not in outcome.failed and "slot" in outcome.failed:
            # The slot is not where the registry says (the tenant changed tier while it ran): ask the ledger.
            moved = self._end_where_the_ledger_says(event, status, extra, ended)
            if moved is None:
                return Outcome(eid, "ignored", status, detail="not in the ledger")
            outcome, trained = moved
        if not outcome.ok and "ledger" in outcome.failed:
            old = outcome.old.get("ledger")
            if trained is None and old and old.get("status") == SUCCEEDED:
                self.ledger.record_trained(public(old))  # newer-wins: repairs a delivery that died before writing it
            if old and old.get("status") in TERMINAL and not old.get("notified") and not self._notify(eid):
                return Outcome(eid, "stale", status, detail="unconfirmed")  # the notification is still owed
            return Outcome(eid, "stale", status)
        item = None
        if status == SUCCEEDED and trained is None:  # an event without our description: the ledger has the version
            item = self.ledger.get(eid)
            if item is not None:
                self.ledger.record_trained(item)  # the retraining check's "newest training" of this tenant x model
        handed = None
        if successor is not None:
            handed = successor.ref[1].execution_id
            self._start_handed_over(tier, successor.ref[1])
        if not self._notify(eid, item):
            return Outcome(eid, "applied", status, detail="unconfirmed")  # a redelivery may still notify
        return Outcome(eid, "applied", status, detail=f"slot handed to {handed}" if handed else None)

    def _what_ended(self, event: PipelineStatusEvent, status: str, tenant: str,
                    ended: str) -> tuple[str, dict[str, Any] | None]:
        """The model of an ending execution and, for a success whose description is ours, the training to record
        (the description names the version: no ledger read)."""
        eid = event.execution_id
        described = parse_execution_description(event.description)
        if described and described["tenant"] != tenant:
            described = None
        model = eid[len(tenant) + 1:-13]  # `<tenant>-<model>-<12 hex>`
        if described:
            model = described["model"] or model
        elif model not in self.registry.platform.models:
            model = (self.ledger.get(eid) or {}).get("model") or model
        if status != SUCCEEDED or not described:
            return model, None
        return model, {"tenant": tenant, "model": model, "execution_id": eid, "version": described["version"],
                       "ended_at": ended, "started_at": event.started_at}

    def _end_where_the_ledger_says(self, event: PipelineStatusEvent, status: str, extra: dict[str, Any],
                                   ended: str) -> tuple[TxOutcome, dict[str, Any] | None] | None:
        """The end of an execution whose slot is not where the registry says, from its ledger item (None: not
        in the ledger). Without any slot, the status and the state are still written, the state first (both
        are idempotent), so that a redelivery after a crash in between finishes the job."""
        eid = event.execution_id
        item = self.ledger.get(eid)
        if item is None:
            return None
        trained = item | {"ended_at": ended, "started_at": event.started_at or item.get("started_at")} \
            if status == SUCCEEDED else None
        outcome, _ = self._terminal(event, status, extra, (item["tier"], item["tenant"], item["model"]), trained)
        if not outcome.ok and "ledger" not in outcome.failed:  # no slot at all: record the status anyway
            end = self.ledger.state_end_item(item["tenant"], item["model"], eid, trained)
            if not self.ledger.write(end) and trained:  # a newer training is recorded: only the end
                self.ledger.write(self.ledger.state_end_item(item["tenant"], item["model"], eid))
            self.ledger.write(self.ledger.status_item(eid, status, event.at, "sagemaker", extra))
            trained = trained or {}  # recorded (or not newer): not again
        return outcome, trained

    def begin_batch(self, events: list[PipelineStatusEvent]) -> None:
        """Before a batch of status events (per thread: the local runtime runs several consumers over one service).

        Counts the batch's terminal events per tier (from the registry, no call), so that the first handover
        of a tier reads the backlog's head for all of them with one query; and keeps its `Executing` events,
        so that the batch's first terminal transactions record them too (`RIDERS_PER_TRANSACTION` at most)
        instead of a write each. The handler puts terminal events first for that.
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

    def _riders(self, *busy: str) -> dict[str, TxItem]:
        """The batch's `Executing` writes that can ride on a terminal transaction (not for an execution the
        transaction already writes: one item may appear once in a transaction)."""
        pending: dict[str, PipelineStatusEvent] = getattr(self._batch, "riders", None) or {}
        riders = {}
        for eid, event in pending.items():
            if eid in busy or self._known.get(eid, 0) >= RANK[EXECUTING]:
                continue
            extra = {"pipeline_execution_arn": event.pipeline_execution_arn, "started_at": event.started_at}
            riders[eid] = TxItem(f"exec:{eid}", self.ledger.status_item(eid, EXECUTING, event.at, "sagemaker", extra).op)
            if len(riders) >= RIDERS_PER_TRANSACTION:
                break
        return riders

    def _successors(self, tier: str) -> Iterator[Candidate]:
        """Who the slot goes to, in tag order: the backlog's head, then the next ones if the first cannot take it
        (another handover or dispatcher admitted it, or its tenant is at its cap). Inside a batch the head is
        read once for all the batch's ends in the tier; outside, one query of two (a spare for a collision)."""
        heads = getattr(self._batch, "heads", None)
        if heads is None:  # not in a batch
            yield from self._head(tier, 2)
            return
        while True:
            queue, complete = heads.get(tier, (deque(), False))
            if not queue:
                if complete:
                    return
                want = self._batch.expected.get(tier, 1) + 1
                found = self._head(tier, want)
                queue, complete = deque(found), len(found) < want
                heads[tier] = (queue, complete)
                if not queue:
                    return
            yield queue.popleft()

    def _start_handed_over(self, tier: str, request: BuildRequest) -> None:
        """Start the request the slot went to. A start that fails for now leaves it STARTING with its slot: the
        dispatcher's sweep retakes it after the lease (never the status event's failure: its end is recorded)."""
        try:
            self._start_many(tier, [request])
        except Exception as exc:  # pylint: disable=broad-exception-caught  # retaken by the sweep, logged
            LOG.warning("start of %s (handed a slot) failed, the sweep retries it: %s: %s",
                        request.execution_id, type(exc).__name__, exc)

    def _terminal(self, event: PipelineStatusEvent, status: str, extra: dict[str, Any],
                  owner: tuple[str, str, str], trained: dict[str, Any] | None,
                  successors: Iterator[Candidate] | None = None) -> tuple[TxOutcome, Candidate | None]:
        """The terminal transaction: the ledger status, the tenant x model's state (the build ends; with
        `trained`, it is the newest training unless a newer one is recorded) and the slot, released or handed
        to the first of `successors` (the backlog's head): its QUEUED -> STARTING, its slot, out of the backlog.

        Run again without `trained` when that newer-wins condition failed; with the next successor when only
        the successor's own conditions failed (taken by someone else, its tenant at its cap), at most
        `HANDOVER_ATTEMPTS` of them; without any when the tier's conditions failed (full, a burst still
        unfiled, a higher tier waiting under the account quota) or on a conflict: the end is recorded in
        any case. Returns the outcome and the successor if it got the slot.
        """
        tier, tenant, model = owner
        eid, now = event.execution_id, self.clock()
        tries = 0
        successor = next(successors, None) if successors is not None else None
        riders = self._riders(eid, successor.ref[1].execution_id if successor else eid)
        while True:
            items = [self.ledger.status_item(eid, status, event.at, "sagemaker", extra),
                     self.ledger.state_end_item(tenant, model, eid, trained), *riders.values()]
            if successor is None:
                items += self.slots.release_items(tier, tenant, eid)
            else:
                tries += 1
                after = successor.ref[1]
                items.append(TxItem(f"ledger:{after.execution_id}", self.ledger.start_item(after.execution_id, now).op))
                items += self.slots.handover_items(
                    tier, self.registry.platform.tiers[tier].max_concurrent_builds, (tenant, eid),
                    (successor.tenant, after.execution_id, successor.ref[0], successor.tag), now,
                    cap=self._caps().get(successor.tenant), higher=self._higher_tiers(tier))
            outcome = transact(self.slots.client, items)
            if outcome.ok:
                for rider in riders:  # recorded: their own records in the batch cost nothing
                    self._batch.riders.pop(rider, None)
                    self._remember(rider, RANK[EXECUTING])
                return outcome, successor
            if outcome.failed & {"ledger", "slot"}:
                return outcome, None
            if riders and (outcome.conflict or any(name.startswith("exec:") for name in outcome.failed)):
                riders = {}  # written by their own records, one by one, as without a batch
                continue
            retry = False
            if trained and "state" in outcome.failed:
                trained, retry = None, True
            others = outcome.failed - {"state"}
            if successor is not None and (outcome.conflict or others):
                own = {f"{kind}:{successor.ref[1].execution_id}" for kind in ("ledger", "backlog", "slot")}
                own.add(f"tenant:{successor.tenant}")
                mine_only = not outcome.conflict and others <= own
                successor = next(successors, None) if mine_only and successors is not None and \
                    tries < HANDOVER_ATTEMPTS else None
                retry = True
            if not retry:
                return outcome, None

    def _higher_tiers(self, tier: str) -> tuple[str, ...]:
        """The tiers that come before `tier` by priority."""
        order = tier_order({name: t.priority for name, t in self.registry.platform.tiers.items()})
        return tuple(order[:order.index(tier)])

    def _model_package_of(self, execution_arn: str | None) -> str | None:
        """The model package the execution registered, from the `model_package` port; never fails the event
        (a SageMaker hiccup costs the ARN, not the status and the slot)."""
        if self.model_package is None or not execution_arn:
            return None
        try:
            return self.model_package(execution_arn)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # best effort, logged
            LOG.warning("model package of %s not found: %s: %s", execution_arn, type(exc).__name__, exc)
            return None

    def _failure_fields(self, execution_arn: str | None) -> dict[str, Any]:
        """The ledger fields of a failed execution's failing step, reason and log tail, from the `failure_of` port;
        never fails the event (a SageMaker or CloudWatch hiccup costs the detail, not the status and the slot)."""
        if self.failure_of is None or not execution_arn:
            return {}
        try:
            found = self.failure_of(execution_arn) or {}
        except Exception as exc:  # pylint: disable=broad-exception-caught  # best effort, logged
            LOG.warning("failure of %s not found: %s: %s", execution_arn, type(exc).__name__, exc)
            return {}
        fields = {"failed_step": found.get("step"), "failure_reason": str(found.get("reason") or "")[:1000] or None,
                  "failure_log": found.get("log"), "log_tail": str(found.get("log_tail") or "")[-LOG_TAIL_CHARS:] or None}
        return {k: v for k, v in fields.items() if v}

    def _registry_owner(self, execution_id: str) -> tuple[str | None, str]:
        """(tier, tenant) of an execution id `<tenant>-<model>-<12 hex>`, from the registry (no AWS call);
        (None, "") when no tenant or more than one matches."""
        matches = [(t.tier, t.id) for t in self.registry.tenants.values() for m in t.models
                   if execution_id.startswith(f"{t.id}-{m}-") and len(execution_id) == len(t.id) + len(m) + 14]
        return matches[0] if len(matches) == 1 else (None, "")

    def _owner(self, execution_id: str) -> tuple[str | None, str]:
        """(tier, tenant) of an execution, from the registry, else from the ledger."""
        tier, tenant = self._registry_owner(execution_id)
        if tier is not None:
            return tier, tenant
        item = self.ledger.get(execution_id)
        return (item["tier"], item["tenant"]) if item else (None, "")

    def record_rejected_upload(self, body: str, reason: str) -> dict[str, Any] | None:
        """A tenant's upload the trigger refused: in the ledger once (status REJECTED, the reason) and notified once,
        so it shows in `mlops executions list` and on the topic. None for a message that is no tenant's upload."""
        platform = self.registry.platform
        upload = rejected_upload(body, platform.project, platform.region, sorted(self.registry.tenants))
        if upload is None:
            return None
        item = self.ledger.record_rejected(upload, reason, self.clock()) or self.ledger.get_rejected(upload["id"]) or {}
        if self.notifier is not None and self.notifier.enabled and item and not item.get("notified"):
            result = self.notifier.notify(item)
            if result.sns_message_id or result.slack_ok or not result.errors:
                self.ledger.set_rejected_notified(upload["id"])
        return item

    def _notify(self, execution_id: str, item: dict[str, Any] | None = None) -> bool:
        """Send the terminal notification once; False if it is still owed (nothing could take it).
        `item`: the ledger item if this invocation has just read it after its terminal write."""
        if self.notifier is None or not self.notifier.enabled:
            return True
        item = item or self.ledger.get(execution_id)
        if item is None or item.get("notified"):
            return True
        result = self.notifier.notify(item)
        if result.sns_message_id or result.slack_ok or not result.errors:
            self.ledger.set_fields(execution_id, {"notified": True})
            return True
        return False


# -- wiring for the Lambda handlers and the local runtime ------------------------------------------------

def consume(queues: Queues, queue: str, body: str, receive_count: int, max_receives: int,
            work: Callable[[str], Outcome]) -> Outcome:
    """Process one SQS message body with `work`, deciding what never to retry.

    A rejection (malformed, unknown tenant) goes to the DLQ with its reason at once and counts as done. Any
    other error is raised, so the record is reported as a batch item failure and retried, until its last
    delivery (`max_receives`, the queue's maxReceiveCount): then it goes to the DLQ with the error as the
    reason instead of silently by redrive.
    """
    try:
        return work(body)
    except RejectedRequest as exc:
        LOG.warning("rejected message from %s: %s", queue, exc.one_line())
        queues.dead_letter(queue, body, exc.one_line())
        return Outcome("-", "rejected", detail=exc.one_line())
    except Exception as exc:  # pylint: disable=broad-exception-caught  # decide retry vs DLQ; re-raised below
        if receive_count < max_receives:
            raise
        reason = f"gave up after {receive_count} deliveries: {type(exc).__name__}: {exc}"
        LOG.error("dead-lettering message from %s: %s", queue, reason)
        queues.dead_letter(queue, body, reason)
        return Outcome("-", "rejected", detail=reason)


@dataclass(frozen=True)
class HandlerConfig:
    """What the handlers read from the environment, once (docs/trigger.md)."""

    max_receives: int = 5
    account_quota: int | None = None
    topic_arn: str | None = None
    slack_webhook_url: str | None = None
    ledger_table: str | None = None
    slots_table: str | None = None
    lease_seconds: int = 180

    @classmethod
    def from_env(cls, env: dict[str, str]) -> "HandlerConfig":
        """Read the MLOPS_* variables."""
        quota = env.get("MLOPS_ACCOUNT_MAX_EXECUTIONS")
        return cls(max_receives=int(env.get("MLOPS_MAX_RECEIVES", "5")), account_quota=int(quota) if quota else None,
                   topic_arn=env.get("MLOPS_NOTIFICATIONS_TOPIC") or None,
                   slack_webhook_url=env.get("MLOPS_SLACK_WEBHOOK_URL") or None,
                   ledger_table=env.get("MLOPS_LEDGER_TABLE") or None, slots_table=env.get("MLOPS_SLOTS_TABLE") or None,
                   lease_seconds=int(env.get("MLOPS_DISPATCH_LEASE_SECONDS", "180")))


def pipeline_ports() -> tuple[StartExecution, FindExecution | None, ExecutionStatus | None]:
    """The real pipeline ports (mlops.pipeline.ports: start, find, status), looked up when first needed."""
    import importlib  # pylint: disable=import-outside-toplevel  # the adapter is optional until wired

    try:
        module = importlib.import_module("mlops.pipeline.ports")
        return module.start_execution, getattr(module, "find_execution", None), getattr(module, "execution_status", None)
    except (ImportError, AttributeError):
        def missing(request: BuildRequest, token: str) -> str:
            raise MlopsError(f"no pipeline start port for {request.execution_id} ({token[:8]}…)",
                             "mlops.pipeline.ports.start_execution(request, client_request_token) is not installed")
        return missing, None, None


def service_from_env(env: dict[str, str] | None = None, start: StartExecution | None = None,
                     find: FindExecution | None = None) -> tuple[BuildService, HandlerConfig]:
    """The service as a Lambda (or the local runtime) builds it: registry, clients and ports from the environment."""
    import os  # pylint: disable=import-outside-toplevel

    import boto3  # pylint: disable=import-outside-toplevel  # keep `mlops --help` and pure imports light

    from mlops.config.tenants import load_from_settings  # pylint: disable=import-outside-toplevel
    from mlops.pipeline.progress import failure_reader  # pylint: disable=import-outside-toplevel  # boto3 only, no SDK
    from mlops.settings import Settings  # pylint: disable=import-outside-toplevel

    env = dict(os.environ if env is None else env)
    config = HandlerConfig.from_env(env)
    registry = load_from_settings(Settings.from_env(env))
    names = registry.names()
    status_of = None
    if start is None:
        start, find, status_of = pipeline_ports()
    dynamodb = boto3.client("dynamodb")
    notifier = Notifier(boto3.client("sns") if config.topic_arn else None, config.topic_arn, config.slack_webhook_url)
    service = BuildService(
        registry=registry, ledger=Ledger(dynamodb, config.ledger_table or names.ledger_table()),
        slots=Slots(dynamodb, config.slots_table or names.slots_table(), config.account_quota),
        queues=Queues(boto3.client("sqs")), start=start, find=find, notifier=notifier,
        settings=DispatchSettings(lease_seconds=config.lease_seconds),
        model_package=model_package_port(), status_of=status_of, failure_of=failure_reader())
    return service, config




_CURRENT: dict[str, Any] = {}


def use_service(factory: Callable[[], tuple[BuildService, HandlerConfig]] | None) -> None:
    """Choose how handlers build their service (the local runtime and tests); None restores the default."""
    _CURRENT.clear()
    if factory is not None:
        _CURRENT["factory"] = factory


def current_service() -> tuple[BuildService, HandlerConfig]:
    """The service of this process (a Lambda container builds it once, at the first event)."""
    if "service" not in _CURRENT:
        _CURRENT["service"] = _CURRENT.get("factory", service_from_env)()
    return _CURRENT["service"]
