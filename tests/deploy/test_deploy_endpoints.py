"""The endpoints adapter against in-process moto: versions, metrics, approval, rollouts, reject.

In-process moto has no UpdateEndpoint (the local AWS server has one: tests/deploy/test_deploy_local.py,
tests/local/test_endpoints_api.py). Here the request SageMaker gets is checked by wrapping that one operation
with a botocore `before-call` hook (the request is still validated against SageMaker's API model first)
that plays SageMaker: either it switches the endpoint to the new config, or it leaves the old one
(auto-rollback).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from mlops.aws import endpoints as ep
from mlops.deploys import Deployer
from mlops.errors import MlopsError
from mlops.gate import Force, MetricRule

AUC = MetricRule(name="auc", direction="maximize", threshold=0.7)


@pytest.fixture
def deployer(packages: Any, tmp_path: Path) -> Deployer:
    """A deployer on in-process moto, logging to a file."""
    log = ep.JsonlDeploymentLog(tmp_path / "deployments.jsonl")
    return Deployer(packages.sm, packages.s3, boto3.client("cloudwatch"), log, poll=0.01)


@pytest.fixture
def target(registry: Any) -> ep.Target:
    """acme's churn endpoint."""
    return ep.Target.from_registry(registry, "acme", "churn", "123456789012", "staging")


class FakeSageMakerUpdate:
    """Plays SageMaker's UpdateEndpoint: records each request; switches the endpoint unless told to roll back."""

    def __init__(self, sm: Any, roll_back: bool = False):
        self.sm, self.roll_back = sm, roll_back
        self.calls: list[dict[str, Any]] = []
        sm.meta.events.register("before-call.sagemaker.UpdateEndpoint", self)

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = json.loads(params["body"])
        self.calls.append(params)
        if not self.roll_back:
            self.sm.delete_endpoint(EndpointName=params["EndpointName"])
            self.sm.create_endpoint(EndpointName=params["EndpointName"], EndpointConfigName=params["EndpointConfigName"])
        return AWSResponse("https://sagemaker", 200, {}, None), {"EndpointArn": "arn"}


def _serving(deployer: Deployer, target: ep.Target) -> str | None:
    versions = ep.list_versions(deployer.sm, target.package_group)
    champion = deployer.champion(target, versions)
    return champion.version if champion else None


def test_versions_resolve_by_semver_package_number_or_newest(packages: Any, target: ep.Target) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.8})
    packages.register("acme", "churn", "1.1.0", {"auc": 0.9})
    versions = ep.list_versions(packages.sm, target.package_group)
    assert [v.version for v in versions] == ["1.0.0", "1.1.0"]
    assert ep.resolve_version(versions, target.package_group, None).version == "1.1.0"
    assert ep.resolve_version(versions, target.package_group, "v1.0.0").version == "1.0.0"
    assert ep.resolve_version(versions, target.package_group, "package-2").version == "1.1.0"
    with pytest.raises(MlopsError, match="no version 9.9.9 in mlops-demo-acme-churn") as caught:
        ep.resolve_version(versions, target.package_group, "9.9.9")
    assert caught.value.hint == "recent versions: 1.0.0, 1.1.0"
    with pytest.raises(MlopsError, match="has no model versions"):
        ep.resolve_version([], target.package_group, None)


@pytest.mark.parametrize(
    ("in_metadata", "in_report"),
    [pytest.param(True, False, id="metadata-only"), pytest.param(False, True, id="report-only"), pytest.param(True, True, id="both")],
)
def test_metrics_come_from_metadata_or_the_evaluation_report(packages: Any, target: ep.Target, in_metadata: bool, in_report: bool) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.83, "accuracy": 0.8}, in_metadata=in_metadata, in_report=in_report)
    item = ep.list_versions(packages.sm, target.package_group)[0]
    assert ep.read_metrics(packages.s3, item) == {"auc": 0.83, "accuracy": 0.8}


