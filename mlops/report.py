"""The evaluation report of a build: each tenant's training result, for the job log, GitLab and the merge request.

Input is what `mlops train --wait --json` wrote for one tenant (one file per tenant, named after it), so
the report needs no AWS access. Out come three renderings of the same `Evaluation` records: plain text for
the job log, an OpenMetrics text file for GitLab's metrics report (`artifacts:reports:metrics`), and a
Markdown note for the upstream model repository's merge request. Everything here is pure except
`post_merge_request_note`, one call to GitLab's REST API (standard library HTTP, no AWS). Whether a value
meets the threshold is the deployment gate's own rule (`mlops.gate.MetricRule`), so the two never disagree.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from mlops.gate import MetricRule
from mlops.statuses import SM_SUCCEEDED

#: Marks the notes this module writes (an HTML comment: invisible in the rendered note).
NOTE_MARKER = "<!-- mlops-evaluation-report -->"
_METRIC_NAME = re.compile(r"[^a-zA-Z0-9_]")
_ID = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class Evaluation:  # pylint: disable=too-many-instance-attributes  # one flat record per tenant, as reported
    """One tenant's training result."""

    tenant: str
    model: str
    version: str | None
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    failure_reason: str | None = None
    model_package_arn: str | None = None
    execution_arn: str | None = None

    @property
    def registered(self) -> bool:
        """Whether the build ended with a registered model package."""
        return self.status == SM_SUCCEEDED and bool(self.model_package_arn)

    def outcome(self) -> str:
        """One phrase: registered, not registered, failed (with the reason), or no result."""
        if self.registered:
            return "registered"
        if self.status == SM_SUCCEEDED:
            return "succeeded, no model package registered"
        if self.failure_reason:
            return f"{self.status.lower()}: {self.failure_reason}"
        return self.status.lower()


