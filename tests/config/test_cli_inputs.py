"""Every input is checked before anything happens, and a bad one is one line: binary or oversized files,
broken JSON, versions that are no image tag, impossible limits and months."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.config._yaml import MAX_BYTES
from mlops.errors import MlopsError
from mlops.requests import RejectedRequest, parse_request

ROOT = Path(__file__).resolve().parents[2]


def _mlops(*args: str, root: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "MLOPS_ROOT": str(root), **env})


@pytest.mark.parametrize("content, problem", [
    pytest.param(b"\xff\xfe\x00binary", "is not UTF-8 text", id="binary"),
    pytest.param(b"id: x\n" + b"#" * (MAX_BYTES + 1), "more than the 1,048,576 a configuration file may have", id="oversized"),
])
def test_a_binary_or_oversized_tenant_file_is_one_line(registry_dir: Path, content: bytes, problem: str) -> None:
    (registry_dir / "tenants" / "odd.yaml").write_bytes(content)
    done = _mlops("tenants", "validate", root=registry_dir)
    assert done.returncode == 2 and problem in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and "odd.yaml" in done.stderr


def test_a_version_that_is_no_image_tag_is_refused_before_any_aws_call() -> None:
    # An endpoint where nothing listens: reaching AWS would be an other error than the version's.
    done = _mlops("train", "--tenant", "acme", "--model", "churn", "--version", "../x", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: --version '../x' is not a version as images are tagged "
                                                "(use semver, e.g. 0.3.0 or 0.3.0-mr.4)"]


@pytest.mark.parametrize("version, accepted", [
    pytest.param("0.3.0", True, id="release"), pytest.param("0.3.0-mr.4", True, id="pre-release"),
    pytest.param("../x", False, id="path"), pytest.param("0.3", False, id="two-parts"),
    pytest.param("1.0.0+build", False, id="build-metadata-is-no-ecr-tag"), pytest.param("latest", False, id="latest"),
])
def test_the_trigger_takes_only_versions_as_images_are_tagged(version: str, accepted: bool) -> None:
    request = {"source": "ci", "tenant": "acme", "model": "churn", "version": version}
    if accepted:
        assert parse_request(request).version == version
    else:
        with pytest.raises(RejectedRequest, match="version"):
            parse_request(request)


@pytest.mark.parametrize("args, problem", [
    pytest.param(["executions", "list", "--limit", "-5"], "-5 is not in the range x>=1", id="negative-limit"),
    pytest.param(["cost", "report", "--month", "2024-13"], "'2024-13' is not a month: use YYYY-MM", id="month-13"),
])
def test_impossible_options_are_usage_errors(args: list[str], problem: str) -> None:
    done = _mlops(*args, AWS_ENDPOINT_URL="http://127.0.0.1:9")
    assert done.returncode == 2 and problem in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("content, problem", [
    pytest.param("{not json", "not a JSON variables file", id="broken-json"),
    pytest.param(json.dumps(["a", "list"]), "holds a list, not an object", id="not-an-object"),
])
def test_a_broken_infra_variables_file_is_one_line(tmp_path: Path, content: str, problem: str) -> None:
    from mlops.cli.infra import _read_var_file  # pylint: disable=import-outside-toplevel  # the CLI module keeps its imports lazy

    path = tmp_path / "env.tfvars.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MlopsError, match=problem):
        _read_var_file(str(path))
