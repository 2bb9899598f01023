"""Tier slots (DynamoDB): how many builds of a tier run, who waits, and one slot item per execution.

Items (docs/trigger.md): `TIER#<tier>/#COUNTER` (inflight, waiting), `TIER#<tier>/TENANT#<tenant>`
(running, waiting, served) and `TIER#<tier>/SLOT#<execution_id>`. Admission is one transaction whose
counter update is conditional on `inflight < limit`: under any number of concurrent dispatchers the
tier can never run more than its limit. Release deletes the slot item (conditional on it existing) and
decrements the counters in the same transaction, so releasing twice releases once. An optional account
counter (`ACCOUNT/#COUNTER`) holds every tier to the account's pipeline-execution quota.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mlops.admission import TenantState, TierState
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
                        state.admitted = item.get("admitted", 0)
                        state.clock = item.get("vclock", 0)
                    elif sk.startswith("TENANT#"):
                        state.tenants[sk[7:]] = TenantState(item.get("running", 0), item.get("waiting", 0), item.get("served", 0))
                    elif sk.startswith("SLOT#"):
                        state.slots.append(sk[5:])
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

        One conditional write that also reads the counter: it fails (None) when the tier is full, has no
        waiting request or is leased, so the call replaces the read. The lease only spares dispatchers
        from racing for the same slot; the limit itself is held by the admission transaction.
        """
        try:
            item = self.client.update_item(
                TableName=self.table, Key=self._key(tier, COUNTER),
                UpdateExpression="SET lease_owner = :me, lease_until = :until",
                ConditionExpression=("(attribute_not_exists(inflight) OR inflight < :limit) AND waiting > :zero AND "
                                     "(attribute_not_exists(lease_until) OR lease_until < :now)"),
                ExpressionAttributeValues={":me": {"S": owner}, ":until": _n(now_ms + lease_ms), ":now": _n(now_ms),
                                           ":limit": _n(limit), ":zero": _n(0)},
                ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
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
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
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
                "UpdateExpression": "SET waiting = if_not_exists(waiting, :zero) + :one",
                "ExpressionAttributeValues": {":zero": _n(0), ":one": _n(1)}}}),
        ]

    def admit_items(self, tier: str, limit: int, tenant: str, execution_id: str, now: str, *, queued: bool,
                    tenant_cap: int | None = None, served_increment: int = 1, clock: int | None = None) -> list[TxItem]:
        """Take a slot: counter `inflight < limit` (and, for a request that skips the queue, nobody waiting)."""
        waiting = ", waiting = if_not_exists(waiting, :zero) - :one" if queued else ""
        counter_values = {":zero": _n(0), ":one": _n(1), ":limit": _n(limit)}
        clock_update = ""
        if clock is not None:  # the tier's virtual clock (mlops.admission), kept with the counter
            clock_update, counter_values[":clock"] = ", vclock = :clock", _n(clock)
        counter_condition = "(attribute_not_exists(inflight) OR inflight < :limit)"
        if not queued:  # skipping the queue is only fair when nobody is in it
            counter_condition += " AND (attribute_not_exists(waiting) OR waiting <= :zero)"
        tenant_values = {":zero": _n(0), ":one": _n(1), ":inc": _n(served_increment)}
        tenant_condition = None
        if tenant_cap is not None:
            tenant_condition = "attribute_not_exists(running) OR running < :cap"
            tenant_values[":cap"] = _n(tenant_cap)
        tenant_update: dict[str, Any] = {
            "TableName": self.table, "Key": self._key(tier, f"TENANT#{tenant}"),
            "UpdateExpression": ("SET running = if_not_exists(running, :zero) + :one, "
                                 f"served = if_not_exists(served, :zero) + :inc{waiting}"),
            "ExpressionAttributeValues": tenant_values}
        if tenant_condition:
            tenant_update["ConditionExpression"] = tenant_condition
        items = [
            TxItem("counter", {"Update": {
                "TableName": self.table, "Key": self._key(tier, COUNTER),
                "UpdateExpression": ("SET inflight = if_not_exists(inflight, :zero) + :one, "
                                     f"admitted = if_not_exists(admitted, :zero) + :one, #limit = :limit{waiting}{clock_update}"),
                "ConditionExpression": counter_condition,
                "ExpressionAttributeNames": {"#limit": "limit"},
                "ExpressionAttributeValues": counter_values}}),
            TxItem("tenant", {"Update": tenant_update}),
            TxItem("slot", {"Put": {
                "TableName": self.table,
                "Item": {**self._key(tier, f"SLOT#{execution_id}"), "tenant": {"S": tenant},
                         "execution_id": {"S": execution_id}, "admitted_at": {"S": now}},
                "ConditionExpression": "attribute_not_exists(pk)"}}),
        ]
        if self.account_quota is not None:
            items.append(TxItem("account", {"Update": {
                "TableName": self.table, "Key": {"pk": {"S": "ACCOUNT"}, "sk": {"S": COUNTER}},
                "UpdateExpression": "SET inflight = if_not_exists(inflight, :zero) + :one",
                "ConditionExpression": "attribute_not_exists(inflight) OR inflight < :quota",
                "ExpressionAttributeValues": {":zero": _n(0), ":one": _n(1), ":quota": _n(self.account_quota)}}}))
        return items

    def admit_many_items(self, tier: str, limit: int, admits: list[tuple[str, str, int]], now: str, *,  # pylint: disable=too-many-locals
                         caps: dict[str, int] | None = None, clock: int | None = None,
                         lease_owner: str | None = None) -> list[TxItem]:
        """Take k slots of queued requests in one transaction: `admits` is (tenant, execution id, served increment).

        One counter update (`inflight <= limit - k`), one update per tenant (its cap checked for all its
        admissions at once), one slot item per execution. With `lease_owner`, the counter update also ends
        the dispatcher's tier lease, and only if the lease is still its own (otherwise the transaction
        fails and nothing is admitted): no separate call to give the lease back. Item names carry the
        tenant or execution id, so a failed condition says whose it was.
        """
        k = len(admits)
        per_tenant: dict[str, list[int]] = {}
        for tenant, _, increment in admits:
            per_tenant.setdefault(tenant, []).append(increment)
        values = {":zero": _n(0), ":k": _n(k), ":room": _n(limit - k), ":limit": _n(limit)}
        update = ("SET inflight = if_not_exists(inflight, :zero) + :k, waiting = if_not_exists(waiting, :zero) - :k, "
                  "admitted = if_not_exists(admitted, :zero) + :k, #limit = :limit")
        condition = "(attribute_not_exists(inflight) OR inflight <= :room)"
        if clock is not None:
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
        for tenant, increments in per_tenant.items():
            tenant_values = {":zero": _n(0), ":n": _n(len(increments)), ":inc": _n(sum(increments))}
            tenant_update: dict[str, Any] = {
                "TableName": self.table, "Key": self._key(tier, f"TENANT#{tenant}"),
                "UpdateExpression": ("SET running = if_not_exists(running, :zero) + :n, served = if_not_exists(served, :zero) + :inc, "
                                     "waiting = if_not_exists(waiting, :zero) - :n"),
                "ExpressionAttributeValues": tenant_values}
            cap = (caps or {}).get(tenant)
            if cap is not None:
                tenant_update["ConditionExpression"] = "attribute_not_exists(running) OR running <= :room"
                tenant_values[":room"] = _n(cap - len(increments))
            items.append(TxItem(f"tenant:{tenant}", {"Update": tenant_update}))
        for tenant, execution_id, _ in admits:
            items.append(TxItem(f"slot:{execution_id}", {"Put": {
                "TableName": self.table,
                "Item": {**self._key(tier, f"SLOT#{execution_id}"), "tenant": {"S": tenant},
                         "execution_id": {"S": execution_id}, "admitted_at": {"S": now}},
                "ConditionExpression": "attribute_not_exists(pk)"}}))
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
            TxItem("slot", {"Delete": {"TableName": self.table, "Key": self._key(tier, f"SLOT#{execution_id}"),
                                       "ConditionExpression": "attribute_exists(pk)"}}),
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


def _counter_state(tier: str, limit: int, values: dict[str, Any]) -> TierState:
    return TierState(tier=tier, limit=limit, inflight=values.get("inflight", 0), waiting=values.get("waiting", 0),
                     clock=values.get("vclock", 0), admitted=values.get("admitted", 0))


def _error(exc: ClientError) -> MlopsError:
    return MlopsError(f"tier slots: {exc.response['Error']['Code']}: {exc.response['Error'].get('Message', '')}",
                      "create the slots table (terraform apply / mlops local up) and check the role's permissions")
