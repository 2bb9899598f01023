"""The retraining policy: for every tenant x model, decide whether to retrain, and say why.

Pure functions over plain data, no AWS: the scan adapter (`mlops.aws.scan`) gathers an `Inventory` (ledger
executions, ECR image tags, the newest data object per tenant and model, the model registry's approved
versions, drift readings) and `check` turns it, with the tenant registry and each model's `retraining`
policy from `mlops.yaml`, into one `Decision` per tenant x model. A model is retrained when

- ``max-age``: its last successful training is older than `max_age_days` (a tenant may override it),
- ``new-image``: a newer release of the model's image is in ECR than the one the live model was trained with,
- ``new-data``: the tenant uploaded data under `data/<model>/` after the last training took its data,
- ``drift``: a `DriftSignal` reading taken after the last training is at or above `drift_threshold`,
- ``first-training``: it was never trained, and both data and an image exist,

and never while a build for the same tenant x model is queued or running (``running``). Bad data (a
training without a version, a tag that is not semver, a tenant without any trained model, models left by
a deleted tenant) becomes a readable problem on the decision or on the report; it never stops the check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from semver import Version

from mlops import statuses, versioning
from mlops.errors import MlopsError
from mlops.naming import Names, model_package_group_prefix

RETRAIN, KEEP, WAIT, SKIP = "retrain", "keep", "wait", "skip"

TenantModel = tuple[str, str]


# -- inputs -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Execution:
    """One build recorded in the ledger, reduced to what the policy needs."""

    tenant: str
    model: str
    execution_id: str
    status: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    model_version: str | None = None  # the image version (semver) the build trained with
    data_watermark: datetime | None = None  # newest data object the build read, when recorded

    @property
    def active(self) -> bool:
        """Queued or running (in the words of `mlops.statuses`): a new build for the same tenant x model must wait."""
        return statuses.is_active(self.status)

    @property
    def succeeded(self) -> bool:
        """The build produced a model."""
        return statuses.is_succeeded(self.status)

    @property
    def finished_at(self) -> datetime | None:
        """When the build ended (its start when the end was not recorded)."""
        return self.ended_at or self.started_at


@dataclass(frozen=True)
class Package:
    """The newest approved version in a model package group."""

    group: str
    version: int | None
    created_at: datetime | None = None


@dataclass(frozen=True)
class DriftReading:
    """One drift measurement of a tenant's model."""

    value: float
    at: datetime
    source: str


class DriftSignal(Protocol):
    """Where drift comes from (a CloudWatch metric, a model-monitor result, ...).

    `read` gets every tenant x model whose policy has a drift threshold in one call, so an implementation
    can batch its requests; it returns a reading for those it has one for. `trained` gives, where the
    ledger knows it, when each one's last training ended: a reading before that never counts, so an
    implementation may ask for less (coarser periods) where none of its readings can be that old.
    """

    def read(self, keys: Sequence[TenantModel], now: datetime,
             trained: Mapping[TenantModel, datetime] | None = None) -> Mapping[TenantModel, DriftReading]:
        """The latest drift reading per tenant x model."""


@dataclass
class Inventory:
    """Everything the scan gathered; plain data, built by `mlops.aws.scan` or by a test."""

    executions: list[Execution] = field(default_factory=list)
    images: dict[str, list[str]] = field(default_factory=dict)  # model -> image tags in its ECR repository
    data: dict[TenantModel, datetime] = field(default_factory=dict)  # newest object under data/<model>/
    packages: dict[str, Package] = field(default_factory=dict)  # model package group -> newest approved
    drift: dict[TenantModel, DriftReading] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # what the scan could not read


@dataclass(frozen=True)
class TenantInfo:
    """A registry tenant as the policy sees it."""

    id: str
    models: tuple[str, ...]
    enabled: bool = True
    max_age_days: int | None = None  # the tenant's override of the models' max age

    @classmethod
    def from_registry(cls, tenant: Any) -> "TenantInfo":
        """From a `mlops.config.tenants.Tenant`."""
        return cls(tenant.id, tuple(tenant.models), tenant.enabled, tenant.overrides.retrain_max_age_days)


