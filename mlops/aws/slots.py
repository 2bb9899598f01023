"""Tier slots (DynamoDB): how many builds of a tier run, who waits, and one slot item per execution.

Items (docs/trigger.md): `TIER#<tier>/#COUNTER` (inflight, waiting, unfiled, vclock),
`TIER#<tier>/TENANT#<tenant>` (running, waiting, next_tag), `TIER#<tier>/SLOT#<execution_id>`, and the
tier's fair backlog `BACKLOG#<tier>/<tag>#<requested_at>#<execution_id>` (the request, in start-tag order,
mlops.admission). Admission is one transaction whose
counter update is conditional on `inflight < limit`: under any number of concurrent dispatchers the
tier can never run more than its limit. Release deletes the slot item (conditional on it existing) and
decrements the counters in the same transaction, so releasing twice releases once. An optional account
counter (`ACCOUNT/#COUNTER`) holds every tier to the account's pipeline-execution quota. The `*_items`
methods build transaction items; the build store (`mlops.aws.build_store`) runs them with the ledger's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from mlops.admission import TenantState, TierState
from mlops.aws import errors
from mlops.aws.dynamo import TxItem, from_attrs, transact
from mlops.errors import MlopsError

COUNTER = "#COUNTER"


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class Slots:
    """The tier-slots table behind a boto3 DynamoDB client."""

    def __init__(self, client: Any, table: str, account_quota: int | None = None):
        self.client = client
        self.table = table
        self.account_quota = account_quota

    def _key(self, tier: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": f"TIER#{tier}"}, "sk": {"S": sk}}

    def _slot_put(self, name: str, tier: str, tenant: str, execution_id: str, now: str) -> TxItem:
        """Take an execution's slot item (it must not exist: a slot is taken once)."""
        return TxItem(name, {"Put": {
            "TableName": self.table,
            "Item": {**self._key(tier, f"SLOT#{execution_id}"), "tenant": {"S": tenant},
                     "execution_id": {"S": execution_id}, "admitted_at": {"S": now}},
            "ConditionExpression": "attribute_not_exists(pk)"}})

    def _slot_delete(self, tier: str, execution_id: str) -> TxItem:
        """Give an execution's slot item back (it must exist: a slot is released once)."""
        return TxItem("slot", {"Delete": {"TableName": self.table, "Key": self._key(tier, f"SLOT#{execution_id}"),
                                          "ConditionExpression": "attribute_exists(pk)"}})

    def read_tier(self, tier: str, limit: int) -> TierState:
        """The whole tier in one strongly consistent query: counter, tenants, slots."""
        state = TierState(tier=tier, limit=limit)
        try:
            pages = self.client.get_paginator("query").paginate(
                TableName=self.table, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"TIER#{tier}"}}, ConsistentRead=True)
            for page in pages:
                for raw in page.get("Items", []):
                    item = from_attrs(raw)
                    sk = item["sk"]
                    if sk == COUNTER:
                        state.inflight, state.waiting = item.get("inflight", 0), item.get("waiting", 0)
                        state.unfiled = item.get("unfiled", 0)
                        state.clock = item.get("vclock", 0)
                    elif sk.startswith("TENANT#"):
                        state.tenants[sk[7:]] = TenantState(item.get("running", 0), item.get("waiting", 0), item.get("next_tag", 0))
                    elif sk.startswith("SLOT#"):
                        state.slots.append(sk[5:])
                        state.slot_tenants[sk[5:]] = str(item.get("tenant", ""))
        except ClientError as exc:
            raise _error(exc) from exc
        return state

    def read_counter(self, tier: str, limit: int) -> TierState:
        """Only the tier's counter (one small read): enough to know whether there is anything to admit."""
        try:
            item = self.client.get_item(TableName=self.table, Key=self._key(tier, COUNTER), ConsistentRead=True).get("Item")
        except ClientError as exc:
            raise _error(exc) from exc
        return _counter_state(tier, limit, from_attrs(item) if item else {})

    def lease(self, tier: str, limit: int, owner: str, now_ms: int, lease_ms: int) -> TierState | None:
        """Become the tier's only dispatcher for a moment, if it has work and nobody else holds it.

        One conditional write that also reads the counter: it fails (None) when nothing is to be done (the
        tier is full or has no waiting request, and no request waits to be filed) or the tier is leased, so
        the call replaces the read. The lease only spares dispatchers
        from racing for the same slot; the limit itself is held by the admission transaction.
        """
        try:
            item = self.client.update_item(
                TableName=self.table, Key=self._key(tier, COUNTER),
                UpdateExpression="SET lease_owner = :me, lease_until = :until",
                ConditionExpression=("(((attribute_not_exists(inflight) OR inflight < :limit) AND waiting > :zero) "
                                     "OR unfiled > :zero) AND (attribute_not_exists(lease_until) OR lease_until < :now)"),
                ExpressionAttributeValues={":me": {"S": owner}, ":until": _n(now_ms + lease_ms), ":now": _n(now_ms),
                                           ":limit": _n(limit), ":zero": _n(0)},
                ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as exc:
            if errors.is_condition_failed(exc):
                return None
            raise _error(exc) from exc
        return _counter_state(tier, limit, from_attrs(item))

    def end_lease(self, tier: str, owner: str) -> None:
        """Give the lease back (if it is still ours) so the next dispatcher need not wait for it to expire."""
        try:
            self.client.update_item(TableName=self.table, Key=self._key(tier, COUNTER), UpdateExpression="SET lease_until = :zero",
                                    ConditionExpression="lease_owner = :me",
                                    ExpressionAttributeValues={":zero": _n(0), ":me": {"S": owner}})
        except ClientError as exc:
            if not errors.is_condition_failed(exc):
                raise _error(exc) from exc

    def old_slots(self, tier: str, admitted_before: str) -> list[dict[str, Any]]:
        """Slot items of a tier taken before a time (candidates for a stuck start or a missed release)."""
        try:
            items = self.client.query(
                TableName=self.table, KeyConditionExpression="pk = :pk AND begins_with(sk, :slot)",
                FilterExpression="admitted_at < :before", ConsistentRead=True,
                ExpressionAttributeValues={":pk": {"S": f"TIER#{tier}"}, ":slot": {"S": "SLOT#"},
                                           ":before": {"S": admitted_before}}).get("Items", [])
        except ClientError as exc:
            raise _error(exc) from exc
        return [from_attrs(i) for i in items]

    def enqueue_items(self, tier: str, tenant: str) -> list[TxItem]:
        """Count a request as waiting (with the ledger put that records it)."""
        return [
            TxItem("tenant", {"Update": {
                "TableName": self.table, "Key": self._key(tier, f"TENANT#{tenant}"),
                "UpdateExpression": "SET waiting = if_not_exists(waiting, :zero) + :one",
                "ExpressionAttributeValues": {":zero": _n(0), ":one": _n(1)}}}),
            TxItem("counter", {"Update": {
                "TableName": self.table, "Key": self._key(tier, COUNTER),
                "UpdateExpression": ("SET waiting = if_not_exists(waiting, :zero) + :one, "
                                     "unfiled = if_not_exists(unfiled, :zero) + :one"),
                "ExpressionAttributeValues": {":zero": _n(0), ":one": _n(1)}}}),
        ]

    def next_tags(self, tier: str, tenants: list[str]) -> dict[str, int]:
        """The next start tag of each of these tenants (one BatchGetItem per 100; absent tenants are 0)."""
        tags: dict[str, int] = {}
        for start in range(0, len(tenants), 100):
            keys = [self._key(tier, f"TENANT#{t}") for t in tenants[start:start + 100]]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "sk, next_tag"}}
            while request:
                try:
                    answer = self.client.batch_get_item(RequestItems=request)
                except ClientError as exc:
                    raise _error(exc) from exc
                for raw in answer.get("Responses", {}).get(self.table, []):
                    item = from_attrs(raw)
                    tags[item["sk"][7:]] = int(item.get("next_tag", 0))
                request = answer.get("UnprocessedKeys") or {}
        return tags

    def file_items(self, tier: str, filed: list[tuple[str, int, str, str, str]], old_tags: dict[str, int],
                   new_tags: dict[str, int], lease_owner: str | None = None) -> list[TxItem]:
        """Put requests into the tier's backlog: `filed` is (tenant, tag, requested_at, execution id, request body).

        Each tenant's next tag moves from the value it was read at (so two dispatchers filing at once cannot
        both hand out the same tags), and the counter's `unfiled` goes down by as many (only while the
        dispatcher's lease is its own, when it has one). The caller adds the ledger's `filed` marks, which
        make a duplicate message fail instead of being filed twice.
        """
        items = []
        for tenant, tag, requested_at, execution_id, body in filed:
            items.append(TxItem(f"backlog:{execution_id}", {"Put": {
                "TableName": self.table,
                "Item": {"pk": {"S": f"BACKLOG#{tier}"}, "sk": {"S": backlog_sk(tag, requested_at, execution_id)},
                         "tenant": {"S": tenant}, "execution_id": {"S": execution_id}, "tag": _n(tag), "request": {"S": body}},
                "ConditionExpression": "attribute_not_exists(pk)"}}))
        for tenant, tag in new_tags.items():
            old = old_tags.get(tenant, 0)
            items.append(TxItem(f"tenant:{tenant}", {"Update": {
                "TableName": self.table, "Key": self._key(tier, f"TENANT#{tenant}"),
                "UpdateExpression": "SET next_tag = :new",
                "ConditionExpression": "attribute_not_exists(next_tag) OR next_tag = :old" if old == 0 else "next_tag = :old",
                "ExpressionAttributeValues": {":new": _n(tag), ":old": _n(old)}}}))
        counter: dict[str, Any] = {
            "TableName": self.table, "Key": self._key(tier, COUNTER),
            "UpdateExpression": "SET unfiled = if_not_exists(unfiled, :zero) - :n",
            "ExpressionAttributeValues": {":zero": _n(0), ":n": _n(len(filed))}}
        if lease_owner is not None:
            counter["ConditionExpression"] = "lease_owner = :me"
            counter["ExpressionAttributeValues"][":me"] = {"S": lease_owner}
        items.append(TxItem("counter", {"Update": counter}))
        return items

    def backlog_head(self, tier: str, count: int) -> list[dict[str, Any]]:
        """The first `count` requests of the tier's backlog, in start-tag order (one strongly consistent query)."""
        try:
            items = self.client.query(
                TableName=self.table, KeyConditionExpression="pk = :pk", ConsistentRead=True, Limit=count,
                ExpressionAttributeValues={":pk": {"S": f"BACKLOG#{tier}"}}).get("Items", [])
        except ClientError as exc:
            raise _error(exc) from exc
        return [from_attrs(i) for i in items]

    def unfile_item(self, tier: str, sk: str) -> TxItem:
        """Take a request out of the backlog (admitted, or no longer waiting)."""
        return TxItem("unfile", {"Delete": {"TableName": self.table, "Key": {"pk": {"S": f"BACKLOG#{tier}"}, "sk": {"S": sk}},
                                            "ConditionExpression": "attribute_exists(pk)"}})

    def withdraw_items(self, tier: str, sk: str, tenant: str) -> list[TxItem]:
        """Take a request that will never be admitted out of the backlog, and out of the tier's and the tenant's
        `waiting` counts (never below zero)."""
        values = {":one": _n(1), ":zero": _n(0)}
        return [TxItem("unfile", self.unfile_item(tier, sk).op),
                *(TxItem(name, {"Update": {
                    "TableName": self.table, "Key": self._key(tier, sort_key),
                    "UpdateExpression": "SET waiting = waiting - :one", "ConditionExpression": "waiting > :zero",
                    "ExpressionAttributeValues": values}})
                  for name, sort_key in (("counter", COUNTER), ("tenant", f"TENANT#{tenant}")))]

    def recount(self, tier: str, limit: int,
                unfiled_drifted: Callable[[int], bool] = lambda _: False) -> dict[tuple[str | None, str], tuple[int, int]]:
        """Recompute the tier's counts from its items and correct those that drifted; returns what was corrected
        (`(tenant, count): (was, now)`, the tenant None for the tier's counter).

        `inflight` and each tenant's `running` are its slot items; `waiting` is the backlog's items plus the
        requests not yet filed, which only the caller can judge: `unfiled_drifted(counted)` says whether the
        counter's `unfiled` is to be taken as 0. A tenant's `waiting` is corrected only when nothing is unfiled
        (the queue does not say whose its messages are). Every correction is conditional on the values read
        first: if anything moved meanwhile, it is left for the next recount. Reads: the tier with its slots
        (one query) and its backlog (keys and tenants only).
        """
        state = self.read_tier(tier, limit)
        slots = Counter(state.slot_tenants.values())
        filed = Counter(str(from_attrs(i)["tenant"]) for i in self._query_all(f"BACKLOG#{tier}", "tenant"))
        unfiled = 0 if unfiled_drifted(state.unfiled) else max(0, state.unfiled)
        fixes: dict[tuple[str | None, str], tuple[int, int]] = {}
        self._correct(tier, None, {"inflight": state.inflight, "waiting": state.waiting, "unfiled": state.unfiled},
                      {"inflight": sum(slots.values()), "waiting": sum(filed.values()) + unfiled, "unfiled": unfiled}, fixes)
        for tenant in sorted(set(state.tenants) | set(slots) | set(filed)):
            known = state.tenants.get(tenant, TenantState())
            was, now = {"running": known.running}, {"running": slots[tenant]}
            if unfiled == 0:
                was["waiting"], now["waiting"] = known.waiting, filed[tenant]
            self._correct(tier, tenant, was, now, fixes)
        return fixes

    def _query_all(self, pk: str, projection: str) -> list[dict[str, Any]]:
        try:
            pages = self.client.get_paginator("query").paginate(
                TableName=self.table, KeyConditionExpression="pk = :pk", ConsistentRead=True,
                ProjectionExpression="sk, #p", ExpressionAttributeNames={"#p": projection},
                ExpressionAttributeValues={":pk": {"S": pk}})
            return [item for page in pages for item in page.get("Items", [])]
        except ClientError as exc:
            raise _error(exc) from exc

    def _correct(self, tier: str, tenant: str | None, was: dict[str, int], now: dict[str, int],
                 fixes: dict[tuple[str | None, str], tuple[int, int]]) -> None:
        """Set the counts that differ (of the tier's counter, or of a tenant's item), on condition that the item
        still holds what was read."""
        sk = COUNTER if tenant is None else f"TENANT#{tenant}"
        changed = {name: value for name, value in now.items() if was.get(name, 0) != value}
        if not changed:
            return
        names = {f"#{name}": name for name in was}
        values = {f":now_{name}": _n(value) for name, value in changed.items()}
        conditions = []
        for name, value in was.items():
            values[f":was_{name}"] = _n(value)
            conditions.append(f"#{name} = :was_{name}" + (f" OR attribute_not_exists(#{name})" if value == 0 else ""))
        try:
            self.client.update_item(
                TableName=self.table, Key=self._key(tier, sk), ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                UpdateExpression="SET " + ", ".join(f"#{name} = :now_{name}" for name in changed),
                ConditionExpression=" AND ".join(f"({c})" for c in conditions))
        except ClientError as exc:
            if errors.is_condition_failed(exc):
                return  # it moved: the next recount looks again
            raise _error(exc) from exc
        fixes.update({(tenant, name): (was.get(name, 0), value) for name, value in changed.items()})

    def admit_items(self, tier: str, limit: int, tenant: str, execution_id: str, now: str, *,
                    tenant_cap: int | None = None) -> list[TxItem]:
        """Take a slot for a request that skips the queue: counter `inflight < limit` and nobody waiting
        (skipping the queue is only fair when nobody is in it)."""
        tenant_values = {":zero": _n(0), ":one": _n(1)}
        tenant_update: dict[str, Any] = {
            "TableName": self.table, "Key": self._key(tier, f"TENANT#{tenant}"),
            "UpdateExpression": "SET running = if_not_exists(running, :zero) + :one",
            "ExpressionAttributeValues": tenant_values}
        if tenant_cap is not None:
            tenant_update["ConditionExpression"] = "attribute_not_exists(running) OR running < :cap"
            tenant_values[":cap"] = _n(tenant_cap)
        items = [
            TxItem("counter", {"Update": {
                "TableName": self.table, "Key": self._key(tier, COUNTER),
                "UpdateExpression": ("SET inflight = if_not_exists(inflight, :zero) + :one, "
                                     "#limit = :limit"),
                "ConditionExpression": ("(attribute_not_exists(inflight) OR inflight < :limit) AND "
                                        "(attribute_not_exists(waiting) OR waiting <= :zero)"),
                "ExpressionAttributeNames": {"#limit": "limit"},
                "ExpressionAttributeValues": {":zero": _n(0), ":one": _n(1), ":limit": _n(limit)}}}),
            TxItem("tenant", {"Update": tenant_update}),
            self._slot_put("slot", tier, tenant, execution_id, now),
        ]
        if self.account_quota is not None:
            items.append(TxItem("account", {"Update": {
                "TableName": self.table, "Key": {"pk": {"S": "ACCOUNT"}, "sk": {"S": COUNTER}},
                "UpdateExpression": "SET inflight = if_not_exists(inflight, :zero) + :one",
                "ConditionExpression": "attribute_not_exists(inflight) OR inflight < :quota",
                "ExpressionAttributeValues": {":zero": _n(0), ":one": _n(1), ":quota": _n(self.account_quota)}}}))
        return items

    def admit_many_items(self, tier: str, limit: int, admits: list[tuple[str, str, str]], now: str, *,  # pylint: disable=too-many-locals
                         caps: dict[str, int] | None = None, clock: int | None = None,
                         lease_owner: str | None = None) -> list[TxItem]:
        """Take k slots of filed requests in one transaction: `admits` is (tenant, execution id, backlog key).

        One counter update (`inflight <= limit - k`, the clock moved to the largest tag of this round), one update
        per tenant (its cap checked for all its admissions at once), one slot item per execution, and the
        requests taken out of the backlog. With `lease_owner`, the counter update also ends
        the dispatcher's tier lease, and only if the lease is still its own (otherwise the transaction
        fails and nothing is admitted): no separate call to give the lease back. Item names carry the
        tenant or execution id, so a failed condition says whose it was.
        """
        k = len(admits)
        per_tenant: Counter[str] = Counter(tenant for tenant, _, _ in admits)
        values = {":zero": _n(0), ":k": _n(k), ":room": _n(limit - k), ":limit": _n(limit)}
        update = ("SET inflight = if_not_exists(inflight, :zero) + :k, waiting = if_not_exists(waiting, :zero) - :k, "
                  "#limit = :limit")
        condition = "(attribute_not_exists(inflight) OR inflight <= :room)"
        if clock is not None:
            # Not conditional on going forward: a request filed while another dispatcher (no lease) admitted a
            # later tag must still be admissible. The clock only lifts newcomers, so a step back costs a
            # newcomer's tag being a little early, never a request being stuck.
            update += ", vclock = :clock"
            values[":clock"] = _n(clock)
        if lease_owner is not None:
            update += ", lease_until = :zero"
            condition += " AND lease_owner = :me"
            values[":me"] = {"S": lease_owner}
        items = [TxItem("counter", {"Update": {
            "TableName": self.table, "Key": self._key(tier, COUNTER), "UpdateExpression": update,
            "ConditionExpression": condition, "ExpressionAttributeNames": {"#limit": "limit"},
            "ExpressionAttributeValues": values}})]
        for tenant, count in per_tenant.items():
            tenant_values = {":zero": _n(0), ":n": _n(count)}
            tenant_update: dict[str, Any] = {
                "TableName": self.table, "Key": self._key(tier, f"TENANT#{tenant}"),
                "UpdateExpression": ("SET running = if_not_exists(running, :zero) + :n, "
                                     "waiting = if_not_exists(waiting, :zero) - :n"),
                "ExpressionAttributeValues": tenant_values}
            cap = (caps or {}).get(tenant)
            if cap is not None:
                tenant_update["ConditionExpression"] = "attribute_not_exists(running) OR running <= :room"
                tenant_values[":room"] = _n(cap - count)
            items.append(TxItem(f"tenant:{tenant}", {"Update": tenant_update}))
        for tenant, execution_id, sk in admits:
            items.append(self._slot_put(f"slot:{execution_id}", tier, tenant, execution_id, now))
            items.append(TxItem(f"backlog:{execution_id}", self.unfile_item(tier, sk).op))
        if self.account_quota is not None:
            items.append(TxItem("account", {"Update": {
                "TableName": self.table, "Key": {"pk": {"S": "ACCOUNT"}, "sk": {"S": COUNTER}},
                "UpdateExpression": "SET inflight = if_not_exists(inflight, :zero) + :k",
                "ConditionExpression": "attribute_not_exists(inflight) OR inflight <= :room",
                "ExpressionAttributeValues": {":zero": _n(0), ":k": _n(k), ":room": _n(self.account_quota - k)}}}))
        return items

    def release_items(self, tier: str, tenant: str, execution_id: str) -> list[TxItem]:
        """Give the slot back: delete the slot item (it must exist) and decrement the counters."""
        items = [
            self._slot_delete(tier, execution_id),
            TxItem("counter", {"Update": {"TableName": self.table, "Key": self._key(tier, COUNTER),
                                          "UpdateExpression": "SET inflight = inflight - :one",
                                          "ExpressionAttributeValues": {":one": _n(1)}}}),
            TxItem("tenant", {"Update": {"TableName": self.table, "Key": self._key(tier, f"TENANT#{tenant}"),
                                         "UpdateExpression": "SET running = running - :one",
                                         "ExpressionAttributeValues": {":one": _n(1)}}}),
        ]
        if self.account_quota is not None:
            items.append(TxItem("account", {"Update": {
                "TableName": self.table, "Key": {"pk": {"S": "ACCOUNT"}, "sk": {"S": COUNTER}},
                "UpdateExpression": "SET inflight = inflight - :one", "ExpressionAttributeValues": {":one": _n(1)}}}))
        return items

    def handover_items(self, tier: str, limit: int, released: tuple[str, str], admitted: tuple[str, str, str, int], now: str, *,
                       cap: int | None = None, higher: tuple[str, ...] = ()) -> list[TxItem]:
        """Hand a finished execution's slot straight to the backlog's head, in the transaction that records the end.

        `released` is (tenant, execution id), `admitted` is (tenant, execution id, backlog key, tag). The
        tier's `inflight` stays as it is (one leaves, one enters; still at most `limit`), `waiting` goes down
        by one and the clock moves to the tag. Only while no request waits to be filed (`unfiled`), so that
        a burst still on the queue is filed, and ordered, before anyone behind it starts. `higher` are the
        tiers of higher priority: with an account quota, the slot goes to this tier only while none of them
        waits with room of its own (otherwise the quota's slot is theirs, and the dispatcher hands it out).
        Item names as in `admit_many_items` and `release_items`, so a failed condition says whose it was.
        """
        old_tenant, old_eid = released
        tenant, execution_id, sk, tag = admitted
        items = [
            self._slot_delete(tier, old_eid),
            TxItem("counter", {"Update": {
                "TableName": self.table, "Key": self._key(tier, COUNTER),
                "UpdateExpression": "SET waiting = waiting - :one, vclock = :tag, #limit = :limit",
                "ConditionExpression": "inflight <= :limit AND waiting > :zero AND "
                                       "(attribute_not_exists(unfiled) OR unfiled <= :zero)",
                "ExpressionAttributeNames": {"#limit": "limit"},
                "ExpressionAttributeValues": {":one": _n(1), ":zero": _n(0), ":tag": _n(tag), ":limit": _n(limit)}}}),
        ]
        cap_values = {":cap": _n(cap)} if cap is not None else {}
        if tenant == old_tenant:  # the same tenant: its running count stays, one fewer waits
            items.append(TxItem(f"tenant:{tenant}", {"Update": {
                "TableName": self.table, "Key": self._key(tier, f"TENANT#{tenant}"),
                "UpdateExpression": "SET waiting = waiting - :one",
                **({"ConditionExpression": "running <= :cap"} if cap is not None else {}),
                "ExpressionAttributeValues": {":one": _n(1)} | cap_values}}))
        else:
            items.append(TxItem("tenant", {"Update": {
                "TableName": self.table, "Key": self._key(tier, f"TENANT#{old_tenant}"),
                "UpdateExpression": "SET running = running - :one", "ExpressionAttributeValues": {":one": _n(1)}}}))
            items.append(TxItem(f"tenant:{tenant}", {"Update": {
                "TableName": self.table, "Key": self._key(tier, f"TENANT#{tenant}"),
                "UpdateExpression": "SET running = if_not_exists(running, :zero) + :one, waiting = waiting - :one",
                **({"ConditionExpression": "attribute_not_exists(running) OR running < :cap"} if cap is not None else {}),
                "ExpressionAttributeValues": {":one": _n(1), ":zero": _n(0)} | cap_values}}))
        items.append(self._slot_put(f"slot:{execution_id}", tier, tenant, execution_id, now))
        items.append(TxItem(f"backlog:{execution_id}", self.unfile_item(tier, sk).op))
        if self.account_quota is not None:
            for other in higher:
                items.append(TxItem(f"higher:{other}", {"ConditionCheck": {
                    "TableName": self.table, "Key": self._key(other, COUNTER),
                    "ConditionExpression": "attribute_not_exists(waiting) OR waiting <= :zero OR inflight >= #limit",
                    "ExpressionAttributeNames": {"#limit": "limit"}, "ExpressionAttributeValues": {":zero": _n(0)}}}))
        return items

    def release(self, tier: str, tenant: str, execution_id: str) -> bool:
        """Release on its own (idempotent): True if this call gave the slot back."""
        return transact(self.client, self.release_items(tier, tenant, execution_id)).ok

    def account_inflight(self) -> int:
        """Executions running account-wide (0 when no quota is configured)."""
        try:
            item = self.client.get_item(TableName=self.table, Key={"pk": {"S": "ACCOUNT"}, "sk": {"S": COUNTER}},
                                        ConsistentRead=True).get("Item")
        except ClientError as exc:
            raise _error(exc) from exc
        return int(from_attrs(item).get("inflight", 0)) if item else 0


def backlog_sk(tag: int, requested_at: str, execution_id: str) -> str:
    """A backlog item's sort key: start tag first (zero-padded, so the key order is the tag order)."""
    return f"{tag:012d}#{requested_at}#{execution_id}"


def _counter_state(tier: str, limit: int, values: dict[str, Any]) -> TierState:
    return TierState(tier=tier, limit=limit, inflight=values.get("inflight", 0), waiting=values.get("waiting", 0),
                     clock=values.get("vclock", 0), unfiled=values.get("unfiled", 0))


def _error(exc: ClientError) -> MlopsError:
    return errors.aws_error("use the tier slots table", exc, access_hint="check the role's DynamoDB permissions on the slots table",
                            not_found_hint="create the slots table (terraform apply / mlops local up)",
                            hint="check the slots table and the role's DynamoDB permissions on it")
