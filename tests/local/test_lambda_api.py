"""Lambda Invoke on the local AWS (mlops.local.lambda_api): the function moto holds runs as Lambda runs it.

The real trigger zip (`mlops.packaging`, with the tests' registry) is deployed with boto3 to the tests' moto
server and invoked with boto3 alone: a request it starts, one it rejects, an unknown function, a crashing
handler; then the finer points of the stand-in with small functions of the test's own (timeout, import
error, Event and DryRun invocations, the log tail, CloudWatch Logs) and the trigger client's one-line errors.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import boto3
import pytest
from support.lambda_functions import deploy_function, function_zip, publish_image, zip_of
from support.trigger_stack import provision

from mlops.aws.ledger import Ledger
from mlops.config.tenants import load_registry
from mlops.errors import MlopsError
from mlops.naming import Names
from mlops.requests import BuildRequest
from mlops.trigger_client import TriggerClient

NAMES = Names("mlops-demo")
TRIGGER = NAMES.lambda_function("trigger")
#: A handler of the test's own: answers, raises, sleeps or exits as the event asks.
PROBE = """\
import os, sys, time

def handler(event, context):
    print("probe got", sorted(event))
    if event.get("raise"):
        raise ValueError(event["raise"])
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit"):
        sys.exit(3)
    if event.get("put"):
        import boto3
        boto3.client("s3").put_object(Bucket=event["put"], Key="from-lambda", Body=context.aws_request_id.encode())
    return {"event": event, "function": context.function_name, "remaining_ms": context.get_remaining_time_in_millis(),
            "task_root": os.environ["LAMBDA_TASK_ROOT"], "data": os.environ.get("DATA_DIR", "")}
"""


@pytest.fixture
def session(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> boto3.session.Session:
    """boto3 pointed at the tests' moto server, as after `. .mlops/local/env`."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return boto3.session.Session(region_name="us-east-1")


@pytest.fixture
def trigger(session: boto3.session.Session, registry_dir: Path) -> str:
    """The trigger function as Terraform deploys it, with its tables and queues, the churn pipeline of acme, an image
    of churn and the artifacts bucket."""
    environment = {"MLOPS_PROJECT": NAMES.project, "MLOPS_ROOT": "/var/task/registry",
                   "MLOPS_LEDGER_TABLE": NAMES.ledger_table(), "MLOPS_SLOTS_TABLE": NAMES.slots_table()}
    deploy_function(session, NAMES, TRIGGER, function_zip(registry_dir), environment)
    dynamodb = session.client("dynamodb")
    if NAMES.ledger_table() not in dynamodb.list_tables()["TableNames"]:  # the server lives for the session
        tiers = list(load_registry(registry_dir / "platform.yaml", registry_dir / "tenants").platform.tiers)
        provision(dynamodb, session.client("sqs"), session.client("sagemaker"), NAMES, tiers, {})
    for item in dynamodb.scan(TableName=NAMES.slots_table(), ProjectionExpression="pk, sk").get("Items", []):
        dynamodb.delete_item(TableName=NAMES.slots_table(), Key=item)  # free tiers, whatever another test left
    publish_image(session.client("ecr"), NAMES, "churn", "1.0.0")
    s3 = session.client("s3")
    s3.create_bucket(Bucket=NAMES.artifacts_bucket())
    sagemaker = session.client("sagemaker")
    pipeline = NAMES.pipeline("acme", "churn")
    if pipeline not in {p["PipelineName"] for p in sagemaker.list_pipelines(MaxResults=100)["PipelineSummaries"]}:
        sagemaker.create_pipeline(PipelineName=pipeline, RoleArn=f"arn:aws:iam::{NAMES.account_id}:role/{NAMES.pipeline_role('acme')}",
                                  PipelineDefinition=json.dumps({"Version": "2020-12-01", "Metadata": {}, "Parameters": [], "Steps": []}))
    return TRIGGER


@pytest.fixture
def probe(session: boto3.session.Session) -> str:
    """A small function of the test's own, with a 2 s timeout."""
    deploy_function(session, NAMES, "probe", zip_of({"probe.py": PROBE.encode()}), {"DATA_DIR": "/var/task/data"},
                    handler="probe.handler", timeout=2)
    return "probe"


def _invoke(session: boto3.session.Session, function: str, event: object, **kwargs: str) -> tuple[dict, object]:
    answer = session.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode(), **kwargs)
    return answer, json.loads(answer["Payload"].read() or b"null")


def _request(tenant: str, **fields: object) -> dict:
    return BuildRequest(source="ci", tenant=tenant, model="churn", version="1.0.0", dedup_id=str(time.time_ns()),
                        **fields).model_dump(mode="json", exclude_none=True)


def test_the_trigger_starts_a_good_request(session: boto3.session.Session, trigger: str) -> None:
    code_uri = f"s3://{NAMES.artifacts_bucket()}/code/churn/sourcedir.tar.gz"
    answer, body = _invoke(session, trigger, {"requests": [_request("acme", parameters={"CodeUri": code_uri})]})
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer and answer["ExecutedVersion"] == "$LATEST"
    (result,) = body["results"]
    assert result["result"] == "started", result["detail"]
    described = session.client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=result["pipeline_execution_arn"])
    assert described["PipelineExecutionDisplayName"] == result["execution_id"]
    item = Ledger(session.client("dynamodb"), NAMES.ledger_table()).get(result["execution_id"])
    assert item is not None and item["pipeline_execution_arn"] == result["pipeline_execution_arn"]


