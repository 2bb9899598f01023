"""The local Lambda runtime: plays SQS event source mappings and schedules for the real handlers.

moto stores Lambda functions but never runs them. Locally, `EventSourceMapping` polls a queue the way
Lambda's SQS event source mapping does (receive up to 10, build the SQS batch event, call the handler
in-process, delete the records that did not fail, honour `batchItemFailures`, delete nothing when the
handler raises) and `Schedule` calls the dispatcher every few seconds as EventBridge Scheduler would.
The handlers are the files under `lambda/`, imported as Lambda imports them: nothing is re-implemented.

`make_moto_dynamodb_atomic` closes a gap of the stand-in, not of the project: moto's DynamoDB evaluates a
condition and applies the write in separate Python steps, so two threads can both pass `inflight < limit`,
and its TransactWriteItems deep-copies every table it touches (slow with thousands of items). The patch
gives each DynamoDB operation the atomicity DynamoDB guarantees and lets transactions check all
conditions first, then write, with a per-item undo.
"""

from __future__ import annotations

import copy
import importlib.util
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]

_LOCK = threading.RLock()
_LOCKED_OPERATIONS = ("put_item", "update_item", "delete_item", "get_item", "query", "scan")
_LOCKED_SQS_OPERATIONS = ("send_message", "send_message_batch", "receive_message", "delete_message", "delete_message_batch",
                          "change_message_visibility", "change_message_visibility_batch")


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
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

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


# -- moto fidelity -----------------------------------------------------------------------------------------

def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)
    wrapper.__wrapped__ = method  # type: ignore[attr-defined]
    wrapper.__name__ = method.__name__
    return wrapper


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """TransactWriteItems: every condition checked first, then every write, with a per-item undo."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (MultipleTransactionsException, TooManyTransactionsException,
                                          TransactionCanceledException, TransactWriteSingleOpException)

    with _LOCK:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        seen: set[tuple[str, str]] = set()
        targets: list[tuple[Any, Any, Any, Any]] = []
        errors: list[tuple[Any, Any, Any]] = []
        for item in transact_items:
            if len(item) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(item.items()))
            table = self.get_table(op["TableName"])
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            ident = (op["TableName"], str(dict(sorted(key.items()))))
            if ident in seen:
                raise MultipleTransactionsException()
            seen.add(ident)
            hash_value, range_value = self.get_keys_value(table, key)
            current = table.get_item(hash_value, range_value)
            targets.append((table, hash_value, range_value, copy.deepcopy(current)))
            condition = op.get("ConditionExpression")
            if condition and not get_filter_expression(condition, op.get("ExpressionAttributeNames"),
                                                       op.get("ExpressionAttributeValues")).expr(current):
                old = current.to_json()["Attributes"] if current is not None and \
                    op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else None
                errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
            else:
                errors.append((None, None, None))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        try:
            for item in transact_items:
                op_type, op = next(iter(item.items()))
                if op_type == "Put":
                    self.put_item(op["TableName"], op["Item"])
                elif op_type == "Delete":
                    self.delete_item(op["TableName"], op["Key"])
                elif op_type == "Update":
                    self.update_item(op["TableName"], op["Key"], op["UpdateExpression"],
                                     op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues"))
        except Exception:
            for table, hash_value, range_value, old in targets:
                _restore(table, hash_value, range_value, old)
            raise


def _restore(table: Any, hash_value: Any, range_value: Any, old: Any) -> None:
    if old is None:
        if range_value is not None:
            table.items.get(hash_value, {}).pop(range_value, None)
        else:
            table.items.pop(hash_value, None)
    elif range_value is not None:
        table.items[hash_value][range_value] = old
    else:
        table.items[hash_value] = old


def _now_millis() -> float:
    return time.time() * 1000.0


def _retention_ok(self: Any, queue_name: str, message: Any) -> bool:
    """moto's retention check, reading the one attribute instead of computing every queue attribute."""
    queue = self.get_queue(queue_name)
    return int(queue.message_retention_period) * 1000 + message.sent_timestamp > _now_millis()


def _visible_messages(self: Any) -> list[Any]:
    now = _now_millis()
    return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]  # pylint: disable=protected-access


