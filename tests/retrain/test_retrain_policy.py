"""The retraining policy as tables: each reason, combinations, tenant overrides, the running guard, bad data."""

from __future__ import annotations

import pytest
from retrain_support import NOW, ago, execution  # pylint: disable=import-error,wrong-import-order  # tests/retrain is on sys.path under pytest

from mlops.config.contract import Retraining
from mlops.retrain import Inventory, Package, TenantInfo, render_markdown, requests_for

DRIFTY = Retraining(drift_threshold=0.2)


@pytest.mark.parametrize(
    ("situation", "action", "codes"),
    [
        pytest.param({}, "keep", [], id="fresh-model-keeps"),
        pytest.param({"trained_days": 31}, "retrain", ["max-age"], id="older-than-default-30-days"),
        pytest.param({"trained_days": 29.9}, "keep", [], id="just-under-max-age"),
        pytest.param({"images": ("1.2.0", "1.3.0")}, "retrain", ["new-image"], id="newer-image-release"),
        pytest.param({"images": ("1.2.0", "1.3.0-mr.4.1")}, "keep", [], id="pre-release-image-does-not-count"),
        pytest.param({"images": ("1.1.0",)}, "keep", [], id="older-image-does-not-count"),
        pytest.param({"data_days": 1}, "retrain", ["new-data"], id="data-after-training"),
        pytest.param({"data_days": 5}, "keep", [], id="data-before-training"),
        pytest.param({"data_days": 2, "watermark_days": 1}, "keep", [], id="data-already-in-the-watermark"),
        pytest.param({"drift": 0.3, "retraining": DRIFTY}, "retrain", ["drift"], id="drift-over-threshold"),
        pytest.param({"drift": 0.2, "retraining": DRIFTY}, "retrain", ["drift"], id="drift-at-threshold"),
        pytest.param({"drift": 0.1, "retraining": DRIFTY}, "keep", [], id="drift-under-threshold"),
        pytest.param({"drift": 0.9}, "keep", [], id="drift-without-threshold-ignored"),
        pytest.param({"drift": 0.9, "drift_days": 5, "retraining": DRIFTY}, "keep", [], id="drift-of-the-previous-model"),
    ],
)
def test_each_reason(decide_one, situation, action, codes) -> None:
    decision = decide_one(**situation)
    assert decision.action == action
    assert [r.code for r in decision.reasons] == codes
    assert all(r.text for r in decision.reasons)


@pytest.mark.parametrize(
    ("situation", "codes"),
    [
        pytest.param({"trained_days": 40, "images": ("1.2.0", "2.0.0")}, ["max-age", "new-image"], id="age-and-image"),
        pytest.param({"trained_days": 40, "data_days": 1, "images": ("1.4.0",), "drift": 0.5, "retraining": DRIFTY},
                     ["max-age", "new-image", "new-data", "drift"], id="all-four"),
        pytest.param({"data_days": 1, "drift": 0.5, "retraining": DRIFTY}, ["new-data", "drift"], id="data-and-drift"),
    ],
)
def test_combinations_carry_every_reason(decide_one, situation, codes) -> None:
    decision = decide_one(**situation)
    assert decision.action == "retrain"
    assert [r.code for r in decision.reasons] == codes


@pytest.mark.parametrize(
    ("situation", "action"),
    [
        pytest.param({"trained_days": 20, "override": 14}, "retrain", id="tenant-shorter-max-age"),
        pytest.param({"trained_days": 40, "override": 60}, "keep", id="tenant-longer-max-age"),
        pytest.param({"trained_days": 20, "retraining": Retraining(max_age_days=10), "override": 60}, "keep",
                     id="override-beats-mlops-yaml"),
        pytest.param({"trained_days": 20, "retraining": Retraining(max_age_days=10)}, "retrain", id="mlops-yaml-max-age"),
        pytest.param({"images": ("1.3.0",), "retraining": Retraining(on_new_image=False)}, "keep", id="on-new-image-off"),
        pytest.param({"data_days": 1, "retraining": Retraining(on_new_data=False)}, "keep", id="on-new-data-off"),
    ],
)
def test_overrides_and_switches(decide_one, situation, action) -> None:
    assert decide_one(**situation).action == action


def test_override_is_named_in_the_reason(decide_one) -> None:
    (reason,) = decide_one(trained_days=20, override=14).reasons
    assert reason.text == "trained 20.0 days ago, max age 14 days (tenant override)"


@pytest.mark.parametrize("status", ["Queued", "admitted", "Executing", "RUNNING", "Stopping"])
def test_never_retrains_while_a_build_is_queued_or_running(decide_one, status) -> None:
    decision = decide_one(trained_days=40, data_days=1, running=status)
    assert decision.action == "wait"
    assert decision.reasons[0].code == "running"
    assert "ex-2" in decision.reasons[0].text
    assert [r.code for r in decision.reasons[1:]] == ["max-age", "new-data"]


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_a_finished_build_does_not_hold_back(decide_one, status) -> None:
    assert decide_one(trained_days=40, running=status).action == "retrain"


def test_a_failed_build_is_not_the_live_model(run_check) -> None:
    executions = [execution(days=40, version="1.0.0"), execution(days=1, version="1.2.0", status="Failed", execution_id="ex-9")]
    (decision,) = run_check([TenantInfo("acme", ("churn",))], Inventory(executions, {"churn": ["1.2.0"]})).decisions
    assert (decision.action, decision.live_version) == ("retrain", "1.0.0")
    assert [r.code for r in decision.reasons] == ["max-age", "new-image"]


