"""The trigger's AWS resources on moto, for tests and benches that do not run Terraform.

`provision` creates the trigger's tables and queues exactly as `trigger_resources.json` describes them
(generated from the Terraform root: `support.trigger_resources`), with the names `mlops.naming` gives, and
one SageMaker pipeline per tenant and model, as `mlops pipeline upsert` makes them.
`MotoPipelineStarter` is a stand-in of the pipeline start port backed by moto: it
really calls StartPipelineExecution (moto records the execution) and counts starts per execution id, so a
duplicate start would be visible. moto ignores ClientRequestToken, so nothing here relies on it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mlops.naming import Names, iam_role_arn
from mlops.requests import BuildRequest, execution_description, status_event, utc_now

#: The trigger's tables and queues as the Terraform root declares them (generated: support.trigger_resources).
RESOURCES = Path(__file__).with_name("trigger_resources.json")
#: What a table's description passes to CreateTable as it is.
_CREATE_TABLE = ("BillingMode", "KeySchema", "AttributeDefinitions", "ProvisionedThroughput", "GlobalSecondaryIndexes",
                 "LocalSecondaryIndexes")
_DEFINITION = json.dumps({"Version": "2020-12-01", "Metadata": {}, "Parameters": [], "Steps": []})


def subscriptions(registry: Any) -> dict[str, list[str]]:
    """Tenant id -> the models it trains, for every tenant of a registry (what `provision` takes)."""
    return {tenant_id: list(tenant.models) for tenant_id, tenant in registry.tenants.items()}


def provision(dynamodb: Any, sqs: Any, sagemaker: Any, names: Names, tiers: list[str], tenants: dict[str, list[str]]) -> dict[str, str]:
    """Create the tables and queues (with DLQs) of `trigger_resources.json`, and the pipelines; returns queue URLs by name."""
    described = json.loads(RESOURCES.read_text(encoding="utf-8"))
    for table in described["tables"]:
        name = getattr(names, table["naming"])()
        dynamodb.create_table(TableName=name, **{key: value for key, value in table.items() if key in _CREATE_TABLE})
        if "TimeToLive" in table:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, **table["TimeToLive"]})
    urls: dict[str, str] = {}
    for queue in described["queues"]:
        naming = getattr(names, queue["naming"])
        for name in [naming(tier) for tier in tiers] if "argument" not in queue else [naming(queue["argument"])]:
            dlq = getattr(Names, queue["dead_letter"]["naming"])(name)
            urls[dlq] = sqs.create_queue(QueueName=dlq, Attributes=queue["dead_letter"]["Attributes"])["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=urls[dlq], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            urls[name] = sqs.create_queue(QueueName=name, Attributes={
                **queue["Attributes"],
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue["maxReceiveCount"]})})["QueueUrl"]
    for tenant, models in tenants.items():
        for model in models:
            sagemaker.create_pipeline(PipelineName=names.pipeline(tenant, model), PipelineDefinition=_DEFINITION,
                                      RoleArn=iam_role_arn(names, names.pipeline_role(tenant)))
    return urls


class MotoPipelineStarter:
    """A `StartExecution` port on moto's SageMaker, counting starts per execution id."""

    def __init__(self, sagemaker: Any, names: Names):
        self.sagemaker = sagemaker
        self.names = names
        self.starts: Counter[str] = Counter()
        self.arns: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, request: BuildRequest, client_request_token: str) -> str:
        arn = self.sagemaker.start_pipeline_execution(
            PipelineName=self.names.pipeline(request.tenant, request.model), PipelineExecutionDisplayName=request.execution_id,
            PipelineExecutionDescription=execution_description(request.source, request.tenant, request.model,
                                                               request.version, request.reason),
            PipelineParameters=[{"Name": "Tenant", "Value": request.tenant}], ClientRequestToken=client_request_token,
        )["PipelineExecutionArn"]
        with self._lock:
            self.starts[request.execution_id] += 1
            self.arns[request.execution_id] = arn
        return arn

    def find(self, request: BuildRequest) -> str | None:
        """The ARN of an execution already started for this request (by display name), if any."""
        paginator = self.sagemaker.get_paginator("list_pipeline_executions")
        pages = paginator.paginate(PipelineName=self.names.pipeline(request.tenant, request.model))
        for page in pages:
            for summary in page.get("PipelineExecutionSummaries", []):
                if summary.get("PipelineExecutionDisplayName") == request.execution_id:
                    return summary["PipelineExecutionArn"]
        return None

    @property
    def duplicates(self) -> int:
        """Starts beyond the first, over all execution ids."""
        with self._lock:
            return sum(n - 1 for n in self.starts.values() if n > 1)


