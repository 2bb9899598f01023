"""The platform's functions and images on moto without Terraform: what `mlops local up` deploys, with boto3.

`function_zip` builds a function's zip as `mlops.packaging` does for Terraform (with a registry of the
test's choosing), `deploy_function` creates or replaces a function as `terraform/modules/platform` declares
them (Python 3.11, `handler.handler`, the Lambda role), and `publish_image` leaves a model image in ECR as
`mlops image publish` does, for the trigger to resolve.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from mlops.naming import Names
from mlops.packaging import package_entries

ROOT = Path(__file__).resolve().parents[2]
_EMPTY_CONFIG = {"digest": "sha256:" + "0" * 64, "size": 1, "mediaType": "application/vnd.docker.container.image.v1+json"}
_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                   "Action": "sts:AssumeRole"}]}


def zip_of(files: dict[str, bytes | Path]) -> bytes:
    """A zip of name -> content (bytes, or a file to read)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content.read_bytes() if isinstance(content, Path) else content)
    return buffer.getvalue()


def function_zip(registry_dir: Path, function: str = "trigger") -> bytes:
    """A function's zip as `mlops.packaging` builds it, with the registry of `registry_dir`."""
    entries = package_entries(ROOT, function, registry_dir / "platform.yaml", registry_dir / "tenants")
    return zip_of({name: path for path, name in entries})


def deploy_function(session: Any, names: Names, name: str, code: bytes, environment: dict[str, str] | None = None,
                    handler: str = "handler.handler", timeout: int = 60) -> str:
    """Create a Python function (replacing one of that name), running as the platform's Lambda role; its ARN."""
    iam, lam = session.client("iam"), session.client("lambda")
    try:
        role = iam.get_role(RoleName=names.service_role("lambda"))["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName=names.service_role("lambda"), AssumeRolePolicyDocument=json.dumps(_TRUST))["Role"]["Arn"]
    try:
        lam.delete_function(FunctionName=name)
    except lam.exceptions.ResourceNotFoundException:
        pass
    return lam.create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler=handler, Timeout=timeout, MemorySize=256,
                               Code={"ZipFile": code}, Environment={"Variables": environment or {}})["FunctionArn"]


def publish_image(ecr: Any, names: Names, model: str, version: str) -> None:
    """An image of `model` tagged `version` in its ECR repository (the local engine runs the scripts without it)."""
    try:
        ecr.create_repository(repositoryName=names.ecr_repository(model))
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "config": _EMPTY_CONFIG,
                "layers": []}
    try:
        ecr.put_image(repositoryName=names.ecr_repository(model), imageManifest=json.dumps(manifest), imageTag=version)
    except ecr.exceptions.ImageAlreadyExistsException:
        pass
