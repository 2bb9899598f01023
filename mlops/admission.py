"""Admission decisions: which queued build requests of a tier to start now, fairly across its tenants.

A tier has a limit of builds running at once, shared by all its tenants. The dispatcher sees the tier's
state (running, waiting and served counts per tenant, read in one query) and a window of queued requests
(an SQS receive). Fairness is round-robin by service: a tenant's *lag* is how many more admissions it has
had than the least-served tenant that is still waiting (the tier's virtual clock). Only lag-0 requests are
admitted; the others are deferred (made invisible on the queue) for about as long as it takes the others
to catch up, so a tenant that queued a thousand requests cannot take every slot while others wait. A tenant
that comes back after a quiet spell starts at the virtual clock, not at its old low count. Tiers are
visited by priority, which decides who gets an account-wide quota first.

Pure: plain data in, plain data out; no boto3.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Longest a request is deferred at a time; it is then looked at again.
MAX_DEFER_SECONDS = 900


@dataclass
class TenantState:
    """A tenant's counters inside one tier."""

    running: int = 0
    waiting: int = 0
    served: int = 0


@dataclass
class TierState:
    """Everything a dispatcher needs to know about a tier, from one read."""

    tier: str
    limit: int
    inflight: int = 0
    waiting: int = 0
    tenants: dict[str, TenantState] = field(default_factory=dict)
    slots: list[str] = field(default_factory=list)
    clock: int = 0
    #: admissions ever made in the tier (a counter kept with `inflight`): dispatchers measure the pace with it
    admitted: int = 0

    @property
    def free(self) -> int:
        """Slots free now (never negative)."""
        return max(0, self.limit - self.inflight)

    def virtual_clock(self) -> int:
        """The least service among tenants that still wait, never going back (`clock` is the stored one).

        Stored and monotone so that a tenant that was busy alone yesterday is not held back today by
        one that arrives with a low count: the newcomer is lifted to the clock instead.
        """
        waiting = [max(t.served, self.clock) for t in self.tenants.values() if t.waiting > 0]
        return min(waiting) if waiting else self.clock

    def lag(self, tenant: str, clock: int | None = None) -> int:
        """Admissions this tenant is ahead of the least-served waiting tenant."""
        clock = self.virtual_clock() if clock is None else clock
        served = self.tenants.get(tenant, TenantState()).served
        return max(served, clock) - clock


@dataclass(frozen=True)
class Candidate:
    """A queued request seen in a receive window."""

    ref: Any
    tenant: str
    requested_at: str
    #: how many times the queue has handed this request out (SQS ApproximateReceiveCount)
    receives: int = 1


@dataclass
class Plan:
    """What to do with one receive window."""

    admit: list[tuple[Candidate, int]] = field(default_factory=list)
    defer: list[tuple[Candidate, int]] = field(default_factory=list)
    release: list[Candidate] = field(default_factory=list)


def tier_order(priorities: Mapping[str, int]) -> list[str]:
    """Tiers by priority, highest first; ties by name so every dispatcher visits them in the same order."""
    return sorted(priorities, key=lambda name: (-priorities[name], name))


def defer_seconds(lag: int, round_seconds: float, receives: int = 1) -> int:
    """How long to hide a request whose tenant is `lag` admissions ahead.

    A request that comes back and is deferred again shows that the round was longer than estimated (builds
    slower than measured, fewer slots freed): each further deferral doubles, up to 4 times,
    so an estimate off by any factor costs a few receives per request, not one per estimated round.
    """
    backoff = 2 ** (min(max(receives, 1), 3) - 1)
    return int(min(MAX_DEFER_SECONDS, max(1.0, lag * round_seconds * backoff)))


def round_seconds(state: TierState, mean_build_seconds: float) -> float:
    """About how long it takes every waiting tenant to get one more admission.

    Not rounded up to a second here (`defer_seconds` does that once): with few tenants left waiting a
    round is short, and a backlog spread a whole second per request would hold free slots idle.
    """
    waiting_tenants = sum(1 for t in state.tenants.values() if t.waiting > 0)
    return waiting_tenants * mean_build_seconds / max(1, state.limit)


def plan_window(state: TierState, window: Iterable[Candidate], free: int, mean_build_seconds: float,
                tenant_limits: Mapping[str, int] | None = None, work_conserving: bool = False) -> Plan:
    """Split a receive window into requests to admit (in order, with the growth of their tenant's `served`),
    to defer (with seconds) and to release (show again at once: no free slot).

    `state` is updated as if every planned admission succeeded, so consecutive windows of one round build
    on each other. `work_conserving` admits the least-lagged requests even when none has lag 0: the
    dispatcher sets it when its receives found no lag-0 request, so a stale waiting count can never hold
    slots idle.
    """
    tenant_limits = tenant_limits or {}
    plan = Plan()
    pending = sorted(window, key=lambda c: c.requested_at)
    in_hand = Counter(c.tenant for c in pending)
    for tenant_id, count in in_hand.items():  # requests in hand wait, whatever a slightly older read said
        tenant_state = state.tenants.setdefault(tenant_id, TenantState())
        tenant_state.waiting = max(tenant_state.waiting, count)
    unit = round_seconds(state, mean_build_seconds)
    deferred: Counter[str] = Counter()  # a tenant's requests deferred in this window: each one a round later
    while pending:
        clock = state.virtual_clock()
        best = min(pending, key=lambda c: (state.lag(c.tenant, clock), c.requested_at))
        pending.remove(best)
        tenant = state.tenants.setdefault(best.tenant, TenantState())
        cap = tenant_limits.get(best.tenant)
        lag = state.lag(best.tenant, clock)
        if cap is not None and tenant.running >= cap:
            plan.defer.append((best, defer_seconds(1 + deferred[best.tenant], unit, best.receives)))
            deferred[best.tenant] += 1
        elif lag > 0 and not work_conserving:
            # Spread a burst out: the tenant's next request comes back one round after this one, so a
            # backlog is received about once per admission instead of all of it every round.
            plan.defer.append((best, defer_seconds(lag + deferred[best.tenant], unit, best.receives)))
            deferred[best.tenant] += 1
        elif free <= 0:
            plan.release.append(best)
        else:
            plan.admit.append((best, _admitted(state, tenant, clock)))
            free -= 1
    return plan


def _admitted(state: TierState, tenant: TenantState, clock: int) -> int:
    """Count an admission; return how much the tenant's `served` grows (its lift to the clock, plus 1)."""
    increment = max(tenant.served, clock) + 1 - tenant.served
    tenant.served += increment
    tenant.running += 1
    tenant.waiting = max(0, tenant.waiting - 1)
    state.inflight += 1
    state.waiting = max(0, state.waiting - 1)
    state.clock = clock
    return increment


def jain_index(values: Iterable[float]) -> float:
    """Jain's fairness index: 1 when all equal, 1/n when one value takes everything."""
    xs = list(values)
    total = sum(xs)
    squares = sum(x * x for x in xs)
    return (total * total) / (len(xs) * squares) if xs and squares else 1.0
