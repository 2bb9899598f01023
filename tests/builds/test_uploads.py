"""The upload policy (`mlops.uploads`, pure) and the trigger's handling of the uploads queue over the in-memory ports."""

from __future__ import annotations

import json
from typing import Any

import pytest
from builds_world import World, request, upload_body

from mlops import uploads
from mlops.requests import RejectedRequest
from mlops.statuses import EXECUTING, REJECTED


def test_an_upload_under_data_model_becomes_a_build_of_that_model_for_the_bucket_s_owner(world: World) -> None:
    arrival = uploads.arrival(upload_body(world.registry, "globex", "data/churn/2026/01.csv"), world.registry)
    request_ = arrival.request
    assert (arrival.upload, arrival.start) == (True, True)
    assert (request_.source, request_.tenant, request_.model) == ("upload", "globex", "churn")
    assert request_.data_uri == f"s3://{world.registry.names().tenant_bucket('globex')}/data/churn/2026/01.csv"
    assert request_.parameters == {"DataETag": "abc123", "DataSequencer": "0001"}
    again = uploads.arrival(upload_body(world.registry, "globex", "data/churn/2026/01.csv"), world.registry)
    other = uploads.arrival(upload_body(world.registry, "globex", "data/churn/2026/01.csv", etag="def"), world.registry)
    assert again.request.execution_id == request_.execution_id != other.request.execution_id


def test_a_request_on_the_uploads_queue_is_a_request(world: World) -> None:
    arrival = uploads.arrival(request("acme", 1).to_message(), world.registry)
    assert (arrival.upload, arrival.start, arrival.request.source) == (False, True, "ci")


def test_a_scheduled_tenant_s_upload_is_left_to_the_retraining_check(world_factory: Any) -> None:
    world = world_factory({"acme": "gold"}, overrides={"acme": {"retrain_on_upload": "scheduled"}})
    arrival = uploads.arrival(upload_body(world.registry, "acme", "data/churn/x.csv"), world.registry)
    assert (arrival.upload, arrival.start) == (True, False)


@pytest.mark.parametrize(("key", "reason", "model"), [
    pytest.param("uploads/x.csv", "is not under data/<model>/", None, id="outside-data"),
    pytest.param("data/churn/", "is not under data/<model>/", "churn", id="no-file"),
    pytest.param("data/fraud/x.csv", "unknown model 'fraud'", "fraud", id="model-of-no-platform"),
    pytest.param("data/house-prices/x.csv", "does not train model 'house-prices'", "house-prices", id="model-the-tenant-does-not-train"),
])
def test_a_refused_upload_names_its_tenant_and_model(world_factory: Any, key: str, reason: str, model: str | None) -> None:
    world = world_factory({"acme": "gold"}, overrides={"acme": {"models": ["churn"]}})
    body = upload_body(world.registry, "acme", key)
    with pytest.raises(RejectedRequest, match=reason.replace("(", r"\(").replace(")", r"\)")):
        uploads.arrival(body, world.registry)
    refused = uploads.refused_upload(body, world.registry)
    assert refused is not None and (refused["tenant"], refused["model"]) == ("acme", model)
    assert refused["id"] == uploads.refused_upload(body, world.registry)["id"]  # every delivery: the same record


@pytest.mark.parametrize("body", [
    pytest.param("{not json", id="not-json"),
    pytest.param(json.dumps({"source": "ci", "tenant": "acme"}), id="a-malformed-request"),
    pytest.param(json.dumps({"detail-type": "Object Created", "source": "aws.s3", "detail": "x"}), id="detail-not-an-object"),
])
def test_what_is_no_tenant_s_upload_has_nobody_to_be_shown_to(world: World, body: str) -> None:
    with pytest.raises(RejectedRequest):
        uploads.arrival(body, world.registry)
    assert uploads.refused_upload(body, world.registry) is None


def test_a_foreign_bucket_is_nobody_s(world: World) -> None:
    body = upload_body(world.registry, "acme", "data/churn/x.csv", bucket="someone-elses-bucket")
    with pytest.raises(RejectedRequest, match="belongs to no tenant"):
        uploads.arrival(body, world.registry)
    assert uploads.refused_upload(body, world.registry) is None


def test_the_trigger_records_each_upload_as_the_newest_data_and_starts_it_once(world: World) -> None:
    service = world.service()
    body = upload_body(world.registry, "globex", "data/churn/day1.csv")
    outcomes = [service.accept(body) for _ in range(2)]  # S3 and EventBridge deliver at least once
    assert [o.result for o in outcomes] == ["started", "duplicate"]
    assert world.status(outcomes[0].execution_id) == EXECUTING
    state = world.store.states[("globex", "churn")]
    assert state["uploaded_at"].startswith("2026-01-01T00:00:00") and state["upload_uri"].endswith("data/churn/day1.csv")


def test_the_trigger_only_records_a_scheduled_tenant_s_upload(world_factory: Any) -> None:
    world = world_factory({"acme": "gold"}, overrides={"acme": {"retrain_on_upload": "scheduled"}})
    outcome = world.service().accept(upload_body(world.registry, "acme", "data/churn/x.csv"))
    assert outcome.result == "recorded" and "retraining check" in outcome.detail
    assert world.store.executions == {} and "uploaded_at" in world.store.states[("acme", "churn")]


def test_a_refused_upload_is_recorded_and_notified_once(world: World) -> None:
    service = world.service()
    body = upload_body(world.registry, "acme", "uploads/x.csv")
    for _ in range(2):
        with pytest.raises(RejectedRequest, match="not under data/<model>/"):
            service.accept(body)
    [record] = world.store.refused.values()
    assert (record["status"], record["tenant"], record["notified"]) == (REJECTED, "acme", True)
    assert record["failure_reason"].startswith("object 'uploads/x.csv' is not under data/<model>/")
    assert len(world.notifier.sent) == 1 and world.store.executions == {}


def test_a_refused_request_on_the_uploads_queue_records_nothing(world: World) -> None:
    with pytest.raises(RejectedRequest, match="unknown tenant"):
        world.service().accept(request("nobody", 1).to_message())
    assert world.store.refused == {} and world.notifier.sent == []
