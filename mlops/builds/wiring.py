"""The composition root of the build use cases: the service the Lambda handlers and the local runtime use, built from
the environment with the DynamoDB store, the SQS queues and the pipeline ports; what a handler does with a message
its work refuses or fails on; and the ledger for people (`mlops executions`, `mlops cost`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops.admission import TierState
from mlops.builds.context import Backlog, Context, DispatchSettings, Outcome, Starts
from mlops.builds.dispatcher import DispatchReport, Dispatcher
from mlops.build_ports import BuildStore, ExecutionStatus, FindExecution, FindFailure, FindModelPackage, Queues, Record
from mlops.builds.status import StatusRecorder
from mlops.builds.trigger import Trigger
from mlops.notify import Notifier
from mlops.requests import BuildRequest, PipelineStatusEvent, RejectedRequest, StartExecution, utc_now

LOG = logging.getLogger(__name__)


class BuildService:  # pylint: disable=too-many-instance-attributes  # the three use cases and what they share
    """The trigger, the dispatcher and the status path over one store, one set of queues and the pipeline ports.

    `store` is a `mlops.build_ports.BuildStore`; `ledger` and `slots` (`mlops.aws.ledger.Ledger`,
    `mlops.aws.slots.Slots`) instead make it the DynamoDB store of those two tables.
    """

    def __init__(self, *, registry: Any, queues: Queues, start: StartExecution, store: BuildStore | None = None,
                 ledger: Any = None, slots: Any = None, find: FindExecution | None = None, notifier: Notifier | None = None,
                 settings: DispatchSettings = DispatchSettings(), clock: Callable[[], str] = utc_now,
                 direct_start: bool = True, model_package: FindModelPackage | None = None,
                 status_of: ExecutionStatus | None = None, failure_of: FindFailure | None = None):
        if store is None:
            from mlops.aws.build_store import DynamoBuildStore

            store = DynamoBuildStore(ledger, slots)
        self.context = Context(registry=registry, store=store, queues=queues, start=start, find=find, status_of=status_of,
                               model_package=model_package, failure_of=failure_of, notifier=notifier, settings=settings,
                               clock=clock)
        starts, backlog = Starts(self.context), Backlog(self.context)
        self.trigger = Trigger(self.context, starts, direct_start)
        self.status = StatusRecorder(self.context, starts, backlog)
        self.dispatcher = Dispatcher(self.context, starts, backlog, self.status)

    @property
    def registry(self) -> Any:
        """The tenant registry."""
        return self.context.registry

    @property
    def names(self) -> Any:
        """The platform's names."""
        return self.context.names

    @property
    def store(self) -> BuildStore:
        """The build store."""
        return self.context.store

    @property
    def queues(self) -> Queues:
        """The queues."""
        return self.context.queues

    @property
    def ledger(self) -> Any:
        """The DynamoDB store's ledger table (`mlops.aws.ledger.Ledger`), for readers that look at it directly."""
        return getattr(self.context.store, "ledger")

    @property
    def slots(self) -> Any:
        """The DynamoDB store's slots table (`mlops.aws.slots.Slots`), for readers that look at it directly."""
        return getattr(self.context.store, "slots")

    def tier_state(self, tier: str) -> TierState:
        """A tier's counts, tenants and slots as the store has them."""
        return self.context.store.tier_state(tier, self.context.limit(tier))

    # -- the trigger ------------------------------------------------------------------------------------
    def submit(self, request: BuildRequest) -> Outcome:
        """`Trigger.submit`."""
        return self.trigger.submit(request)

    def accept(self, body: str) -> Outcome:
        """`Trigger.accept`: one message of the uploads queue."""
        return self.trigger.accept(body)

    def record_rejected_upload(self, body: str, reason: str) -> Record | None:
        """`Trigger.record_rejected_upload`."""
        return self.trigger.record_rejected_upload(body, reason)

    # -- the dispatcher ---------------------------------------------------------------------------------
    def dispatch(self) -> DispatchReport:
        """`Dispatcher.dispatch`: one scheduled run."""
        return self.dispatcher.dispatch()

    def dispatch_tier(self, tier: str, report: DispatchReport, file_anyway: bool = False) -> None:
        """`Dispatcher.dispatch_tier`."""
        self.dispatcher.dispatch_tier(tier, report, file_anyway)

    def sweep(self, tier: str, report: DispatchReport) -> None:
        """`Dispatcher.sweep`."""
        self.dispatcher.sweep(tier, report)

    def recount(self, tier: str, report: DispatchReport) -> None:
        """`Dispatcher.recount`."""
        self.dispatcher.recount(tier, report)

    # -- the status path --------------------------------------------------------------------------------
    def record_status(self, event: PipelineStatusEvent) -> Outcome:
        """`StatusRecorder.record_status`."""
        return self.status.record_status(event)

    def begin_batch(self, events: list[PipelineStatusEvent]) -> None:
        """`StatusRecorder.begin_batch`."""
        self.status.begin_batch(events)

    def end_batch(self) -> None:
        """`StatusRecorder.end_batch`."""
        self.status.end_batch()


