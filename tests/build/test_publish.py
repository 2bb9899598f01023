"""Publishing to ECR: immutable tags, collisions, retries, and 20 publishers racing on the local AWS."""

from __future__ import annotations

import random
import threading
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from mlops import image
from mlops.aws import ecr as ecr_adapter
from mlops.errors import MlopsError

REPO = "mlops-demo/churn"


def NO_SLEEP(_seconds: float) -> None:  # pylint: disable=invalid-name  # reads as a constant at the call sites
    """Retries without waiting: these tests have no concurrent racers to spread out."""


def _tags(client, repository: str = REPO) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """tag -> digest, every tag of the repository."""
    out: dict[str, str] = {}
    for page in client.get_paginator("describe_images").paginate(repositoryName=repository):
        for detail in page["imageDetails"]:
            for tag in detail.get("imageTags", []):
                assert tag not in out, f"tag {tag} names two images"
                out[tag] = detail["imageDigest"]
    return out


def test_publish_records_manifest_tag_and_layers(ecr, make_image, create_repository) -> None:  # type: ignore[no-untyped-def]
    create_repository(ecr, REPO)
    built = make_image("a")
    result = image.publish(ecr, model="churn", repository=REPO, version="0.1.0", image=built, sleep=NO_SLEEP)
    assert (result.version, result.digest, result.attempts, result.uploaded_blobs) == ("0.1.0", built.digest, 1, 2)
    assert result.image_uri.endswith("/mlops-demo/churn:0.1.0")
    assert result.scan_on_push
    assert _tags(ecr) == {"0.1.0": built.digest}
    stored = ecr.batch_get_image(repositoryName=REPO, imageIds=[{"imageTag": "0.1.0"}])["images"][0]
    assert stored["imageManifest"].encode() == built.manifest
    available = ecr.batch_check_layer_availability(repositoryName=REPO, layerDigests=list(built.blobs))["layers"]
    assert {layer["layerDigest"] for layer in available} == set(built.blobs)


def test_republishing_the_same_image_and_version_is_idempotent(ecr, make_image, create_repository) -> None:  # type: ignore[no-untyped-def]
    create_repository(ecr, REPO)
    built = make_image("a")
    image.publish(ecr, model="churn", repository=REPO, version="0.1.0", image=built, sleep=NO_SLEEP)
    again = image.publish(ecr, model="churn", repository=REPO, version="0.1.0", image=built, sleep=NO_SLEEP)
    assert (again.version, again.attempts, again.uploaded_blobs) == ("0.1.0", 1, 0)
    assert _tags(ecr) == {"0.1.0": built.digest}


def test_a_taken_version_moves_to_the_next_and_never_overwrites(ecr, make_image, create_repository) -> None:  # type: ignore[no-untyped-def]
    create_repository(ecr, REPO)
    winner, loser = make_image("winner"), make_image("loser")
    image.publish(ecr, model="churn", repository=REPO, version="0.2.0", image=winner, sleep=NO_SLEEP)
    result = image.publish(ecr, model="churn", repository=REPO, version="0.2.0", image=loser, sleep=NO_SLEEP)
    assert (result.requested_version, result.version, result.attempts) == ("0.2.0", "0.3.0", 2)
    assert result.collisions == [f"0.2.0 -> {winner.digest}"]
    assert _tags(ecr) == {"0.2.0": winner.digest, "0.3.0": loser.digest}


def test_a_taken_pre_release_moves_to_the_next_pipeline_number(ecr, make_image, create_repository) -> None:  # type: ignore[no-untyped-def]
    create_repository(ecr, REPO)
    image.publish(ecr, model="churn", repository=REPO, version="0.2.0-mr.4.7", image=make_image("a"), sleep=NO_SLEEP)
    result = image.publish(ecr, model="churn", repository=REPO, version="0.2.0-mr.4.7", image=make_image("b"), sleep=NO_SLEEP)
    assert result.version == "0.2.0-mr.4.8"


def test_moto_reports_an_immutable_tag_as_image_already_exists(ecr, make_image, create_repository) -> None:  # type: ignore[no-untyped-def]
    """The adapter must accept both codes: moto's differs from AWS's ImageTagAlreadyExistsException."""
    create_repository(ecr, REPO)
    first, second = make_image("a"), make_image("b")
    image.publish(ecr, model="churn", repository=REPO, version="1.0.0", image=first, sleep=NO_SLEEP)
    image.upload_image(ecr, REPO, second)
    with pytest.raises(ClientError) as err:
        ecr.put_image(repositoryName=REPO, imageTag="1.0.0", imageManifest=second.manifest.decode(),
                      imageManifestMediaType=second.media_type, imageDigest=second.digest)
    assert err.value.response["Error"]["Code"] in ecr_adapter.COLLISION_CODES
    with pytest.raises(ecr_adapter.TagTaken) as taken:
        ecr_adapter.put_image(ecr, REPO, "1.0.0", second.manifest, second.media_type, second.digest)
    assert taken.value.digest == first.digest


