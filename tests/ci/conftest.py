"""Fixtures for the CI-file tests."""

from __future__ import annotations

import pytest

from ci_helpers import CITEMPLATES, ROOT


@pytest.fixture(scope="session")
def pipeline() -> dict:
    """ml-ops' .gitlab-ci.yml with its includes, extends and !reference resolved."""
    return CITEMPLATES.resolve_pipeline(ROOT / ".gitlab-ci.yml")
