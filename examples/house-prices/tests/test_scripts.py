"""preprocess -> train -> evaluate under the container contract, and their one-line failures."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parents[1]


def test_evaluation_report_meets_the_contract_threshold(fitted) -> None:
    metric = yaml.safe_load((HERE / "mlops.yaml").read_text(encoding="utf-8"))["metric"]
    report = json.loads((fitted.path("MLOPS_PROCESSING_EVALUATION") / "evaluation.json").read_text(encoding="utf-8"))
    assert metric["direction"] == "minimize"
    assert report["regression_metrics"][metric["name"]]["value"] <= metric["threshold"]
    assert report["regression_metrics"]["r2"]["value"] > 0.8 and report["rows"] == 60


def test_string_hyperparameters_from_the_config_file_are_typed(fitted) -> None:
    meta = json.loads((fitted.path("SM_MODEL_DIR") / "metadata.json").read_text(encoding="utf-8"))
    assert meta["hyperparameters"] == {"alpha": 0.3, "log_target": True, "log_area": True}


def test_sm_hps_wins_over_the_file(fitted, container) -> None:
    done = container.run("train", SM_CHANNEL_TRAIN=str(fitted.path("SM_CHANNEL_TRAIN")), SM_HPS='{"alpha": 4, "log_target": false}')
    assert done.returncode == 0, done.stderr
    meta = json.loads((container.path("SM_MODEL_DIR") / "metadata.json").read_text(encoding="utf-8"))
    assert meta["hyperparameters"]["alpha"] == 4.0 and meta["hyperparameters"]["log_target"] is False


def test_empty_input_folder(container) -> None:
    done = container.run("preprocess")
    assert done.returncode == 1 and done.stderr.startswith("preprocess: no CSV files") and done.stderr.count("\n") == 1


def test_missing_price_column(container, sales) -> None:
    container.path("MLOPS_PROCESSING_INPUT").mkdir(parents=True)
    sales(50).drop(columns="price").to_csv(container.path("MLOPS_PROCESSING_INPUT") / "s.csv", index=False)
    done = container.run("preprocess", "--target", "price")
    assert done.returncode == 1 and "target column 'price'" in done.stderr and done.stderr.count("\n") == 1


def test_bad_hyperparameter(fitted, container) -> None:
    done = container.run("train", SM_CHANNEL_TRAIN=str(fitted.path("SM_CHANNEL_TRAIN")), SM_HPS='{"alpha": "lots"}')
    assert done.returncode == 1 and "alpha" in done.stderr


def test_evaluate_without_test_data(fitted, container) -> None:
    done = container.run("evaluate", MLOPS_PROCESSING_MODEL=str(fitted.path("MLOPS_PROCESSING_MODEL")))
    assert done.returncode == 1 and "no CSV files in the test folder" in done.stderr
