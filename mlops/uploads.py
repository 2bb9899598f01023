"""The upload policy: which messages of the uploads queue become build requests, and which refused uploads are recorded.

The uploads queue carries S3 `Object Created` events of the tenant buckets (S3 → EventBridge → SQS) and,
now and then, a build request sent to it directly. For each message:

- a build request (`source` ci or retrain) is started or queued like any other;
- an upload on `data/<model>/<file>` of a tenant's bucket, for a model the tenant trains, becomes a build
  request (`source = upload`) and is recorded as the tenant x model's newest data; the build starts now,
  unless the tenant's `retrain_on_upload` is `scheduled` (then the daily retraining check starts it);
- anything else is refused (`RejectedRequest`, dead-lettered with the reason). A refused message that is a
  tenant's upload (a key outside `data/<model>/`, a model the platform or the tenant does not train) is also
  recorded in the ledger as REJECTED, so the tenant sees it; a message that is no tenant's upload (not an S3
  event, a foreign bucket) has nobody to show it to and is only dead-lettered.

The tenant is always the bucket's owner by the naming scheme, never what the event claims. Pure: no boto3.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from mlops.errors import MlopsError
from mlops.naming import Names
from mlops.requests import BuildRequest, RejectedRequest, check_registry, json_object, parse_json, parse_request, utc_now

#: Detail type of the events S3 sends to EventBridge for a new object.
S3_OBJECT_CREATED = "Object Created"


@dataclass(frozen=True)
class Arrival:
    """A message of the uploads queue that became a build request: `upload` when it is a tenant's data upload (to be
    recorded as the newest data), `start` when the build is to start now (False: the retraining check starts it)."""

    request: BuildRequest
    upload: bool = False
    start: bool = True


def tenant_of_bucket(names: Names, tenants: list[str], bucket: str) -> str | None:
    """Which tenant owns a bucket, from the naming scheme (never from anything the event claims)."""
    for tenant in tenants:
        if names.tenant_bucket(tenant) == bucket:
            return tenant
    return None


def parse_upload_event(event: dict[str, Any], project: str, region: str, tenants: list[str]) -> BuildRequest:
    """A build request from an EventBridge `Object Created` event on a tenant's `data/<model>/` prefix."""
    if event.get("source") != "aws.s3" or event.get("detail-type") != S3_OBJECT_CREATED:
        raise RejectedRequest(
            f"unexpected event {event.get('source')!r} / {event.get('detail-type')!r}",
            "the uploads queue only takes S3 'Object Created' events",
        )
    detail = json_object(event.get("detail"), "detail")
    bucket = json_object(detail.get("bucket"), "detail.bucket").get("name")
    obj = json_object(detail.get("object"), "detail.object")
    key = obj.get("key")
    account = str(event.get("account") or "")
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        raise RejectedRequest("S3 event without bucket name or object key", "check the EventBridge rule's input")
    try:
        names = Names(project=project, account_id=account, region=event.get("region") or region)
    except MlopsError as exc:
        raise RejectedRequest(f"S3 event with a bad account or region: {exc.message}") from exc
    tenant = tenant_of_bucket(names, tenants, bucket)
    if tenant is None:
        raise RejectedRequest(f"bucket '{bucket}' belongs to no tenant of project '{project}'",
                              "only tenant buckets from the registry may trigger builds")
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != "data" or not parts[2]:
        raise RejectedRequest(f"object '{key}' is not under data/<model>/", "upload training data to data/<model>/<file>")
    return parse_request({
        "source": "upload",
        "tenant": tenant,
        "model": parts[1],
        "data_uri": f"s3://{bucket}/{key}",
        "reason": f"new data s3://{bucket}/{key}",
        "parameters": {k: str(v) for k, v in (("DataETag", obj.get("etag")), ("DataSequencer", obj.get("sequencer")))
                       if v is not None},
        "requested_at": event.get("time") or utc_now(),
    })


def parse_message(body: str, project: str, region: str, tenants: list[str]) -> BuildRequest:
    """A build request from any message the uploads queue carries: an EventBridge S3 event or a request."""
    data = parse_json(body)
    if isinstance(data, dict) and "detail-type" in data:
        return parse_upload_event(data, project, region, tenants)
    return parse_request(data)


def arrival(body: str, registry: Any) -> Arrival:
    """What a message of the uploads queue asks for. An upload is checked against the registry (`registry`: a
    `mlops.config.tenants.Registry`) here; a request, as every request, when it is submitted.
    Raises RejectedRequest with the reason."""
    platform = registry.platform
    request = parse_message(body, platform.project, platform.region, sorted(registry.tenants))
    if request.source != "upload":
        return Arrival(request)
    tenant = check_registry(request, registry)
    return Arrival(request, upload=True, start=tenant.retrain_on_upload != "scheduled")


def refused_upload(body: str, registry: Any) -> dict[str, Any] | None:
    """What a refused message says about a tenant's upload, for the ledger's REJECTED record of it: tenant, object,
    the model the key names (if any), when, and an id equal for every delivery of the same object. None when the
    message is no S3 `Object Created` event on a tenant's bucket (then there is no tenant to show it to). Never raises."""
    platform = registry.platform
    try:
        event = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(event, dict) or event.get("source") != "aws.s3" or event.get("detail-type") != S3_OBJECT_CREATED:
        return None
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    bucket = (detail.get("bucket") or {}).get("name") if isinstance(detail.get("bucket"), dict) else None
    obj = detail.get("object") if isinstance(detail.get("object"), dict) else {}
    key = obj.get("key")
    if not isinstance(bucket, str) or not isinstance(key, str):
        return None
    try:
        names = Names(project=platform.project, account_id=str(event.get("account") or ""),
                      region=str(event.get("region") or platform.region))
    except MlopsError:
        return None
    tenant = tenant_of_bucket(names, sorted(registry.tenants), bucket)
    if tenant is None:
        return None
    parts = key.split("/")
    identity = json.dumps([bucket, key, obj.get("etag"), obj.get("sequencer")], separators=(",", ":"))
    return {"id": f"{tenant}-upload-{hashlib.sha256(identity.encode()).hexdigest()[:12]}", "tenant": tenant,
            "model": parts[1] if len(parts) > 2 and parts[0] == "data" and parts[1] else None,
            "data_uri": f"s3://{bucket}/{key}", "at": str(event.get("time") or utc_now())}
