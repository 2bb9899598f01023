"""Build notifications: an SNS message and, when a Slack incoming webhook is configured, a Slack message.

Both carry the outcome, the tenant, model and version, the evaluation metrics the ledger holds, a failure's
step, reason and log tail, and the links (CI pipeline, merge request, execution). A tenant upload the trigger
refused is notified the same way, with status REJECTED and the reason. A failing webhook never fails the
build: it is reported in the result and logged, nothing is raised. SNS failures are reported the same way;
the caller records `notified` in the ledger only once SNS took the message, so a retried status event sends
it again.

The message is built by pure functions; `Notifier` takes a boto3 SNS client (or None) and the webhook URL.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from mlops.aws import errors
from mlops.statuses import FAILED, REJECTED, STOPPED, SUCCEEDED

LOG = logging.getLogger(__name__)

_ICON = {SUCCEEDED: ":white_check_mark:", FAILED: ":x:", STOPPED: ":octagonal_sign:", REJECTED: ":no_entry:"}


def subject(item: dict[str, Any]) -> str:
    """One line, at most 100 characters (SNS's limit for email subjects)."""
    text = f"[{item.get('status') or '?'}] {item.get('tenant') or '?'}/{item.get('model') or '?'} {item.get('version') or ''}".strip()
    return text[:100]


def summary(item: dict[str, Any]) -> dict[str, Any]:
    """The notification as data: what ran, for whom, how it ended, the metrics and the links."""
    links = dict(item.get("links") or {})
    if item.get("pipeline_execution_arn"):
        links.setdefault("execution", item["pipeline_execution_arn"])
    return {
        "execution_id": item.get("execution_id"), "status": item.get("status"), "tenant": item.get("tenant"),
        "model": item.get("model"), "version": item.get("version"), "git_commit": item.get("git_commit"),
        "source": item.get("source"), "reason": item.get("reason"), "duration_seconds": item.get("duration_seconds"),
        "metrics": item.get("metrics") or {}, "model_package_arn": item.get("model_package_arn"),
        "failure_reason": item.get("failure_reason"), "failed_step": item.get("failed_step"), "log_tail": item.get("log_tail"),
        "data_uri": item.get("data_uri"), "links": links,
    }


def slack_payload(item: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body (plain text with mrkdwn, no blocks: it renders everywhere)."""
    data = summary(item)
    lines = [f"{_ICON.get(str(data['status']), ':grey_question:')} *{subject(item)}* ({data['source']}: {data['reason'] or '-'})"]
    if data["metrics"]:
        lines.append("metrics: " + ", ".join(f"{k}={_figure(v)}" for k, v in sorted(data["metrics"].items())))
    if data["failure_reason"]:
        lines.append(f"failure{' in ' + data['failed_step'] if data['failed_step'] else ''}: {data['failure_reason']}")
    if data["log_tail"]:
        lines.append("```" + "\n".join(str(data["log_tail"]).splitlines()[-10:]) + "```")
    lines.extend(f"<{url}|{name}>" if str(url).startswith("http") else f"{name}: {url}" for name, url in sorted(data["links"].items()))
    return {"text": "\n".join(lines)}


def _figure(value: Any) -> str:
    """A metric for people: four significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass
class NotifyResult:
    """What was sent where; errors are reported, never raised."""

    sns_message_id: str | None = None
    slack_ok: bool | None = None
    errors: list[str] = field(default_factory=list)


class Notifier:
    """Sends build notifications to an SNS topic and an optional Slack webhook."""

    def __init__(self, sns_client: Any = None, topic_arn: str | None = None, slack_webhook_url: str | None = None,
                 timeout_seconds: float = 5.0):
        self.sns = sns_client
        self.topic_arn = topic_arn
        self.slack_webhook_url = slack_webhook_url
        self.timeout_seconds = timeout_seconds

    @property
    def enabled(self) -> bool:
        """Whether anything is configured."""
        return bool((self.sns is not None and self.topic_arn) or self.slack_webhook_url)

    def notify(self, item: dict[str, Any]) -> NotifyResult:
        """Send the notification of one ledger item."""
        result = NotifyResult()
        if self.sns is not None and self.topic_arn:
            try:
                response = self.sns.publish(TopicArn=self.topic_arn, Subject=subject(item),
                                            Message=json.dumps(summary(item), indent=2, default=str),
                                            MessageAttributes={"tenant": {"DataType": "String", "StringValue": str(item.get("tenant"))},
                                                               "status": {"DataType": "String", "StringValue": str(item.get("status"))}})
                result.sns_message_id = response["MessageId"]
            except Exception as exc:  # pylint: disable=broad-exception-caught  # a notification never fails a build
                result.errors.append(f"sns: {errors.describe(exc)}")
                LOG.warning("SNS notification failed: %s", errors.describe(exc))
        if self.slack_webhook_url:
            result.slack_ok = self._post_slack(slack_payload(item), result)
        return result

    def _post_slack(self, payload: dict[str, Any], result: NotifyResult) -> bool:
        request = urllib.request.Request(self.slack_webhook_url or "", data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # nosec B310  # URL from settings
                return 200 <= response.status < 300
        except (urllib.error.URLError, OSError, ValueError) as exc:
            result.errors.append(f"slack: {exc}")
            LOG.warning("Slack notification failed (the build is not affected): %s", exc)
            return False
