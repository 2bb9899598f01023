"""Helpers of the retraining tests: a fixed clock and ledger executions (plain functions, for tables)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mlops.retrain import Execution

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def ago(days: float) -> datetime:
    """A moment `days` before NOW."""
    return NOW - timedelta(days=days)


def execution(tenant: str = "acme", model: str = "churn", days: float = 3, version: str | None = "1.2.0",
              status: str = "Succeeded", execution_id: str = "ex-1", watermark: datetime | None = None) -> Execution:
    """A ledger execution that started `days` ago and, when finished, took an hour."""
    start = ago(days)
    ended = start + timedelta(hours=1) if status.lower() in {"succeeded", "failed", "stopped"} else None
    return Execution(tenant, model, execution_id, status, start, ended, version, watermark)
