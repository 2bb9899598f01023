"""Fixtures of the isolation tests: a moto server whose IAM enforcement this test module switches on.

moto enforces IAM on every request once `POST /moto-api/reset-auth` sets the free-request count to 0, but
it only resolves the *resource* of a request for S3, SQS, IAM and STS; every other service is checked
against "*", so a policy naming SageMaker ARNs would deny everything. `sagemaker_resources` teaches moto
the resource of the SageMaker calls the tests make, exactly as the IAM Service Authorization Reference
defines it (model-package-group/<group>, model-package/<group>/<version>, pipeline/<name>, pipeline/<name>/execution/<id>,
processing-job/<name>, training-job/<name>).
Policy evaluation itself stays moto's.

moto authorises an S3 request by its API operation (`s3:ListObjectsV2`, `s3:HeadObject`) where IAM uses the
action the Service Authorization Reference lists for it (`s3:ListBucket`, `s3:GetObject`). Policies are
written for AWS, so `s3_iam_actions` translates the operations these tests call into their IAM actions
before moto evaluates them; without it a tenant is denied listing its own bucket and a cross-tenant "list
denied" passes whatever the policy says.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest


def _sagemaker_resource(self: Any) -> str:
    """The ARN IAM authorises a SageMaker request against (the subset these tests use)."""
    prefix = f"arn:aws:sagemaker:{self.region}:{self.current_account}"
    action = self._get_action()  # pylint: disable=protected-access  # moto's own request accessor
    group = self._get_param("ModelPackageGroupName")  # pylint: disable=protected-access
    if action in ("DescribeModelPackageGroup", "ListModelPackages") and group:
        return group if group.startswith("arn:") else f"{prefix}:model-package-group/{group}"
    if action == "CreateModelPackage" and group:
        return f"{prefix}:model-package/{group}/new"
    if action in ("DescribeModelPackage", "UpdateModelPackage"):
        return self._get_param("ModelPackageName") or self._get_param("ModelPackageArn") or "*"  # pylint: disable=protected-access
    if action in ("DescribePipelineExecution", "StopPipelineExecution", "ListPipelineExecutionSteps",
                  "ListPipelineParametersForExecution", "RetryPipelineExecution"):
        return self._get_param("PipelineExecutionArn") or "*"  # pylint: disable=protected-access
    if action in ("CreateProcessingJob", "CreateTrainingJob"):
        kind, name = ("processing-job", "ProcessingJobName") if action == "CreateProcessingJob" else ("training-job", "TrainingJobName")
        return f"{prefix}:{kind}/{self._get_param(name)}"  # pylint: disable=protected-access
    pipeline = self._get_param("PipelineName")  # pylint: disable=protected-access
    if action in ("StartPipelineExecution", "DescribePipeline", "ListPipelineExecutions") and pipeline:
        return pipeline if pipeline.startswith("arn:") else f"{prefix}:pipeline/{pipeline}"
    return "*"


@pytest.fixture(scope="module")
def sagemaker_resources() -> Iterator[None]:
    """Resolve SageMaker request resources in the in-process moto server (see the module docstring)."""
    from moto.sagemaker.responses import SageMakerResponse

    setattr(SageMakerResponse, "_determine_resource", _sagemaker_resource)
    try:
        yield
    finally:
        delattr(SageMakerResponse, "_determine_resource")


#: S3 API operation -> the IAM action that authorises it (Service Authorization Reference, Amazon S3).
S3_IAM_ACTIONS = {
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "HeadBucket": "ListBucket",
    "HeadObject": "GetObject",
    "GetObject": "GetObject",
    "PutObject": "PutObject",
    "CopyObject": "PutObject",
    "DeleteObject": "DeleteObject",
    "DeleteObjects": "DeleteObject",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
}


@pytest.fixture(scope="module")
def s3_iam_actions() -> Iterator[None]:
    """Authorise S3 requests in the in-process moto server by IAM action (see the module docstring)."""
    from moto.iam.access_control import S3IAMRequest

    original = S3IAMRequest.__init__

    def init(self: Any, *args: Any, action: Any = None, **kwargs: Any) -> None:
        name = action[0] if isinstance(action, list) else action
        if name not in S3_IAM_ACTIONS:
            raise AssertionError(f"S3 operation {name} has no IAM action in S3_IAM_ACTIONS: add it from the reference")
        original(self, *args, action=S3_IAM_ACTIONS[name], **kwargs)

    setattr(S3IAMRequest, "__init__", init)
    try:
        yield
    finally:
        setattr(S3IAMRequest, "__init__", original)


class EnforcedMoto:
    """A moto server of one test module, with a switch for its IAM enforcement."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def enforce(self, on: bool) -> None:
        """Enforce IAM on every request from now on, or stop enforcing."""
        _set_auth(self.endpoint, "0" if on else "inf")


@pytest.fixture(scope="module")
def enforced_moto() -> Iterator[EnforcedMoto]:
    """A fresh moto server; IAM enforcement always switched off at the end.

    moto keeps the setting process-wide, so leaving it on would break every later in-process moto test.
    """
    from mlops.local.server import ThreadedServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with ThreadedServer() as url:
        moto = EnforcedMoto(url)
        try:
            yield moto
        finally:
            moto.enforce(False)


def _set_auth(endpoint: str, free_requests: str) -> None:
    """Switch moto's IAM enforcement: "0" enforces from now on, "inf" switches it off."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=free_requests.encode(), method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310: loopback moto server
        assert json.loads(response.read())["status"] == "ok"
