"""DynamoDB plumbing shared by the ledger and the tier slots: the one marshalling of items and one-call transactions.

`to_attrs` and `from_attrs` are the only translation between DynamoDB attribute values and plain Python
in the project. Admission and release each change items in both tables at once (`TransactWriteItems`),
so the two adapters build transaction items and the build store (`mlops.aws.build_store`) runs them with
`transact`, which says which condition, if any, failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from mlops.aws import errors

_SER = TypeSerializer()
_DES = TypeDeserializer()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_plain(v) for v in value]
    return value


def _wire(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def to_attrs(values: dict[str, Any]) -> dict[str, Any]:
    """Plain Python values as DynamoDB attribute values (None dropped, floats as Decimal)."""
    return {k: _SER.serialize(_wire(v)) for k, v in values.items() if v is not None}


def from_attrs(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values (numbers as int or float)."""
    return {k: _plain(_DES.deserialize(v)) for k, v in item.items()}


@dataclass(frozen=True)
class TxItem:
    """One named write of a transaction; the name says which condition failed."""

    name: str
    op: dict[str, Any]


@dataclass(frozen=True)
class TxOutcome:
    """The result of a transaction: ok, or the names of the writes whose condition failed."""

    ok: bool
    failed: frozenset[str] = frozenset()
    conflict: bool = False
    #: the item as it was, for writes whose condition failed and that asked for ALL_OLD
    old: dict[str, dict[str, Any]] = field(default_factory=dict)


def transact(client: Any, items: list[TxItem]) -> TxOutcome:
    """Run the writes in one TransactWriteItems call; a failed condition is an outcome, not an error."""
    try:
        client.transact_write_items(TransactItems=[i.op for i in items])
        return TxOutcome(ok=True)
    except ClientError as exc:
        if errors.code(exc) != "TransactionCanceledException":
            raise errors.aws_error("write the ledger and slots transaction", exc,
                                   access_hint="check the role's dynamodb:TransactWriteItems permission on both tables",
                                   hint="check the table names and the role's dynamodb:TransactWriteItems permission") from exc
        reasons = exc.response.get("CancellationReasons") or []
        failed = frozenset(items[i].name for i, r in enumerate(reasons)
                           if i < len(items) and r.get("Code") == "ConditionalCheckFailed")
        conflict = any(r.get("Code") == "TransactionConflict" for r in reasons)
        old = {items[i].name: from_attrs(r["Item"]) for i, r in enumerate(reasons) if i < len(items) and r.get("Item")}
        return TxOutcome(ok=False, failed=failed, conflict=conflict, old=old)
