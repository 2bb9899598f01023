"""The dispatcher Lambda (EventBridge Scheduler): admits queued build requests while tiers have room.

Tiers are visited by priority; inside a tier, the queue is filed into a fair backlog and tenants are
served round-robin by start tag (mlops.admission). Slots are taken with one conditional transaction per
round, so any number of dispatchers running at once never put a tier over its limit. A crash mid-batch
loses nothing: a message is deleted only once its request is filed (otherwise it becomes visible again
after its visibility timeout), and an admitted request whose start was lost is retaken by the sweep, which
also applies the status of any execution whose status event never arrived (asked of SageMaker). Each repair
is a log line and a CloudWatch metric (namespace `mlops`).
The logic is `mlops.builds.dispatcher.Dispatcher`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from mlops.builds import current_service

logger = Logger(service="mlops-dispatcher")
#: CloudWatch metrics (embedded metric format, in the function's log) of every repair a run made.
metrics = Metrics(namespace="mlops", service="mlops-dispatcher")
REPAIRS = {"reconciled": "ReconciledExecutions", "restarted": "RestartedStarts", "released_stale": "ReleasedStaleSlots",
           "recounted": "CorrectedCounts"}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (the schedule's event is not used)."""
    del event, context
    service, _ = current_service()
    report = asdict(service.dispatch())
    logger.info("dispatch", extra=report)
    repairs = {name: len(value) if isinstance(value, dict) else int(value) for name, value in report.items() if name in REPAIRS}
    if any(repairs.values()):
        for name, count in repairs.items():
            metrics.add_metric(name=REPAIRS[name], unit=MetricUnit.Count, value=count)
        metrics.flush_metrics()
    return report
