"""The dispatcher Lambda (EventBridge Scheduler): admits queued build requests while tiers have room.

Tiers are visited by priority; inside a tier, the queue is filed into a fair backlog and tenants are
served round-robin by start tag (mlops.admission). Slots are taken with one conditional transaction per
round, so any number of dispatchers running at once never put a tier over its limit. A crash mid-batch
loses nothing: a message is deleted only once its request is filed (otherwise it becomes visible again
after its visibility timeout), and an admitted request whose start was lost is retaken by the sweep.
The logic is `mlops.builds.BuildService.dispatch`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger

from mlops.builds import current_service

logger = Logger(service="mlops-dispatcher")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (the schedule's event is not used)."""
    del event, context
    service, _ = current_service()
    report = asdict(service.dispatch())
    logger.info("dispatch", extra=report)
    return report
