"""What the build use cases ask of the world: the build store, the queues and the pipeline ports, with typed results.

The **build store** keeps the ledger (one record per execution, its status history, the tenant x model
state the retraining check reads) and the tier slots (counters, slot per running execution, the fair
backlog). Each method is one intent of the use cases ("record this request and take a slot for it",
"admit these backlog entries", "end this execution and hand its slot over") and says what happened in the
use cases' words. Every guarantee lives in the store's writes: a request recorded once, a status that only
moves forward, a tier never over its limit, a slot taken and given back once. `mlops.aws.build_store` is the
DynamoDB store (each intent one conditional write or one transaction); the tests hold an in-memory one.

Plain data: no boto3, nothing of how a store keeps its items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from mlops.admission import TierState
from mlops.requests import BuildRequest

#: A ledger record (an execution or a refused upload) as the CLI and the notifications show it.
Record = dict[str, Any]

# -- the pipeline ports (mlops.pipeline.ports; the start itself is `mlops.requests.StartExecution`) --------------
#: The ARN of an execution already started for this request, if any (crash recovery).
FindExecution = Callable[[BuildRequest], "str | None"]
#: The model package a succeeded pipeline execution registered (by execution ARN), if any.
FindModelPackage = Callable[[str], "str | None"]
#: An execution's status as SageMaker has it now (DescribePipelineExecution), by ARN.
ExecutionStatus = Callable[[str], "str | None"]
#: Why a failed pipeline execution failed (by execution ARN): `mlops.pipeline.progress.failure`'s step, reason,
#: log and log tail, or None.
FindFailure = Callable[[str], "dict[str, Any] | None"]


# -- the queues --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    """A received message."""

    message_id: str
    receipt: str
    body: str
    receive_count: int


class Queues(Protocol):
    """The tier queues and their dead-letter queues (`mlops.aws.queues.Queues`)."""

    def send(self, queue: str, body: str) -> str:
        """Send one message; its id."""

    def depth(self, queue: str) -> int:
        """Messages in the queue, visible, in flight or delayed."""

    def receive(self, queue: str, count: int, visibility_seconds: int, wait_seconds: int = 0) -> list[Message]:
        """Up to `count` (at most 10) messages, hidden from other consumers for `visibility_seconds`."""

    def delete(self, queue: str, receipts: list[str]) -> None:
        """Delete received messages."""

    def change_visibility(self, queue: str, receipts: list[tuple[str, int]]) -> None:
        """Hide (or, with 0 seconds, show again) received messages."""

    def dead_letter(self, queue: str, body: str, reason: str) -> None:
        """Put a message's body on the queue's DLQ with the reason."""


# -- what the store is asked ----------------------------------------------------------------------------
@dataclass(frozen=True)
class NewRequest:
    """A checked request to record, with what its tier gives it."""

    request: BuildRequest
    tier: str
    instance_type: str
    instance_count: int
    at: str


@dataclass(frozen=True)
class Recorded:
    """What recording a new request did: `admitted` (recorded STARTING with its slot: start it), `no_room` (nothing
    recorded: the tier is full, someone waits, the tenant is at its cap or the account at its quota), `queued`
    (recorded QUEUED and counted as waiting: send it to the tier queue), `duplicate` (the ledger has it already;
    `existing` is its record when the store saw it in passing), or `conflict` / `cancelled` (nothing recorded)."""

    result: Literal["admitted", "no_room", "queued", "duplicate", "conflict", "cancelled"]
    existing: Record | None = None


@dataclass(frozen=True)
class Filing:
    """A request received from its tier queue, to be filed into the tier's backlog with its start tag."""

    tenant: str
    execution_id: str
    tag: int
    requested_at: str
    body: str


@dataclass(frozen=True)
class Filed:
    """What filing a batch did: all filed (`ok`), or nothing, and why: requests the ledger does not have
    (`unknown`: queued outside the trigger), requests filed before or no longer waiting (`copies`), or, when
    neither names any, the tier moved meanwhile (another dispatcher filed for the same tenants, the lease ended)."""

    ok: bool
    unknown: frozenset[str] = frozenset()
    copies: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BacklogEntry:
    """A request waiting in its tier's fair backlog. `position` is the store's own handle of the entry."""

    position: str
    tenant: str
    execution_id: str
    tag: int
    body: str