@dataclass(frozen=True)
class Policy:
    """A model's retraining policy for one tenant (`retraining` in mlops.yaml plus tenant overrides)."""

    max_age_days: int = 30
    on_new_data: bool = True
    on_new_image: bool = True
    drift_threshold: float | None = None
    max_age_source: str = "default"

    @classmethod
    def resolve(cls, retraining: Any | None, tenant: TenantInfo) -> "Policy":
        """`retraining` is a `mlops.config.contract.Retraining` (or None for the defaults)."""
        base = cls() if retraining is None else cls(
            retraining.max_age_days, retraining.on_new_data, retraining.on_new_image, retraining.drift_threshold, "mlops.yaml"
        )
        if tenant.max_age_days is not None:
            return cls(tenant.max_age_days, base.on_new_data, base.on_new_image, base.drift_threshold, "tenant override")
        return base


# -- outputs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reason:
    """Why a decision was taken: a stable code for scripts and a sentence for people."""

    code: str
    text: str


@dataclass(frozen=True)
class Decision:
    """The verdict for one tenant x model."""

    tenant: str
    model: str
    action: str  # retrain | keep | wait | skip
    reasons: tuple[Reason, ...] = ()
    problems: tuple[str, ...] = ()
    live_version: str | None = None
    package_version: int | None = None
    trained_at: datetime | None = None
    age_days: float | None = None
    image_version: str | None = None  # the version a retraining would build with

    @property
    def retrain(self) -> bool:
        """Whether a build should be requested."""
        return self.action == RETRAIN

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "tenant": self.tenant,
            "model": self.model,
            "action": self.action,
            "reasons": [{"code": r.code, "text": r.text} for r in self.reasons],
            "problems": list(self.problems),
            "live_version": self.live_version,
            "package_version": self.package_version,
            "trained_at": _iso(self.trained_at),
            "age_days": None if self.age_days is None else round(self.age_days, 1),
            "image_version": self.image_version,
        }


@dataclass
class Report:
    """Every decision of one check, and the problems that belong to no single decision."""

    now: datetime
    decisions: list[Decision]
    problems: list[str]

    def count(self, action: str) -> int:
        """How many decisions took `action`."""
        return sum(1 for d in self.decisions if d.action == action)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "now": _iso(self.now),
            "summary": {a: self.count(a) for a in (RETRAIN, KEEP, WAIT, SKIP)},
            "decisions": [d.to_dict() for d in self.decisions],
            "problems": list(self.problems),
        }


# -- versions ---------------------------------------------------------------------------------------
def parse_version(tag: str | None) -> Version | None:
    """A version from a recorded model version (`1.2.3` or `v1.2.3`), None when it is missing or not semver."""
    if not tag:
        return None
    try:
        return versioning.parse_version(tag)
    except MlopsError:
        return None


def newest_release(tags: Iterable[str]) -> tuple[str | None, list[str]]:
    """The newest release among image tags (pre-releases never trigger retraining) and the tags that are not
    versions, with why (`mlops.versioning.scan_tags` decides, as it does when publishing)."""
    scan = versioning.scan_tags(tags)
    latest = scan.latest_release
    bad = [f"'{tag}'" for tag in scan.ignored] + [f"'{tag}' ({why})" for tag, why in scan.invalid]
    return (str(latest) if latest else None), bad


# -- the policy -------------------------------------------------------------------------------------
@dataclass
class _History:
    last_success: Execution | None = None
    active: list[Execution] = field(default_factory=list)
    count: int = 0


