"""Bench: every build request delivered three times at once; exactly one execution each.

Builds N requests (default 1,000) of all three kinds: CI requests and retraining requests (direct
invocations of the trigger handler) and tenant data uploads (S3 `Object Created` events in SQS batch
events). Three threads deliver the whole set concurrently, each in its own order, through the real
trigger handler on in-process moto. Then the dispatcher, simulated pipelines and the status handler run
until every admitted execution finished. Prints executions started (must equal N), duplicate starts
(must be 0) and AWS calls per delivery on the trigger path.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dispatch import _ENV, ROOT, CallCounter, build_registry  # noqa: E402  # pylint: disable=wrong-import-position


def deliveries(registry: Any, count: int, rng: random.Random) -> list[tuple[str, Any]]:
    """`count` distinct requests as (kind, payload): `direct` invocations or `sqs` upload event bodies."""
    from mlops.requests import BuildRequest

    names = registry.names()
    tenants = sorted(registry.tenants)
    items: list[tuple[str, Any]] = []
    for n in range(count):
        tenant = rng.choice(tenants)
        kind = n % 3
        if kind == 0:
            items.append(("direct", BuildRequest(source="ci", tenant=tenant, model="churn", version=f"1.{n}.0",
                                                 git_commit=f"{n:07x}", reason="push").model_dump(exclude_none=True)))
        elif kind == 1:
            items.append(("direct", BuildRequest(source="retrain", tenant=tenant, model="churn", reason="model age",
                                                 dedup_id=str(n), requested_at="2026-01-01T03:00:00+00:00").model_dump(exclude_none=True)))
        else:
            items.append(("sqs", json.dumps({
                "version": "0", "id": f"ev{n}", "detail-type": "Object Created", "source": "aws.s3",
                "account": names.account_id, "region": names.region, "time": "2026-01-01T00:00:00Z",
                "detail": {"bucket": {"name": names.tenant_bucket(tenant)},
                           "object": {"key": f"data/churn/{n}.csv", "etag": f"e{n}", "sequencer": f"{n:08x}"}}})))
    return items


def main() -> None:  # pylint: disable=too-many-locals,too-many-statements  # a bench reads top to bottom
    """Run the bench and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--copies", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(_ENV)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the handlers' per-record logs would drown the figures

    import boto3
    from moto import mock_aws

    from mlops.aws.ledger import Ledger
    from mlops.aws.queues import Queues
    from mlops.aws.slots import Slots
    from mlops.builds import BuildService, DispatchSettings, HandlerConfig, use_service
    from mlops.local import moto_patches
    from mlops.local.lambda_runtime import EventSourceMapping, LambdaContext, load_handler, sqs_event
    sys.path.insert(0, str(ROOT / "tests"))  # test support (tests/support): the trigger's resources as Terraform declares them
    from support.trigger_stack import MotoPipelineStarter, SimulatedSageMaker, provision

    rng = random.Random(11)
    limits = {"gold": 100, "silver": 100, "bronze": 100}
    registry = build_registry(args.tenants, limits, {"gold": 0.2, "silver": 0.3, "bronze": 0.5})
    names = registry.names()
    calls = CallCounter()
    with mock_aws():
        moto_patches.atomic()  # for the bench's life, as the local AWS runs
        urls = provision(boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("sagemaker"), names, list(limits),
                         {t: ["churn"] for t in registry.tenants})
        starter = MotoPipelineStarter(boto3.client("sagemaker"), names)
        sim = SimulatedSageMaker(starter, boto3.client("sqs"), urls[names.events_queue("status")],
                                 {t: tenant.tier for t, tenant in registry.tenants.items()}, duration=lambda: 0.0)

        def service(role: str) -> BuildService:
            dynamodb = calls.watch(boto3.client("dynamodb"), role)
            return BuildService(registry=registry, ledger=Ledger(dynamodb, names.ledger_table()),
                                slots=Slots(dynamodb, names.slots_table()), queues=Queues(calls.watch(boto3.client("sqs"), role)),
                                start=calls_start(sim, calls), find=sim.find, settings=DispatchSettings())

        trigger = service("trigger")
        use_service(lambda: (trigger, HandlerConfig()))
        handler = load_handler(ROOT / "lambda", "trigger")
        items = deliveries(registry, args.requests, rng)
        queue_arn = f"arn:aws:sqs:{names.region}:{names.account_id}:{names.events_queue('uploads')}"

        def deliver(order: list[tuple[str, Any]]) -> None:
            for kind, payload in order:
                if kind == "direct":
                    handler(payload, LambdaContext("trigger"))
                else:
                    message = {"MessageId": str(rng.random()), "ReceiptHandle": "r", "Body": payload}
                    handler(sqs_event([message], queue_arn), LambdaContext("trigger"))

        orders = [rng.sample(items, len(items)) for _ in range(args.copies)]
        threads = [threading.Thread(target=deliver, args=(order,)) for order in orders]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        replay = time.monotonic() - began
        trigger_calls = calls.total("trigger", "start")
        per_op = {op: n for (role, op), n in calls.calls.items() if role in ("trigger", "start")}

        status_service = service("status")
        use_service(lambda: (status_service, HandlerConfig()))
        status = EventSourceMapping(boto3.client("sqs"), names.events_queue("status"), load_handler(ROOT / "lambda", "status"), "status")
        dispatcher = service("dispatcher")
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline and len(starter.starts) < args.requests or any(sim.running().values()):
            dispatcher.dispatch()
            sim.tick(time.monotonic())
            while status.poll_once():
                pass
        use_service(None)
        pages = boto3.client("sagemaker").get_paginator("list_pipeline_executions")
        listed = sum(len(page["PipelineExecutionSummaries"])
                     for tenant in registry.tenants for page in pages.paginate(PipelineName=names.pipeline(tenant, "churn")))

    total = args.requests * args.copies
    print(f"requests {args.requests} x {args.copies} concurrent deliveries = {total} deliveries in {replay:.1f} s")
    print(f"executions started: {len(starter.starts)} (moto lists {listed}); duplicate starts: {starter.duplicates}")
    print(f"AWS calls per delivery on the trigger path: {trigger_calls / total:.2f} "
          f"({', '.join(f'{op} {n / total:.2f}' for op, n in sorted(per_op.items(), key=lambda kv: -kv[1]))})")


def calls_start(sim: Any, calls: CallCounter) -> Any:
    """The simulated start port, its SageMaker calls counted under `start`."""
    calls.watch(sim.starter.sagemaker, "start")
    return sim


if __name__ == "__main__":
    main()
