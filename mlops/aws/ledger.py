"""The execution ledger (DynamoDB): one item per pipeline execution, and its status history.

Key: `pk = EXEC#<execution_id>`, `sk = EXEC` (docs/trigger.md). Every status write is conditional on the
item's `status_rank` being lower than the new status's rank, so a status event delivered twice or late
(Executing after Succeeded) changes nothing; the statuses and their ranks are `mlops.statuses`. Writes that
must happen together with a slot change are returned as transaction items (`mlops.aws.dynamo.TxItem`), which
the build store (`mlops.aws.build_store`) combines with the slots table's. `Ledger.records` and `Ledger.record`
are the one reading of executions and refused uploads for people (`mlops executions`, `mlops cost`).

Beside the executions, one small *state* item per tenant x model (`pk = STATE#<shard>`, `sk = <tenant>#<model>`)
keeps what the daily retraining check needs, so that it reads N small items instead of the whole history
(docs/retrain.md): the builds queued or running (`active`, a string set changed in the same transactions as
the execution items), the newest successful training (`trained_*`) and the newest data upload
(`uploaded_at`), both written newer-wins, so a late or repeated write changes nothing.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from mlops.aws import errors
from mlops.aws.dynamo import TxItem, from_attrs, to_attrs
from mlops.errors import MlopsError
from mlops.requests import BuildRequest
from mlops.statuses import EXECUTING, QUEUED, RANK, REJECTED, STARTING

#: The sort key of an execution's item; a tenant's upload the trigger refused (outside `data/<model>/`, unknown
#: model, disabled tenant) is kept beside the executions (`pk = REJECTED#<id>`, `sk = REJECTED`) so people see it,
#: out of the way of every execution reader.
EXECUTION_SK = "EXEC"
#: State items are spread over this many partitions (write sharding); the check reads them with one Query each.
STATE_SHARDS = 8
STATE_PREFIX = "STATE#"


def key(execution_id: str) -> dict[str, Any]:
    """The ledger key of an execution."""
    return {"pk": {"S": f"EXEC#{execution_id}"}, "sk": {"S": EXECUTION_SK}}


def rejected_key(rejection_id: str) -> dict[str, Any]:
    """The key of a rejected upload's item."""
    return {"pk": {"S": f"{REJECTED}#{rejection_id}"}, "sk": {"S": REJECTED}}


def state_key(tenant: str, model: str) -> dict[str, Any]:
    """The key of a tenant x model's state item: a fixed shard from the name, so every writer agrees."""
    name = f"{tenant}#{model}"
    return {"pk": {"S": f"{STATE_PREFIX}{zlib.crc32(name.encode()) % STATE_SHARDS}"}, "sk": {"S": name}}