@dataclass(frozen=True)
class Admitted:
    """What admitting backlog entries did: all admitted (`ok`: start them), or nothing, and why: the tier as a
    whole (`refused`: full, the lease lost, another dispatcher first, a conflict: wait for the next run), or
    entries no longer waiting (`gone`, execution id -> its ledger record when the store saw it) and tenants at
    their cap (`capped`): admit again without them."""

    ok: bool
    refused: bool = False
    gone: dict[str, Record | None] = field(default_factory=dict)
    capped: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Slot:
    """A slot held by an execution."""

    execution_id: str
    tenant: str


@dataclass(frozen=True)
class Correction:
    """A count the recount found drifted and set right: the tier's (`tenant` None) or a tenant's."""

    tenant: str | None
    count: str
    was: int
    now: int

    @property
    def name(self) -> str:
        """`tier.<count>` or `tenant:<id>.<count>`."""
        return f"{'tier' if self.tenant is None else 'tenant:' + self.tenant}.{self.count}"


@dataclass(frozen=True)
class Ending:
    """The end of an execution: its terminal status and the fields it records, where its slot is, and, for a
    success, the training to record as the tenant x model's newest unless a newer one is."""

    execution_id: str
    tier: str
    tenant: str
    model: str
    status: str
    at: str
    fields: dict[str, Any] = field(default_factory=dict)
    trained: dict[str, Any] | None = None


@dataclass(frozen=True)
class Rider:
    """An `Executing` event of the same batch, recorded by the end's write."""

    execution_id: str
    at: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Handover:
    """The slot goes to `successor` (QUEUED -> STARTING) instead of being released, if the tier's rules allow:
    its limit, nobody left to file, the successor's tenant within `cap`, and (under an account quota) none of the
    `higher` tiers waiting with room of its own."""

    limit: int
    successor: BacklogEntry
    at: str
    cap: int | None = None
    higher: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ended:
    """What ending an execution did: all of it (`ok`), or nothing, and why. `status_refused`: the ledger has the
    execution at or past this status, or not at all (`existing` is its record when the store saw it);
    `no_slot`: it holds no slot in that tier; `rider_refused`: a rider's own condition failed; `newer_training`:
    a newer training is recorded; `successor_refused`: the successor is no longer waiting or its tenant is at
    its cap; `tier_refused`: the tier's rules refused the handover; `conflict`: a concurrent write."""

    ok: bool
    conflict: bool = False
    status_refused: bool = False
    existing: Record | None = None
    no_slot: bool = False
    rider_refused: bool = False
    newer_training: bool = False
    successor_refused: bool = False
    tier_refused: bool = False

    @property
    def condition_failed(self) -> bool:
        """Whether a condition failed (otherwise a refusal was a conflict or a cancellation)."""
        return any((self.status_refused, self.no_slot, self.rider_refused, self.newer_training, self.successor_refused,
                    self.tier_refused))


