"""The trigger Lambda: accepts build requests and starts or queues each exactly once.

Two ways in. An SQS batch from the uploads queue (S3 → EventBridge → SQS): each record is one message for the
upload policy (`mlops.uploads`: which uploads become builds, which refused ones are recorded as REJECTED),
answered with a partial batch response; a refused message goes to the DLQ with its reason and is not
retried. A direct invocation from CI (`mlops train`) or the retraining check, with `{"requests": [...]}` or
one request: the answer lists what happened to each, rejections and errors included (an error of one request
never costs the others their answer).
The logic is `mlops.builds.trigger.Trigger` (`accept`, `submit`); this file only wires the events to it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from mlops.builds import Outcome, consume, current_service
from mlops.errors import MlopsError
from mlops.requests import RejectedRequest, parse_request

logger = Logger(service="mlops-trigger")
processor = BatchProcessor(event_type=EventType.SQS)


def _accept(body: str) -> Outcome:
    service, _ = current_service()
    return service.accept(body)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    """One upload event (or request) from the uploads queue."""
    service, config = current_service()
    queue = record.event_source_arn.rsplit(":", 1)[-1]
    outcome = consume(service.queues, queue, record.body, int(record.attributes.approximate_receive_count),
                      config.max_receives, _accept)
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
