"""Build requests: parsing every source, rejections with reasons, and the idempotency key."""

from __future__ import annotations

import json

import pytest
from trigger_helpers import request, upload_event

from mlops.naming import Names
from mlops.requests import BuildRequest, RejectedRequest, parse_status_event, status_event
from mlops.uploads import parse_message

NAMES = Names(project="trig")
TENANTS = ["acme", "globex"]


def _parse(event: dict) -> BuildRequest:
    return parse_message(json.dumps(event), "trig", "us-east-1", TENANTS)


def test_an_upload_event_becomes_a_request_of_the_bucket_owner() -> None:
    parsed = _parse(upload_event(NAMES, "globex", "churn", "data/churn/2026/01.csv"))
    assert (parsed.source, parsed.tenant, parsed.model) == ("upload", "globex", "churn")
    assert parsed.data_uri == f"s3://{NAMES.tenant_bucket('globex')}/data/churn/2026/01.csv"


def test_the_same_delivery_has_the_same_key_and_a_new_object_a_new_one() -> None:
    first = _parse(upload_event(NAMES, "acme", "churn", "data/churn/a.csv"))
    again = _parse(upload_event(NAMES, "acme", "churn", "data/churn/a.csv"))
    overwritten = _parse(upload_event(NAMES, "acme", "churn", "data/churn/a.csv", etag="def456"))
    assert first.execution_id == again.execution_id
    assert overwritten.execution_id != first.execution_id
    assert len(first.client_request_token) == 64
    assert first.execution_id.startswith("acme-churn-") and len(first.execution_id) <= 82


def test_a_retried_ci_job_is_the_same_request_and_a_new_commit_is_not() -> None:
    assert request("acme", 1).digest == request("acme", 1, links={"job": "https://ci/2"}).digest
    assert request("acme", 1).digest != request("acme", 2).digest
    assert request("acme", 1).digest != request("acme", 1, dedup_id="manual-rebuild-1").digest


def test_the_retraining_check_asks_once_a_day() -> None:
    def retrain(at: str) -> BuildRequest:
        return BuildRequest(source="retrain", tenant="acme", model="churn", reason="model age", requested_at=at)

    assert retrain("2026-01-01T03:00:00+00:00").digest == retrain("2026-01-01T09:00:00+00:00").digest
    assert retrain("2026-01-01T03:00:00+00:00").digest != retrain("2026-01-02T03:00:00+00:00").digest


@pytest.mark.parametrize("event, reason", [
    pytest.param({"detail-type": "Object Deleted", "source": "aws.s3"}, "unexpected event", id="wrong-detail-type"),
    pytest.param(upload_event(NAMES, "acme", "churn", "raw/x.csv"), "is not under data/<model>/", id="outside-data-prefix"),
    pytest.param(upload_event(NAMES, "acme", "churn", "data/churn/"), "is not under data/<model>/", id="folder-marker"),
    pytest.param({**upload_event(NAMES, "acme", "churn", "data/churn/x"),
                  "detail": {"bucket": {"name": Names(project="trig", account_id="999999999999").tenant_bucket("acme")},
                             "object": {"key": "data/churn/x"}}},
                 "belongs to no tenant", id="bucket-of-another-account"),
    pytest.param({**upload_event(NAMES, "acme", "churn", "data/churn/x"), "account": "nope"}, "bad account", id="bad-account"),
    pytest.param({"source": "cron", "tenant": "acme", "model": "churn"}, "source: Input should be", id="unknown-source"),
    pytest.param({"source": "ci", "tenant": "Acme!", "model": "churn"}, "tenant: String should match", id="bad-tenant-id"),
    pytest.param(["not", "an", "object"], "must be a JSON object", id="not-an-object"),
])
def test_bad_requests_are_rejected_with_a_reason(event: object, reason: str) -> None:
    with pytest.raises(RejectedRequest) as err:
        parse_message(json.dumps(event), "trig", "us-east-1", TENANTS)
    assert reason in err.value.message


def test_status_events_round_trip_and_others_are_rejected() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/trig-churn/execution/abc"
    parsed = parse_status_event(json.dumps(status_event("acme-churn-0123456789ab", "Succeeded", arn, at="2026-01-01T00:00:00Z")))
    assert (parsed.execution_id, parsed.status, parsed.pipeline_execution_arn) == ("acme-churn-0123456789ab", "Succeeded", arn)
    with pytest.raises(RejectedRequest, match="not a pipeline status-change event"):
        parse_status_event(json.dumps({"detail-type": "Object Created"}))
    with pytest.raises(RejectedRequest, match="status: Input should be"):
        parse_status_event(json.dumps(status_event("x", "Exploded", arn)))