def utc_text(value: str | None) -> str | None:
    """An ISO 8601 time as UTC text with microseconds, so that newer-wins conditions compare as text."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _history(status: str, at: str, source: str, detail: str | None = None) -> dict[str, Any]:
    entry = {"status": status, "at": at, "source": source}
    if detail:
        entry["detail"] = detail[:500]
    return to_attrs({"h": [entry]})["h"]


class Ledger:
    """The ledger table behind a boto3 DynamoDB client."""

    def __init__(self, client: Any, table: str):
        self.client = client
        self.table = table

    # -- item construction (used inside transactions) ----------------------------------------------
    def new_item(self, request: BuildRequest, tier: str, instance_type: str, instance_count: int,
                 status: str, now: str) -> TxItem:
        """Create the item of a new request; fails (as a transaction condition) if it exists."""
        values: dict[str, Any] = {
            "pk": f"EXEC#{request.execution_id}", "sk": EXECUTION_SK,
            "execution_id": request.execution_id, "request_digest": request.digest,
            "tenant": request.tenant, "model": request.model, "tier": tier, "source": request.source,
            "version": request.version, "git_commit": request.git_commit, "image_uri": request.image_uri,
            "image_digest": request.image_digest, "data_uri": request.data_uri, "reason": request.reason,
            "parameters": dict(request.parameters), "links": dict(request.links),
            "requested_at": request.requested_at, "instance_type": instance_type, "instance_count": instance_count,
            "status": status, "status_rank": RANK[status], "status_time": now,
            "history": [{"status": QUEUED, "at": request.requested_at, "source": request.source}]
            + ([{"status": status, "at": now, "source": "trigger"}] if status != QUEUED else []),
            "request": request.to_message(),
        }
        if status == STARTING:
            values |= {"starting_at": now, "start_attempt": 1}
        return TxItem("ledger", {"Put": {
            "TableName": self.table, "Item": to_attrs(values),
            "ConditionExpression": "attribute_not_exists(pk)", "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }})

    def start_item(self, execution_id: str, now: str) -> TxItem:
        """QUEUED → STARTING, only from QUEUED: the one write that makes a second start impossible."""
        return TxItem("ledger", {"Update": {
            "TableName": self.table, "Key": key(execution_id),
            "UpdateExpression": ("SET #s = :starting, status_rank = :rank, status_time = :now, starting_at = :now, "
                                 "start_attempt = :one, history = list_append(history, :h)"),
            "ConditionExpression": "#s = :queued", "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":starting": {"S": STARTING}, ":queued": {"S": QUEUED},
                                          ":rank": {"N": str(RANK[STARTING])}, ":now": {"S": now}, ":one": {"N": "1"},
                                          ":h": _history(STARTING, now, "dispatcher")},
        }})

    def file_item(self, execution_id: str, tag: int) -> TxItem:
        """Mark a QUEUED request as filed into its tier's backlog with its start tag; fails for a request
        filed before (a duplicate message), no longer QUEUED, or unknown (the old item says which)."""
        return TxItem(f"ledger:{execution_id}", {"Update": {
            "TableName": self.table, "Key": key(execution_id),
            "UpdateExpression": "SET filed_tag = :tag",
            "ConditionExpression": "#s = :queued AND attribute_not_exists(filed_tag)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":tag": {"N": str(tag)}, ":queued": {"S": QUEUED}}}})

    def status_item(self, execution_id: str, status: str, at: str, source: str,
                    extra: dict[str, Any] | None = None) -> TxItem:
        """Move to `status` only if it is later than the current one (duplicates and stale events no-op)."""
        names = {"#s": "status"}
        values = {":status": {"S": status}, ":rank": {"N": str(RANK[status])}, ":at": {"S": at},
                  ":h": _history(status, at, source, (extra or {}).get("failure_reason"))}
        sets = ["#s = :status", "status_rank = :rank", "status_time = :at", "history = list_append(history, :h)"]
        for i, (name, value) in enumerate(sorted((extra or {}).items())):
            if value is None:
                continue
            names[f"#x{i}"] = name
            values[f":x{i}"] = to_attrs({"v": value})["v"]
            sets.append(f"#x{i} = :x{i}")
        return TxItem("ledger", {"Update": {
            "TableName": self.table, "Key": key(execution_id),
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": "attribute_exists(pk) AND status_rank < :rank",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
        }})

    # -- the per tenant x model state (read by the retraining check) -----------------------------------
    def state_request_item(self, request: BuildRequest) -> TxItem:
        """With a new execution item: the build is active for its tenant x model until `state_end_item`."""
        return TxItem("state", {"Update": {
            "TableName": self.table, "Key": state_key(request.tenant, request.model),
            "UpdateExpression": "SET tenant = :t, model = :m ADD active :e",
            "ExpressionAttributeValues": {":t": {"S": request.tenant}, ":m": {"S": request.model},
                                          ":e": {"SS": [request.execution_id]}},
        }})

    def state_end_item(self, tenant: str, model: str, execution_id: str,
                       trained: dict[str, Any] | None = None) -> TxItem:
        """With a terminal status: the build is no longer active (a set delete, so a repeat is harmless).

        With `trained` (a SUCCEEDED execution's fields, as `record_trained` takes them) it also becomes the
        tenant x model's newest training, on condition that no newer one is recorded: a transaction that
        fails on this item alone is run again without `trained`.
        """
        values = trained_values(trained) if trained else None
        if not values:
            return TxItem("state", {"Update": {
                "TableName": self.table, "Key": state_key(tenant, model),
                "UpdateExpression": "DELETE active :e", "ExpressionAttributeValues": {":e": {"SS": [execution_id]}},
            }})
        sets, names, attrs = set_clause(values)
        return TxItem("state", {"Update": {
            "TableName": self.table, "Key": state_key(tenant, model),
            "UpdateExpression": f"{sets} DELETE active :e",
            "ConditionExpression": "attribute_not_exists(trained_ended_at) OR trained_ended_at < :at",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": attrs | {":e": {"SS": [execution_id]}, ":at": {"S": values["trained_ended_at"]}},
        }})

    def _newer(self, tenant: str, model: str, field: str, at: str, values: dict[str, Any]) -> bool:
        sets, names, attrs = set_clause({k: v for k, v in values.items() if v is not None})
        try:
            self.client.update_item(
                TableName=self.table, Key=state_key(tenant, model), UpdateExpression=sets,
                ConditionExpression=f"attribute_not_exists({field}) OR {field} < :at",
                ExpressionAttributeNames=names, ExpressionAttributeValues=attrs | {":at": {"S": at}})
            return True
        except ClientError as exc:
            if errors.is_condition_failed(exc):
                return False  # a newer one is recorded already
            raise _error(exc, "update the retraining state in the execution ledger") from exc

    def record_trained(self, item: dict[str, Any]) -> bool:
        """A SUCCEEDED execution (its ledger item) becomes the tenant x model's newest training, unless a newer
        one is recorded. False when it was not newer or has no end time."""
        values = trained_values(item)
        if not values:
            return False
        return self._newer(item["tenant"], item["model"], "trained_ended_at", values["trained_ended_at"], values)

    def record_upload(self, request: BuildRequest) -> bool:
        """A data upload (`source = upload`) becomes the tenant x model's newest data, unless a newer one is
        recorded. The trigger calls it for every upload, whether it starts a build now or leaves it to the check."""
        at = utc_text(request.requested_at) or request.requested_at
        return self._newer(request.tenant, request.model, "uploaded_at", at, {
            "tenant": request.tenant, "model": request.model, "uploaded_at": at, "upload_uri": request.data_uri})

    def record_rejected(self, upload: dict[str, Any], reason: str, now: str) -> dict[str, Any] | None:
        """Record a refused upload (`mlops.uploads.refused_upload`) once; its item, or None when a delivery
        before this one recorded it already."""
        item = {"execution_id": upload["id"], "tenant": upload["tenant"], "model": upload.get("model"), "source": "upload",
                "status": REJECTED, "status_time": now, "requested_at": utc_text(upload["at"]) or now,
                "data_uri": upload["data_uri"], "reason": f"upload {upload['data_uri']}", "failure_reason": reason[:1000],
                "history": [{"status": REJECTED, "at": now, "source": "trigger", "detail": reason[:500]}]}
        try:
            self.client.put_item(TableName=self.table, Item=to_attrs(item) | rejected_key(upload["id"]),
                                 ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if errors.is_condition_failed(exc):
                return None
            raise _error(exc, "record a refused upload in the execution ledger") from exc
        return item

    def set_rejected_notified(self, rejection_id: str) -> None:
        """The rejected upload's notification was sent."""
        try:
            self.client.update_item(TableName=self.table, Key=rejected_key(rejection_id), UpdateExpression="SET notified = :t",
                                    ExpressionAttributeValues={":t": {"BOOL": True}})
        except ClientError as exc:
            raise _error(exc, "update a refused upload in the execution ledger") from exc

    # -- single writes ---------------------------------------------------------------------------------
    def write(self, item: TxItem) -> bool:
        """Run one item built above on its own; False when its condition failed."""
        (op, params), = item.op.items()
        params = {k: v for k, v in params.items() if k != "ReturnValuesOnConditionCheckFailure"}
        call = {"Put": self.client.put_item, "Update": self.client.update_item}[op]
        try:
            call(**params)
            return True
        except ClientError as exc:
            if errors.is_condition_failed(exc):
                return False
            raise _error(exc, "write to the execution ledger") from exc

    def record_started(self, execution_id: str, arn: str, now: str) -> bool:
        """After StartPipelineExecution: STARTING → EXECUTING with the ARN, unless an event got there first."""
        if self.write(self.status_item(execution_id, EXECUTING, now, "dispatcher",
                                       {"pipeline_execution_arn": arn, "started_at": now})):
            return True
        try:  # a status event was faster: keep its status, add the ARN if it is missing
            self.client.update_item(TableName=self.table, Key=key(execution_id),
                                    UpdateExpression="SET pipeline_execution_arn = if_not_exists(pipeline_execution_arn, :a)",
                                    ConditionExpression="attribute_exists(pk)",
                                    ExpressionAttributeValues={":a": {"S": arn}})
        except ClientError as exc:
            if not errors.is_condition_failed(exc):
                raise _error(exc, "record a start in the execution ledger") from exc
        return False

    def claim_restart(self, execution_id: str, attempt: int, stale_before: str, now: str) -> bool:
        """Take over a start whose dispatcher vanished (STARTING for longer than a lease). One winner."""
        try:
            self.client.update_item(
                TableName=self.table, Key=key(execution_id),
                UpdateExpression="SET start_attempt = :next, starting_at = :now",
                ConditionExpression="#s = :starting AND start_attempt = :attempt AND starting_at < :stale",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":next": {"N": str(attempt + 1)}, ":now": {"S": now},
                                           ":starting": {"S": STARTING}, ":attempt": {"N": str(attempt)},
                                           ":stale": {"S": stale_before}})
            return True
        except ClientError as exc:
            if errors.is_condition_failed(exc):
                return False
            raise _error(exc, "claim a restart in the execution ledger") from exc

    def set_fields(self, execution_id: str, fields: dict[str, Any], only_if_missing: str | None = None) -> bool:
        """Set plain fields (results, `notified`); with `only_if_missing`, only if that field is absent."""
        sets, names, values = set_clause(fields)
        condition = "attribute_exists(pk)"
        if only_if_missing:
            names["#once"] = only_if_missing
            condition += " AND attribute_not_exists(#once)"
        try:
            self.client.update_item(TableName=self.table, Key=key(execution_id),
                                    UpdateExpression=sets,
                                    ConditionExpression=condition,
                                    ExpressionAttributeNames=names, ExpressionAttributeValues=values)
            return True
        except ClientError as exc:
            if errors.is_condition_failed(exc):
                return False
            raise _error(exc, "update the execution ledger") from exc

    # -- reads ---------------------------------------------------------------------------------------
    def get(self, execution_id: str) -> dict[str, Any] | None:
        """One execution, strongly consistent; None if it is not in the ledger."""
        try:
            item = self.client.get_item(TableName=self.table, Key=key(execution_id), ConsistentRead=True).get("Item")
        except ClientError as exc:
            raise _error(exc, "read the execution ledger") from exc
        return public(from_attrs(item)) if item else None

    def get_rejected(self, rejection_id: str) -> dict[str, Any] | None:
        """One rejected upload; None if there is no such record."""
        try:
            item = self.client.get_item(TableName=self.table, Key=rejected_key(rejection_id), ConsistentRead=True).get("Item")
        except ClientError as exc:
            raise _error(exc, "read the execution ledger") from exc
        return public(from_attrs(item)) if item else None

    def rejected(self, tenant: str | None = None, model: str | None = None) -> list[dict[str, Any]]:
        """Every rejected upload matching the filters, newest first."""
        return self.scan(tenant, model, kind=REJECTED)

    def scan(self, tenant: str | None = None, model: str | None = None, status: str | None = None,
             kind: str = EXECUTION_SK) -> list[dict[str, Any]]:
        """Every execution (or, with `kind=REJECTED`, rejected upload) matching the filters, newest request first."""
        filters, values = ["sk = :sk"], {":sk": {"S": kind}}
        names: dict[str, str] = {}
        for name, value in (("tenant", tenant), ("model", model), ("status", status)):
            if value:
                names[f"#{name}"] = name
                filters.append(f"#{name} = :{name}")
                values[f":{name}"] = {"S": value}
        params: dict[str, Any] = {"TableName": self.table, "FilterExpression": " AND ".join(filters),
                                  "ExpressionAttributeValues": values}
        if names:
            params["ExpressionAttributeNames"] = names
        items: list[dict[str, Any]] = []
        try:
            for page in self.client.get_paginator("scan").paginate(**params):
                items.extend(public(from_attrs(i)) for i in page.get("Items", []))
        except ClientError as exc:
            raise _error(exc, "scan the execution ledger") from exc
        return sorted(items, key=lambda i: i.get("requested_at", ""), reverse=True)

    def records(self, tenant: str | None = None, model: str | None = None, status: str | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
        """Executions and refused uploads (status REJECTED) matching the filters, newest request first, at most `limit`."""
        items = [] if status == REJECTED else self.scan(tenant, model, status)
        if status in (None, REJECTED):
            items += self.rejected(tenant, model)
        return sorted(items, key=lambda i: i.get("requested_at", ""), reverse=True)[:limit]

    def record(self, record_id: str) -> dict[str, Any] | None:
        """One execution, or else one refused upload, by its id; None if the ledger has neither."""
        return self.get(record_id) or self.get_rejected(record_id)


def set_clause(values: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """`SET #f0 = :v0, ...` for plain fields, with its attribute names and values (any field name is safe)."""
    names = {f"#f{i}": name for i, name in enumerate(values)}
    attrs = {f":v{i}": to_attrs({"v": v})["v"] for i, v in enumerate(values.values())}
    return "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(values))), names, attrs


def trained_values(item: dict[str, Any]) -> dict[str, Any] | None:
    """The state item's `trained_*` fields for a SUCCEEDED execution (ledger item fields); None without an end
    time, tenant or model."""
    ended = utc_text(item.get("ended_at") or item.get("status_time"))
    if not ended or not item.get("tenant") or not item.get("model"):
        return None
    values = {"tenant": item["tenant"], "model": item["model"], "trained_execution": item.get("execution_id"),
              "trained_version": item.get("version"), "trained_ended_at": ended,
              "trained_started_at": utc_text(item.get("started_at") or item.get("requested_at")),
              "trained_data_watermark": utc_text(item.get("data_watermark"))}
    return {k: v for k, v in values.items() if v is not None}


def public(item: dict[str, Any]) -> dict[str, Any]:
    """An item without its table keys, as the CLI and notifications show it."""
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}


def _error(exc: ClientError, action: str) -> MlopsError:
    return errors.aws_error(action, exc, not_found_hint="create the ledger table (terraform apply / mlops local up)",
                            access_hint="check the role's DynamoDB permissions on the ledger table",
                            hint="check the role's DynamoDB permissions on the ledger table")