def test_metric_as_the_pipeline_registers_it(packages: Any, target: ep.Target) -> None:
    packages.register("acme", "churn", "2.0.0", {}, in_report=False,
                      extra_metadata={"metric_name": "auc", "metric_direction": "maximize", "metric_threshold": "0.7",
                                      "metric_value": "0.875"})
    item = ep.list_versions(packages.sm, target.package_group)[0]
    assert (item.version, ep.read_metrics(packages.s3, item)) == ("2.0.0", {"auc": 0.875})
    assert ep.rule_from_metadata(item) == MetricRule(name="auc", direction="maximize", min_improvement=0.0, threshold=0.7)


def test_deployments_recorded_in_the_ledger_table(packages: Any, target: ep.Target) -> None:
    dynamodb = boto3.client("dynamodb")
    assert not ep.LedgerDeploymentLog.exists(dynamodb, "mlops-demo-ledger")
    dynamodb.create_table(TableName="mlops-demo-ledger", BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                {"AttributeName": "sk", "AttributeType": "S"}])
    assert ep.LedgerDeploymentLog.exists(dynamodb, "mlops-demo-ledger")
    log = ep.LedgerDeploymentLog(dynamodb, "mlops-demo-ledger")
    deployer = Deployer(packages.sm, packages.s3, boto3.client("cloudwatch"), log, poll=0.01)
    packages.register("acme", "churn", "1.0.0", {"auc": 0.9})
    deployer.deploy(target, AUC, actor="alice")
    packages.register("acme", "churn", "1.1.0", {"auc": 0.8})
    deployer.deploy(target, AUC, actor="bob")
    rows = log.events(target.endpoint)
    assert [(r["outcome"], r["version"], r["actor"]) for r in rows] == [("deployed", "1.0.0", "alice"), ("refused", "1.1.0", "bob")]
    assert rows[1]["serving_version"] == "1.0.0" and any("worse than" in r for r in rows[1]["reasons"])
    assert len(log.events()) == 2


def test_rule_can_travel_in_the_package_metadata(packages: Any, target: ep.Target) -> None:
    packages.register("acme", "churn", "1.0.0", {"rmse": 3.0},
                      extra_metadata={"metric_name": "rmse", "metric_direction": "minimize", "metric_min_improvement": "0.1"})
    item = ep.list_versions(packages.sm, target.package_group)[0]
    assert ep.rule_from_metadata(item) == MetricRule(name="rmse", direction="minimize", min_improvement=0.1, threshold=None)


def test_first_deployment_creates_endpoint_alarms_and_approves(packages: Any, deployer: Deployer, target: ep.Target) -> None:
    arn = packages.register("acme", "churn", "1.0.0", {"auc": 0.8})
    result = deployer.deploy(target, AUC, strategy="canary", actor="alice")
    assert (result["outcome"], result["decision"]["outcome"], result["serving_version"]) == ("deployed", "first-deployment", "1.0.0")
    assert _serving(deployer, target) == "1.0.0"
    package = packages.sm.describe_model_package(ModelPackageName=arn)
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["CustomerMetadataProperties"]["semantic_version"] == "1.0.0", "approval must keep the package's metadata"
    alarms = boto3.client("cloudwatch").describe_alarms(AlarmNames=ep.alarm_names(target.endpoint))["MetricAlarms"]
    assert {a["MetricName"] for a in alarms} == {"Invocation5XXErrors", "ModelLatency"}
    assert all({"Name": "EndpointName", "Value": target.endpoint} in a["Dimensions"] for a in alarms)
    tags = packages.sm.list_tags(ResourceArn=packages.sm.describe_endpoint(EndpointName=target.endpoint)["EndpointArn"])["Tags"]
    assert {"Key": "mlops:tenant", "Value": "acme"} in tags