def _histories(executions: Iterable[Execution]) -> dict[TenantModel, _History]:
    out: dict[TenantModel, _History] = {}
    floor = datetime.min.replace(tzinfo=timezone.utc)
    for ex in executions:
        hist = out.setdefault((ex.tenant, ex.model), _History())
        hist.count += 1
        if ex.active:
            hist.active.append(ex)
        elif ex.succeeded and (hist.last_success is None or (ex.finished_at or floor) > (hist.last_success.finished_at or floor)):
            hist.last_success = ex
    return out


def last_trained(executions: Iterable[Execution]) -> dict[TenantModel, datetime]:
    """When each tenant x model's last successful training (the one the policy ages) ended, where recorded."""
    return {key: hist.last_success.finished_at for key, hist in _histories(executions).items()
            if hist.last_success is not None and hist.last_success.finished_at is not None}


@dataclass(frozen=True)
class ModelState:
    """What is known about one tenant x model when its policy is applied."""

    history: _History
    newest_image: str | None
    newest_data: datetime | None
    drift: DriftReading | None
    package: Package | None
    bucket_hint: str


def decide(tenant: TenantInfo, model: str, policy: Policy, state: ModelState, now: datetime) -> Decision:
    """Apply `policy` to one tenant x model."""
    last = state.history.last_success
    problems: list[str] = []
    trained_at = last.finished_at if last else None
    if last is not None and trained_at is None:
        problems.append(f"training {last.execution_id} succeeded but recorded no timestamps; its age is unknown")
    if trained_at is None and last is None and state.package is not None and state.package.created_at:
        trained_at = state.package.created_at
        problems.append(f"model package {state.package.group} v{state.package.version} has no training in the ledger "
                        "(registered outside the platform?); its age is taken from the registry")
    live = last.model_version if last else None
    if last is not None and parse_version(live) is None:
        what = f"version '{live}', which is not semver" if live else "no model version"
        problems.append(f"training {last.execution_id} recorded {what}; the new-image check is skipped")
    age = (now - trained_at).total_seconds() / 86400 if trained_at else None
    common = {"live_version": live, "package_version": state.package.version if state.package else None,
              "trained_at": trained_at, "age_days": age, "image_version": state.newest_image}

    if last is None and trained_at is None:
        reasons = _first_training(model, state)
    else:
        reasons = _triggers(policy, state, trained_at, age, live)
    if state.history.active:
        running = [Reason("running", f"build {ex.execution_id} is "
                          + ("queued or running" if statuses.normalize(ex.status) == statuses.ACTIVE_BUILD else ex.status.lower())
                          + (f" since {_iso(ex.started_at)}" if ex.started_at else "")) for ex in state.history.active]
        held = [Reason(r.code, f"(after it) {r.text}") for r in reasons if r.code != "not-ready"]
        return Decision(tenant.id, model, WAIT, tuple(running + held), tuple(problems), **common)
    if reasons and reasons[0].code == "not-ready":
        return Decision(tenant.id, model, SKIP, tuple(reasons), tuple(problems), **common)
    return Decision(tenant.id, model, RETRAIN if reasons else KEEP, tuple(reasons), tuple(problems), **common)


def _first_training(model: str, state: ModelState) -> list[Reason]:
    missing = []
    if state.newest_data is None:
        missing.append(f"no data under {state.bucket_hint}")
    if state.newest_image is None:
        missing.append(f"no released image of {model} in ECR")
    if missing:
        return [Reason("not-ready", "never trained: " + " and ".join(missing))]
    return [Reason("first-training", f"never trained; data since {_iso(state.newest_data)}, image {state.newest_image}")]


