"""Fixtures of the retraining check: a fixed clock, the test project's names, and a scenario runner.

Policy tables describe a tenant x model in plain words (`trained_days`, `images`, `data_days`, ...);
`decide_one` builds the inventory and returns the decision, so each table row reads as one situation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mlops.aws.scan import Clients
from mlops.config.contract import Retraining
from mlops.naming import Names
from mlops.retrain import DriftReading, Inventory, Report, TenantInfo, check
from retrain_support import NOW, ago, execution, seed  # pylint: disable=import-error,wrong-import-order  # tests/retrain is on sys.path under pytest


@pytest.fixture
def names() -> Names:
    """The names of the test project."""
    return Names(project="mlops-demo")


@pytest.fixture
def run_check(names: Names) -> Callable[..., Report]:
    """Run the pure check over tenants, an inventory and policies at NOW."""

    def run(tenants: list[TenantInfo], inventory: Inventory, policies: dict[str, Retraining] | None = None,
            models: tuple[str, ...] = ("churn", "house-prices")) -> Report:
        return check(tenants, models, inventory, policies or {}, NOW, names)

    return run


@pytest.fixture
def decide_one(run_check: Callable[..., Report]) -> Callable[..., Any]:
    """The decision for acme x churn in a situation described by keywords."""

    def run(trained_days: float | None = 3, version: str | None = "1.2.0", images: tuple[str, ...] = ("1.2.0",),
            data_days: float | None = None, drift: float | None = None, drift_days: float = 0.5,
            running: str | None = None, override: int | None = None, retraining: Retraining | None = None,
            watermark_days: float | None = None):  # type: ignore[no-untyped-def]
        executions = []
        if trained_days is not None:
            watermark = ago(watermark_days) if watermark_days is not None else None
            executions.append(execution(days=trained_days, version=version, watermark=watermark))
        if running:
            executions.append(execution(days=0.1, status=running, execution_id="ex-2", version="1.3.0"))
        inventory = Inventory(executions=executions, images={"churn": list(images)})
        if data_days is not None:
            inventory.data[("acme", "churn")] = ago(data_days)
        if drift is not None:
            inventory.drift[("acme", "churn")] = DriftReading(drift, ago(drift_days), "test")
        tenant = TenantInfo("acme", ("churn",), True, override)
        report = run_check([tenant], inventory, {"churn": retraining} if retraining else {})
        (decision,) = report.decisions
        return decision

    return run


@pytest.fixture
def seeded(aws, names: Names) -> Clients:  # pylint: disable=unused-argument  # aws switches moto on
    """acme x churn fresh, acme x house-prices stale, globex x churn running, old-co left over, odd ECR tags."""
    return seed(names)
