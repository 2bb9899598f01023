"""Fixtures of the IAM matrix: the simulator installed from .ci/node's lock, and the planned policies.

Nothing here skips: without npm, the simulator or Terraform the tests fail and say what is missing (make test
installs .ci/node the way CI does, through .ci/gitlab-ci-local.sh --install-only). The plan is made once per
session for a registry written into a temporary folder (policy_matrix.TENANTS), against a moto server of its
own (the targeted apply must not meet other tests' resources).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import policy_matrix as pm
import pytest


@pytest.fixture(scope="session")
def simulator() -> str:
    """The version of @cloud-copilot/iam-simulate installed in .ci/node (installed now if missing)."""
    try:
        version = pm.install_simulator()
    except pm.SimulatorError as error:
        pytest.fail(f"the IAM policy simulator is not available: {error}", pytrace=False)
    return version


@pytest.fixture(scope="session")
def iam_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server of the IAM matrix only, in a process of its own: moto keeps its state per process, and the
    targeted apply must not meet what other tests of this worker created (e.g. the account's GitLab OIDC
    provider)."""
    ready = tmp_path_factory.mktemp("iam-moto") / "ready.json"
    server = subprocess.Popen([sys.executable, "-m", "mlops.local.server", "--port", "0", "--ready-file", str(ready)],  # pylint: disable=consider-using-with  # stopped below
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not ready.is_file():
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the IAM matrix's moto server did not start (exit {server.poll()})", pytrace=False)
            time.sleep(0.1)
        where = json.loads(ready.read_text(encoding="utf-8"))
        yield f"http://{where['host']}:{where['port']}"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="session")
def planned(iam_moto: str, tmp_path_factory: pytest.TempPathFactory) -> pm.Planned:
    """The policies Terraform plans for the matrix's registry (six tenants, all tiers, a prefix pair)."""
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not installed: the IAM matrix evaluates the policies Terraform plans", pytrace=False)
    base = pm.write_registry(tmp_path_factory.mktemp("iam-registry"))
    plan, seconds = pm.plan_with_known_policies(base, iam_moto)
    print("\nplan with every policy known: " + ", ".join(f"{phase} {value:.1f} s" for phase, value in seconds.items()))
    return pm.read_plan(plan)


@pytest.fixture(scope="session")
def matrix(simulator: str, planned: pm.Planned) -> pm.Matrix:  # pylint: disable=unused-argument  # installed first
    """Every planned role × every tenant × every request on that tenant's resources, evaluated once."""
    return pm.evaluate_matrix(planned)
