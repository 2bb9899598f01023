"""The local Lambda runtime: uploads and CI requests become executions through the real handlers."""

from __future__ import annotations

import json
import time
from typing import Any

from support.trigger_stack import SimulatedSageMaker
from trigger_helpers import LAMBDA_DIR, Stack, request, upload_event

from mlops.builds import HandlerConfig, use_service
from mlops.local.lambda_runtime import standard_runtime


def test_uploads_and_queued_requests_run_to_the_ledger_through_the_runtime(stack: Stack) -> None:
    sim = SimulatedSageMaker(stack.starter, stack.sqs, stack.urls[stack.names.events_queue("status")],
                             {t: v.tier for t, v in stack.registry.tenants.items()}, duration=lambda: 0.05)
    stack.starter = sim  # type: ignore[assignment]
    service = stack.service()
    use_service(lambda: (service, HandlerConfig()))
    runtime = standard_runtime(stack.sqs, stack.names, LAMBDA_DIR, dispatch_every_seconds=0.1)
    try:
        stack.sqs.send_message(QueueUrl=stack.urls[stack.names.events_queue("uploads")],
                               MessageBody=json.dumps(upload_event(stack.names, "umbrella", "churn", "data/churn/day1.csv")))
        queued = [service.submit(request("umbrella", n)).execution_id for n in range(2)]

        def everything_finished() -> Any:
            sim.tick(time.monotonic())
            items = service.ledger.scan(tenant="umbrella")
            return len(items) == 3 and all(i["status"] == "SUCCEEDED" for i in items)

        assert runtime.run_until(everything_finished, timeout_seconds=60)
    finally:
        use_service(None)
    items = {i["execution_id"]: i for i in service.ledger.scan(tenant="umbrella")}
    assert set(queued) <= set(items)
    assert sorted(i["source"] for i in items.values()) == ["ci", "ci", "upload"]
    assert sim.starter.duplicates == 0
    state = service.slots.read_tier("bronze", 1)
    assert (state.inflight, state.waiting) == (0, 0)
