"""The Lambda packages as AWS would run them: function zip + dependencies layer + the runtime's boto3, nothing else.

Each function's zip is unpacked as `/var/task` would be and the layer as `/opt`; a fresh interpreter with
`-I -S` (no site-packages, no PYTHON* variables) gets only those two folders and a folder holding what the
Lambda Python runtime ships (boto3, botocore, s3transfer, jmespath, dateutil, urllib3, six). It imports the
handler and calls it against a moto server with the environment Terraform gives the function
(`MLOPS_ROOT` = the packaged registry, the table names). A library missing from the layer, a module left
out of the zip (e.g. `mlops.local`, which the packages omit) or a registry the function cannot find fails
here instead of on the first real upload.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from support.trigger_stack import provision, subscriptions

from mlops.config.tenants import load_registry
from mlops.local.lambda_runtime import sqs_event
from mlops.packaging import build_packages

ROOT = Path(__file__).resolve().parents[2]
#: What the AWS Lambda Python runtime provides besides the standard library.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")

CALL = """
import json, sys
sys.path[:0] = sys.argv[1:4]
import handler
event = json.loads(sys.argv[4])
print(json.dumps(handler.handler(event, None), default=str))
"""


def _runtime_dir(target: Path) -> Path:
    """A folder holding only the runtime-provided distributions (symlinks into this environment)."""
    target.mkdir()
    for name in RUNTIME_PROVIDED:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, f"{name} is not installed"
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (target / source.name).symlink_to(source)
    return target


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """function -> its unpacked task folder; plus `opt` (the layer) and `runtime`."""
    base = tmp_path_factory.mktemp("lambda")
    built = build_packages(ROOT, base / "zips")
    folders = {}
    for name, path in built.items():
        folder = base / ("opt" if name == "layer" else f"task-{name}")
        with zipfile.ZipFile(path) as archive:
            archive.extractall(folder)
        folders["opt" if name == "layer" else name] = folder
    folders["runtime"] = _runtime_dir(base / "runtime")
    return folders


@pytest.fixture
def environment(moto_server: str, registry_dir: Path) -> dict[str, Any]:
    """The trigger's tables and queues on the moto server, and the environment Terraform sets (platform module)."""
    platform = registry_dir / "platform.yaml"
    platform.write_text(platform.read_text().replace("project: mlops-demo", "project: pkgtest"))
    registry = load_registry(platform, registry_dir / "tenants")
    names = registry.names()
    clients = {s: boto3.client(s, endpoint_url=moto_server, region_name="us-east-1") for s in ("dynamodb", "sqs", "sagemaker")}
    if names.ledger_table() not in clients["dynamodb"].list_tables()["TableNames"]:
        boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket=names.artifacts_bucket())
        provision(clients["dynamodb"], clients["sqs"], clients["sagemaker"], names, list(registry.platform.tiers), subscriptions(registry))
    return {"names": names, "env": {
        "AWS_ENDPOINT_URL": moto_server, "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "MLOPS_LEDGER_TABLE": names.ledger_table(), "MLOPS_SLOTS_TABLE": names.slots_table(), "MLOPS_PROJECT": "pkgtest",
        "POWERTOOLS_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin",
    }}


