"""The client of the trigger Lambda: `mlops train` and `mlops retrain-check --apply` invoke it with boto3.

The trigger takes `{"requests": [...]}` in one synchronous invocation and answers `{"results": [...]}`, one
result per request, in order (lambda/trigger/handler.py, docs/trigger.md). The same Lambda `Invoke` reaches
it on AWS and on the local AWS, which runs the deployed function (docs/local-aws.md). A failed call or a
failed function is one line (`MlopsError`); a request the trigger refused is that request's result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mlops.errors import MlopsError
from mlops.naming import lambda_log_group
from mlops.retrain import RetrainRequest, Submitted

#: Requests per invocation of the retraining check (a payload of 25 requests is a few KB).
BATCH = 25
#: Results that mean the trigger recorded nothing for the request.
REFUSED = ("rejected", "failed", "error")
#: Seconds a synchronous invocation may take before the client gives up (the function's timeout is 60 s).
READ_TIMEOUT = 120


class TriggerClient:
    """Invoke the trigger function (`Names.lambda_function("trigger")`) with build requests."""

    def __init__(self, client: Any, function: str):
        self.client, self.function = client, function

    @classmethod
    def connect(cls, session: Any, names: Any) -> "TriggerClient":
        """The platform's trigger, in its region, through `session`."""
        from botocore.config import Config

        client = session.client("lambda", region_name=names.region, config=Config(read_timeout=READ_TIMEOUT))
        return cls(client, names.lambda_function("trigger"))

    def invoke(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One invocation with these requests: their results, in order; a failed call or function is a one-line error."""
        from botocore.exceptions import BotoCoreError, ClientError

        from mlops.aws.errors import aws_error

        try:
            response = self.client.invoke(FunctionName=self.function, Payload=json.dumps({"requests": requests}).encode())
            raw = response["Payload"].read()
        except ClientError as exc:
            raise aws_error(f"invoke the trigger {self.function}", exc,
                            access_hint="the role needs lambda:InvokeFunction on the trigger function",
                            not_found_hint="apply the platform's Terraform (`mlops infra apply`, or `mlops local up`)") from None
        except BotoCoreError as exc:
            raise MlopsError(f"cannot invoke the trigger {self.function}: {exc}", "check the AWS endpoint and credentials") from None
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = raw[:300].decode("utf-8", errors="replace")
        logs = f"see its log in CloudWatch Logs, group {lambda_log_group(self.function)}"
        if response.get("FunctionError"):
            error = body if isinstance(body, dict) else {}
            text = " ".join(f"{error.get('errorType', response['FunctionError'])}: {error.get('errorMessage', body)}".split())
            raise MlopsError(f"the trigger {self.function} failed: {text[:300]}", logs)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(requests) or not all(isinstance(r, dict) for r in results):
            raise MlopsError(f"the trigger {self.function} gave an unexpected answer: {str(body)[:300]}", logs)
        return [dict(result) for result in results]

    def submit(self, request: Any) -> dict[str, Any]:
        """One `BuildRequest`: the trigger's answer (`started`, `queued`, `duplicate`...); a refusal is a one-line error."""
        (answer,) = self.invoke([request.model_dump(mode="json", exclude_none=True)])
        if answer.get("result") in REFUSED:
            raise MlopsError(f"the trigger {answer['result']} the build request: {answer.get('detail') or 'no reason given'}",
                             "the trigger's answer names the reason; see `mlops executions list`")
        return answer


def retrain_request(request: RetrainRequest, now: datetime) -> dict[str, Any]:
    """A `RetrainRequest` as the trigger's build request (`mlops.requests.BuildRequest`, `source = retrain`).

    The trigger's identity of a retraining request is (tenant, model, version, day of `requested_at`), so
    running the check twice on one day starts nothing twice."""
    return {"source": "retrain", "tenant": request.tenant, "model": request.model, "version": request.version,
            "reason": request.reason, "requested_at": now.isoformat()}


class TriggerRequester:
    """The retraining check's `BuildRequester` (mlops.retrain): the trigger client, `BATCH` requests per invocation."""

    batch = BATCH

    def __init__(self, trigger: TriggerClient, now: datetime):
        self.trigger, self.now = trigger, now

    def submit(self, requests: Sequence[RetrainRequest]) -> list[Submitted]:
        """One answer per request; a failed invocation fails its batch, with the reason, and the others still go."""
        out: list[Submitted] = []
        for start in range(0, len(requests), self.batch):
            chunk = requests[start:start + self.batch]
            try:
                results = self.trigger.invoke([retrain_request(r, self.now) for r in chunk])
            except MlopsError as exc:
                out += [Submitted(r.tenant, r.model, "failed", detail=exc.one_line()) for r in chunk]
                continue
            for request, result in zip(chunk, results):
                outcome = str(result.get("result") or "failed")
                out.append(Submitted(request.tenant, request.model, "failed" if outcome == "error" else outcome,
                                     result.get("execution_id"), result.get("detail")))
        return out
