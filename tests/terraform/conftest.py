"""Fixtures for Terraform tests: a Terraform binary, a fresh moto server per test module.

Terraform installs `hashicorp/aws` from where `mlops.terraform.find_aws_provider` finds it (tests/conftest.py
names it in MLOPS_TF_PLUGIN_DIR); otherwise it downloads the provider as usual. Without a `terraform` binary these
tests are skipped. Helpers shared by the test modules live in tf_helpers.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def terraform_bin() -> str:
    """The terraform binary, or skip."""
    path = shutil.which("terraform")
    if path is None:
        pytest.skip("terraform is not installed")
    return path


@pytest.fixture(scope="module")
def fresh_moto() -> Iterator[str]:
    """A moto server of this test module only (Terraform state and moto state start empty together)."""
    import logging

    from mlops.local.server import ThreadedServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request is noise here
    with ThreadedServer() as url:
        yield url
