"""Fixtures of the trigger tests: the trigger's resources on in-process moto, for a given registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.trigger_stack import MotoPipelineStarter, provision, subscriptions
from trigger_helpers import Stack, write_registry

from mlops.config.tenants import load_registry
from mlops.local import moto_patches


@pytest.fixture
def stack_factory(aws: None, tmp_path: Path) -> Iterator[Any]:
    """Build a Stack for a given set of tenants (id -> tier)."""
    del aws
    import boto3

    undo_patches = moto_patches.atomic()  # moto atomic per call, as AWS is, for this test only

    def build(tenants: dict[str, str], overrides: dict[str, dict] | None = None) -> Stack:
        root = write_registry(tmp_path / "reg", tenants, overrides)
        registry = load_registry(root / "platform.yaml", root / "tenants")
        names = registry.names()
        dynamodb, sqs, sagemaker = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("sagemaker")
        urls = provision(dynamodb, sqs, sagemaker, names, list(registry.platform.tiers), subscriptions(registry))
        return Stack(registry, names, dynamodb, sqs, sagemaker, MotoPipelineStarter(sagemaker, names), urls)

    yield build
    undo_patches()


@pytest.fixture
def stack(stack_factory: Any) -> Stack:
    """Two gold tenants, one silver, one bronze."""
    return stack_factory({"acme": "gold", "initech": "gold", "globex": "silver", "umbrella": "bronze"})