def consume(queues: Queues, queue: str, body: str, receive_count: int, max_receives: int,
            work: Callable[[str], Outcome]) -> Outcome:
    """Process one SQS message body with `work`, deciding what never to retry.

    A rejection (malformed, unknown tenant) goes to the DLQ with its reason at once and counts as done. Any
    other error is raised, so the record is reported as a batch item failure and retried, until its last
    delivery (`max_receives`, the queue's maxReceiveCount): then it goes to the DLQ with the error as the
    reason instead of silently by redrive.
    """
    try:
        return work(body)
    except RejectedRequest as exc:
        LOG.warning("rejected message from %s: %s", queue, exc.one_line())
        queues.dead_letter(queue, body, exc.one_line())
        return Outcome("-", "rejected", detail=exc.one_line())
    except Exception as exc:  # pylint: disable=broad-exception-caught  # decide retry vs DLQ; re-raised below
        if receive_count < max_receives:
            raise
        reason = f"gave up after {receive_count} deliveries: {type(exc).__name__}: {exc}"
        LOG.error("dead-lettering message from %s: %s", queue, reason)
        queues.dead_letter(queue, body, reason)
        return Outcome("-", "rejected", detail=reason)


@dataclass(frozen=True)
class HandlerConfig:
    """What the handlers read from the environment, once (docs/trigger.md)."""

    max_receives: int = 5
    account_quota: int | None = None
    topic_arn: str | None = None
    slack_webhook_url: str | None = None
    ledger_table: str | None = None
    slots_table: str | None = None
    lease_seconds: int = 180

    @classmethod
    def from_env(cls, env: dict[str, str]) -> "HandlerConfig":
        """Read the MLOPS_* variables."""
        quota = env.get("MLOPS_ACCOUNT_MAX_EXECUTIONS")
        return cls(max_receives=int(env.get("MLOPS_MAX_RECEIVES", "5")), account_quota=int(quota) if quota else None,
                   topic_arn=env.get("MLOPS_NOTIFICATIONS_TOPIC") or None,
                   slack_webhook_url=env.get("MLOPS_SLACK_WEBHOOK_URL") or None,
                   ledger_table=env.get("MLOPS_LEDGER_TABLE") or None, slots_table=env.get("MLOPS_SLOTS_TABLE") or None,
                   lease_seconds=int(env.get("MLOPS_DISPATCH_LEASE_SECONDS", "180")))


def pipeline_ports() -> tuple[StartExecution, FindExecution, ExecutionStatus]:
    """The real pipeline ports (`mlops.pipeline.ports`: start, find, status), loaded when first needed (no SageMaker SDK)."""
    from mlops.pipeline import ports

    return ports.start_execution, ports.find_execution, ports.execution_status


def service_from_env(env: dict[str, str] | None = None, start: StartExecution | None = None,
                     find: FindExecution | None = None) -> tuple[BuildService, HandlerConfig]:
    """The service as a Lambda (or the local runtime) builds it: registry, clients and ports from the environment."""
    import os

    import boto3  # keep `mlops --help` and pure imports light

    from mlops.aws.build_store import DynamoBuildStore
    from mlops.aws.queues import Queues as SqsQueues
    from mlops.config.tenants import load_from_settings
    from mlops.pipeline.progress import failure_reader, model_package_port  # boto3 only, no SDK
    from mlops.settings import Settings

    env = dict(os.environ if env is None else env)
    config = HandlerConfig.from_env(env)
    registry = load_from_settings(Settings.from_env(env))
    names = registry.names()
    status_of = None
    if start is None:
        start, find, status_of = pipeline_ports()
    notifier = Notifier(boto3.client("sns") if config.topic_arn else None, config.topic_arn, config.slack_webhook_url)
    store = DynamoBuildStore.of(boto3.client("dynamodb"), config.ledger_table or names.ledger_table(),
                                config.slots_table or names.slots_table(), config.account_quota)
    service = BuildService(registry=registry, store=store, queues=SqsQueues(boto3.client("sqs")), start=start, find=find,
                           notifier=notifier, settings=DispatchSettings(lease_seconds=config.lease_seconds),
                           model_package=model_package_port(), status_of=status_of, failure_of=failure_reader())
    return service, config


def ledger_from_env(env: dict[str, str] | None = None) -> Any:
    """The execution ledger (`mlops.aws.ledger.Ledger`) of this environment: `MLOPS_LEDGER_TABLE`, else the registry's
    name for it."""
    import os

    import boto3

    from mlops.aws.ledger import Ledger
    from mlops.config.tenants import load_from_settings
    from mlops.settings import Settings

    env = dict(os.environ if env is None else env)
    table = env.get("MLOPS_LEDGER_TABLE") or load_from_settings(Settings.from_env(env)).names().ledger_table()
    return Ledger(boto3.client("dynamodb"), table)


_CURRENT: dict[str, Any] = {}


def use_service(factory: Callable[[], tuple[BuildService, HandlerConfig]] | None) -> None:
    """Choose how handlers build their service (the local runtime and tests); None restores the default."""
    _CURRENT.clear()
    if factory is not None:
        _CURRENT["factory"] = factory


def current_service() -> tuple[BuildService, HandlerConfig]:
    """The service of this process (a Lambda container builds it once, at the first event)."""
    if "service" not in _CURRENT:
        _CURRENT["service"] = _CURRENT.get("factory", service_from_env)()
    return _CURRENT["service"]
