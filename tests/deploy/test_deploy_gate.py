"""The deployment gate over a table of challenger/champion pairs (pure: no AWS)."""

from __future__ import annotations

import pytest

from mlops.errors import MlopsError
from mlops.gate import Candidate, Force, MetricRule, decide

AUC = MetricRule(name="auc", direction="maximize", min_improvement=0.0, threshold=0.7)
RMSE = MetricRule(name="rmse", direction="minimize", min_improvement=0.0, threshold=50.0)
AUC_STRICT = MetricRule(name="auc", direction="maximize", min_improvement=0.01, threshold=0.7)


def _c(version: str, **metrics: float) -> Candidate:
    return Candidate(version=version, metrics=metrics, package_arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/g/{version}")


@pytest.mark.parametrize(
    ("challenger", "champion", "rule", "deploy", "outcome", "says"),
    [
        pytest.param(_c("1.1.0", auc=0.91), _c("1.0.0", auc=0.88), AUC, True, "deploy", "better than", id="better-maximize"),
        pytest.param(_c("1.1.0", auc=0.88), _c("1.0.0", auc=0.88), AUC, True, "deploy", "as good as", id="equal-is-enough"),
        pytest.param(_c("1.1.0", auc=0.86), _c("1.0.0", auc=0.88), AUC, False, "refuse", "worse than", id="worse-maximize"),
        pytest.param(_c("1.1.0", rmse=11.0), _c("1.0.0", rmse=12.5), RMSE, True, "deploy", "better than", id="better-minimize"),
        pytest.param(_c("1.1.0", rmse=13.0), _c("1.0.0", rmse=12.5), RMSE, False, "refuse", "worse than", id="worse-minimize"),
        pytest.param(_c("1.1.0", auc=0.885), _c("1.0.0", auc=0.88), AUC_STRICT, False, "refuse", "not enough better",
                     id="below-min-improvement"),
        pytest.param(_c("1.1.0", auc=0.89), _c("1.0.0", auc=0.88), AUC_STRICT, True, "deploy", "better than",
                     id="exactly-min-improvement"),
        pytest.param(_c("1.1.0", auc=0.88), _c("1.0.0", auc=0.88), AUC_STRICT, False, "refuse", "not enough better",
                     id="equal-with-min-improvement"),
        pytest.param(_c("1.1.0", accuracy=0.9), _c("1.0.0", auc=0.88), AUC, False, "refuse", "has no 'auc'",
                     id="challenger-missing-metric"),
        pytest.param(_c("1.1.0", auc=0.9), _c("1.0.0", accuracy=0.8), AUC, False, "refuse", "champion 1.0.0 has no 'auc'",
                     id="champion-missing-metric"),
        pytest.param(_c("1.1.0", auc=float("nan")), _c("1.0.0", auc=0.8), AUC, False, "refuse", "has no 'auc'", id="nan-is-missing"),
        pytest.param(_c("1.0.0", auc=0.8), None, AUC, True, "first-deployment", "first deployment", id="first-deployment"),
        pytest.param(_c("1.0.0", auc=0.6), None, AUC, False, "refuse", "misses the threshold", id="first-below-threshold"),
        pytest.param(_c("1.0.0", rmse=60.0), _c("0.9.0", rmse=70.0), RMSE, False, "refuse", "at most 50", id="better-but-over-threshold"),
        pytest.param(_c("1.0.0", auc=0.9), _c("1.0.0", auc=0.9), AUC, False, "unchanged", "already the champion", id="same-version"),
    ],
)
def test_gate_table(challenger: Candidate, champion: Candidate | None, rule: MetricRule, deploy: bool, outcome: str, says: str) -> None:
    decision = decide(challenger, champion, rule)
    assert (decision.deploy, decision.outcome) == (deploy, outcome)
    assert any(says in reason for reason in decision.reasons), decision.reasons
    assert decision.forced_by is None


@pytest.mark.parametrize(
    ("challenger", "champion", "would"),
    [
        pytest.param(_c("1.1.0", auc=0.70), _c("1.0.0", auc=0.88), "would have refused", id="forced-over-worse"),
        pytest.param(_c("1.1.0", accuracy=0.9), _c("1.0.0", auc=0.88), "would have refused", id="forced-over-missing-metric"),
        pytest.param(_c("1.1.0", auc=0.95), _c("1.0.0", auc=0.88), "forced by alice", id="forced-but-better-anyway"),
    ],
)
def test_forced_deploys_and_says_who_and_why(challenger: Candidate, champion: Candidate, would: str) -> None:
    decision = decide(challenger, champion, AUC, Force(actor="alice", reason="hotfix for INC-42"))
    assert decision.deploy and decision.outcome == "forced"
    assert (decision.forced_by, decision.forced_reason) == ("alice", "hotfix for INC-42")
    assert "forced by alice: hotfix for INC-42" in decision.reasons[-1]
    assert any(would in r for r in decision.reasons)
    assert decision.as_dict()["forced_by"] == "alice"


def test_force_needs_a_reason_and_an_actor() -> None:
    with pytest.raises(MlopsError, match="needs a reason"):
        Force(actor="alice", reason="  ")
    with pytest.raises(MlopsError, match="who forces"):
        Force(actor="", reason="why not")


def test_rule_from_contract_and_bad_rules() -> None:
    from mlops.config.contract import Metric

    rule = MetricRule.from_contract(Metric(name="rmse", direction="minimize", threshold=40.0, min_improvement=0.5))
    assert rule == MetricRule(name="rmse", direction="minimize", min_improvement=0.5, threshold=40.0)
    assert rule.gain(challenger=10.0, champion=12.0) == 2.0
    with pytest.raises(MlopsError, match="neither maximize nor minimize"):
        MetricRule(name="auc", direction="up")  # type: ignore[arg-type]
    with pytest.raises(MlopsError, match="zero or positive"):
        MetricRule(name="auc", direction="maximize", min_improvement=-0.1)


def test_gate_imports_no_aws() -> None:
    import subprocess
    import sys

    code = "import sys, mlops.gate; print(any(m.split('.')[0] in ('boto3', 'botocore', 'sagemaker') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
