"""SageMaker endpoints through the local AWS server, driven with boto3 alone (mlops.local.endpoints_api).

The server runs here with the endpoints stand-in, as `mlops local up` runs it: CreateEndpoint and
UpdateEndpoint start real model servers (processes) for the endpoint config's model, DescribeEndpoint
shows their progress, InvokeEndpoint reaches the model through the runtime API.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from support.archives import tar_gz_of

from mlops.aws.endpoints import invoke_endpoint
from mlops.errors import MlopsError
from mlops.local.processes import pid_alive
from mlops.local.serving import LocalEndpoints
from mlops.local.server import ThreadedServer

pytestmark = pytest.mark.slow

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "models"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/inference"
INFERENCE = textwrap.dedent('''
    """A model answering a constant, behind the SageMaker serving contract."""
    import json
    from pathlib import Path


    def model_fn(model_dir):
        return json.loads((Path(model_dir) / "model.json").read_text())


    def input_fn(body, content_type):
        if content_type != "text/csv":
            raise ValueError(f"unsupported content type '{content_type}'; send text/csv")
        return [line.split(",") for line in body.decode().strip().splitlines()]


    def predict_fn(data, model):
        if ["boom"] in data:
            raise RuntimeError("the model blew up")
        return [model["constant"] for _ in data]


    def output_fn(prediction, accept):
        return json.dumps({"predictions": prediction})
''')


class Aws:
    """Clients of the server, and models made the way SageMaker users make them."""

    def __init__(self, url: str, state_dir: Path):
        self.url, self.state_dir = url, state_dir
        self.session = boto3.session.Session(region_name=REGION)
        self.sm = self.session.client("sagemaker", endpoint_url=url)
        self.s3 = self.session.client("s3", endpoint_url=url)
        self.runtime = self.session.client("sagemaker-runtime", endpoint_url=url)

    def config(self, name: str, constant: float | None, *, package: bool = False) -> str:
        """An endpoint config serving a model that answers `constant` (None: its model_fn fails)."""
        files = {"code/inference.py": INFERENCE.encode()}
        if constant is not None:
            files["model.json"] = json.dumps({"constant": constant}).encode()
        self.s3.put_object(Bucket=BUCKET, Key=f"{name}/model.tar.gz", Body=tar_gz_of(files))
        container: dict[str, Any] = {"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/serving:1",
                                     "ModelDataUrl": f"s3://{BUCKET}/{name}/model.tar.gz"}
        if package:  # as `mlops deploy` makes it: the model is the registered package
            try:
                self.sm.create_model_package_group(ModelPackageGroupName="group")
            except ClientError:
                pass
            arn = self.sm.create_model_package(
                ModelPackageGroupName="group", InferenceSpecification={
                    "Containers": [container], "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["application/json"]})["ModelPackageArn"]
            self.sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, Containers=[{"ModelPackageName": arn}])
        else:
            self.sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)
        self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        return name

    def wait(self, endpoint: str, timeout: float = 60.0) -> dict[str, Any]:
        """DescribeEndpoint until it leaves Creating/Updating."""
        deadline = time.monotonic() + timeout
        while True:
            described = self.sm.describe_endpoint(EndpointName=endpoint)
            if described["EndpointStatus"] not in ("Creating", "Updating"):
                return described
            assert time.monotonic() < deadline, f"{endpoint} still {described['EndpointStatus']}"
            time.sleep(0.1)

    def predict(self, endpoint: str, body: bytes = b"1,2\n", runtime: Any = None) -> list[float]:
        """The predictions of the endpoint for `body`."""
        answer = (runtime or self.runtime).invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="text/csv")
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        return json.loads(answer["Body"].read())["predictions"]

    def live(self, endpoint: str) -> Any:
        """The server the endpoint's traffic goes to."""
        return LocalEndpoints(self.state_dir).live(endpoint)

    def as_tenant(self, tenant: str) -> boto3.session.Session:
        """A session of a role tagged with `tenant`, as the tenant's deploy role is."""
        iam = self.session.client("iam", endpoint_url=self.url)
        role = f"deploy-{tenant}"
        iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}", Tags=[{"Key": "mlops:tenant", "Value": tenant}])
        credentials = self.session.client("sts", endpoint_url=self.url).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName="ci-job")["Credentials"]
        return boto3.session.Session(aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
                                     aws_session_token=credentials["SessionToken"], region_name=REGION)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The local AWS server with the endpoints stand-in, for this module."""
    state_dir = tmp_path_factory.mktemp("state")
    with ThreadedServer(endpoints={"state_dir": state_dir}) as url:
        yield url, state_dir


@pytest.fixture(name="aws")
def _aws(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    url, state_dir = server
    aws = Aws(url, state_dir)
    aws.s3.create_bucket(Bucket=BUCKET)
    yield aws
    with urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30):
        pass  # the stand-in stops every endpoint's server with moto's reset
    assert not list(state_dir.glob("endpoints/*/live.json"))


def test_create_update_with_rollback_and_delete(aws: Aws) -> None:
    aws.sm.create_endpoint(EndpointName="churn", EndpointConfigName=aws.config("churn-1", 1.0),
                           Tags=[{"Key": "mlops:tenant", "Value": "acme"}])
    assert aws.sm.describe_endpoint(EndpointName="churn")["EndpointStatus"] == "Creating"  # moto alone: InService at once
    described = aws.wait("churn")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "churn-1")
    assert aws.predict("churn", b"1,2\n3,4\n") == [1.0, 1.0]
    blue = aws.live("churn")

    # A green whose model does not load: the update fails, blue keeps serving (SageMaker's auto-rollback).
    aws.sm.update_endpoint(EndpointName="churn", EndpointConfigName=aws.config("churn-2", None))
    assert aws.sm.describe_endpoint(EndpointName="churn")["EndpointStatus"] == "Updating"
    with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
        aws.sm.update_endpoint(EndpointName="churn", EndpointConfigName="churn-1")
    described = aws.wait("churn")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "churn-1")
    assert described["FailureReason"].startswith("the health check of churn-2 failed: /ping answered 503: model_fn failed: "
                                                 "FileNotFoundError")
    assert described["FailureReason"].endswith("(rolled back to churn-1)")
    assert aws.predict("churn") == [1.0]
    assert aws.live("churn").pid == blue.pid

    # A good green, from a registered model package: traffic moves to it and blue stops.
    aws.sm.update_endpoint(EndpointName="churn", EndpointConfigName=aws.config("churn-3", 3.0, package=True))
    described = aws.wait("churn")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "churn-3")
    assert "FailureReason" not in described
    assert aws.predict("churn") == [3.0]
    assert not pid_alive(blue.pid)

    green = aws.live("churn")
    aws.sm.delete_endpoint(EndpointName="churn")
    with pytest.raises(ClientError, match="Could not find endpoint"):
        aws.sm.describe_endpoint(EndpointName="churn")
    with pytest.raises(ClientError, match=r"ValidationError.*Endpoint churn of account 123456789012 not found"):
        aws.predict("churn")
    assert not pid_alive(green.pid) and aws.live("churn") is None


def test_model_errors_come_back_as_sagemakers_model_error(aws: Aws) -> None:
    aws.sm.create_endpoint(EndpointName="errors", EndpointConfigName=aws.config("errors-1", 1.0))
    aws.wait("errors")
    with pytest.raises(ClientError) as caught:
        aws.runtime.invoke_endpoint(EndpointName="errors", Body=b"{}", ContentType="application/json")
    answer = caught.value.response
    assert (answer["Error"]["Code"], answer["ResponseMetadata"]["HTTPStatusCode"]) == ("ModelError", 424)
    assert answer["OriginalStatusCode"] == 400
    assert answer["OriginalMessage"] == "unsupported content type 'application/json'; send text/csv"
    assert answer["Error"]["Message"].startswith('Received client error (400) from primary with message "unsupported')

    with pytest.raises(MlopsError) as product:
        invoke_endpoint(aws.runtime, "errors", b"{}", "application/json", "application/json")
    assert product.value.one_line() == ("errors rejected the input: unsupported content type 'application/json'; send text/csv "
                                        "(fix the request body)")
    with pytest.raises(MlopsError) as product:
        invoke_endpoint(aws.runtime, "errors", b"boom\n", "text/csv", "application/json")
    assert product.value.message == "errors failed to answer: predict_fn failed: RuntimeError: the model blew up"
    assert "/aws/sagemaker/Endpoints/errors" in (product.value.hint or "")
    logs = aws.session.client("logs", endpoint_url=aws.url)
    [stream] = logs.describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/errors")["logStreams"]
    assert stream["logStreamName"].startswith("AllTraffic/errors-1-")
    lines = [e["message"] for e in logs.get_log_events(logGroupName="/aws/sagemaker/Endpoints/errors",
                                                        logStreamName=stream["logStreamName"])["events"]]
    assert any("RuntimeError: the model blew up" in line for line in lines)

    with pytest.raises(MlopsError, match="endpoint nowhere does not exist"):
        invoke_endpoint(aws.runtime, "nowhere", b"1,2", "text/csv", "application/json")


def test_a_tenant_is_refused_another_tenants_endpoint(aws: Aws) -> None:
    aws.sm.create_endpoint(EndpointName="acme-churn", EndpointConfigName=aws.config("acme-1", 1.0),
                           Tags=[{"Key": "mlops:tenant", "Value": "acme"}])
    aws.wait("acme-churn")
    acme, globex = aws.as_tenant("acme"), aws.as_tenant("globex")
    assert aws.predict("acme-churn", runtime=acme.client("sagemaker-runtime", endpoint_url=aws.url)) == [1.0]
    with pytest.raises(ClientError, match=r"AccessDeniedException.*assumed-role/deploy-globex/ci-job is not authorized to "
                                          r"perform: sagemaker:InvokeEndpoint on resource: .*:endpoint/acme-churn"):
        aws.predict("acme-churn", runtime=globex.client("sagemaker-runtime", endpoint_url=aws.url))
    globex_sm = globex.client("sagemaker", endpoint_url=aws.url)
    for call in (lambda: globex_sm.describe_endpoint(EndpointName="acme-churn"),
                 lambda: globex_sm.update_endpoint(EndpointName="acme-churn", EndpointConfigName="acme-1"),
                 lambda: globex_sm.delete_endpoint(EndpointName="acme-churn"),
                 lambda: globex_sm.create_endpoint(EndpointName="other", EndpointConfigName="acme-1",
                                                   Tags=[{"Key": "mlops:tenant", "Value": "acme"}])):
        with pytest.raises(ClientError, match="AccessDeniedException"):
            call()
    assert aws.predict("acme-churn") == [1.0], "a caller of no tenant (the account's admin) is not refused"

    # The endpoint's server itself answers only for its own endpoint and tenant.
    acme_server = aws.live("acme-churn")
    request = urllib.request.Request(f"{acme_server.url}/endpoints/acme-churn/invocations", data=b"1,2", method="POST",
                                     headers={"Content-Type": "text/csv", "X-Mlops-Tenant": "globex"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # pylint: disable=consider-using-with  # it raises
    with refused.value:
        assert refused.value.code == 403


def test_a_failed_creation_and_a_server_that_died(aws: Aws) -> None:
    aws.sm.create_endpoint(EndpointName="broken", EndpointConfigName=aws.config("broken-1", None))
    described = aws.wait("broken")
    assert described["EndpointStatus"] == "Failed" and "model_fn failed" in described["FailureReason"]
    with pytest.raises(ClientError, match="Cannot update failed endpoint"):
        aws.sm.update_endpoint(EndpointName="broken", EndpointConfigName="broken-1")
    with pytest.raises(ClientError, match="ValidationError"):
        aws.predict("broken")
    with pytest.raises(ClientError, match="Cannot create already existing endpoint"):
        aws.sm.create_endpoint(EndpointName="broken", EndpointConfigName="broken-1")

    aws.sm.create_endpoint(EndpointName="sturdy", EndpointConfigName=aws.config("sturdy-1", 5.0))
    aws.wait("sturdy")
    first = aws.live("sturdy")
    os.kill(first.pid, signal.SIGKILL)
    assert aws.predict("sturdy") == [5.0], "a server that died is started again, as SageMaker replaces an instance"
    assert aws.live("sturdy").pid != first.pid
