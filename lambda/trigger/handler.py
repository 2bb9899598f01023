"""The trigger Lambda: accepts build requests and starts or queues each exactly once.

Two ways in. An SQS batch from the uploads queue (S3 → EventBridge → SQS): each record is an S3 event,
answered with a partial batch response; every upload is recorded as the tenant x model's newest data (the
daily retraining check reads it), and starts a build now unless the tenant's `retrain_on_upload` is
`scheduled` (then the check starts it, reason new-data); a malformed or unknown-tenant event goes to the DLQ
with its reason and is not retried, and a tenant's upload that is refused (outside `data/<model>/`, a model
the tenant does not train) is also recorded in the ledger as REJECTED with its reason, and notified. A direct
invocation from CI (`mlops train`) or the retraining check, with `{"requests": [...]}` or one request: the
answer lists what happened to each, rejections and errors included (an error of one request never costs the
others their answer).
The logic is `mlops.builds.BuildService.submit`; this file only wires the event to it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from mlops.builds import Outcome, consume, current_service
from mlops.errors import MlopsError
from mlops.requests import RejectedRequest, check_registry, parse_message, parse_request

logger = Logger(service="mlops-trigger")
processor = BatchProcessor(event_type=EventType.SQS)


def _submit_body(body: str) -> Outcome:
    service, _ = current_service()
    platform = service.registry.platform
    try:
        request = parse_message(body, platform.project, platform.region, sorted(service.registry.tenants))
        if request.source != "upload":
            return service.submit(request)
        tenant = check_registry(request, service.registry)
    except RejectedRequest as exc:
        service.record_rejected_upload(body, exc.one_line())  # a tenant's refused upload: in the ledger, notified
        raise
    service.ledger.record_upload(request)
    if tenant.retrain_on_upload == "scheduled":
        return Outcome(request.execution_id, "recorded",
                       detail="retrain_on_upload is scheduled: the daily retraining check starts the build")
    return service.submit(request)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    """One upload event (or request) from the uploads queue."""
    service, config = current_service()
    queue = record.event_source_arn.rsplit(":", 1)[-1]
    outcome = consume(service.queues, queue, record.body, int(record.attributes.approximate_receive_count),
                      config.max_receives, _submit_body)
    logger.info("trigger", extra=outcome.as_dict())
    return outcome.as_dict()


def _direct(payload: Any) -> dict[str, Any]:
    service, _ = current_service()
    items = payload.get("requests") if isinstance(payload, dict) and "requests" in payload else [payload]
    results = []
    for item in items if isinstance(items, list) else [items]:
        try:
            results.append(service.submit(parse_request(item)).as_dict())
        except RejectedRequest as exc:
            results.append({"result": "rejected", "detail": exc.one_line()})
        except Exception as exc:  # pylint: disable=broad-exception-caught  # every request gets its own answer
            logger.exception("request not recorded")
            detail = exc.one_line() if isinstance(exc, MlopsError) else f"{type(exc).__name__}: {exc}"
            results.append({"result": "error", "detail": f"{detail} (nothing was recorded for it: send it again)"})
    return {"results": results}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point."""
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    return _direct(event)
