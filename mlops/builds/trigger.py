"""The trigger's use case: record each build request exactly once, then start it at once or queue it.

A request is checked against the registry, then recorded with a slot of its tier when the tier has room and
nobody waits (and started), or recorded as waiting and sent to the tier's queue for the dispatcher. The
store decides who wins: a request delivered three times at once is recorded once and started once; the
others are answered `duplicate`. A message of the uploads queue goes through the upload policy
(`mlops.uploads`) first; a tenant's upload it refuses is recorded as REJECTED and notified once.
"""

from __future__ import annotations

from typing import Any

from mlops import uploads
from mlops.builds.context import Context, Outcome, Starts
from mlops.build_ports import NewRequest, Record
from mlops.errors import MlopsError
from mlops.requests import BuildRequest, RejectedRequest, check_registry
from mlops.statuses import QUEUED


class Trigger:
    """`submit` (CI, the retraining check), `accept` (a message of the uploads queue)."""

    def __init__(self, context: Context, starts: Starts, direct_start: bool = True):
        self.context = context
        self.starts = starts
        #: start a request at once when its tier has room and nobody waits (off: every request is queued)
        self.direct_start = direct_start

    def submit(self, request: BuildRequest) -> Outcome:
        """Accept one request: start it now, or queue it. Raises RejectedRequest if invalid."""
        ctx = self.context
        tenant = check_registry(request, ctx.registry)
        tier = tenant.tier
        effective = tenant.effective_tier(ctx.registry.platform.tiers)
        new = NewRequest(request, tier, effective.instance_type, effective.instance_count, ctx.clock())
        if self.direct_start:
            recorded = ctx.store.admit_new(new, ctx.limit(tier), tenant.overrides.max_concurrent_builds)
            if recorded.result == "admitted":
                return self.starts.start(request, tier, attempt=1)
            if recorded.result == "duplicate":
                return self._duplicate(request, recorded.existing)
        recorded = ctx.store.queue_new(new)
        if recorded.result == "duplicate":
            return self._duplicate(request, recorded.existing)
        if recorded.result != "queued":
            raise MlopsError(f"could not queue {request.execution_id}: transaction {recorded.result}", "retry: nothing was recorded")
        ctx.queues.send(ctx.names.tier_queue(tier), request.to_message())
        return Outcome(request.execution_id, "queued", QUEUED)

    def _duplicate(self, request: BuildRequest, existing: Record | None) -> Outcome:
        """A request already recorded: report it; send it to its queue again if the first trigger died before."""
        ctx = self.context
        record = existing or ctx.store.execution(request.execution_id) or {}
        status = record.get("status")
        if status == QUEUED and record.get("status_time", "") < ctx.stale_before():
            ctx.queues.send(ctx.names.tier_queue(record["tier"]), request.to_message())
            return Outcome(request.execution_id, "duplicate", status, detail="re-queued: the first delivery did not finish")
        return Outcome(request.execution_id, "duplicate", status, record.get("pipeline_execution_arn"))

    def accept(self, body: str) -> Outcome:
        """One message of the uploads queue (`mlops.uploads`): a request is submitted; an upload is recorded as the
        tenant x model's newest data, then submitted unless the retraining check is to start it. Raises
        RejectedRequest for a refused message, after recording it when it is a tenant's upload."""
        try:
            arrival = uploads.arrival(body, self.context.registry)
            if not arrival.upload:
                return self.submit(arrival.request)
        except RejectedRequest as exc:
            self.record_rejected_upload(body, exc.one_line())  # a tenant's refused upload: recorded, notified
            raise
        self.context.store.record_upload(arrival.request)
        if not arrival.start:
            return Outcome(arrival.request.execution_id, "recorded",
                           detail="retrain_on_upload is scheduled: the daily retraining check starts the build")
        return self.submit(arrival.request)

    def record_rejected_upload(self, body: str, reason: str) -> dict[str, Any] | None:
        """A tenant's upload the trigger refused: recorded once (status REJECTED, the reason) and notified once, so it
        shows in `mlops executions list` and on the topic. None for a message that is no tenant's upload."""
        ctx = self.context
        upload = uploads.refused_upload(body, ctx.registry)
        if upload is None:
            return None
        record = ctx.store.record_rejected(upload, reason, ctx.clock()) or ctx.store.rejected(upload["id"]) or {}
        if ctx.notifier is not None and ctx.notifier.enabled and record and not record.get("notified"):
            result = ctx.notifier.notify(record)
            if result.sns_message_id or result.slack_ok or not result.errors:
                ctx.store.mark_rejected_notified(upload["id"])
        return record