class BuildStore(Protocol):  # pylint: disable=too-many-public-methods  # one method per intent of three use cases
    """The ledger and the tier slots, one intent per method."""

    # -- the trigger --------------------------------------------------------------------------------
    def admit_new(self, new: NewRequest, limit: int, tenant_cap: int | None) -> Recorded:
        """Record a new request STARTING with a slot of its tier, only while the tier has room and nobody waits:
        `admitted`, `duplicate` or `no_room`."""

    def queue_new(self, new: NewRequest) -> Recorded:
        """Record a new request QUEUED and count it as waiting (and not yet filed): `queued`, `duplicate`,
        `conflict` or `cancelled`."""

    def record_started(self, execution_id: str, arn: str, at: str) -> bool:
        """STARTING -> EXECUTING with the ARN; False when a status event got there first (the ARN is kept)."""

    def fail_start(self, request: BuildRequest, tier: str, reason: str, at: str) -> None:
        """A start refused for good: FAILED with the reason, no longer active, its slot given back."""

    def record_upload(self, request: BuildRequest) -> bool:
        """The upload becomes the tenant x model's newest data, unless a newer one is recorded."""

    def record_rejected(self, upload: dict[str, Any], reason: str, at: str) -> Record | None:
        """Record a refused upload once: its record, or None when it was recorded before."""

    def rejected(self, rejection_id: str) -> Record | None:
        """A refused upload's record."""

    def mark_rejected_notified(self, rejection_id: str) -> None:
        """A refused upload's notification went out."""

    # -- the dispatcher -----------------------------------------------------------------------------
    def lease_tier(self, tier: str, limit: int, owner: str, now_ms: int, lease_ms: int) -> TierState | None:
        """The tier to `owner` alone for `lease_ms`, if it has work and nobody holds it: its counts, else None."""

    def end_lease(self, tier: str, owner: str) -> None:
        """Give the tier's lease back, if it is still `owner`'s."""

    def tier_counts(self, tier: str, limit: int) -> TierState:
        """The tier's counts (in flight, waiting, not yet filed, its clock), without its tenants and slots."""

    def next_tags(self, tier: str, tenants: list[str]) -> dict[str, int]:
        """The next start tag of each tenant (0 for a tenant never seen)."""

    def file(self, tier: str, filings: list[Filing], old_tags: dict[str, int], new_tags: dict[str, int],
             lease_owner: str | None) -> Filed:
        """File requests into the backlog (each once, only while QUEUED), move the tenants' next tags from the
        values read (so two dispatchers cannot hand out the same tags) and count them as filed (only while the
        lease is `lease_owner`'s, when given)."""

    def backlog_head(self, tier: str, count: int) -> list[BacklogEntry]:
        """The first `count` entries of the tier's backlog, in start-tag order."""

    def admit(self, tier: str, limit: int, entries: list[BacklogEntry], at: str, *, caps: dict[str, int],  # pylint: disable=too-many-arguments
              clock: int, lease_owner: str | None) -> Admitted:
        """Admit entries into free slots at once (QUEUED -> STARTING, slots taken, out of the backlog), the tier at
        most at its limit, each tenant within its cap; the clock moves to `clock`; with `lease_owner`, only while
        the lease is its own, and the lease ends with it."""

    def take_out(self, tier: str, entry: BacklogEntry) -> None:
        """An entry that will never be admitted: out of the backlog and out of the waiting counts."""

    def fail_queued(self, execution_id: str, reason: str, at: str) -> bool:
        """A request still QUEUED becomes FAILED with the reason, no longer active; False if it is not QUEUED."""

    def old_slots(self, tier: str, admitted_before: str) -> list[Slot]:
        """The tier's slots taken before a time."""

    def release(self, tier: str, tenant: str, execution_id: str) -> bool:
        """Give a slot back on its own; True if this call gave it back."""

    def claim_restart(self, execution_id: str, attempt: int, stale_before: str, at: str) -> bool:
        """Take over the start of a request STARTING since before `stale_before` at `attempt`; one winner."""

    def recount(self, tier: str, limit: int, unfiled_drifted: Callable[[int], bool]) -> list[Correction]:
        """Set the tier's counts right from its slots and backlog; `unfiled_drifted(counted)` says whether the
        count of requests not yet filed is to be taken as 0. Each correction only if nothing moved meanwhile."""

    # -- the status path ----------------------------------------------------------------------------
    def advance(self, execution_id: str, status: str, at: str, source: str, fields: dict[str, Any]) -> bool:
        """Move to a later, non-terminal status with its fields; False if the ledger is there already (or has
        no such execution)."""

    def end(self, ending: Ending, riders: list[Rider], handover: Handover | None) -> Ended:
        """Record the end (status, the tenant x model no longer active, its training), the riders, and give the
        slot back or hand it over, all or nothing."""

    def end_without_slot(self, ending: Ending) -> None:
        """Record the end of an execution that holds no slot: the tenant x model state first, then the status."""

    def record_trained(self, record: Record) -> bool:
        """A SUCCEEDED execution becomes the tenant x model's newest training, unless a newer one is recorded."""

    # -- records --------------------------------------------------------------------------------------
    def execution(self, execution_id: str) -> Record | None:
        """One execution's record."""

    def mark_notified(self, execution_id: str) -> None:
        """The execution's notification went out."""

    def tier_state(self, tier: str, limit: int) -> TierState:
        """The whole tier: counts, tenants, slots."""
