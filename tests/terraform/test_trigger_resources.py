"""tests/support/trigger_resources.json: the trigger's tables and queues as Terraform declares them, and as
`support.trigger_stack.provision` creates them on moto.

The slow test plans the Terraform root on a moto server and fails when the committed file is not what the plan
says (`tests/support/trigger_resources.py` writes it again). The others read hand-written plans and check that
`provision` creates exactly what the file says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from support import trigger_resources
from support.trigger_resources import Disagreement, from_plan
from support.trigger_stack import provision

from mlops.naming import Names

NAMES = Names(project="mlops-demo")
TIERS = ["bronze", "gold"]


@pytest.mark.slow
@pytest.mark.terraform
def test_the_file_is_what_the_terraform_root_declares(terraform_bin: str, fresh_moto: str, tmp_path: Path) -> None:  # pylint: disable=unused-argument
    text = trigger_resources.generate(fresh_moto, tmp_path)
    assert trigger_resources.FILE.read_text(encoding="utf-8") == text, "run tests/support/trigger_resources.py"


def _change(kind: str, after: dict[str, Any], index: str | None = None) -> dict[str, Any]:
    return {"mode": "managed", "type": kind, "index": index, "change": {"actions": ["create"], "after": after}}


def _queue(name: str, index: str, max_receives: int | None, visibility: int = 180) -> dict[str, Any]:
    redrive = json.dumps({"deadLetterTargetArn": f"arn:aws:sqs:us-east-1:123456789012:{name}-dlq", "maxReceiveCount": max_receives})
    after = {"name": name, "visibility_timeout_seconds": visibility, "message_retention_seconds": 345600,
             "redrive_policy": redrive if max_receives else ""}
    return _change("aws_sqs_queue", after, index)


def _plan(*extra: dict[str, Any], gold_visibility: int = 180) -> dict[str, Any]:
    table = {"name": "mlops-demo-ledger", "billing_mode": "PAY_PER_REQUEST", "hash_key": "pk", "range_key": "sk",
             "attribute": [{"name": "sk", "type": "S"}, {"name": "pk", "type": "S"}, {"name": "g", "type": "S"}],
             "global_secondary_index": [{"name": "by-g", "hash_key": "g", "range_key": "", "projection_type": "KEYS_ONLY",
                                         "non_key_attributes": []}],
             "ttl": [{"attribute_name": "expires_at", "enabled": True}]}
    changes = [_change("aws_dynamodb_table", table),
               _queue("mlops-demo-requests-bronze", "bronze", 50), _queue("mlops-demo-requests-gold", "gold", 50, gold_visibility),
               _queue("mlops-demo-status", "status", 5)]
    changes += [_change("aws_sqs_queue", {"name": f"{c['change']['after']['name']}-dlq", "visibility_timeout_seconds": 30,
                                          "message_retention_seconds": 1209600, "redrive_policy": ""}, c["index"])
                for c in list(changes) if c["type"] == "aws_sqs_queue"]
    return {"resource_changes": changes + list(extra)}


def test_a_plan_becomes_api_requests_with_names_from_mlops_naming() -> None:
    described = from_plan(_plan(), NAMES, TIERS)
    assert described["tables"] == [{
        "naming": "ledger_table", "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in ("g", "pk", "sk")],
        "GlobalSecondaryIndexes": [{"IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                    "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        "TimeToLive": {"AttributeName": "expires_at"}}]
    assert [(q["naming"], q.get("argument"), q["maxReceiveCount"]) for q in described["queues"]] == [
        ("events_queue", "status", 5), ("tier_queue", None, 50)]
    assert described["queues"][1]["Attributes"] == {"VisibilityTimeout": "180", "MessageRetentionPeriod": "345600"}
    assert described["queues"][1]["dead_letter"] == {"naming": "dead_letter_queue",
                                                     "Attributes": {"VisibilityTimeout": "30", "MessageRetentionPeriod": "1209600"}}


@pytest.mark.parametrize(("plan", "says"), [
    pytest.param(_plan(gold_visibility=60), "the tier queues differ", id="tiers-differ"),
    pytest.param(_plan(_queue("mlops-demo-extra", "extra", None)), "has no dead-letter queue", id="queue-without-dlq"),
    pytest.param(_plan(_queue("hand-made", "uploads", 5)), "neither `Names.tier_queue`", id="queue-not-from-naming"),
    pytest.param(_plan(_change("aws_dynamodb_table", {"name": "hand-made", "hash_key": "pk", "attribute": []})),
                 "not the name of one", id="table-not-from-naming"),
])
def test_what_the_file_cannot_describe_is_refused(plan: dict[str, Any], says: str) -> None:
    with pytest.raises(Disagreement, match=says):
        from_plan(plan, NAMES, TIERS)


def test_provision_creates_exactly_what_the_file_says(aws: None) -> None:  # pylint: disable=unused-argument
    dynamodb, sqs, sagemaker = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("sagemaker")
    urls = provision(dynamodb, sqs, sagemaker, NAMES, TIERS, {"acme": ["churn"]})
    described = trigger_resources.resources()
    assert sorted(dynamodb.list_tables()["TableNames"]) == sorted(getattr(NAMES, t["naming"])() for t in described["tables"])
    for table in described["tables"]:
        found = dynamodb.describe_table(TableName=getattr(NAMES, table["naming"])())["Table"]
        assert found["KeySchema"] == table["KeySchema"]
        assert sorted(found["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == table["AttributeDefinitions"]
        assert [i["IndexName"] for i in found.get("GlobalSecondaryIndexes", [])] == [
            i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])]
    expected = {}
    for queue in described["queues"]:
        names = [NAMES.tier_queue(t) for t in TIERS] if queue["naming"] == "tier_queue" else [NAMES.events_queue(queue["argument"])]
        for name in names:
            expected[name] = (queue["Attributes"], queue["maxReceiveCount"], Names.dead_letter_queue(name))
            expected[Names.dead_letter_queue(name)] = (queue["dead_letter"]["Attributes"], None, None)
    assert sorted(urls) == sorted(expected)
    for name, (attributes, max_receives, dlq) in expected.items():
        found = sqs.get_queue_attributes(QueueUrl=urls[name], AttributeNames=["All"])["Attributes"]
        assert {k: found[k] for k in attributes} == attributes, name
        redrive = json.loads(found["RedrivePolicy"]) if "RedrivePolicy" in found else None
        assert (redrive and (redrive["deadLetterTargetArn"].rsplit(":", 1)[-1], int(redrive["maxReceiveCount"]))) == (
            (dlq, max_receives) if dlq else None), name
    assert [p["PipelineName"] for p in sagemaker.list_pipelines()["PipelineSummaries"]] == [NAMES.pipeline("acme", "churn")]
