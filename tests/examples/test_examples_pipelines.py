"""The example model repositories, end to end under the container contract, on generated tenant data.

Fast tests run the steps in this process (the scripts are loaded from their files and their paths come
from the environment); the slow ones run them as subprocesses the way the local pipeline engine does,
for two tenants each, plus a deliberately worse dataset and the repositories' own test suites.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODELS = ("churn", "house-prices")
TENANTS = ("acme", "globex")


@pytest.fixture(name="inference")
def inference_fixture(load_script):
    """inference(model): the example's inference module."""
    return lambda model: load_script(EXAMPLES / model / "src" / "inference.py", f"examples_{model.replace('-', '_')}_inference")


def _round_trip(module, model_dir: Path, test_csv: Path, target: str) -> list[dict]:
    """Send the test rows (label removed) to the inference functions as CSV and as JSON; both must agree."""
    loaded = module.model_fn(str(model_dir))
    rows = pd.read_csv(test_csv).drop(columns=[target]).head(5)
    as_csv = module.input_fn(rows.to_csv(index=False, header=False), "text/csv")
    as_json = module.input_fn(json.dumps({"instances": json.loads(rows.to_json(orient="records"))}), "application/json")
    from_csv = json.loads(module.output_fn(module.predict_fn(as_csv, loaded), "application/json"))["predictions"]
    from_json = json.loads(module.output_fn(module.predict_fn(as_json, loaded), "application/json"))["predictions"]
    assert from_csv == from_json and len(from_csv) == 5
    return from_csv


@pytest.mark.parametrize("model", MODELS)
def test_contracts_are_valid_and_differ(contracts, model: str) -> None:
    contract = contracts[model]
    assert contract.model == model and contract.project == "mlops-demo" and contract.target
    assert {c.metric.direction for c in contracts.values()} == {"maximize", "minimize"}
    assert contract.hyperparameters and contract.requirements == "requirements.txt"


@pytest.mark.parametrize("model", MODELS)
def test_steps_in_process_pass_the_threshold_and_serve(model: str, workspace, datagen, load_script, inference,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    space = workspace(model)
    datagen.write(datagen.generate(model, "acme", rows=400), space.root / "raw" / "drop.csv")
    space.write_hyperparameters()
    for key, value in {**space.env, "SM_HPS": ""}.items():
        monkeypatch.setenv(key, value)
    scripts = {step: load_script(space.script(step), f"examples_{model.replace('-', '_')}_{step}")
               for step in ("preprocess", "train", "evaluate")}
    assert scripts["preprocess"].main(space.step_args()) == 0
    assert scripts["train"].main() == 0
    space.package()
    assert scripts["evaluate"].main(space.step_args("evaluate")) == 0
    assert space.contract.metric.passes(space.metric())
    _round_trip(inference(model), Path(space.env["SM_MODEL_DIR"]), Path(space.env["MLOPS_PROCESSING_TEST"]) / "test.csv",
                space.contract.target)


@pytest.mark.parametrize("model", MODELS)
def test_inference_features_match_what_training_saw(model: str, datagen, inference) -> None:
    module = inference(model)
    features = list(getattr(module, "FEATURES", getattr(module, "COLUMNS", ())))
    generated = datagen.generate(model, "globex", rows=5).columns
    assert set(features) <= set(generated) and datagen.TARGETS[model] not in features


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("body", ["", "1,2,3", '{"instances": [{"nothing": 1}]}', "[1, 2]"])
def test_malformed_requests_raise_value_error(model: str, body: str, inference) -> None:
    module = inference(model)
    kind = "text/csv" if not body.startswith(("{", "[")) else "application/json"
    with pytest.raises(ValueError):
        module.input_fn(body, kind)


@pytest.mark.parametrize("model", MODELS)
def test_bad_input_data_is_one_line_on_stderr(model: str, workspace, datagen, load_script, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    space = workspace(model)
    for key, value in space.env.items():
        monkeypatch.setenv(key, value)
    preprocess = load_script(space.script("preprocess"), f"examples_{model.replace('-', '_')}_preprocess_bad")

    def run() -> int:
        try:
            return preprocess.main(space.step_args())
        except SystemExit as stop:
            return int(stop.code or 0)

    assert run() == 1 and "no CSV files" in capsys.readouterr().err
    datagen.generate(model, "acme", rows=60).drop(columns=[space.contract.target]).to_csv(space.root / "raw" / "d.csv", index=False)
    assert run() == 1
    err = capsys.readouterr().err
    assert f"target column '{space.contract.target}'" in err and err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.parametrize("tenant", TENANTS)
@pytest.mark.parametrize("model", MODELS)
def test_subprocess_pipeline_per_tenant(model: str, tenant: str, workspace, datagen, inference) -> None:
    space = workspace(model)
    datagen.write(datagen.generate(model, tenant), space.root / "raw" / datagen.file_name(model, tenant, 0))
    report = space.pipeline()
    metric = space.contract.metric
    value = space.metric()
    print(f"{model}/{tenant}: {metric.name}={value:.4f} rows={report['rows']} "
          + " ".join(f"{step}={seconds:.2f}s" for step, seconds in space.times.items()))
    assert metric.passes(value), f"{model}/{tenant}: {metric.name}={value} misses {metric.threshold}"
    predictions = _round_trip(inference(model), Path(space.env["SM_MODEL_DIR"]), Path(space.env["MLOPS_PROCESSING_TEST"]) / "test.csv",
                              space.contract.target)
    assert predictions


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_a_noisy_data_drop_makes_a_worse_challenger(model: str, workspace, datagen) -> None:
    space = workspace(model)
    datagen.write(datagen.generate(model, "acme", seed=5, noise=1.0), space.root / "raw" / "noisy.csv")
    metric = space.contract.metric
    space.pipeline()
    value = space.metric()
    assert not metric.passes(value), f"{model}: shuffled labels still give {metric.name}={value}"


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_a_bad_hyperparameter_fails_training_with_one_line(model: str, workspace, datagen) -> None:
    space = workspace(model)
    datagen.write(datagen.generate(model, "globex", rows=200), space.root / "raw" / "d.csv")
    assert space.run("preprocess", *space.step_args()).returncode == 0
    name = next(iter(space.contract.hyperparameters))
    space.write_hyperparameters({name: "not-a-number"})
    done = space.run("train")
    assert done.returncode == 1 and name in done.stderr and done.stderr.count("\n") == 1
    assert name in (space.root / "output" / "failure").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_the_example_repository_own_tests_pass(model: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=EXAMPLES / model,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
