"""Shared fixtures: fake AWS credentials, in-process moto, a moto server, and registry folders.

Each area of tests keeps its own fixtures in its folder's conftest.py; only what several areas share
lives here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.naming import Names

ROOT = Path(__file__).resolve().parents[1]


#: The longest test files (`pytest --durations`), longest first: `make test` runs one file per worker at a
#: time, so starting these first keeps one long file from running alone at the end. Order only, never a skip.
LONGEST_FIRST = (
    "tests/e2e/test_demo.py",
    "tests/ci/test_ci_local.py",
    "tests/local/test_local_stack.py",
    "tests/terraform/test_apply.py",
    "tests/terraform/test_data_guard.py",
    "tests/wiring/test_wiring.py",
    "tests/isolation/test_tenant_isolation.py",
    "tests/iam/test_isolation_matrix.py",
    "tests/examples/test_examples_pipelines.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest files first (see LONGEST_FIRST); the rest keep their order."""
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}

    def order(item: pytest.Item) -> int:
        return rank.get(Path(str(item.path)).relative_to(ROOT).as_posix(), len(rank))

    items.sort(key=order)  # stable: tests keep their order within a file and among the rest


def pytest_configure(config: pytest.Config) -> None:  # pylint: disable=unused-argument  # pytest's hook signature
    """Name the provider mirror once for every test that runs Terraform outside `mlops` (CI jobs, module tests).

    `mlops` finds it by itself (mlops.terraform.find_aws_provider); the end-to-end demo test runs without
    the setting to prove it.
    """
    from mlops.terraform import find_aws_provider

    found = find_aws_provider()
    if found is not None:
        os.environ["MLOPS_TF_PLUGIN_DIR"] = str(found)

_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
}


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fake credentials before any client exists, and no way to reach a real account or profile."""
    for key, value in _AWS_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path_factory.getbasetemp() / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path_factory.getbasetemp() / "no-aws-credentials"))


@pytest.fixture
def aws() -> Iterator[None]:
    """In-process moto for unit tests of adapters."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on loopback for anything outside this Python process; yields its endpoint URL."""
    from mlops.local.server import ThreadedServer

    # As `mlops local up` runs it: pipeline executions run by the local engine, records in the artifacts bucket
    # of the tests' registry.
    engine = {"record_bucket": Names(project="mlops-demo", account_id="123456789012", region="us-east-1").artifacts_bucket(),
              "engine_dir": tmp_path_factory.mktemp("engine")}
    with ThreadedServer(engine=engine) as url:
        yield url


#: The registry the tests build for themselves (the shipped one may gain models and tenants at any time): the
#: project, models, tiers and tenants the tests name, written as people write these files.
TEST_PLATFORM = """\
# The platform of the tests.
project: mlops-demo
region: us-east-1
models:
  - churn
  - house-prices
tiers:
  bronze:
    instance_type: ml.m5.large
    max_concurrent_builds: 1
    priority: 1
  silver:
    instance_type: ml.m5.xlarge
    max_concurrent_builds: 2
    priority: 5
  gold:
    instance_type: ml.m5.2xlarge
    max_concurrent_builds: 4
    priority: 10
    endpoint_instance_type: ml.m5.large
"""
TEST_TENANTS = {
    "acme": "# One tenant.\nid: acme\ndisplay_name: Acme Retail\ntier: gold\nmodels: [churn, house-prices]\n"
            "tags:\n  cost-center: cc-1001\n  customer: acme\n",
    "globex": "id: globex\ndisplay_name: Globex Telecom\ntier: bronze\nmodels: [churn]\n"
              "tags:\n  cost-center: cc-2002\n  customer: globex\noverrides:\n  retrain_max_age_days: 14\n",
}


def write_test_registry(folder: Path) -> Path:
    """Write the tests' own registry (platform.yaml and tenants/) into `folder`; return `folder`."""
    (folder / "tenants").mkdir(parents=True, exist_ok=True)
    (folder / "platform.yaml").write_text(TEST_PLATFORM, encoding="utf-8")
    for tenant_id, text in TEST_TENANTS.items():
        (folder / "tenants" / f"{tenant_id}.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    """A registry of the tests' own (platform.yaml and tenants/ acme and globex) that a test may change; never a
    copy of the shipped one, so that adding a model or a tenant to the repository changes no test."""
    return write_test_registry(tmp_path)
