"""Deploying, rejecting and rolling back a tenant's model version: the deploy stage's use case.

What one deployment does, against AWS and against the local AWS alike:

    resolve challenger (model package group, --version or the newest not rejected)
      -> champion = the package behind the tenant's endpoint (endpoint config tags), or none
      -> gate (mlops.gate, pure) -> refuse | deploy | forced
      -> model + endpoint config for that version (idempotent names), CloudWatch alarms for the endpoint
      -> roll out:  CreateEndpoint (a Failed endpoint is deleted first), or UpdateEndpoint with a
                    blue/green DeploymentConfig (canary / linear / all-at-once) and
                    AutoRollbackConfiguration on the alarms, then wait for InService; the endpoint still
                    on the old config means it rolled back
      -> approve the package once it serves, record the outcome in the deployment log (ledger)

`reject` marks a version Rejected and, if it is live, rolls back to the newest earlier approved one;
`revert_rejection` takes a rejection back. Every AWS call is `mlops.aws.endpoints`'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from mlops.aws.endpoints import (STRATEGIES, DeploymentEvent, DeploymentLog, ModelVersion, Progress, Target, deployment_config,
                                 describe_endpoint, ensure_alarms, ensure_model_and_config, list_versions, read_metrics,
                                 recreate_failed, resolve_version, rule_from_metadata, serving_package_arn, set_approval,
                                 start_rollout, wait_in_service)
from mlops.errors import MlopsError
from mlops.gate import Decision, Force, MetricRule, decide


@dataclass
class Rollout:
    """How a rollout ended."""

    ok: bool
    detail: str
    serving_version: str | None


class Deployer:
    """Gate, approve, roll out, reject and roll back for one account."""

    def __init__(self, sm: Any, s3: Any, cw: Any, log: DeploymentLog, *, progress: Progress = lambda _m: None,
                 poll: float = 15.0):
        self.sm, self.s3, self.cw, self.log = sm, s3, cw, log
        self.progress = progress
        self.poll = poll

    # -- reading ---------------------------------------------------------------------------------
    def champion(self, target: Target, versions: list[ModelVersion]) -> ModelVersion | None:
        """The version serving the tenant's endpoint, or None (first deployment, or a Failed endpoint serves nothing)."""
        desc = describe_endpoint(self.sm, target.endpoint)
        if desc is None or desc["EndpointStatus"] == "Failed":
            return None
        arn = serving_package_arn(self.sm, desc)
        found = next((v for v in versions if v.arn == arn), None)
        if found is None:
            raise MlopsError(f"endpoint {target.endpoint} serves {arn or 'a model not deployed by mlops'}, "
                             f"not a version of {target.package_group}",
                             "deploy with --force --reason to replace it")
        return found

    def gate(self, target: Target, rule: MetricRule | None, version: str | None = None,
             force: Force | None = None) -> tuple[ModelVersion, ModelVersion | None, Decision]:
        """Challenger, champion and the gate's decision."""
        versions = list_versions(self.sm, target.package_group)
        challenger = resolve_version(versions, target.package_group, version)
        champion = self.champion(target, versions)
        rule = rule or rule_from_metadata(challenger)
        if rule is None:
            raise MlopsError(f"no metric rule for {target.model}: pass the model repository (--repo) holding mlops.yaml",
                             "or register packages with metric_name/metric_direction metadata")
        challenger_c = challenger.candidate(read_metrics(self.s3, challenger))
        champion_c = champion.candidate(read_metrics(self.s3, champion)) if champion else None
        return challenger, champion, decide(challenger_c, champion_c, rule, force)

    # -- deploying -------------------------------------------------------------------------------
    def deploy(self, target: Target, rule: MetricRule | None, version: str | None = None, strategy: str = "canary",
               force: Force | None = None, actor: str | None = None) -> dict[str, Any]:
        """Gate the version, and roll it out if the gate (or --force) says so; record the outcome."""
        if strategy not in STRATEGIES:
            raise MlopsError(f"unknown strategy '{strategy}'", f"use one of: {', '.join(STRATEGIES)}")
        challenger, champion, decision = self.gate(target, rule, version, force)
        event = DeploymentEvent(kind="deploy", outcome="refused", tenant=target.tenant, model=target.model, endpoint=target.endpoint,
                                version=challenger.version, package_arn=challenger.arn, reasons=list(decision.reasons),
                                previous_version=champion.version if champion else None, actor=actor or (force.actor if force else None),
                                forced=force is not None and decision.outcome == "forced",
                                forced_reason=force.reason if force and decision.outcome == "forced" else None, strategy=strategy,
                                serving_version=champion.version if champion else None)
        if decision.outcome == "unchanged":
            event.outcome = "unchanged"
        if not decision.deploy:
            self.log.record(event)
            return {"decision": decision.as_dict(), **asdict(event)}
        result = self.roll_out(target, challenger, champion, strategy)
        event.reasons.append(result.detail)
        event.serving_version = result.serving_version
        event.outcome = "deployed" if result.ok else ("rolled-back" if champion else "failed")
        if result.ok:
            note = f"deployed to {target.endpoint} by {event.actor or 'mlops'}: {decision.reasons[-1]}"
            set_approval(self.sm, challenger, "Approved", note)
        self.log.record(event)
        return {"decision": decision.as_dict(), **asdict(event)}

    def roll_out(self, target: Target, item: ModelVersion, current: ModelVersion | None, strategy: str) -> Rollout:
        """Put `item` behind the endpoint, replacing `current` (None: create the endpoint), and wait for the outcome."""
        config = ensure_model_and_config(self.sm, target, item)
        alarms = ensure_alarms(self.cw, target)
        self.progress(f"{target.endpoint}: {item.version} as {config}; rollback alarms {', '.join(alarms)}")
        deployment = deployment_config(strategy, alarms)
        desc = recreate_failed(self.sm, target.endpoint, describe_endpoint(self.sm, target.endpoint), self.progress, self.poll)
        if desc is None:
            self.progress(f"{target.endpoint}: creating the endpoint with {item.version}")
            start_rollout(self.sm, target, config, None)
        else:
            routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"]
            self.progress(f"{target.endpoint}: blue/green update {current.version if current else '?'} -> {item.version} "
                          f"({routing}, auto-rollback on alarms)")
            start_rollout(self.sm, target, config, deployment)
        desc = wait_in_service(self.sm, target.endpoint, self.progress, poll=self.poll)
        if desc["EndpointStatus"] == "InService" and desc["EndpointConfigName"] == config:
            return Rollout(True, f"{target.endpoint} serves {item.version}", item.version)
        reason = desc.get("FailureReason") or f"endpoint is {desc['EndpointStatus']} on {desc['EndpointConfigName']}"
        back = current.version if current and desc["EndpointStatus"] == "InService" else None
        what = "rolled back" if back else "failed"
        self.progress(f"  {what}: {reason}" + (f"; {back} keeps serving {target.endpoint}" if back else ""))
        return Rollout(False, f"rollout of {item.version} {what}: {reason}", back)

    # -- rejecting -------------------------------------------------------------------------------
    def reject(self, target: Target, version: str, reason: str, actor: str) -> dict[str, Any]:
        """Mark a version Rejected; if it is live, roll back to the newest earlier approved version."""
        if not reason or not reason.strip():
            raise MlopsError("rejecting needs a reason", "add --reason 'what is wrong with it'")
        versions = list_versions(self.sm, target.package_group)
        item = resolve_version(versions, target.package_group, version, allow_rejected=True)
        if item.status == "Rejected":
            raise MlopsError(f"version {item.version} of {target.package_group} is already rejected", "nothing to do")
        champion = self.champion(target, versions)
        # The status it had is kept on the package itself, for `reject --revert`.
        set_approval(self.sm, replace(item, metadata={**item.metadata, STATUS_BEFORE_REJECTION: item.status}), "Rejected",
                     f"rejected by {actor}: {reason.strip()}")
        event = DeploymentEvent(kind="reject", outcome="rejected", tenant=target.tenant, model=target.model, endpoint=target.endpoint,
                                version=item.version, package_arn=item.arn, actor=actor, reasons=[f"rejected by {actor}: {reason.strip()}"],
                                serving_version=champion.version if champion else None)
        if champion is None or champion.arn != item.arn:
            event.reasons.append(f"{item.version} is not live on {target.endpoint}: no rollback needed")
            self.log.record(event)
            return asdict(event)
        previous = _previous_approved(versions, item)
        if previous is None:
            event.reasons.append(f"{item.version} is live and no earlier approved version exists: it keeps serving")
            self.log.record(event)
            raise MlopsError(f"{item.version} is rejected but still serves {target.endpoint}: no earlier approved version to roll back to",
                             f"deploy another version: mlops deploy --tenant {target.tenant} --model {target.model} "
                             "--version V --force --reason ...")
        self.progress(f"{target.endpoint}: {item.version} is live; rolling back to {previous.version}")
        result = self.roll_out(target, previous, item, "all-at-once")
        event.previous_version = item.version
        event.reasons.append(result.detail)
        event.serving_version = result.serving_version
        event.outcome = "rolled-back" if result.ok else "rejected"
        self.log.record(event)
        self.log.record(DeploymentEvent(kind="rollback", outcome="deployed" if result.ok else "failed", tenant=target.tenant,
                                        model=target.model, endpoint=target.endpoint, version=previous.version,
                                        package_arn=previous.arn, previous_version=item.version, actor=actor,
                                        reasons=[f"rollback after rejecting {item.version}", result.detail],
                                        strategy="all-at-once", serving_version=result.serving_version))
        if not result.ok:
            raise MlopsError(f"{item.version} is rejected but the rollback to {previous.version} failed: {result.detail}",
                             "deploy another version with mlops deploy --force")
        return asdict(event)

    def revert_rejection(self, target: Target, version: str, reason: str, actor: str) -> dict[str, Any]:
        """Take a rejection back: the version gets the approval status it had before (kept on the package when it
        was rejected; PendingManualApproval for a rejection made elsewhere), with the reason recorded. Nothing
        is deployed: a version that was live and rolled back is deployed again with `mlops deploy`."""
        if not reason or not reason.strip():
            raise MlopsError("reverting a rejection needs a reason", "add --reason 'why the rejection was wrong'")
        versions = list_versions(self.sm, target.package_group)
        item = resolve_version(versions, target.package_group, version, allow_rejected=True)
        if item.status != "Rejected":
            raise MlopsError(f"version {item.version} of {target.package_group} is not rejected ({item.status})",
                             "nothing to revert")
        before = item.metadata.get(STATUS_BEFORE_REJECTION) or "PendingManualApproval"
        note = f"rejection reverted by {actor}: {reason.strip()}"
        set_approval(self.sm, item, before, note)
        champion = self.champion(target, list_versions(self.sm, target.package_group))
        event = DeploymentEvent(kind="revert-rejection", outcome="reverted", tenant=target.tenant, model=target.model,
                                endpoint=target.endpoint, version=item.version, package_arn=item.arn, actor=actor,
                                reasons=[f"{note}; {item.version} is {before} again"],
                                serving_version=champion.version if champion else None)
        self.log.record(event)
        return asdict(event)


#: The package metadata key holding a version's approval status from before its rejection.
STATUS_BEFORE_REJECTION = "mlops:status-before-rejection"


def _previous_approved(versions: list[ModelVersion], rejected: ModelVersion) -> ModelVersion | None:
    approved = [v for v in versions if v.status == "Approved" and v.arn != rejected.arn]
    earlier = [v for v in approved if v.package_version < rejected.package_version]
    return (earlier or approved or [None])[-1]