@pytest.mark.parametrize(("strategy", "routing"), [("canary", "CANARY"), ("linear", "LINEAR"), ("all-at-once", "ALL_AT_ONCE")])
def test_update_is_blue_green_with_auto_rollback_on_the_alarms(packages: Any, deployer: Deployer, target: ep.Target,
                                                              strategy: str, routing: str) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.8})
    deployer.deploy(target, AUC)
    packages.register("acme", "churn", "1.1.0", {"auc": 0.85})
    fake = FakeSageMakerUpdate(packages.sm)
    result = deployer.deploy(target, AUC, strategy=strategy)
    assert (result["outcome"], result["previous_version"], result["serving_version"]) == ("deployed", "1.0.0", "1.1.0")
    assert len(fake.calls) == 1
    call = fake.calls[0]
    policy = call["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"]["Type"] == routing
    assert call["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"] == [{"AlarmName": a} for a in ep.alarm_names(target.endpoint)]
    assert _serving(deployer, target) == "1.1.0"


def test_auto_rollback_on_aws_is_reported_and_recorded(packages: Any, deployer: Deployer, target: ep.Target) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.8})
    deployer.deploy(target, AUC)
    arn = packages.register("acme", "churn", "1.1.0", {"auc": 0.85})
    FakeSageMakerUpdate(packages.sm, roll_back=True)
    result = deployer.deploy(target, AUC)
    assert (result["outcome"], result["serving_version"]) == ("rolled-back", "1.0.0")
    assert "rolled back" in result["reasons"][-1]
    assert packages.sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "PendingManualApproval"
    assert [e["outcome"] for e in deployer.log.events(target.endpoint)] == ["deployed", "rolled-back"]


def test_missing_update_endpoint_is_an_explicit_error(packages: Any, deployer: Deployer, target: ep.Target) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.8})
    deployer.deploy(target, AUC)
    packages.register("acme", "churn", "1.1.0", {"auc": 0.85})
    with pytest.raises(MlopsError, match="does not implement UpdateEndpoint") as caught:
        deployer.deploy(target, AUC)
    assert "mlops local up" in (caught.value.hint or "")


def test_gate_refuses_a_worse_challenger_and_force_overrides_it(packages: Any, deployer: Deployer, target: ep.Target) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.9})
    deployer.deploy(target, AUC)
    packages.register("acme", "churn", "1.1.0", {"auc": 0.8})
    refused = deployer.deploy(target, AUC, actor="bob")
    assert (refused["outcome"], refused["serving_version"]) == ("refused", "1.0.0")
    FakeSageMakerUpdate(packages.sm)
    forced = deployer.deploy(target, AUC, force=Force(actor="alice", reason="INC-7 needs the new features"))
    assert (forced["outcome"], forced["forced"], forced["actor"]) == ("deployed", True, "alice")
    assert forced["forced_reason"] == "INC-7 needs the new features"
    assert _serving(deployer, target) == "1.1.0"
    history = [(e["outcome"], e["forced"]) for e in deployer.log.events(target.endpoint)]
    assert history == [("deployed", False), ("refused", False), ("deployed", True)]


def test_reject_a_version_that_is_not_live(packages: Any, deployer: Deployer, target: ep.Target) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.8})
    deployer.deploy(target, AUC)
    arn = packages.register("acme", "churn", "1.1.0", {"auc": 0.7})
    result = deployer.reject(target, "1.1.0", "label leak", "carol")
    assert result["outcome"] == "rejected" and "no rollback needed" in result["reasons"][-1]
    assert packages.sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Rejected"
    with pytest.raises(MlopsError, match="already rejected"):
        deployer.reject(target, "1.1.0", "again", "carol")
    with pytest.raises(MlopsError, match="was rejected"):
        deployer.deploy(target, AUC, version="1.1.0")
    assert deployer.deploy(target, AUC)["outcome"] == "unchanged", "the newest version not rejected is the live one"