class SimulatedSageMaker:  # pylint: disable=too-many-instance-attributes  # the knobs and ground truth of a simulation
    """Pipeline executions that run for a while, then report status the way SageMaker does.

    The start port (`__call__`) starts the execution on moto through `MotoPipelineStarter`, sends the
    `Executing` event SageMaker sends when an execution starts, then lets it "run" for `duration()` seconds;
    `tick()` finishes due executions and sends their status-change events to the status queue, each
    `deliveries` times (EventBridge and SQS deliver at least once) and, with `late_executing`, one more
    `Executing` event after the terminal one (out of order). `running()` is the ground truth a watcher
    compares with the tier limits; `status[arn]` is what DescribePipelineExecution would answer. With
    `lose`, an execution for which it answers True gets no terminal event at all (a lost event).
    """

    def __init__(self, starter: MotoPipelineStarter, sqs: Any, status_queue_url: str, tier_of: dict[str, str],  # pylint: disable=too-many-arguments
                 duration: Any, deliveries: int = 2, late_executing: bool = True, lose: Any = None):
        self.lose = lose
        self.status: dict[str, str] = {}
        #: monotonic time of the last execution's end
        self.last_end = 0.0
        self.starter = starter
        self.sqs = sqs
        self.status_queue_url = status_queue_url
        self.tier_of = tier_of
        self.duration = duration
        self.deliveries = deliveries
        self.late_executing = late_executing
        self._lock = threading.Lock()
        self._running: dict[str, tuple[str, float, str, str, str]] = {}  # eid -> (tier, ends, arn, started_at, description)
        self.finished = 0

    def __call__(self, request: BuildRequest, client_request_token: str) -> str:
        arn = self.starter(request, client_request_token)
        started = utc_now()
        description = execution_description(request.source, request.tenant, request.model, request.version, request.reason)
        self.status[arn] = "Executing"
        with self._lock:
            self._running[request.execution_id] = (self.tier_of[request.tenant], time.monotonic() + self.duration(),
                                                   arn, started, description)
        self.sqs.send_message(QueueUrl=self.status_queue_url, MessageBody=json.dumps(status_event(
            request.execution_id, "Executing", arn, at=started, started_at=started, description=description)))
        return arn

    def find(self, request: BuildRequest) -> str | None:
        """As the port's `find`."""
        return self.starter.find(request)

    def running(self) -> dict[str, int]:
        """Executions running now, per tier."""
        counts: Counter[str] = Counter()
        with self._lock:
            for tier, *_ in self._running.values():
                counts[tier] += 1
        return dict(counts)

    def tick(self, now: float) -> int:
        """Finish what is due; returns how many finished."""

        with self._lock:
            due = [(eid, v) for eid, v in self._running.items() if v[1] <= now]
            for eid, _ in due:
                del self._running[eid]
            self.finished += len(due)
        bodies = []
        for eid, (_, _, arn, started, description) in due:
            self.status[arn], self.last_end = "Succeeded", time.monotonic()
            if self.lose is not None and self.lose():
                continue
            ended = utc_now()
            terminal = json.dumps(status_event(eid, "Succeeded", arn, at=ended, started_at=started, ended_at=ended,
                                               description=description))
            bodies += [terminal] * self.deliveries
            if self.late_executing:
                bodies.append(json.dumps(status_event(eid, "Executing", arn, at=started, started_at=started,
                                                      description=description)))
        for start in range(0, len(bodies), 10):
            self.sqs.send_message_batch(QueueUrl=self.status_queue_url, Entries=[
                {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start:start + 10])])
        return len(due)
