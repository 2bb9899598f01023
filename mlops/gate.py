"""The deployment gate: may a challenger model version replace the champion serving a tenant?

Pure logic over plain data (no AWS, no boto3). The deploy use case (`mlops.deploys`, over `mlops.aws.endpoints`) reads both model
packages' evaluation metrics and the metric rule from `mlops.yaml`; this module decides. A challenger
goes out only if it meets the metric's registration threshold and is at least `min_improvement` better
than the champion in the metric's direction (so a regression that still passes the fixed threshold does
not ship). The first deployment for a tenant has no champion. `force` deploys anyway; who forced it and
why become part of the decision, which the caller records in the ledger.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from mlops.errors import MlopsError

# Float metrics read back from JSON differ in the last bits; "equal" must stay equal.
_TOLERANCE = 1e-9

Outcome = Literal["deploy", "first-deployment", "refuse", "forced", "unchanged"]


@dataclass(frozen=True)
class MetricRule:
    """The metric that decides, as `mlops.yaml` states it (see `mlops.config.contract.Metric`)."""

    name: str
    direction: Literal["maximize", "minimize"]
    min_improvement: float = 0.0
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise MlopsError(f"metric direction '{self.direction}' is neither maximize nor minimize", "fix metric.direction in mlops.yaml")
        if self.min_improvement < 0 or math.isnan(self.min_improvement):
            raise MlopsError(f"min_improvement {self.min_improvement} must be zero or positive", "fix metric.min_improvement in mlops.yaml")

    @classmethod
    def from_contract(cls, metric: object) -> "MetricRule":
        """Build from `ModelContract.metric` (or anything with the same attributes)."""
        return cls(
            name=getattr(metric, "name"),
            direction=getattr(metric, "direction"),
            min_improvement=float(getattr(metric, "min_improvement", 0.0) or 0.0),
            threshold=getattr(metric, "threshold", None),
        )

    def gain(self, challenger: float, champion: float) -> float:
        """How much better the challenger is (negative when worse), in the metric's direction."""
        return challenger - champion if self.direction == "maximize" else champion - challenger

    def meets_threshold(self, value: float) -> bool:
        """Whether `value` meets the registration threshold (always true when there is none).

        The one comparison with the threshold: the gate and the evaluation report both ask here.
        """
        if self.threshold is None:
            return True
        return value >= self.threshold - _TOLERANCE if self.direction == "maximize" else value <= self.threshold + _TOLERANCE

    def describe(self) -> str:
        """The threshold as a reader sees it: `>= 0.7`, `<= 12.5`, or `(no threshold)`."""
        if self.threshold is None:
            return "(no threshold)"
        return f"{'>=' if self.direction == 'maximize' else '<='} {self.threshold:g}"


@dataclass(frozen=True)
class Candidate:
    """One model version as the gate sees it: its version, package and evaluation metrics."""

    version: str
    metrics: dict[str, float] = field(default_factory=dict)
    package_arn: str | None = None

    def metric(self, name: str) -> float | None:
        """The metric's value, or None when the evaluation did not report it (or reported NaN)."""
        value = self.metrics.get(name)
        if value is None:
            return None
        value = float(value)
        return None if math.isnan(value) else value


@dataclass(frozen=True)
class Force:
    """An explicit override of the gate: who and why (both required, both recorded)."""

    actor: str
    reason: str

    def __post_init__(self) -> None:
        if not self.reason or not self.reason.strip():
            raise MlopsError("--force needs a reason", "add --reason 'why this version must go out'")
        if not self.actor or not self.actor.strip():
            raise MlopsError("--force needs to know who forces it", "set GITLAB_USER_LOGIN or USER")


@dataclass(frozen=True)
class Decision:
    """The gate's answer: deploy or not, the outcome, and reasons a person can read in a CI log."""

    deploy: bool
    outcome: Outcome
    reasons: list[str]
    metric: str
    direction: str
    challenger: Candidate
    champion: Candidate | None = None
    gain: float | None = None
    forced_by: str | None = None
    forced_reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        """Plain data for --json and the ledger."""
        return asdict(self)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _judge(challenger: Candidate, champion: Candidate | None, rule: MetricRule) -> tuple[bool, Outcome, list[str], float | None]:
    """The decision without an override."""
    value = challenger.metric(rule.name)
    if value is None:
        return False, "refuse", [f"challenger {challenger.version} has no '{rule.name}' in its evaluation: nothing to compare"], None
    reasons = []
    if not rule.meets_threshold(value):
        bound = "at least" if rule.direction == "maximize" else "at most"
        why = f"challenger {challenger.version}: {rule.name} {_fmt(value)} misses the threshold ({bound} {_fmt(rule.threshold or 0.0)})"
        return False, "refuse", [why], None
    if champion is None:
        why = f"no champion serves this tenant yet: first deployment of {challenger.version} ({rule.name} {_fmt(value)})"
        return True, "first-deployment", [why], None
    if champion.package_arn is not None and champion.package_arn == challenger.package_arn:
        return False, "unchanged", [f"{challenger.version} is already the champion serving this tenant"], 0.0
    best = champion.metric(rule.name)
    if best is None:
        why = f"champion {champion.version} has no '{rule.name}' in its evaluation: cannot compare (use --force with a reason)"
        return False, "refuse", [why], None
    gain = rule.gain(value, best)
    sense = "higher" if rule.direction == "maximize" else "lower"
    reasons.append(f"{rule.name} ({sense} is better): challenger {challenger.version} {_fmt(value)} "
                   f"vs champion {champion.version} {_fmt(best)}")
    if gain + _TOLERANCE >= rule.min_improvement:
        what = "as good as" if abs(gain) <= _TOLERANCE else "better than"
        reasons.append(f"challenger is {what} the champion (gain {_fmt(gain)} >= required {_fmt(rule.min_improvement)})")
        return True, "deploy", reasons, gain
    what = "worse than" if gain < -_TOLERANCE else "not enough better than"
    reasons.append(f"challenger is {what} the champion (gain {_fmt(gain)} < required {_fmt(rule.min_improvement)})")
    return False, "refuse", reasons, gain


def decide(challenger: Candidate, champion: Candidate | None, rule: MetricRule, force: Force | None = None) -> Decision:
    """Decide whether `challenger` replaces `champion` (None: nothing serves the tenant yet)."""
    deploy, outcome, reasons, gain = _judge(challenger, champion, rule)
    common = {"metric": rule.name, "direction": rule.direction, "challenger": challenger, "champion": champion, "gain": gain}
    if force is None or outcome == "unchanged":
        return Decision(deploy=deploy, outcome=outcome, reasons=reasons, **common)  # type: ignore[arg-type]
    reasons = [*reasons, f"forced by {force.actor}: {force.reason.strip()}" + ("" if deploy else " (the gate alone would have refused)")]
    return Decision(deploy=True, outcome="forced", reasons=reasons, forced_by=force.actor, forced_reason=force.reason.strip(), **common)  # type: ignore[arg-type]
