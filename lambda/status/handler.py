"""The status Lambda: SageMaker pipeline status changes (EventBridge → SQS) into the ledger.

Each record is applied with a rank-guarded conditional write, so duplicates and late events change
nothing; the terminal event releases the tier slot in the same transaction and sends the notification.
Answered with a partial batch response; malformed events go to the DLQ with the reason. A batch is looked at
first: the slots its terminal events free are handed to the backlog's head with one query per tier, and
its `Executing` events ride on the terminal transactions.
The logic is `mlops.builds.status.StatusRecorder`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from mlops.builds import Outcome, consume, current_service
from mlops.requests import PipelineStatusEvent, parse_status_event
from mlops.statuses import SM_EXECUTING

logger = Logger(service="mlops-status")
processor = BatchProcessor(event_type=EventType.SQS)


def _apply(body: str) -> Outcome:
    service, _ = current_service()
    return service.record_status(parse_status_event(body))


def record_handler(record: SQSRecord) -> dict[str, Any]:
    """One status-change event."""
    service, config = current_service()
    queue = record.event_source_arn.rsplit(":", 1)[-1]
    outcome = consume(service.queues, queue, record.body, int(record.attributes.approximate_receive_count),
                      config.max_receives, _apply)
    logger.info("status", extra=outcome.as_dict())
    return outcome.as_dict()


def _terminal_first(event: dict[str, Any]) -> tuple[dict[str, Any], list[PipelineStatusEvent]]:
    """The batch with its terminal events first, and the status events that parse (the others are answered
    record by record). Terminal transactions can then record the batch's `Executing` events too, whose own
    records cost nothing (the order of a standard queue's batch means nothing anyway)."""
    parsed: list[tuple[dict[str, Any], PipelineStatusEvent | None]] = []
    for record in event.get("Records") or []:
        try:
            parsed.append((record, parse_status_event(record.get("body") or "")))
        except Exception:  # pylint: disable=broad-exception-caught  # any record that does not parse is answered on its own
            parsed.append((record, None))
    parsed.sort(key=lambda pair: pair[1] is not None and pair[1].status == SM_EXECUTING)
    return {**event, "Records": [r for r, _ in parsed]}, [e for _, e in parsed if e is not None]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: the batch is looked at first (`mlops.builds.status.StatusRecorder.begin_batch`)."""
    service, _ = current_service()
    event, events = _terminal_first(event)
    service.begin_batch(events)
    try:
        return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    finally:
        service.end_batch()