def _delayed_count(self: Any) -> int:
    now = _now_millis()
    return sum(1 for m in self._messages if now < m.delayed_until)  # pylint: disable=protected-access


def _not_visible_count(self: Any) -> int:
    now = _now_millis()
    return sum(1 for m in self._messages if not now > m.visible_at)  # pylint: disable=protected-access


def _make_moto_sqs_linear() -> None:
    """Keep moto's SQS calls O(queue depth) with a small constant instead of O(batch × depth) with a large one.

    moto 5 checks every received message's retention through `get_queue_attributes`, which counts the
    visible, delayed and in-flight messages of the whole queue (three scans building two datetimes per
    message): a receive of 10 from a queue of 5,000 took seconds, and a send (which reads the queue's
    attributes too) tens of milliseconds, under the lock that makes SQS atomic, so everything else
    waited: the stall of bench/dispatch.py at 10,000 requests. Same results with cheaper steps: one clock
    read per scan (time.time, as moto's own clock), the retention read from the queue itself.
    """
    from moto.sqs.models import Queue, SQSBackend  # pylint: disable=import-outside-toplevel

    SQSBackend.is_message_valid_based_on_retention_period = _retention_ok
    Queue.messages = property(_visible_messages)
    Queue.approximate_number_of_messages_delayed = property(_delayed_count)
    Queue.approximate_number_of_messages_not_visible = property(_not_visible_count)