def _triggers(policy: Policy, state: ModelState, trained_at: datetime | None, age: float | None, live: str | None) -> list[Reason]:
    reasons = []
    if age is not None and age > policy.max_age_days:
        reasons.append(Reason("max-age", f"trained {age:.1f} days ago, "
                              f"max age {policy.max_age_days} days ({policy.max_age_source})"))
    live_version, newest = parse_version(live), parse_version(state.newest_image)
    if policy.on_new_image and live_version is not None and newest is not None and newest > live_version:
        reasons.append(Reason("new-image", f"image {state.newest_image} is newer than {live}, the live model's"))
    last = state.history.last_success
    taken = (last.data_watermark or last.started_at or trained_at) if last else trained_at
    if policy.on_new_data and state.newest_data is not None and taken is not None and state.newest_data > taken:
        reasons.append(Reason("new-data", f"data uploaded {_iso(state.newest_data)}, "
                              f"after the last training took its data ({_iso(taken)})"))
    drift = state.drift
    if policy.drift_threshold is not None and drift is not None and (trained_at is None or drift.at > trained_at):
        if drift.value >= policy.drift_threshold:
            reasons.append(Reason("drift", f"drift {drift.value:g} at {_iso(drift.at)} reached "
                                  f"the threshold {policy.drift_threshold:g} ({drift.source})"))
    return reasons


def check(
    tenants: Iterable[TenantInfo],
    platform_models: Sequence[str],
    inventory: Inventory,
    policies: Mapping[str, Any],
    now: datetime,
    names: Names,
) -> Report:
    """Decide for every tenant x model of the registry, and report what the registry does not know.

    `policies` maps a model to its `Retraining` from mlops.yaml (absent: the defaults).
    """
    by_id = {t.id: t for t in tenants}
    histories = _histories(inventory.executions)
    problems = list(inventory.problems)
    newest: dict[str, str | None] = {}
    for model in sorted(set(platform_models) | set(inventory.images)):
        newest[model], bad = newest_release(inventory.images.get(model, []))
        if bad:
            problems.append(f"ECR repository of {model}: tag(s) {', '.join(sorted(bad))} are not semantic versions and were ignored")
    groups: dict[str, TenantModel] = {}
    decisions = []
    for tenant in sorted(by_id.values(), key=lambda t: t.id):
        if not tenant.models:
            problems.append(f"tenant {tenant.id} is in the registry without any model")
        mine = []
        for model in tenant.models:
            group = names.model_package_group(tenant.id, model)
            groups[group] = (tenant.id, model)
            state = ModelState(
                history=histories.get((tenant.id, model), _History()),
                newest_image=newest.get(model),
                newest_data=inventory.data.get((tenant.id, model)),
                drift=inventory.drift.get((tenant.id, model)),
                package=inventory.packages.get(group),
                bucket_hint=f"s3://{names.tenant_bucket(tenant.id)}/{names.data_prefix(model)}",
            )
            if tenant.enabled:
                mine.append(decide(tenant, model, Policy.resolve(policies.get(model), tenant), state, now))
            else:
                mine.append(Decision(tenant.id, model, SKIP, (Reason("disabled", "tenant is disabled in the registry"),)))
        decisions.extend(mine)
    decisions.extend(_leftovers(by_id, platform_models, histories, inventory, groups, model_package_group_prefix(names)))
    return Report(now=now, decisions=decisions, problems=problems)


def _leftovers(  # pylint: disable=too-many-arguments  # the parts of one inventory, kept apart for reading
    by_id: Mapping[str, TenantInfo],
    platform_models: Sequence[str],
    histories: Mapping[TenantModel, _History],
    inventory: Inventory,
    groups: Mapping[str, TenantModel],
    prefix: str,
) -> list[Decision]:
    """Executions, packages and data of tenant x models the registry does not list: reported, never retrained."""
    found: dict[TenantModel, list[str]] = {}
    for key, hist in histories.items():
        found.setdefault(key, []).append(f"{hist.count} ledger record(s)")
    for group, package in inventory.packages.items():
        key = groups.get(group) or _split_group(group, prefix, platform_models)
        if key is not None:
            found.setdefault(key, []).append(f"model package group {group} (v{package.version})")
    for key in inventory.data:
        found.setdefault(key, []).append("data objects")
    out = []
    for (tenant_id, model), what in sorted(found.items()):
        tenant = by_id.get(tenant_id)
        if tenant is not None and model in tenant.models:
            continue
        why = (f"tenant {tenant_id} is not in the registry (deleted?)" if tenant is None
               else f"model {model} is not listed for tenant {tenant_id}")
        out.append(Decision(tenant_id, model, SKIP, (Reason("orphan", f"{why}; left: {', '.join(what)}"),),
                            ("clean up what is left, or add it back to the registry",)))
    return out


