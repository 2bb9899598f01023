"""The dispatcher Lambda (EventBridge Scheduler): admits queued build requests while tiers have room.

Tiers are visited by priority; inside a tier, tenants are served round-robin (mlops.admission). Slots
are taken with one conditional transaction per request, so any number of dispatchers running at once
never put a tier over its limit. A crash mid-batch loses nothing: unhandled messages become visible
again when their visibility timeout (the lease) ends. The logic is `mlops.builds.BuildService.dispatch`.
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