def _invoke(unpacked: dict[str, Path], function: str, event: dict[str, Any], env: dict[str, str], registry: Path) -> dict[str, Any]:
    task = unpacked[function]
    # The packaged registry, but the test's own (its project, tables and tenants): replace the copy in the task folder.
    shutil.rmtree(task / "registry")
    shutil.copytree(registry, task / "registry", ignore=shutil.ignore_patterns("*.pyc"))
    paths = [str(task), str(unpacked["opt"] / "python"), str(unpacked["runtime"])]
    done = subprocess.run([sys.executable, "-I", "-S", "-c", CALL, *paths, json.dumps(event)], cwd=task, capture_output=True,
                          text=True, check=False, timeout=120, env={**env, "MLOPS_ROOT": str(task / "registry")})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_trigger_package_runs_alone_rejects_an_unknown_tenant_and_reaches_the_start(
        unpacked: dict[str, Path], environment: dict[str, Any], registry_dir: Path) -> None:
    unknown = {"source": "ci", "tenant": "nobody", "model": "churn", "reason": "package test"}
    # A known tenant goes through admission to the pipeline start (which imports only what the zip holds);
    # nothing was upserted, so the start refuses with the platform's own message.
    known = {"source": "ci", "tenant": "acme", "model": "churn", "version": "1.0.0", "reason": "package test",
             "image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/pkgtest/churn:1.0.0"}
    answer = _invoke(unpacked, "trigger", {"requests": [unknown, known]}, environment["env"], registry_dir)
    first, second = answer["results"]
    assert first["result"] == "rejected" and "unknown tenant 'nobody'" in first["detail"]
    assert "no sources of churn have been uploaded" in json.dumps(second), second


def test_the_dispatcher_package_runs_alone_against_the_tables(unpacked: dict[str, Path], environment: dict[str, Any],
                                                              registry_dir: Path) -> None:
    scheduled = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    report = _invoke(unpacked, "dispatcher", scheduled, environment["env"], registry_dir)
    # Nothing is queued in this project's tier queues: a run that read them all and admitted nothing.
    assert sum(report["admitted"].values()) == 0 and report["rejected"] == 0, report


def test_the_status_package_sends_a_malformed_event_to_the_dlq_with_its_reason(
        unpacked: dict[str, Path], environment: dict[str, Any], registry_dir: Path, moto_server: str) -> None:
    names = environment["names"]
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    queue = sqs.get_queue_url(QueueName=names.events_queue("status"))["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName=names.dead_letter_queue(names.events_queue("status")))["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="not an event")
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    answer = _invoke(unpacked, "status", sqs_event(messages, arn), environment["env"], registry_dir)
    assert answer == {"batchItemFailures": []}  # handled: moved to the DLQ, not retried
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get("Messages", [])
    assert [m["Body"] for m in dead] == ["not an event"]
    assert dead[0].get("MessageAttributes"), "the DLQ copy carries the reason"


def test_the_isolated_interpreter_really_lacks_this_environment(unpacked: dict[str, Path]) -> None:
    """The check above means something only if pydantic is importable from the layer and nowhere else."""
    probe = "import sys; sys.path[:0] = sys.argv[1:]; import pydantic; print(pydantic.__file__)"
    without = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(unpacked["runtime"])], capture_output=True, text=True,
                             check=False, timeout=60)
    assert without.returncode != 0 and "No module named 'pydantic'" in without.stderr
    with_layer = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(unpacked["opt"] / "python")], capture_output=True,
                                text=True, check=False, timeout=60)
    assert with_layer.stdout.strip().startswith(str(unpacked["opt"]))


def test_the_layer_lock_pins_the_versions_the_tests_run_with() -> None:
    """lambda/layer.txt (resolved for the Lambda platform) and uv.lock (this environment) agree on every pin."""
    import importlib.metadata

    from mlops.packaging import LAYER_LOCK, layer_pins

    pins = layer_pins(ROOT / LAYER_LOCK)
    assert {"pydantic", "pyyaml", "semver", "aws-lambda-powertools"} <= set(pins)
    installed = {name: importlib.metadata.version(name) for name in pins}
    assert installed == pins, "run `make lock`: lambda/layer.txt no longer matches uv.lock"


def test_a_missing_layer_lock_is_one_clear_error(tmp_path: Path) -> None:
    from mlops.errors import MlopsError
    from mlops.packaging import cached_layer

    with pytest.raises(MlopsError, match="layer's lock is missing"):
        cached_layer(tmp_path / "cache", tmp_path / "layer.txt")
    assert not (tmp_path / "cache").exists()