def parse_evaluation(text: str, *, tenant: str, model: str, version: str | None = None) -> Evaluation:
    """An `Evaluation` from the JSON of `mlops train --json`; values found in it win over the arguments.

    An empty text, or the `{"error": ...}` of a failed train command, means the command ended before it had a
    result; text that is neither raises ValueError naming what is wrong.
    """
    if not text.strip():
        return Evaluation(tenant, model, version, "NoResult",
                          failure_reason="the train command wrote no result (see the train job's log)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and "status" not in data:  # the train command failed and said why (--json)
        return Evaluation(tenant, model, version, "NoResult",
                          failure_reason=f"the train command failed: {error.get('message') or 'no reason given'}")
    if not isinstance(data, dict) or "status" not in data:
        raise ValueError("not the output of `mlops train --wait --json` (no `status`)")
    parameters = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    return Evaluation(
        tenant=str(parameters.get("TenantId") or tenant),
        model=model,
        version=str(parameters.get("ModelVersion") or version or "") or None,
        status=str(data["status"]),
        metrics=_numbers(data.get("metrics")),
        failure_reason=data.get("failure_reason") or None,
        model_package_arn=data.get("model_package_arn") or None,
        execution_arn=data.get("execution_arn") or None,
    )


def _numbers(metrics: Any) -> dict[str, float]:
    """The numeric metrics of the report (others cannot be compared or graphed)."""
    out: dict[str, float] = {}
    for name, value in (metrics or {}).items() if isinstance(metrics, dict) else ():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[str(name)] = number
    return out


def _value(number: float) -> str:
    return f"{number:.6g}"


def text_report(evaluations: list[Evaluation], rule: MetricRule | None = None) -> str:
    """The report for the job log: one line per tenant, then its metrics."""
    if not evaluations:
        return "evaluation: no training results (no tenant was trained in this pipeline)\n"
    lines = []
    for item in evaluations:
        version = f" {item.version}" if item.version else ""
        lines.append(f"evaluation of {item.model}{version} for tenant {item.tenant}: {item.outcome()}")
        if item.metrics:
            lines.append("  metrics: " + ", ".join(f"{k} = {_value(v)}" for k, v in sorted(item.metrics.items())))
        if rule:
            value = item.metrics.get(rule.name)
            verdict = "no value" if value is None else ("meets" if rule.meets_threshold(value) else "does not meet")
            lines.append(f"  threshold: {rule.name} {rule.describe()} ({verdict})")
        if item.model_package_arn:
            lines.append(f"  model package: {item.model_package_arn}")
    return "\n".join(lines) + "\n"


def openmetrics(evaluations: list[Evaluation]) -> str:
    """GitLab's metrics report: OpenMetrics text, one gauge family per metric, labelled by tenant and model.

    The version is not a label: GitLab compares metrics by name and labels between branches, and a label
    that changes on every build would show every metric as removed and added.
    """
    families: dict[str, list[tuple[Evaluation, float]]] = {}
    for item in evaluations:
        for name, value in item.metrics.items():
            families.setdefault(f"mlops_evaluation_{_METRIC_NAME.sub('_', name)}", []).append((item, value))
        families.setdefault("mlops_model_registered", []).append((item, 1.0 if item.registered else 0.0))
    lines = []
    for family in sorted(families):
        lines.append(f"# TYPE {family} gauge")
        for item, value in families[family]:
            labels = f'tenant="{_label(item.tenant)}",model="{_label(item.model)}"'
            lines.append(f"{family}{{{labels}}} {_value(value)}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    """An OpenMetrics label value: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def markdown_note(evaluations: list[Evaluation], rule: MetricRule | None = None, links: dict[str, str] | None = None) -> str:
    """The merge-request note: a table of tenants with their outcome and metrics."""
    model = evaluations[0].model if evaluations else "?"
    versions = sorted({e.version for e in evaluations if e.version})
    title = f"ml-ops evaluation of {model}" + (f" {', '.join(versions)}" if versions else "")
    names = sorted({name for e in evaluations for name in e.metrics})
    if rule and rule.name in names:
        names.remove(rule.name)
        names.insert(0, rule.name)
    header = ["Tenant", "Result", *names]
    rows = [f"| {' | '.join(header)} |", f"| {' | '.join('---' for _ in header)} |"]
    for item in evaluations:
        result = "registered" if item.registered else item.outcome()
        cells = [item.tenant, result, *(_value(item.metrics[n]) if n in item.metrics else "" for n in names)]
        rows.append(f"| {' | '.join(_cell(c) for c in cells)} |")
    lines = [NOTE_MARKER, f"**{title}**", ""]
    lines += rows if evaluations else ["No tenant was trained in this pipeline."]
    if rule:
        lines += ["", f"Registration threshold: `{rule.name} {rule.describe()}`."]
    links = {k: v for k, v in (links or {}).items() if v}
    if links:
        lines += ["", " · ".join(f"[{name}]({url})" for name, url in links.items())]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


class NoteError(Exception):
    """The merge-request note could not be posted; the message says why in one line."""


def note_target(project_id: str | None, mr_iid: str | None) -> tuple[str, str] | str:
    """(project id, merge request iid) when both are well formed, else the reason there is no target."""
    if not mr_iid:
        return "no upstream merge request (MLOPS_MODEL_MR_IID is empty: a branch or default-branch build)"
    if not _ID.match(mr_iid):
        return f"the upstream merge request iid '{mr_iid[:20]}' is not a number"
    if not project_id or not _ID.match(project_id):
        return "the upstream project id (MLOPS_UPSTREAM_PROJECT_ID) is missing or not a number"
    return project_id, mr_iid


def post_merge_request_note(api_url: str, project_id: str, mr_iid: str, token: str, body: str,  # pylint: disable=too-many-arguments  # the REST call's parts
                            *, timeout: float = 15.0) -> dict[str, Any]:
    """POST a note on a merge request (GitLab REST API v4); returns GitLab's answer.

    The token (a project or group access token) goes in an `Authorization: Bearer` header; it never
    appears in an error message.
    """
    if not api_url.startswith(("https://", "http://")):
        raise NoteError(f"the GitLab API URL '{api_url[:60]}' is not an http(s) URL (CI_API_V4_URL)")
    url = (f"{api_url.rstrip('/')}/projects/{urllib.parse.quote(project_id, safe='')}"
           f"/merge_requests/{urllib.parse.quote(mr_iid, safe='')}/notes")
    request = urllib.request.Request(url, data=json.dumps({"body": body}).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310 - scheme checked above
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise NoteError(_http_problem(exc, project_id, mr_iid)) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NoteError(f"cannot reach GitLab at {api_url}: {reason}") from None
    except ValueError:
        raise NoteError("GitLab answered with something that is not JSON") from None
    return answer if isinstance(answer, dict) else {}


def _http_problem(exc: urllib.error.HTTPError, project_id: str, mr_iid: str) -> str:
    try:
        message = json.loads(exc.read() or b"{}").get("message", "")
    except (ValueError, AttributeError, OSError):
        message = ""
    detail = f"GitLab answered {exc.code}" + (f" ({' '.join(str(message).split())[:120]})" if message else "")
    hints = {
        401: "the token in MLOPS_MR_NOTE_TOKEN is invalid, expired or revoked",
        403: f"the token may not comment on project {project_id}: give it the `api` scope and at least the Reporter role there",
        404: f"project {project_id} or its merge request !{mr_iid} is not visible to the token",
    }
    return f"{detail}: {hints[exc.code]}" if exc.code in hints else detail
