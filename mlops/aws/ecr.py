"""ECR adapter: the model repositories' tags, blob uploads and immutable `PutImage`.

Everything goes through the ECR API (no registry protocol, no Docker), so publishing behaves the same
against AWS and against the local AWS: layers and the image config are uploaded with
`InitiateLayerUpload`/`UploadLayerPart`/`CompleteLayerUpload` when `BatchCheckLayerAvailability` does not
know them, then `PutImage` records the manifest under its tag. On an `IMMUTABLE` repository a tag that is
already taken fails; this adapter turns that into `TagTaken` (AWS says `ImageTagAlreadyExistsException`,
moto says `ImageAlreadyExistsException`; AWS also says the latter when the very same image is pushed
again under the same tag, which is our own earlier success and is reported as such).

Functions take a boto3 ECR client; every `ClientError` the user can act on becomes an `MlopsError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.aws import errors
from mlops.errors import MlopsError

COLLISION_CODES = frozenset({"ImageTagAlreadyExistsException", "ImageAlreadyExistsException"})
DEFAULT_PART_SIZE = 10 * 1024 * 1024


class TagTaken(MlopsError):
    """The tag already names another image: someone else published this version first."""

    def __init__(self, repository: str, tag: str, digest: str | None):
        super().__init__(f"tag {tag} of {repository} already names image {digest or '(unknown)'}",
                         "tags are immutable: publish under the next version")
        self.tag = tag
        self.digest = digest


@dataclass(frozen=True)
class Repository:
    """What publishing needs to know about a repository."""

    name: str
    uri: str
    immutable: bool
    scan_on_push: bool


def _fail(action: str, repository: str, exc: Exception) -> MlopsError:
    if isinstance(exc, ClientError):
        if errors.code(exc) == "RepositoryNotFoundException":
            return MlopsError(f"ECR repository {repository} does not exist",
                              "apply the Terraform root (mlops infra apply, or mlops local up for the local AWS)")
        if errors.is_access(exc):
            return MlopsError(f"not allowed to {action} on {repository}: {errors.code(exc)}",
                              "check the CI role's ECR permissions and that its credentials are current")
        return MlopsError(f"could not {action} on {repository}: {errors.describe(exc)}", "check the repository and retry")
    return MlopsError(f"could not {action} on {repository}: {exc}", "check AWS_ENDPOINT_URL / network access to ECR")


def describe_repository(client: Any, repository: str) -> Repository:
    """The repository's URI and its tag and scan settings."""
    try:
        repo = client.describe_repositories(repositoryNames=[repository])["repositories"][0]
    except (ClientError, BotoCoreError) as exc:
        raise _fail("describe the repository", repository, exc) from exc
    mutability = str(repo.get("imageTagMutability", "MUTABLE"))
    return Repository(
        name=repository,
        uri=str(repo["repositoryUri"]),
        immutable=mutability.startswith("IMMUTABLE") and "EXCLUSION" not in mutability,
        scan_on_push=bool(repo.get("imageScanningConfiguration", {}).get("scanOnPush", False)),
    )


def list_tags(client: Any, repository: str) -> list[str]:
    """Every tag in the repository (all pages)."""
    tags: list[str] = []
    try:
        for page in client.get_paginator("list_images").paginate(repositoryName=repository, filter={"tagStatus": "TAGGED"}):
            tags.extend(str(i["imageTag"]) for i in page.get("imageIds", []) if i.get("imageTag"))
    except (ClientError, BotoCoreError) as exc:
        raise _fail("list image tags", repository, exc) from exc
    return tags


def digest_of(client: Any, repository: str, tag: str) -> str | None:
    """The digest a tag names, or None when the tag does not exist."""
    try:
        images = client.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    except ClientError as exc:
        if errors.code(exc) == "ImageNotFoundException":
            return None
        raise _fail("describe an image", repository, exc) from exc
    except BotoCoreError as exc:
        raise _fail("describe an image", repository, exc) from exc
    return str(images[0]["imageDigest"]) if images else None


def manifest_of(client: Any, repository: str, tag: str) -> dict[str, Any] | None:
    """The manifest a tag names (to read its annotations), or None when the tag does not exist."""
    import json

    try:
        images = client.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])["images"]
    except (ClientError, BotoCoreError) as exc:
        raise _fail("read an image manifest", repository, exc) from exc
    if not images or "imageManifest" not in images[0]:
        return None
    try:
        manifest = json.loads(images[0]["imageManifest"])
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) else None


def missing_blobs(client: Any, repository: str, digests: list[str]) -> list[str]:
    """Which of these blobs (layers and config) the repository does not have yet."""
    missing: list[str] = []
    try:
        for start in range(0, len(digests), 100):  # the API takes at most 100 digests per call
            chunk = digests[start:start + 100]
            answer = client.batch_check_layer_availability(repositoryName=repository, layerDigests=chunk)
            available = {str(layer["layerDigest"]) for layer in answer.get("layers", [])
                         if layer.get("layerAvailability") == "AVAILABLE"}
            missing.extend(d for d in chunk if d not in available)
    except (ClientError, BotoCoreError) as exc:
        raise _fail("check layer availability", repository, exc) from exc
    return missing


def upload_blob(client: Any, repository: str, digest: str, chunks: Callable[[int], Iterator[bytes]]) -> None:
    """Upload one blob in parts; `chunks(part_size)` yields its bytes. ECR checks the digest on completion."""
    try:
        upload = client.initiate_layer_upload(repositoryName=repository)
        upload_id = upload["uploadId"]
        first = 0
        for chunk in chunks(int(upload.get("partSize") or DEFAULT_PART_SIZE)):
            if not chunk:
                continue
            client.upload_layer_part(repositoryName=repository, uploadId=upload_id, partFirstByte=first,
                                     partLastByte=first + len(chunk) - 1, layerPartBlob=chunk)
            first += len(chunk)
        done = client.complete_layer_upload(repositoryName=repository, uploadId=upload_id, layerDigests=[digest])
    except ClientError as exc:
        if errors.code(exc) == "LayerAlreadyExistsException":
            return  # another publisher uploaded the same layer meanwhile
        raise _fail("upload a layer", repository, exc) from exc
    except BotoCoreError as exc:
        raise _fail("upload a layer", repository, exc) from exc
    if done.get("layerDigest") != digest:
        raise MlopsError(f"ECR computed {done.get('layerDigest')} for blob {digest}", "the OCI archive is corrupt: build it again")


def put_image(client: Any, repository: str, tag: str, manifest: bytes, media_type: str, digest: str) -> str:
    """Record `manifest` under `tag`; return the digest. TagTaken when the tag names another image."""
    try:
        answer = client.put_image(repositoryName=repository, imageTag=tag, imageManifest=manifest.decode("utf-8"),
                                  imageManifestMediaType=media_type, imageDigest=digest)
    except ClientError as exc:
        if errors.code(exc) not in COLLISION_CODES:
            raise _fail(f"put image {tag}", repository, exc) from exc
        existing = digest_of(client, repository, tag)
        if existing == digest:
            return digest  # the same image under the same tag: our own earlier attempt got through
        raise TagTaken(repository, tag, existing) from exc
    except BotoCoreError as exc:
        raise _fail(f"put image {tag}", repository, exc) from exc
    return str(answer["image"]["imageId"].get("imageDigest") or digest)
