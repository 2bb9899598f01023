"""SQS: the tier queues, the event queues and their dead-letter queues, behind a boto3 SQS client.

Batch calls wherever SQS has them (receive 10, delete and change visibility in batches of 10): they are
most of what makes admission cheap per request. A message a handler gives up on is moved to the queue's
DLQ with the reason in the `mlops-reject-reason` attribute, so a person reading the DLQ knows why.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mlops.aws import errors
from mlops.build_ports import Message
from mlops.naming import Names

REASON_ATTRIBUTE = "mlops-reject-reason"
SOURCE_ATTRIBUTE = "mlops-source-queue"


class Queues:
    """Queue URLs resolved once per name, and the calls the trigger and dispatcher make (`mlops.build_ports.Queues`);
    received messages are `mlops.build_ports.Message`."""

    def __init__(self, client: Any):
        self.client = client
        self._urls: dict[str, str] = {}

    def url(self, name: str) -> str:
        """The URL of a queue by name (looked up once)."""
        if name not in self._urls:
            try:
                self._urls[name] = self.client.get_queue_url(QueueName=name)["QueueUrl"]
            except ClientError as exc:
                raise errors.aws_error(f"find the queue '{name}'", exc, not_found_hint="create it (terraform apply / mlops local up)",
                                       hint="create it (terraform apply / mlops local up)") from exc
        return self._urls[name]

    def send(self, queue: str, body: str) -> str:
        """Send one message; returns its id."""
        return self.client.send_message(QueueUrl=self.url(queue), MessageBody=body)["MessageId"]

    def depth(self, queue: str) -> int:
        """Messages in a queue, visible, in flight or delayed (SQS's approximate counts)."""
        attrs = self.client.get_queue_attributes(
            QueueUrl=self.url(queue), AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                                      "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return sum(int(value) for value in attrs.values())

    def receive(self, queue: str, count: int, visibility_seconds: int, wait_seconds: int = 0) -> list[Message]:
        """Up to `count` (≤ 10) messages, hidden from other consumers for `visibility_seconds`."""
        result = self.client.receive_message(
            QueueUrl=self.url(queue), MaxNumberOfMessages=max(1, min(10, count)),
            VisibilityTimeout=visibility_seconds, WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"])
        return [Message(m["MessageId"], m["ReceiptHandle"], m["Body"],
                        int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")))
                for m in result.get("Messages", [])]

    def delete(self, queue: str, receipts: list[str]) -> None:
        """Delete received messages, ten per call."""
        for start in range(0, len(receipts), 10):
            chunk = receipts[start:start + 10]
            self.client.delete_message_batch(
                QueueUrl=self.url(queue), Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)])

    def change_visibility(self, queue: str, receipts: list[tuple[str, int]]) -> None:
        """Hide (or, with 0 seconds, show again) received messages, ten per call."""
        for start in range(0, len(receipts), 10):
            chunk = receipts[start:start + 10]
            self.client.change_message_visibility_batch(
                QueueUrl=self.url(queue),
                Entries=[{"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": s} for i, (r, s) in enumerate(chunk)])

    def dead_letter(self, queue: str, body: str, reason: str) -> None:
        """Move a message's body to the queue's DLQ with the reason (the caller then deletes the original)."""
        self.client.send_message(
            QueueUrl=self.url(Names.dead_letter_queue(queue)), MessageBody=body,
            MessageAttributes={REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason[:1000]},
                               SOURCE_ATTRIBUTE: {"DataType": "String", "StringValue": queue}})
