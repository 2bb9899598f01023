"""Adapters of moto's backends for the local AWS and the tests: each applied on purpose, and undone.

moto is a stand-in of AWS; two of its gaps matter to this project, and each adapter here closes one, in
this process only, by replacing methods of moto's backend classes:

- `atomic`: moto's DynamoDB evaluates a condition and applies the write in separate Python steps, so two
  threads can both pass `inflight < limit`, and its TransactWriteItems deep-copies every table it touches
  (slow with thousands of items). Each DynamoDB operation gets the atomicity DynamoDB guarantees, and
  transactions check all conditions first, then write, with a per-item undo. SQS too: moto's receive walks
  and mutates a queue's messages without a lock (two threads receiving at once can fail inside moto, which
  real SQS never does), and its calls are made linear in the queue depth.
- `reads_linear`: moto's DynamoDB and CloudWatch reads cost what they return, as AWS's do.

`atomic()` and `reads_linear()` apply an adapter and return its undo, which puts moto's own methods back;
applying one that is already applied changes nothing and returns an undo that does nothing (undo in the
reverse order of applying). `patched(atomic, ...)` applies them for a `with` block. The local AWS server
(`mlops.local.server`) applies both for its life; tests apply them in fixtures, so no test depends on
which tests ran before it.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

#: Puts moto's own methods back.
Undo = Callable[[], None]

_LOCK = threading.RLock()
_LOCKED_OPERATIONS = ("put_item", "update_item", "delete_item", "get_item", "query", "scan")
_LOCKED_SQS_OPERATIONS = ("send_message", "send_message_batch", "receive_message", "delete_message", "delete_message_batch",
                          "change_message_visibility", "change_message_visibility_batch")
_MISSING = object()


class _Saved:
    """The class attributes an adapter replaced, with what they were: undoing restores exactly that."""

    def __init__(self) -> None:
        self._saved: list[tuple[type, str, Any]] = []

    def replace(self, owner: type, name: str, value: Any) -> None:
        """Set `owner.name`, remembering the class's own attribute (or that it had none: it was inherited)."""
        self._saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, value)

    def undo(self) -> None:
        """Restore every replaced attribute, last replaced first; a second call does nothing."""
        with _LOCK:
            while self._saved:
                owner, name, old = self._saved.pop()
                if old is _MISSING:
                    delattr(owner, name)
                else:
                    setattr(owner, name, old)


def _nothing() -> None:
    """The undo of an adapter that was already applied."""


def atomic() -> Undo:
    """Make moto's DynamoDB and SQS backends atomic per operation (and SQS linear in the queue depth); returns the undo."""
    from moto.dynamodb.models import DynamoDBBackend  # pylint: disable=import-outside-toplevel  # moto: the `local` extra
    from moto.sqs.models import Queue, SQSBackend  # pylint: disable=import-outside-toplevel  # moto: the `local` extra

    with _LOCK:
        if DynamoDBBackend.__dict__.get("_mlops_atomic", False):
            return _nothing
        saved = _Saved()
        for name in _LOCKED_OPERATIONS:
            saved.replace(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))
        saved.replace(DynamoDBBackend, "transact_write_items", _transact_write_items)
        # moto 5 checks every received message's retention through `get_queue_attributes`, which counts the
        # visible, delayed and in-flight messages of the whole queue (three scans building two datetimes per
        # message): a receive of 10 from a queue of 5,000 took seconds, and a send (which reads the queue's
        # attributes too) tens of milliseconds, under the lock that makes SQS atomic, so everything else
        # waited: the stall of bench/dispatch.py at 10,000 requests. Same results with cheaper steps: one clock
        # read per scan (time.time, as moto's own clock), the retention read from the queue itself.
        saved.replace(SQSBackend, "is_message_valid_based_on_retention_period", _retention_ok)
        saved.replace(Queue, "messages", property(_visible_messages))
        saved.replace(Queue, "approximate_number_of_messages_delayed", property(_delayed_count))
        saved.replace(Queue, "approximate_number_of_messages_not_visible", property(_not_visible_count))
        for name in _LOCKED_SQS_OPERATIONS:
            saved.replace(SQSBackend, name, _locked(getattr(SQSBackend, name)))
        saved.replace(DynamoDBBackend, "_mlops_atomic", True)  # our own marker, removed by the undo
        return saved.undo


def reads_linear() -> Undo:
    """Keep moto's DynamoDB and CloudWatch reads linear in what they return, as AWS's are; returns the undo.

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
    from moto.cloudwatch.models import CloudWatchBackend  # pylint: disable=import-outside-toplevel  # moto: the `local` extra
    from moto.core.serialize import BaseJSONSerializer  # pylint: disable=import-outside-toplevel  # moto: the `local` extra
    from moto.dynamodb.models.table import Table  # pylint: disable=import-outside-toplevel  # moto: the `local` extra

    with _LOCK:
        if Table.__dict__.get("_mlops_reads_linear", False):
            return _nothing
        saved = _Saved()
        serializer = BaseJSONSerializer
        saved.replace(serializer, "_serialize_type_structure",
                      _members_it_has(serializer._serialize_type_structure))  # pylint: disable=protected-access  # moto's step
        saved.replace(Table, "all_items", _partition_first(Table.all_items))
        saved.replace(Table, "query", _from_partition(Table.query))
        saved.replace(CloudWatchBackend, "get_all_metrics", _partition_first(CloudWatchBackend.get_all_metrics))
        saved.replace(CloudWatchBackend, "get_metric_data", _by_metric(CloudWatchBackend.get_metric_data))
        saved.replace(Table, "_mlops_reads_linear", True)  # our own marker, removed by the undo
        return saved.undo


@contextlib.contextmanager
def patched(*adapters: Callable[[], Undo]) -> Iterator[None]:
    """Apply the adapters (`atomic`, `reads_linear`) for a `with` block; moto is as it was afterwards."""
    undos: list[Undo] = []
    try:
        for adapter in adapters:
            undos.append(adapter())
        yield
    finally:
        for undo in reversed(undos):
            undo()


# -- atomic: DynamoDB and SQS one operation at a time --------------------------------------------------

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


# -- moto's DynamoDB and CloudWatch reads, linear in what they return (bench/retrain_scan.py) -------------
_PARTITION = threading.local()


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
