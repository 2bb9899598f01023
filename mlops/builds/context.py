"""What the three build use cases share: their answers, their settings, the world they act on, the start of an
admitted request (the trigger starts directly, the dispatcher after admission, the status path after a handover)
and the reading of a tier's backlog (the dispatcher admits its head, the status path hands slots to it)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mlops.admission import Candidate
from mlops.build_ports import (BacklogEntry, BuildStore, ExecutionStatus, FindExecution, FindFailure, FindModelPackage, Message, Queues,
                                Record)
from mlops.errors import MlopsError
from mlops.naming import Names
from mlops.notify import Notifier
from mlops.requests import (BuildRequest, NewerRequest, RejectedRequest, StartExecution, StartRejected, parse_json, parse_request,
                            utc_now)
from mlops.statuses import FAILED, STARTING

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What happened to one request or event."""

    execution_id: str
    result: str  # started | delayed | queued | duplicate | recorded | applied | stale | ignored | failed | rejected
    status: str | None = None
    pipeline_execution_arn: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for handler responses and the CLI."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


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


@dataclass
class Context:  # pylint: disable=too-many-instance-attributes  # the ports and adapters the use cases share
    """The registry, the store, the queues, the pipeline ports, the notifier, the settings and the clock."""

    registry: Any
    store: BuildStore
    queues: Queues
    start: StartExecution
    find: FindExecution | None = None
    status_of: ExecutionStatus | None = None
    model_package: FindModelPackage | None = None
    failure_of: FindFailure | None = None
    notifier: Notifier | None = None
    settings: DispatchSettings = field(default_factory=DispatchSettings)
    clock: Callable[[], str] = utc_now
    #: the platform's names (the queues), from the registry
    names: Names = field(init=False)

    def __post_init__(self) -> None:
        self.names = self.registry.names()

    def limit(self, tier: str) -> int:
        """A tier's limit of builds at once."""
        return int(self.registry.platform.tiers[tier].max_concurrent_builds)

    def caps(self) -> dict[str, int]:
        """Tenants with their own concurrency cap inside their tier."""
        return {tid: t.overrides.max_concurrent_builds for tid, t in self.registry.tenants.items()
                if t.overrides.max_concurrent_builds is not None}

    def stale_before(self) -> str:
        """Now minus the lease: what was taken before it is someone's who vanished."""
        now = datetime.fromisoformat(self.clock())
        return (now - timedelta(seconds=self.settings.lease_seconds)).isoformat(timespec="microseconds")

    def notify(self, execution_id: str, record: Record | None = None) -> bool:
        """Send the terminal notification once; False if it is still owed (nothing could take it).
        `record`: the execution's record if the caller has just read it after its terminal write."""
        if self.notifier is None or not self.notifier.enabled:
            return True
        record = record or self.store.execution(execution_id)
        if record is None or record.get("notified"):
            return True
        result = self.notifier.notify(record)
        if result.sns_message_id or result.slack_ok or not result.errors:
            self.store.mark_notified(execution_id)
            return True
        return False