@pytest.mark.parametrize(
    ("situation", "action", "code"),
    [
        pytest.param({"trained_days": None, "data_days": 2}, "retrain", "first-training", id="never-trained-with-data"),
        pytest.param({"trained_days": None}, "skip", "not-ready", id="never-trained-without-data"),
        pytest.param({"trained_days": None, "data_days": 2, "images": ()}, "skip", "not-ready", id="never-trained-without-image"),
        pytest.param({"trained_days": None, "data_days": 2, "running": "Queued"}, "wait", "running", id="first-build-queued"),
    ],
)
def test_first_training(decide_one, situation, action, code) -> None:
    decision = decide_one(**situation)
    assert (decision.action, decision.reasons[0].code) == (action, code)


# -- bad data ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [None, "", "latest"])
def test_model_without_a_version_is_reported(decide_one, version) -> None:
    decision = decide_one(trained_days=40, version=version, images=("1.3.0",))
    assert decision.action == "retrain"
    assert [r.code for r in decision.reasons] == ["max-age"]
    assert "new-image check is skipped" in decision.problems[0]


def test_tags_that_are_not_semver_are_reported_and_ignored(run_check) -> None:
    inventory = Inventory([execution()], {"churn": ["1.2.0", "latest", "1.3", "v1.4.0-rc.1"]})
    report = run_check([TenantInfo("acme", ("churn",))], inventory)
    assert report.decisions[0].action == "keep"
    (problem,) = report.problems
    assert "'latest'" in problem and "'1.3'" in problem and "churn" in problem


def test_tenant_without_any_model_and_without_trained_models(run_check) -> None:
    tenants = [TenantInfo("empty", ()), TenantInfo("fresh", ("churn",)), TenantInfo("acme", ("churn",))]
    report = run_check(tenants, Inventory([execution()], {"churn": ["1.2.0"]}))
    assert "tenant empty is in the registry without any model" in report.problems
    # A tenant not trained yet is no problem (a scheduled check exits 1 on problems): its decision says why it waits.
    assert not any("fresh" in problem for problem in report.problems)
    assert [(d.tenant, d.action) for d in report.decisions] == [("acme", "keep"), ("fresh", "skip")]
    assert report.decisions[1].reasons[0].text.startswith("never trained")


def test_deleted_tenant_with_models_left_is_reported_never_retrained(run_check, names) -> None:
    inventory = Inventory(
        executions=[execution(tenant="old-co", days=90), execution()],
        images={"churn": ["1.2.0"]},
        packages={names.model_package_group("old-co", "house-prices"): Package("mlops-demo-old-co-house-prices", 3, ago(90))},
        data={("old-co", "churn"): ago(1)},
    )
    report = run_check([TenantInfo("acme", ("churn",))], inventory)
    left = {(d.tenant, d.model): d for d in report.decisions if d.tenant == "old-co"}
    assert set(left) == {("old-co", "churn"), ("old-co", "house-prices")}
    assert all(d.action == "skip" and d.reasons[0].code == "orphan" for d in left.values())
    assert "not in the registry (deleted?); left: 1 ledger record(s), data objects" in left[("old-co", "churn")].reasons[0].text
    assert left[("old-co", "churn")].problems == ("clean up what is left, or add it back to the registry",)
    assert "model package group mlops-demo-old-co-house-prices (v3)" in left[("old-co", "house-prices")].reasons[0].text


def test_model_dropped_from_a_tenant_is_reported(run_check) -> None:
    report = run_check([TenantInfo("acme", ("churn",))], Inventory([execution(), execution(model="house-prices")], {}))
    (orphan,) = [d for d in report.decisions if d.model == "house-prices"]
    assert orphan.action == "skip" and "not listed for tenant acme" in orphan.reasons[0].text


def test_package_registered_outside_the_ledger(run_check, names) -> None:
    group = names.model_package_group("acme", "churn")
    inventory = Inventory(images={"churn": ["1.2.0"]}, packages={group: Package(group, 2, ago(45))})
    report = run_check([TenantInfo("acme", ("churn",))], inventory)
    (decision,) = report.decisions
    assert decision.action == "retrain" and decision.reasons[0].code == "max-age"
    assert decision.package_version == 2 and "registered outside the platform" in decision.problems[0]


def test_disabled_tenant_is_skipped(run_check) -> None:
    report = run_check([TenantInfo("acme", ("churn",), enabled=False)], Inventory([execution(days=90)], {"churn": ["2.0.0"]}))
    assert [(d.action, d.reasons[0].code) for d in report.decisions] == [("skip", "disabled")]


# -- outputs -------------------------------------------------------------------------------------------
def test_requests_markdown_and_json(run_check) -> None:
    tenants = [TenantInfo("acme", ("churn", "house-prices")), TenantInfo("globex", ("churn",), max_age_days=14)]
    inventory = Inventory([execution(days=1), execution(model="house-prices", days=2), execution(tenant="globex", days=20)],
                          {"churn": ["1.2.0"], "house-prices": ["1.2.0"]}, data={("acme", "house-prices"): ago(0.5)})
    report = run_check(tenants, inventory)
    requests = requests_for(report)
    assert [(r.tenant, r.model, r.reasons) for r in requests] == [
        ("acme", "house-prices", ("new-data",)), ("globex", "churn", ("max-age",))]
    assert requests[0].idempotency_key == "retrain:acme:house-prices:2026-06-01" and requests[0].version == "1.2.0"
    markdown = render_markdown(report, {("globex", "churn"): "req-1"})
    row = "| globex | churn | 1.2.0 | 20.0 | retrain | trained 20.0 days ago, max age 14 days (tenant override) → request req-1 |"
    assert row in markdown
    data = report.to_dict()
    assert data["summary"] == {"retrain": 2, "keep": 1, "wait": 0, "skip": 0}
    assert data["now"] == NOW.isoformat().replace("+00:00", "Z")