def test_the_trigger_rejects_a_bad_request_in_its_answer(session: boto3.session.Session, trigger: str) -> None:
    answer, body = _invoke(session, trigger, {"requests": [_request("nobody")]})
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    assert body == {"results": [{"result": "rejected", "detail": "unknown tenant 'nobody' (known tenants: acme, globex)"}]}
    with pytest.raises(MlopsError, match=r"^the trigger rejected the build request: unknown tenant 'nobody'"):
        TriggerClient(session.client("lambda"), trigger).submit(BuildRequest(source="ci", tenant="nobody", model="churn"))


def test_an_unknown_function_is_lambdas_resource_not_found(session: boto3.session.Session) -> None:
    client = session.client("lambda")
    with pytest.raises(client.exceptions.ResourceNotFoundException, match="Function not found: .*:function:nobody"):
        client.invoke(FunctionName="nobody", Payload=b"{}")
    with pytest.raises(MlopsError) as caught:
        TriggerClient(client, "nobody").invoke([])
    assert caught.value.one_line().startswith("cannot invoke the trigger nobody: ResourceNotFoundException: Function not found")
    assert "mlops infra apply" in caught.value.one_line()


def test_a_crashing_handler_is_an_unhandled_function_error(session: boto3.session.Session, registry_dir: Path) -> None:
    # The trigger's zip with an environment that names no registry: the handler fails before any request.
    deploy_function(session, NAMES, "broken-trigger", function_zip(registry_dir),
                    {"MLOPS_PROJECT": NAMES.project, "MLOPS_ROOT": "/var/task/nowhere"})
    answer, body = _invoke(session, "broken-trigger", {"requests": [_request("acme")]}, LogType="Tail")
    assert answer["StatusCode"] == 200 and answer["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ConfigError" and body["errorMessage"].endswith("nowhere/platform.yaml: platform file not found")
    assert body["requestId"] and any("handler.py" in frame for frame in body["stackTrace"])
    tail = base64.b64decode(answer["LogResult"]).decode()
    assert "[ERROR] ConfigError:" in tail and tail.rstrip().splitlines()[-1].startswith(f"REPORT RequestId: {body['requestId']}")
    with pytest.raises(MlopsError) as caught:
        TriggerClient(session.client("lambda"), "broken-trigger").invoke([_request("acme")])
    line = caught.value.one_line()
    assert line.startswith("the trigger broken-trigger failed: ConfigError: ") and "/aws/lambda/broken-trigger" in line
    assert "\n" not in line


def test_the_probe_answers_with_its_context_and_environment(session: boto3.session.Session, probe: str) -> None:
    answer, body = _invoke(session, probe, {"a": 1})
    assert "FunctionError" not in answer
    assert body["event"] == {"a": 1} and body["function"] == "probe" and 0 < body["remaining_ms"] <= 2000
    assert body["data"] == body["task_root"] + "/data"  # /var/task is the extracted zip


@pytest.mark.parametrize(("event", "kind", "message"), [
    pytest.param({"raise": "boom"}, "ValueError", "boom", id="exception"),
    pytest.param({"sleep": 5}, "Sandbox.Timedout", "Task timed out after 2.00 seconds", id="timeout"),
    pytest.param({"exit": True}, "Runtime.ExitError", "Runtime exited with error: exit status 3", id="exit"),
])
def test_a_failed_run_is_lambdas_error_document(session: boto3.session.Session, probe: str, event: dict, kind: str,
                                                message: str) -> None:
    answer, body = _invoke(session, probe, event)
    assert answer["FunctionError"] == "Unhandled"
    assert body["errorType"] == kind and body["errorMessage"].endswith(message)


def test_a_missing_module_is_an_import_error(session: boto3.session.Session) -> None:
    deploy_function(session, NAMES, "no-module", zip_of({"other.py": b"x = 1\n"}))
    answer, body = _invoke(session, "no-module", {})
    assert answer["FunctionError"] == "Unhandled" and body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"] == "Unable to import module 'handler': No module named 'handler'"


def test_event_and_dry_run_invocations(session: boto3.session.Session, probe: str) -> None:
    bucket = "lambda-api-event"
    s3 = session.client("s3")
    s3.create_bucket(Bucket=bucket)
    assert session.client("lambda").invoke(FunctionName=probe, InvocationType="DryRun", Payload=b"{}")["StatusCode"] == 204
    answer = session.client("lambda").invoke(FunctionName=probe, InvocationType="Event", Payload=json.dumps({"put": bucket}).encode())
    assert answer["StatusCode"] == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "Contents" not in s3.list_objects_v2(Bucket=bucket):
        time.sleep(0.5)
    assert s3.get_object(Bucket=bucket, Key="from-lambda")["Body"].read()  # the function ran, with the server as its AWS


def test_each_run_is_logged_in_cloudwatch_logs(session: boto3.session.Session, probe: str) -> None:
    _, body = _invoke(session, probe, {"raise": "logged"})
    logs = session.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/probe")["logStreams"]
    messages = [e["message"] for s in streams for e in logs.get_log_events(
        logGroupName="/aws/lambda/probe", logStreamName=s["logStreamName"])["events"]]
    assert f"START RequestId: {body['requestId']} Version: $LATEST" in messages
    assert "[ERROR] ValueError: logged" in messages


def test_a_payload_that_is_not_json_is_refused(session: boto3.session.Session, probe: str) -> None:
    client = session.client("lambda")
    with pytest.raises(client.exceptions.InvalidRequestContentException, match="Could not parse request body into json"):
        client.invoke(FunctionName=probe, Payload=b"{not json")