def test_gives_up_after_the_bound(ecr, make_image, create_repository) -> None:  # type: ignore[no-untyped-def]
    """A competitor that always publishes first: the publisher tries the bound, then stops, overwriting nothing."""
    create_repository(ecr, REPO)
    competitor = boto3.client("ecr", region_name="us-east-1")
    rivals = iter(make_image(f"rival-{n}") for n in range(10))

    def rival_wins(params, **_kwargs) -> None:  # type: ignore[no-untyped-def]
        rival = next(rivals)
        image.upload_image(competitor, REPO, rival)
        competitor.put_image(repositoryName=REPO, imageTag=params["imageTag"], imageManifest=rival.manifest.decode(),
                             imageManifestMediaType=rival.media_type, imageDigest=rival.digest)

    ecr.meta.events.register("before-parameter-build.ecr.PutImage", rival_wins)
    with pytest.raises(MlopsError, match="after 3 attempts") as err:
        image.publish(ecr, model="churn", repository=REPO, version="0.1.0", image=make_image("late"), max_attempts=3,
                      sleep=NO_SLEEP)
    assert "retry the job" in (err.value.hint or "")
    assert sorted(_tags(ecr)) == ["0.1.0", "0.2.0", "0.3.0"]
    assert make_image("late").digest not in _tags(ecr).values()


def test_refuses_a_mutable_repository(ecr, make_image, create_repository) -> None:  # type: ignore[no-untyped-def]
    create_repository(ecr, REPO, mutability="MUTABLE")
    with pytest.raises(MlopsError, match="mutable tags") as err:
        image.publish(ecr, model="churn", repository=REPO, version="0.1.0", image=make_image("a"), sleep=NO_SLEEP)
    assert "IMMUTABLE" in (err.value.hint or "")


def test_missing_repository_says_what_to_do(ecr, make_image) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MlopsError, match="does not exist") as err:
        image.publish(ecr, model="churn", repository=REPO, version="0.1.0", image=make_image("a"), sleep=NO_SLEEP)
    assert "Terraform" in (err.value.hint or "")


def test_corrupt_archive_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar")
    with pytest.raises(MlopsError, match="not a readable OCI archive"):
        image.read_oci_archive(bad)
    with pytest.raises(MlopsError, match="not found"):
        image.read_oci_archive(tmp_path / "missing.tar")


@pytest.mark.slow
def test_twenty_publishers_racing_get_twenty_versions(moto_server: str, make_image, create_repository) -> None:  # type: ignore[no-untyped-def]
    """20 pipelines publish the same model at once against the local AWS (moto server, over HTTP)."""
    repository = f"race-{uuid.uuid4().hex[:8]}/churn"
    client = boto3.client("ecr", region_name="us-east-1", endpoint_url=moto_server)
    create_repository(client, repository)
    image.publish(client, model="churn", repository=repository, version="0.1.0", image=make_image("seed"))
    racers = 20
    built = {f"racer-{i}": make_image(f"racer-{i}") for i in range(racers)}
    results: dict[str, image.PublishResult] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(racers)

    def race(name: str) -> None:
        own = boto3.session.Session().client("ecr", region_name="us-east-1", endpoint_url=moto_server)
        start.wait()
        try:  # everyone computed 0.2.0 from the same listing (a feat commit after 0.1.0)
            results[name] = image.publish(own, model="churn", repository=repository, version="0.2.0", image=built[name],
                                          rng=random.Random(name))
        except BaseException as exc:  # pylint: disable=broad-exception-caught  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(name,)) for name in built]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    versions = [r.version for r in results.values()]
    assert len(set(versions)) == racers
    tags = _tags(client, repository)  # asserts that no tag names two images
    assert len(tags) == racers + 1
    for name, result in results.items():
        assert tags[result.version] == built[name].digest == result.digest
    assert sorted(versions, key=lambda s: tuple(map(int, s.split(".")))) == [f"0.{n}.0" for n in range(2, 22)]