class Starts:
    """Starting admitted requests through the start port, and what a failed start does to the request and its slot."""

    def __init__(self, context: Context):
        self.context = context

    def start(self, request: BuildRequest, tier: str, attempt: int) -> Outcome:
        """Call the start port for an admitted request and record the result.

        A retaken start (attempt > 1) first asks the `find` port whether the execution exists: on AWS the
        ClientRequestToken already makes the second start a no-op, but moto ignores the token. A refusal
        for good (`StartRejected`: validation, no such pipeline or image) fails the request at once and frees
        its slot. Any other error is temporary (throttling, a limit, a conflict): the request keeps its slot as
        STARTING and the sweep starts it again once the lease has passed (the back-off), until
        `max_start_attempts`; nothing is raised, so one failing start never stops the others.
        """
        ctx, eid = self.context, request.execution_id
        try:
            arn = None if attempt == 1 or ctx.find is None else ctx.find(request)
            if arn is None:
                arn = ctx.start(request, request.client_request_token)
        except StartRejected as exc:
            self.fail(request, tier, exc.one_line())
            return Outcome(eid, "failed", FAILED, detail=exc.one_line())
        except Exception as exc:  # pylint: disable=broad-exception-caught  # temporary until proven otherwise
            error = f"{type(exc).__name__}: {exc.one_line() if isinstance(exc, MlopsError) else exc}"
            if attempt >= ctx.settings.max_start_attempts:
                reason = f"gave up after {attempt} start attempts: {error}"
                self.fail(request, tier, reason)
                return Outcome(eid, "failed", FAILED, detail=reason)
            LOG.warning("start of %s failed (attempt %d of %d), retried after the lease: %s", eid, attempt,
                        ctx.settings.max_start_attempts, error)
            return Outcome(eid, "delayed", STARTING, detail=f"start attempt {attempt} failed ({error}); "
                           f"retried in about {ctx.settings.lease_seconds} s")
        ctx.store.record_started(eid, arn, ctx.clock())
        return Outcome(eid, "started", STARTING, arn)

    def fail(self, request: BuildRequest, tier: str, reason: str) -> None:
        """A start refused for good: the request FAILED with the reason, its slot given back."""
        self.context.store.fail_start(request, tier, reason, self.context.clock())

    def start_admitted(self, tier: str, requests: list[BuildRequest]) -> None:
        """Start admitted requests. Their records stay STARTING until the pipeline's `Executing` event, which
        SageMaker sends when an execution starts, records the ARN (no write of our own: it would say the same
        thing once more). A refused start fails its request and frees its slot; a temporary error leaves that
        request to the sweep (which asks the `find` port before starting again) and the round goes on."""
        for request in requests:
            try:
                self.context.start(request, request.client_request_token)
            except StartRejected as exc:
                self.fail(request, tier, exc.one_line())
            except Exception as exc:  # pylint: disable=broad-exception-caught  # temporary: the sweep retries it
                LOG.warning("start of %s failed, retried after the lease: %s: %s", request.execution_id,
                            type(exc).__name__, exc)

    def start_handed_over(self, tier: str, request: BuildRequest) -> None:
        """Start the request a finished execution's slot went to. A start that fails for now leaves it STARTING with
        its slot: the dispatcher's sweep retakes it after the lease (never the status event's failure: its end is
        recorded)."""
        try:
            self.start_admitted(tier, [request])
        except Exception as exc:  # pylint: disable=broad-exception-caught  # retaken by the sweep, logged
            LOG.warning("start of %s (handed a slot) failed, the sweep retries it: %s: %s",
                        request.execution_id, type(exc).__name__, exc)


@dataclass(frozen=True)
class Received:
    """A request received from its tier queue, with its message: what a candidate refers to while it is filed."""

    message: Message
    request: BuildRequest


@dataclass(frozen=True)
class Waiting:
    """A request waiting in its tier's backlog, with its entry: what a candidate refers to while it is admitted."""

    entry: BacklogEntry
    request: BuildRequest


def received(candidate: Candidate) -> Received:
    """The received request a filing candidate stands for."""
    found: Received = candidate.ref
    return found


def waiting(candidate: Candidate) -> Waiting:
    """The waiting request an admission candidate stands for."""
    found: Waiting = candidate.ref
    return found


class Backlog:
    """Reading a tier's fair backlog as admission candidates (each stands for a `Waiting` request)."""

    def __init__(self, context: Context):
        self.context = context

    def head(self, tier: str, count: int) -> list[Candidate]:
        """The first `count` requests of the tier's backlog, in start-tag order. An entry that no longer reads is
        withdrawn; one a newer release filed is left to it."""
        head = []
        for entry in self.context.store.backlog_head(tier, count):
            try:
                request = parse_request(parse_json(entry.body))
            except NewerRequest:  # filed by a newer release: its dispatcher admits it
                continue
            except RejectedRequest as exc:  # it was checked when filed: only a hand-edited entry gets here
                self.withdraw(tier, entry, exc.one_line())
                continue
            head.append(Candidate(ref=Waiting(entry, request), tenant=entry.tenant, requested_at=request.requested_at, tag=entry.tag))
        return head

    def withdraw(self, tier: str, entry: BacklogEntry, reason: str) -> None:
        """An entry that no longer reads: its body to the tier queue's DLQ with the reason, its request FAILED (if
        still QUEUED), out of the backlog and the waiting counts."""
        ctx = self.context
        reason = f"backlog item of {entry.execution_id} cannot be read: {reason}"
        LOG.error("%s; dead-lettered and marked FAILED", reason)
        ctx.queues.dead_letter(ctx.names.tier_queue(tier), entry.body, reason)
        ctx.store.fail_queued(entry.execution_id, reason, ctx.clock())
        ctx.store.take_out(tier, entry)
