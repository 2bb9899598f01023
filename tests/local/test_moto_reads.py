"""moto's DynamoDB and CloudWatch reads with `moto_patches.reads_linear` (the local AWS runs with it): the same answers.

The patch changes how moto builds a DynamoDB response (only the members an AttributeValue has are
serialized), where a Query on the table key starts (its partition, not every item of the table) and which
points a GetMetricData query is compared with (those of its metric). These tests read back every attribute
type through each read the project uses, and metrics of several tenants side by side, so a patch that
dropped, mangled or mixed up anything fails them. Each test applies the adapters in a fixture that undoes
them, and the last tests prove the undo gives moto back its own methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from mlops.local import moto_patches

REGION = "us-east-1"
ITEM = {"n": {"N": "2.5"}, "b": {"B": b"\x00\x01"}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}, "bs": {"BS": [b"x"]},
        "m": {"M": {"x": {"L": [{"S": "y"}, {"NULL": True}, {"BOOL": False}]}}}, "t": {"BOOL": True}}


@pytest.fixture(name="linear")
def _linear() -> Iterator[None]:
    """moto with `reads_linear` for this test only."""
    with moto_patches.patched(moto_patches.reads_linear):
        yield


@pytest.fixture(name="table")
def _table(aws, linear):  # type: ignore[no-untyped-def]  # pylint: disable=unused-argument
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(TableName="reads", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "g")],
                        GlobalSecondaryIndexes=[{"IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                                 "Projection": {"ProjectionType": "ALL"}}])
    for pk in ("p0", "p1", "p2"):
        for i in reversed(range(12)):
            client.put_item(TableName="reads", Item={"pk": {"S": pk}, "sk": {"S": f"s{i:02d}"}, "g": {"S": f"g{i % 2}"}, **ITEM})
    return client


def _query(client, **kwargs) -> list[dict]:  # type: ignore[no-untyped-def]
    kwargs = {"TableName": "reads", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p1"}}} | kwargs
    return [item for page in client.get_paginator("query").paginate(**kwargs) for item in page["Items"]]


def test_every_attribute_type_reads_back_as_written(table) -> None:  # type: ignore[no-untyped-def]
    item = table.get_item(TableName="reads", Key={"pk": {"S": "p2"}, "sk": {"S": "s03"}})["Item"]
    assert item == {"pk": {"S": "p2"}, "sk": {"S": "s03"}, "g": {"S": "g1"}, **ITEM}
    assert all(i == item | {"pk": {"S": "p1"}, "sk": i["sk"], "g": i["g"]} for i in _query(table))


@pytest.mark.parametrize(("kwargs", "keys"), [
    pytest.param({}, [f"s{i:02d}" for i in range(12)], id="its-partition-in-key-order"),
    pytest.param({"PaginationConfig": {"PageSize": 5}}, [f"s{i:02d}" for i in range(12)], id="in-pages"),
    pytest.param({"ScanIndexForward": False, "PaginationConfig": {"PageSize": 5}}, [f"s{i:02d}" for i in reversed(range(12))],
                 id="backwards-in-pages"),
    pytest.param({"KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
                  "ExpressionAttributeValues": {":p": {"S": "p1"}, ":a": {"S": "s03"}, ":b": {"S": "s05"}}}, ["s03", "s04", "s05"],
                 id="range-condition"),
    pytest.param({"FilterExpression": "g = :g", "ExpressionAttributeValues": {":p": {"S": "p1"}, ":g": {"S": "g0"}}},
                 [f"s{i:02d}" for i in range(0, 12, 2)], id="filtered"),
])
def test_a_query_reads_its_partition_only(table, kwargs, keys) -> None:  # type: ignore[no-untyped-def]
    items = _query(table, **kwargs)
    assert [i["sk"]["S"] for i in items] == keys and {i["pk"]["S"] for i in items} == {"p1"}


def test_projection_index_and_scan_still_see_everything(table) -> None:  # type: ignore[no-untyped-def]
    assert _query(table, ProjectionExpression="sk, m.x[0], n")[0] == {"sk": {"S": "s00"}, "m": {"M": {"x": {"L": [{"S": "y"}]}}},
                                                                         "n": {"N": "2.5"}}
    by_index = _query(table, IndexName="by-g", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": {"S": "g1"}})
    assert len(by_index) == 18 and {i["pk"]["S"] for i in by_index} == {"p0", "p1", "p2"}  # an index spans partitions
    scanned = [i for page in table.get_paginator("scan").paginate(TableName="reads", PaginationConfig={"PageSize": 7})
               for i in page["Items"]]
    assert len(scanned) == 36


def test_metric_data_per_query_is_its_own_metric_only(aws, linear) -> None:  # type: ignore[no-untyped-def]  # pylint: disable=W0613
    client = boto3.client("cloudwatch", region_name=REGION)
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    client.put_metric_data(Namespace="ns", MetricData=[
        {"MetricName": name, "Dimensions": [{"Name": "Tenant", "Value": f"t{t}"}, {"Name": "Model", "Value": "m"}],
         "Timestamp": now - timedelta(minutes=10 * k + 5), "Value": 100 * t + 10 * k + (name == "Other")}
        for t in range(4) for k in range(3) for name in ("Score", "Other")])
    def metric(tenant: int) -> dict:
        return {"Namespace": "ns", "MetricName": "Score",
                "Dimensions": [{"Name": "Tenant", "Value": f"t{tenant}"}, {"Name": "Model", "Value": "m"}]}

    queries = [{"Id": f"q{t}", "MetricStat": {"Metric": metric(t), "Period": 3600, "Stat": stat}}
               for t, stat in ((0, "Maximum"), (1, "Sum"), (2, "SampleCount"), (5, "Maximum"))]
    everyone = {"Namespace": "ns", "MetricName": "Score"}  # no dimensions: every point of the metric
    queries.append({"Id": "all", "MetricStat": {"Metric": everyone, "Period": 3600, "Stat": "SampleCount"}})
    results = client.get_metric_data(MetricDataQueries=queries, StartTime=now - timedelta(hours=2), EndTime=now)["MetricDataResults"]
    values = {r["Id"]: sum(r["Values"]) for r in results}
    assert [r["Id"] for r in results] == ["q0", "q1", "q2", "q5", "all"]  # the order asked
    assert values == {"q0": 20, "q1": 100 * 3 + 30, "q2": 3, "q5": 0, "all": 12}


def _moto_methods() -> dict[str, object]:
    """The class attributes the adapters replace, as moto's classes hold them now (own attributes only)."""
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.sqs.models import Queue, SQSBackend

    return {f"{cls.__name__}.{name}": cls.__dict__.get(name) for cls in (CloudWatchBackend, BaseJSONSerializer, DynamoDBBackend,
                                                                        Table, Queue, SQSBackend) for name in dir(cls)}


def test_the_adapters_are_undone_and_moto_is_as_it_was() -> None:
    stock = _moto_methods()
    with moto_patches.patched(moto_patches.atomic, moto_patches.reads_linear):
        patched = _moto_methods()
        assert patched["DynamoDBBackend.transact_write_items"] is not stock["DynamoDBBackend.transact_write_items"]
        assert patched["Table.query"] is not stock["Table.query"] and patched["Queue.messages"] is not stock["Queue.messages"]
        moto_patches.atomic()()  # applied again: that undo does nothing
        moto_patches.reads_linear()()
        assert _moto_methods() == patched
    assert _moto_methods() == stock


def test_an_undo_leaves_no_trace_and_runs_once() -> None:
    stock = _moto_methods()
    undo = moto_patches.atomic()
    undo()
    undo()
    assert _moto_methods() == stock
    again = moto_patches.atomic()  # applies anew: the marker went with the undo
    assert _moto_methods() != stock
    again()
    assert _moto_methods() == stock