def make_moto_dynamodb_atomic() -> None:
    """Patch moto's DynamoDB and SQS backends (in this process) to be atomic per operation; idempotent.

    SQS too: moto's receive walks and mutates a queue's messages without a lock, so two threads receiving
    at once can fail inside moto (seen with eight dispatchers), which real SQS never does; and its receive
    is made linear in the queue depth (`_make_moto_sqs_linear`).
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.sqs.models import SQSBackend

    with _LOCK:
        if getattr(DynamoDBBackend, "_mlops_atomic", False):
            return
        for name in _LOCKED_OPERATIONS:
            setattr(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))
        DynamoDBBackend.transact_write_items = _transact_write_items
        _make_moto_sqs_linear()
        for name in _LOCKED_SQS_OPERATIONS:
            setattr(SQSBackend, name, _locked(getattr(SQSBackend, name)))
        DynamoDBBackend._mlops_atomic = True  # pylint: disable=protected-access  # our own marker


# -- moto's DynamoDB and CloudWatch reads, linear in what they return (bench/retrain_scan.py) -------------
_PARTITION = threading.local()


def make_moto_reads_linear() -> None:
    """Keep moto's DynamoDB and CloudWatch reads linear in what they return, as AWS's are; idempotent.

    Three steps of moto 5 cost what no AWS read costs (profiled with bench/retrain_scan.py: 10,000 state
    items read by 8 Querys, 1,000 metrics by 2 GetMetricData): its JSON response serializer visits all ten
    members of every DynamoDB `AttributeValue` (S, N, B, SS, NS, BS, M, L, NULL, BOOL), each through its
    attribute picker, to find the one that is set (~0.1 ms per attribute value returned); a Query on the
    table's own key sorts every item of the table to keep its partition's; and GetMetricData compares every
    query with every stored data point. Same responses, cheaper steps: an AttributeValue given as a plain
    member dict visits only the members it has (anything else takes moto's own path); such a Query starts
    from its partition (moto still sorts it by range key, pages, filters and projects it); and each
    MetricStat query runs moto's own code on the points with its metric name and dimensions only.
    """
    from moto.cloudwatch.models import CloudWatchBackend  # pylint: disable=import-outside-toplevel
    from moto.core.serialize import BaseJSONSerializer  # pylint: disable=import-outside-toplevel
    from moto.dynamodb.models.table import Table  # pylint: disable=import-outside-toplevel

    with _LOCK:
        if getattr(Table, "_mlops_reads_linear", False):
            return
        serializer = BaseJSONSerializer
        serializer._serialize_type_structure = _members_it_has(  # pylint: disable=protected-access  # moto's step
            serializer._serialize_type_structure)  # pylint: disable=protected-access  # moto's step
        Table.all_items = _partition_first(Table.all_items)
        Table.query = _from_partition(Table.query)
        CloudWatchBackend.get_all_metrics = _partition_first(CloudWatchBackend.get_all_metrics)
        CloudWatchBackend.get_metric_data = _by_metric(CloudWatchBackend.get_metric_data)
        Table._mlops_reads_linear = True  # pylint: disable=protected-access  # our own marker


def _members_it_has(original: Callable[..., None]) -> Callable[..., None]:
    def serialize(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if (shape.name != "AttributeValue" or self.service_model.service_name not in ("dynamodb", "dynamodbstreams")
                or not isinstance(value, dict) or not value.keys() <= shape.members.keys()):
            original(self, serialized, value, shape, key)
            return
        wrapper = self.MAP_TYPE() if key else serialized
        for member_key in value:  # moto's loop over shape.members finds nothing else in a member dict
            shape.members[member_key].parent = shape
            self._serialize_structure_member(wrapper, value, shape.members[member_key], member_key)  # pylint: disable=protected-access  # moto's step, as its loop calls it
        if key:
            self._default_serialize(serialized, wrapper, shape, key)  # pylint: disable=protected-access  # moto's step

    return serialize


def _partition_first(original: Callable[[Any], list[Any]]) -> Callable[[Any], list[Any]]:
    def all_items(self: Any) -> list[Any]:
        hint = getattr(_PARTITION, "items", None)
        return hint[1] if hint is not None and hint[0] is self else original(self)

    return all_items


def _from_partition(original: Callable[..., Any]) -> Callable[..., Any]:
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        # moto's query reads `all_items()` and keeps the items of `hash_key`: give it only those (this thread)
        _PARTITION.items = (self, list(self.items[hash_key].values()) if hash_key in self.items else [])
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            _PARTITION.items = None

    return query


def _dimensions_key(pairs: list[tuple[Any, Any]]) -> tuple[tuple[str, str], ...] | None:
    """Dimensions as one sorted key; None when a name or value is missing (moto then matches loosely)."""
    if not all(isinstance(name, str) and isinstance(value, str) for name, value in pairs):
        return None
    return tuple(sorted(pairs))


def _by_metric(original: Callable[..., Any]) -> Callable[..., Any]:
    # moto keeps a point for a query when its name matches and the dimension lists compare equal pair by pair
    # (after a sort), so every point it keeps has the query's name and the same (name, value) pairs: running
    # moto's code per query on just those points (in moto's order) yields the same results.
    def get_metric_data(self: Any, queries: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        points = self.get_all_metrics()
        index: dict[tuple[Any, ...], list[Any]] = {}
        for point in points:
            key = _dimensions_key([(d.name, d.value) for d in point.dimensions])
            if key is None:
                return original(self, queries, *args, **kwargs)  # a point moto would match loosely
            index.setdefault((point.name, key), []).append(point)
        if not queries or any("MetricStat" not in query for query in queries):
            return original(self, queries, *args, **kwargs)  # expressions read the other queries' results
        results = []
        for query in queries:
            metric = query["MetricStat"].get("Metric", {})
            key = _dimensions_key([(d.get("Name"), d.get("Value")) for d in metric.get("Dimensions", [])])
            _PARTITION.items = (self, points if key is None or not key else index.get((metric.get("MetricName"), key), []))
            try:
                results.extend(original(self, [query], *args, **kwargs))
            finally:
                _PARTITION.items = None
        return results

    return get_metric_data


def standard_runtime(sqs: Any, names: Any, lambda_dir: Path, dispatch_every_seconds: float = 2.0) -> LocalLambdaRuntime:
    """The platform's wiring, as Terraform declares it: uploads → trigger, status → status, dispatcher on a rate.

    The handlers build their service from the environment (`mlops.builds.service_from_env`) unless
    `mlops.builds.use_service` chose another factory (the pipeline start port, for instance).
    """
    return LocalLambdaRuntime(
        mappings=[EventSourceMapping(sqs, names.events_queue("uploads"), load_handler(lambda_dir, "trigger"), "trigger"),
                  EventSourceMapping(sqs, names.events_queue("status"), load_handler(lambda_dir, "status"), "status")],
        schedules=[Schedule(load_handler(lambda_dir, "dispatcher"), "dispatcher", dispatch_every_seconds)])