def test_a_rejection_can_be_reverted_with_a_reason(packages: Any, deployer: Deployer, target: ep.Target) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.8})
    deployer.deploy(target, AUC)
    arn = packages.register("acme", "churn", "1.1.0", {"auc": 0.7})
    deployer.reject(target, "1.1.0", "label leak", "carol")
    with pytest.raises(MlopsError, match="needs a reason"):
        deployer.revert_rejection(target, "1.1.0", " ", "carol")
    result = deployer.revert_rejection(target, "1.1.0", "the leak was in the report, not the model", "dave")
    assert (result["kind"], result["outcome"], result["serving_version"]) == ("revert-rejection", "reverted", "1.0.0")
    described = packages.sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "PendingManualApproval", "the status it had before the rejection"
    assert described["ApprovalDescription"] == "rejection reverted by dave: the leak was in the report, not the model"
    with pytest.raises(MlopsError, match="is not rejected"):
        deployer.revert_rejection(target, "1.1.0", "again", "dave")
    kinds = [(e["kind"], e["outcome"], e["version"]) for e in deployer.log.events(target.endpoint)]
    assert kinds[-2:] == [("reject", "rejected", "1.1.0"), ("revert-rejection", "reverted", "1.1.0")]


def test_reverting_the_rejection_of_a_live_version_approves_it_again(packages: Any, deployer: Deployer,
                                                                      target: ep.Target) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.8})
    deployer.deploy(target, AUC)
    FakeSageMakerUpdate(packages.sm)
    arn = packages.register("acme", "churn", "1.1.0", {"auc": 0.85})
    deployer.deploy(target, AUC)
    deployer.reject(target, "1.1.0", "bias found in review", "carol")
    assert _serving(deployer, target) == "1.0.0"
    deployer.revert_rejection(target, "1.1.0", "the review used the wrong slice", "carol")
    assert packages.sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"
    assert _serving(deployer, target) == "1.0.0", "nothing is deployed by a revert"
    assert deployer.deploy(target, AUC)["serving_version"] == "1.1.0", "deployable again"


def test_reject_the_live_version_restores_the_previous_approved(packages: Any, deployer: Deployer, target: ep.Target) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.8})
    deployer.deploy(target, AUC)
    FakeSageMakerUpdate(packages.sm)
    packages.register("acme", "churn", "1.1.0", {"auc": 0.85})
    deployer.deploy(target, AUC)
    result = deployer.reject(target, "1.1.0", "bias found in review", "carol")
    assert (result["outcome"], result["serving_version"]) == ("rolled-back", "1.0.0")
    assert _serving(deployer, target) == "1.0.0"
    kinds = [(e["kind"], e["outcome"], e["version"]) for e in deployer.log.events(target.endpoint)]
    assert kinds[-2:] == [("reject", "rolled-back", "1.1.0"), ("rollback", "deployed", "1.0.0")]


def test_reject_the_only_live_version_says_it_still_serves(packages: Any, deployer: Deployer, target: ep.Target) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.8})
    deployer.deploy(target, AUC)
    with pytest.raises(MlopsError, match="still serves .* no earlier approved version"):
        deployer.reject(target, "1.0.0", "broken", "carol")
    assert deployer.log.events(target.endpoint)[-1]["outcome"] == "rejected"


def test_an_endpoint_not_made_by_mlops_is_not_a_champion(packages: Any, deployer: Deployer, target: ep.Target) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.8})
    packages.sm.create_model(ModelName="hand-made", ExecutionRoleArn=target.role_arn, PrimaryContainer={"Image": "x"})
    packages.sm.create_endpoint_config(EndpointConfigName="hand-made", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "hand-made", "InstanceType": "ml.t2.medium", "InitialInstanceCount": 1}])
    packages.sm.create_endpoint(EndpointName=target.endpoint, EndpointConfigName="hand-made")
    with pytest.raises(MlopsError, match="a model not deployed by mlops"):
        deployer.gate(target, AUC)


def test_aws_errors_become_one_line_errors(deployer: Deployer, target: ep.Target) -> None:
    def deny(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListModelPackages")

    deployer.sm.meta.events.register("before-call.sagemaker.ListModelPackages", deny)
    with pytest.raises(MlopsError, match="not allowed to list the model packages of mlops-demo-acme-churn: AccessDeniedException"):
        ep.list_versions(deployer.sm, target.package_group)


def test_unknown_strategy_is_refused(deployer: Deployer, target: ep.Target) -> None:
    with pytest.raises(MlopsError, match="unknown strategy 'big-bang'"):
        deployer.deploy(target, AUC, strategy="big-bang")