def _split_group(group: str, prefix: str, platform_models: Sequence[str]) -> TenantModel | None:
    """`<project>-<tenant>-<model>` of a tenant the registry does not know, by the model suffix."""
    if not group.startswith(prefix):
        return None
    rest = group[len(prefix):]
    for model in sorted(platform_models, key=len, reverse=True):
        if rest.endswith(f"-{model}") and len(rest) > len(model) + 1:
            return rest[: -len(model) - 1], model
    return None


# -- requests and rendering --------------------------------------------------------------------------
@dataclass(frozen=True)
class RetrainRequest:
    """What `--apply` hands to the trigger for one decision."""

    tenant: str
    model: str
    version: str | None  # the image version to train with (the newest release)
    reasons: tuple[str, ...]  # reason codes
    reason: str  # the reasons as one sentence, recorded in the ledger
    idempotency_key: str  # one request per tenant x model per day, even if the check runs twice


@dataclass(frozen=True)
class Submitted:
    """What the trigger did with one request."""

    tenant: str
    model: str
    result: str  # started | queued | duplicate (accepted) | rejected | failed
    execution_id: str | None = None
    detail: str | None = None

    @property
    def accepted(self) -> bool:
        """The trigger recorded the request (or had it already)."""
        return self.result not in {"rejected", "failed"}

    def summary(self) -> str:
        """`queued acme-churn-1a2b3c4d5e6f` or `rejected: why`."""
        return f"{self.result} {self.execution_id}" if self.accepted else f"{self.result}: {self.detail or 'no detail'}"


class BuildRequester(Protocol):
    """The port to the trigger: submit build requests through the normal admission path, all at once so an
    implementation can batch them (the trigger Lambda takes `{"requests": [...]}` in one invocation)."""

    def submit(self, requests: Sequence[RetrainRequest]) -> list[Submitted]:
        """One `Submitted` per request, in order; never raises for one bad request."""


def requests_for(report: Report) -> list[RetrainRequest]:
    """One build request per decision to retrain."""
    day = report.now.strftime("%Y-%m-%d")
    return [
        RetrainRequest(d.tenant, d.model, d.image_version, tuple(r.code for r in d.reasons),
                       ("retrain-check: " + "; ".join(r.text for r in d.reasons))[:512], f"retrain:{d.tenant}:{d.model}:{day}")
        for d in report.decisions if d.retrain
    ]


def render_markdown(report: Report, applied: Mapping[TenantModel, str] | None = None) -> str:
    """The report as Markdown (a CI artifact people read in the merge request or the pipeline)."""
    lines = [f"# Retraining check, {_iso(report.now)}", ""]
    lines.append(", ".join(f"{report.count(a)} {a}" for a in (RETRAIN, KEEP, WAIT, SKIP)))
    lines += ["", "| tenant | model | live version | age (days) | decision | reasons |", "| --- | --- | --- | --- | --- | --- |"]
    for d in report.decisions:
        text = "; ".join([r.text for r in d.reasons] + [f"⚠ {p}" for p in d.problems]) or "up to date"
        if applied and (d.tenant, d.model) in applied:
            text += f" → request {applied[(d.tenant, d.model)]}"
        age = "" if d.age_days is None else f"{d.age_days:.1f}"
        lines.append(f"| {d.tenant} | {d.model} | {d.live_version or ''} | {age} | {d.action} | {_md(text)} |")
    if report.problems:
        lines += ["", "## Problems", ""] + [f"- {_md(p)}" for p in report.problems]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
