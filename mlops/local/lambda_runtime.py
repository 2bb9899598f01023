"""The local Lambda runtime: plays SQS event source mappings and schedules for the real handlers.

moto stores Lambda functions but never runs them. Locally, `EventSourceMapping` polls a queue the way
Lambda's SQS event source mapping does (receive up to 10, build the SQS batch event, call the handler
in-process, delete the records that did not fail, honour `batchItemFailures`, delete nothing when the
handler raises) and `Schedule` calls the dispatcher every few seconds as EventBridge Scheduler would.
The handlers are the files under `lambda/`, imported as Lambda imports them: nothing is re-implemented.
The adapters that make moto's DynamoDB and SQS atomic per call are in `mlops.local.moto_patches`.
"""

from __future__ import annotations

import importlib.util
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from mlops.naming import lambda_function_arn

Handler = Callable[[dict[str, Any], Any], Any]


# -- Lambda stand-ins ------------------------------------------------------------------------------------

@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools and the handlers read."""

    function_name: str
    memory_limit_in_mb: int = 256
    timeout_seconds: int = 60
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        """A plausible ARN (local account)."""
        return lambda_function_arn("us-east-1", "123456789012", self.function_name)

    def get_remaining_time_in_millis(self) -> int:
        """Time left before the (pretend) timeout."""
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


def load_handler(lambda_dir: Path, function: str) -> Handler:
    """Import `lambda/<function>/handler.py` the way Lambda does (as the top-level `handler` of its zip)."""
    path = lambda_dir / function / "handler.py"
    spec = importlib.util.spec_from_file_location(f"mlops_lambda_{function}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no Lambda handler at {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """An SQS batch event exactly as Lambda's event source mapping builds it from ReceiveMessage output."""
    region = queue_arn.split(":")[3]
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {"ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
                       "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", "0"),
                       "SenderId": m.get("Attributes", {}).get("SenderId", "local"),
                       "ApproximateFirstReceiveTimestamp": m.get("Attributes", {}).get("ApproximateFirstReceiveTimestamp", "0")},
        "messageAttributes": m.get("MessageAttributes", {}), "md5OfBody": m.get("MD5OfBody", ""),
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region,
    } for m in messages]}


@dataclass
class EventSourceMapping:
    """One SQS queue feeding one handler, batch size up to 10, with ReportBatchItemFailures."""

    sqs: Any
    queue_name: str
    handler: Handler
    function: str
    batch_size: int = 10
    visibility_seconds: int | None = None
    _url: str | None = None
    _arn: str | None = None

    def _resolve(self) -> tuple[str, str]:
        if self._url is None or self._arn is None:
            self._url = self.sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
            self._arn = self.sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return self._url, self._arn

    def poll_once(self) -> int:
        """Receive one batch and hand it to the handler; returns how many records it got."""
        url, arn = self._resolve()
        params: dict[str, Any] = {"QueueUrl": url, "MaxNumberOfMessages": self.batch_size, "WaitTimeSeconds": 0,
                                  "MessageSystemAttributeNames": ["All"], "MessageAttributeNames": ["All"]}
        if self.visibility_seconds is not None:
            params["VisibilityTimeout"] = self.visibility_seconds
        messages = self.sqs.receive_message(**params).get("Messages", [])
        if not messages:
            return 0
        try:
            response = self.handler(sqs_event(messages, arn), LambdaContext(self.function)) or {}
        except Exception:  # pylint: disable=broad-exception-caught  # Lambda retries the whole batch: so do we
            return len(messages)
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:start + 10])])
        return len(messages)


@dataclass
class Schedule:
    """A handler called every `every_seconds` (EventBridge Scheduler's rate expression)."""

    handler: Handler
    function: str
    every_seconds: float
    _next: float = 0.0

    def due(self, now: float) -> bool:
        """Whether it is time to run."""
        return now >= self._next

    def run(self, now: float) -> Any:
        """Run once and plan the next run."""
        self._next = now + self.every_seconds
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.scheduler",
                 "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "detail": {}}
        try:
            return self.handler(event, LambdaContext(self.function))
        except Exception:  # pylint: disable=broad-exception-caught  # a failed scheduled run is retried next time
            return None


@dataclass
class LocalLambdaRuntime:
    """Runs event source mappings and schedules in a background thread until stopped."""

    mappings: list[EventSourceMapping] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    idle_sleep_seconds: float = 0.2
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def step(self) -> int:
        """One pass over every mapping and due schedule; returns records handled."""
        handled = sum(mapping.poll_once() for mapping in self.mappings)
        now = time.monotonic()
        for schedule in self.schedules:
            if schedule.due(now):
                schedule.run(now)
        return handled

    def run_until(self, done: Callable[[], bool], timeout_seconds: float = 60.0) -> bool:
        """Step in this thread until `done()` or the timeout; True if done."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if done():
                return True
            if not self.step():
                time.sleep(self.idle_sleep_seconds)
        return done()

    def start(self) -> None:
        """Run in a daemon thread."""
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                if not self.step():
                    self._stop.wait(self.idle_sleep_seconds)

        self._thread = threading.Thread(target=loop, name="mlops-lambda-runtime", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def standard_runtime(sqs: Any, names: Any, lambda_dir: Path, dispatch_every_seconds: float = 2.0) -> LocalLambdaRuntime:
    """The platform's wiring, as Terraform declares it: uploads → trigger, status → status, dispatcher on a rate.

    The handlers build their service from the environment (`mlops.builds.service_from_env`) unless
    `mlops.builds.use_service` chose another factory (the pipeline start port, for instance).
    """
    return LocalLambdaRuntime(
        mappings=[EventSourceMapping(sqs, names.events_queue("uploads"), load_handler(lambda_dir, "trigger"), "trigger"),
                  EventSourceMapping(sqs, names.events_queue("status"), load_handler(lambda_dir, "status"), "status")],
        schedules=[Schedule(load_handler(lambda_dir, "dispatcher"), "dispatcher", dispatch_every_seconds)])
