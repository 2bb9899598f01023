"""Admission decisions: in which order the queued build requests of a tier start, fairly across its tenants.

A tier has a limit of builds running at once, shared by all its tenants. Requests arrive on the tier's SQS
queue in any order (a tenant may queue a thousand at once). The dispatcher *files* each one into the tier's
backlog with a start tag (start-time fair queuing, one unit per build): a tenant's tags go 1, 2, 3, ...
from the tier's virtual clock, so its k-th waiting request sorts with every other tenant's k-th. Slots are
then given in tag order: round-robin over the tenants that wait, whatever order the queue delivered. A
tenant that comes back after a quiet spell starts at the clock (the tag of the last admission), not at its
old low count, so it gets no backlog of credit. Tiers are visited by priority, which decides who gets an
account-wide quota first.

Pure: plain data in, plain data out; no boto3.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TenantState:
    """A tenant's counters inside one tier."""

    running: int = 0
    waiting: int = 0
    #: the start tag its next request gets (at least the tier's clock)
    next_tag: int = 0


@dataclass
class TierState:
    """Everything a dispatcher needs to know about a tier, from one read."""

    tier: str
    limit: int
    inflight: int = 0
    waiting: int = 0
    tenants: dict[str, TenantState] = field(default_factory=dict)
    slots: list[str] = field(default_factory=list)
    #: execution id -> tenant, of every slot (read with them)
    slot_tenants: dict[str, str] = field(default_factory=dict)
    #: the tier's virtual clock: the start tag of the latest admission (new tenants' tags start after it)
    clock: int = 0
    #: requests sent to the tier's queue and not yet filed into the backlog
    unfiled: int = 0

    @property
    def free(self) -> int:
        """Slots free now (never negative)."""
        return max(0, self.limit - self.inflight)


@dataclass(frozen=True)
class Candidate:
    """A queued request: received from the queue (to be filed) or read from the backlog (to be admitted)."""

    ref: Any
    tenant: str
    requested_at: str
    #: its start tag, once filed
    tag: int = 0


def tier_order(priorities: Mapping[str, int]) -> list[str]:
    """Tiers by priority, highest first; ties by name so every dispatcher visits them in the same order."""
    return sorted(priorities, key=lambda name: (-priorities[name], name))


def assign_tags(clock: int, next_tags: Mapping[str, int], arrivals: Iterable[Candidate]) -> tuple[list[Candidate], dict[str, int]]:
    """Give each arrival its start tag: its tenant's next tag, lifted to the clock; the tenant's next is one more.

    Arrivals of one tenant are tagged in the order they were requested. Returns the tagged candidates and
    every touched tenant's new next tag (what the filing transaction writes, conditional on the old one).
    """
    updated: dict[str, int] = {}
    tagged = []
    for candidate in sorted(arrivals, key=lambda c: c.requested_at):
        tag = max(updated.get(candidate.tenant, next_tags.get(candidate.tenant, 0)), clock + 1)
        updated[candidate.tenant] = tag + 1
        tagged.append(Candidate(ref=candidate.ref, tenant=candidate.tenant, requested_at=candidate.requested_at, tag=tag))
    return tagged, updated


def pick(head: Iterable[Candidate], free: int, skip: Iterable[str] = ()) -> list[Candidate]:
    """The first `free` requests of the backlog's head in tag order, leaving out tenants in `skip` (at their cap)."""
    skipped = set(skip)
    ordered = sorted(head, key=lambda c: (c.tag, c.requested_at))
    return [c for c in ordered if c.tenant not in skipped][:max(0, free)]


def jain_index(values: Iterable[float]) -> float:
    """Jain's fairness index: 1 when all equal, 1/n when one value takes everything."""
    xs = list(values)
    total = sum(xs)
    squares = sum(x * x for x in xs)
    return (total * total) / (len(xs) * squares) if xs and squares else 1.0
