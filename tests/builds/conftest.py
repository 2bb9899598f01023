"""Fixtures of the fast tests of the build use cases: a world of in-memory ports for a registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builds_world import TENANTS, World, write_registry


@pytest.fixture
def world_factory(tmp_path: Path) -> Callable[..., World]:
    """A world for given tenants (id -> tier) and tenant overrides."""
    count = [0]

    def build(tenants: dict[str, str] | None = None, overrides: dict[str, dict[str, Any]] | None = None, **kwargs: Any) -> World:
        count[0] += 1
        return World(write_registry(tmp_path / f"registry-{count[0]}", tenants or TENANTS, overrides), **kwargs)

    return build


@pytest.fixture
def world(world_factory: Callable[..., World]) -> World:
    """Two gold tenants, one silver, one bronze."""
    return world_factory()
