"""The scan adapter against moto (real boto3), and its pagination against stubbed multi-page responses."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber

from mlops.aws.scan import (CallCounter, Clients, CloudWatchDrift, ScanOptions, gather, scan_ledger, scan_packages, scan_state,
                             scan_tenant_data)
from mlops.aws.ledger import state_key
from mlops.naming import Names
from mlops.retrain import TenantInfo
from retrain_support import REGION, SEED_NOW, clients_of_moto, ledger_item  # pylint: disable=import-error,wrong-import-order  # tests/retrain is on sys.path under pytest

NOW = SEED_NOW
TENANTS = [TenantInfo("acme", ("churn", "house-prices")), TenantInfo("globex", ("churn",), max_age_days=14)]
MODELS = ("churn", "house-prices")


def test_gather_reads_every_source_and_reports_bad_data(seeded: Clients, names: Names) -> None:
    inventory = gather(seeded, names, TENANTS, MODELS, now=NOW)
    assert sorted(inventory.images["churn"]) == ["1.0.0", "1.1.0", "1.2.0-mr.3.1", "latest"]
    assert set(inventory.data) == {("acme", "churn"), ("acme", "house-prices"), ("globex", "churn")}
    assert {g: p.version for g, p in inventory.packages.items()} == {"mlops-demo-acme-churn": 2, "mlops-demo-old-co-churn": 2}
    assert inventory.problems == ["ledger mlops-demo-ledger: 1 state item(s) without tenant or model were ignored"]
    active = [e for e in inventory.executions if e.active]
    assert [(e.tenant, e.model, e.status) for e in active] == [("globex", "churn", "ACTIVE")]
    trained = {(e.tenant, e.model): e.model_version for e in inventory.executions if e.succeeded}
    assert trained == {("acme", "churn"): "1.1.0", ("acme", "house-prices"): "1.0.0", ("globex", "churn"): None,
                       ("old-co", "churn"): "0.9.0"}


def test_history_mode_reads_every_execution(seeded: Clients, names: Names) -> None:
    inventory = gather(seeded, names, TENANTS, MODELS, ScanOptions(ledger="history"), now=NOW)
    statuses = {(e.tenant, e.model, e.status) for e in inventory.executions}
    assert statuses >= {("globex", "churn", "EXECUTING"), ("globex", "churn", "SUCCEEDED"), ("old-co", "churn", "SUCCEEDED")}
    assert len(inventory.executions) == 5
    assert set(inventory.data) == {("acme", "churn"), ("acme", "house-prices"), ("globex", "churn")}  # state items' uploads
    assert inventory.problems == ["ledger mlops-demo-ledger: 1 item(s) without tenant or model were ignored"]


def test_a_ledger_without_state_items_falls_back_to_the_history(aws, names: Names) -> None:  # pylint: disable=unused-argument
    clients = clients_of_moto()
    clients.dynamodb.create_table(
        TableName=names.ledger_table(), BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}])
    clients.dynamodb.put_item(TableName=names.ledger_table(), Item=ledger_item("acme", "churn", "acme-churn-1", "SUCCEEDED", 2, "1.1.0"))
    inventory = gather(clients, names, TENANTS, MODELS, ScanOptions(registry=False), now=NOW)
    assert [(e.tenant, e.model, e.status) for e in inventory.executions] == [("acme", "churn", "SUCCEEDED")]
    assert inventory.problems[0].startswith("ledger mlops-demo-ledger has no retraining state items")


def test_missing_sources_become_problems_not_crashes(aws, names: Names) -> None:  # pylint: disable=unused-argument
    inventory = gather(clients_of_moto(), names, TENANTS, MODELS, ScanOptions(data_from="s3"), now=NOW)
    text = "\n".join(inventory.problems)
    assert "ledger mlops-demo-ledger could not be read (ResourceNotFoundException)" in text
    assert "ECR mlops-demo/churn: ECR repository mlops-demo/churn does not exist" in text
    assert "bucket mlops-demo-tenant-acme-123456789012 could not be listed (NoSuchBucket)" in text
    assert not inventory.executions and not inventory.packages


def test_data_from_the_ledger_costs_no_s3_call(seeded: Clients, names: Names) -> None:
    counter = CallCounter().attach(seeded.dynamodb, seeded.ecr, seeded.sagemaker, seeded.s3)
    inventory = gather(seeded, names, TENANTS, MODELS, ScanOptions(data_from="ledger"), now=NOW)
    assert sorted(inventory.data) == [("acme", "churn"), ("acme", "house-prices"), ("globex", "churn")]  # the recorded uploads
    assert "s3" not in counter.by_service()
    assert counter.by_service() == {"dynamodb": 8, "ecr": 2, "sagemaker": 1}  # one Query per state shard


def test_small_pages_against_moto_still_read_everything(seeded: Clients, names: Names) -> None:
    counter = CallCounter().attach(seeded.dynamodb, seeded.s3, seeded.sagemaker)
    executions, _, _ = scan_ledger(seeded.dynamodb, names.ledger_table(), page_size=2)
    state, _, seen, _ = scan_state(seeded.dynamodb, names.ledger_table(), page_size=1)
    packages, _ = scan_packages(seeded.sagemaker, names, page_size=1)
    data, _ = scan_tenant_data(seeded.s3, names, ["acme"], page_size=1)
    assert len(executions) == 5 and len(packages) == 2 and len(data) == 2
    assert seen == 5 and len(state) == 5  # 4 trainings, 1 active build; the 5th item is the broken one
    assert counter.calls["dynamodb.Scan"] == 6  # 11 items (6 executions, 5 state items) in pages of 2
    shards = Counter(state_key(t, m)["pk"]["S"] for t, m in [("acme", "churn"), ("acme", "house-prices"), ("globex", "churn"),
                                                             ("old-co", "churn"), ("junk", "x")])
    assert counter.calls["dynamodb.Query"] == 8 - len(shards) + sum(shards.values())  # one call per item, one per empty shard
    assert counter.calls["sagemaker.ListModelPackages"] == 4
    assert counter.calls["s3.ListObjectsV2"] == 3


# -- pagination proven with stubbed multi-page responses ------------------------------------------------
def test_ledger_scan_follows_last_evaluated_key(names: Names) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    last_key = {"pk": {"S": "EXEC#a"}, "sk": {"S": "EXEC"}}
    first = {"Items": [ledger_item("acme", "churn", "a", "SUCCEEDED", 40, "1.0.0")], "LastEvaluatedKey": last_key}
    second = {"Items": [ledger_item("acme", "churn", "b", "QUEUED", 1, "1.1.0")]}
    params = {"TableName": names.ledger_table(), "ProjectionExpression": ANY, "ExpressionAttributeNames": ANY}
    with Stubber(client) as stub:
        stub.add_response("scan", first, params)
        stub.add_response("scan", second, {**params, "ExclusiveStartKey": last_key})
        executions, _, problems = scan_ledger(client, names.ledger_table())
        stub.assert_no_pending_responses()
    assert [e.execution_id for e in executions] == ["a", "b"] and not problems


def test_model_packages_follow_next_token(names: Names) -> None:
    client = boto3.client("sagemaker", region_name=REGION)

    def summary(group: str, version: int) -> dict:
        return {"ModelPackageGroupName": group, "ModelPackageVersion": version, "CreationTime": NOW,
                "ModelPackageArn": f"arn:aws:sagemaker:{REGION}:1:mp/{group}/{version}",
                "ModelPackageStatus": "Completed", "ModelApprovalStatus": "Approved"}

    params = {"ModelApprovalStatus": "Approved", "ModelPackageType": "Versioned", "NameContains": "mlops-demo-"}
    with Stubber(client) as stub:
        pages = [([summary("mlops-demo-acme-churn", 1)], None, "t1"),
                 ([summary("mlops-demo-acme-churn", 3), summary("other-x-churn", 9)], "t1", "t2"),
                 ([summary("mlops-demo-acme-churn", 2)], "t2", None)]
        for items, token, next_token in pages:
            response = {"ModelPackageSummaryList": items, **({"NextToken": next_token} if next_token else {})}
            stub.add_response("list_model_packages", response, {**params, **({"NextToken": token} if token else {})})
        packages, _ = scan_packages(client, names)
        stub.assert_no_pending_responses()
    assert {g: p.version for g, p in packages.items()} == {"mlops-demo-acme-churn": 3}


def test_tenant_data_follows_continuation_token(names: Names) -> None:
    client = boto3.client("s3", region_name=REGION)
    bucket = names.tenant_bucket("acme")

    def obj(key: str, days: int) -> dict:
        return {"Key": key, "LastModified": NOW - timedelta(days=days), "Size": 1}

    with Stubber(client) as stub:
        stub.add_response("list_objects_v2", {"Contents": [obj("data/churn/1.csv", 9)], "IsTruncated": True,
                                              "NextContinuationToken": "c1"}, {"Bucket": bucket, "Prefix": "data/"})
        stub.add_response("list_objects_v2", {"Contents": [obj("data/churn/2.csv", 1), obj("data/churn/", 0)], "IsTruncated": False},
                          {"Bucket": bucket, "Prefix": "data/", "ContinuationToken": "c1"})
        data, _ = scan_tenant_data(client, names, ["acme"])
        stub.assert_no_pending_responses()
    assert data == {("acme", "churn"): NOW - timedelta(days=1)}


def test_ecr_tags_follow_next_token(names: Names) -> None:
    client = boto3.client("ecr", region_name=REGION)
    repo = names.ecr_repository("churn")
    with Stubber(client) as stub:
        stub.add_response("list_images", {"imageIds": [{"imageTag": "1.0.0"}], "nextToken": "n1"}, {"repositoryName": repo, "filter": ANY})
        stub.add_response("list_images", {"imageIds": [{"imageTag": "1.1.0"}]}, {"repositoryName": repo, "filter": ANY, "nextToken": "n1"})
        clients = Clients(dynamodb=_failing("dynamodb"), ecr=client)
        inventory = gather(clients, names, [], ["churn"], ScanOptions(data_from="ledger"))
        stub.assert_no_pending_responses()
    assert inventory.images == {"churn": ["1.0.0", "1.1.0"]}


def test_drift_batches_500_queries_per_call_and_follows_next_token() -> None:
    client = boto3.client("cloudwatch", region_name=REGION)
    keys = [(f"t{i}", "churn") for i in range(501)]
    with Stubber(client) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": [{"Id": "q0", "Timestamps": [NOW], "Values": [0.1]}],
                                              "NextToken": "m1"})
        stub.add_response("get_metric_data", {"MetricDataResults": [{"Id": "q7", "Timestamps": [NOW, NOW], "Values": [0.4, 0.6]}]})
        stub.add_response("get_metric_data", {"MetricDataResults": [{"Id": "q0", "Timestamps": [], "Values": []}]})
        readings = CloudWatchDrift(client, "mlops-demo/Monitoring").read(keys, NOW)
        stub.assert_no_pending_responses()
    assert {k: r.value for k, r in readings.items()} == {("t0", "churn"): 0.1, ("t7", "churn"): 0.6}


def test_drift_from_cloudwatch_in_moto(aws) -> None:  # pylint: disable=unused-argument
    client = boto3.client("cloudwatch", region_name=REGION)
    client.put_metric_data(Namespace="mlops-demo/Monitoring", MetricData=[
        {"MetricName": "DriftScore", "Dimensions": [{"Name": "Tenant", "Value": "acme"}, {"Name": "Model", "Value": "churn"}],
         "Timestamp": NOW - timedelta(hours=2), "Value": 0.42}])
    drift = CloudWatchDrift(client, "mlops-demo/Monitoring")
    readings = drift.read([("acme", "churn"), ("globex", "churn")], NOW)
    assert list(readings) == [("acme", "churn")] and readings[("acme", "churn")].value == pytest.approx(0.42)
    assert not drift.problems


def test_drift_asks_one_point_per_model_trained_before_the_window(aws) -> None:  # pylint: disable=unused-argument
    client = boto3.client("cloudwatch", region_name=REGION)
    client.put_metric_data(Namespace="ns", MetricData=[
        {"MetricName": "DriftScore", "Dimensions": [{"Name": "Tenant", "Value": tenant}, {"Name": "Model", "Value": "churn"}],
         "Timestamp": NOW - timedelta(hours=hours), "Value": value}
        for tenant in ("acme", "globex", "initech") for hours, value in ((5, 0.9), (1, 0.3))])
    periods: dict[str, int] = {}
    client.meta.events.register("provide-client-params.monitoring.GetMetricData", lambda params, **_: periods.update(
        {q["MetricStat"]["Metric"]["Dimensions"][0]["Value"]: q["MetricStat"]["Period"] for q in params["MetricDataQueries"]}))
    keys = [("acme", "churn"), ("globex", "churn"), ("initech", "churn")]
    trained = {("acme", "churn"): NOW - timedelta(days=3), ("globex", "churn"): NOW - timedelta(hours=2)}
    readings = CloudWatchDrift(client, "ns").read(keys, NOW, trained)
    assert periods == {"acme": 86400, "globex": 3600, "initech": 3600}  # initech: no training known, so hourly
    assert readings[("acme", "churn")].value == pytest.approx(0.9) and "highest of the 24 h" in readings[("acme", "churn")].source
    assert readings[("acme", "churn")].at <= NOW - timedelta(days=1) + timedelta(minutes=1)  # the window's start
    assert readings[("globex", "churn")].value == pytest.approx(0.3)  # the 0.9 before its training does not count
    assert readings[("initech", "churn")].value == pytest.approx(0.9)


def test_drift_error_is_a_problem() -> None:
    client = boto3.client("cloudwatch", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("get_metric_data", "AccessDenied", http_status_code=403)
        drift = CloudWatchDrift(client, "ns")
        assert not drift.read([("acme", "churn")], NOW)
    assert drift.problems == ["CloudWatch ns/DriftScore could not be read (AccessDenied); the drift check is skipped"]


def _failing(service: str):  # type: ignore[no-untyped-def]
    client = boto3.client(service, region_name=REGION)
    stub = Stubber(client)
    stub.add_client_error("scan", "ResourceNotFoundException")
    stub.activate()
    return client
