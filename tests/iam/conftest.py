"""Fixtures of the IAM matrix: the simulator installed from .ci/node's lock, and the planned policies.

Nothing here skips: without npm, the simulator or Terraform the tests fail and say what is missing (make test
installs .ci/node the way CI does, through .ci/gitlab-ci-local.sh --install-only). The plan is made once per
session for a registry written into a temporary folder (policy_matrix.TENANTS), against a moto server of its
own (the targeted apply must not meet other tests' resources).
"""

from __future__ import annotations

import logging
import shutil
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
def iam_moto() -> Iterator[str]:
    """A moto server of the IAM matrix only."""
    from mlops.local.server import ThreadedServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with ThreadedServer() as url:
        yield url


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
