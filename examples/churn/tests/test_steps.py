"""The processing and training scripts, end to end and on bad input, run as SageMaker would run them."""

from __future__ import annotations

import json
from pathlib import Path



def test_pipeline_writes_an_evaluation_that_passes_the_threshold(trained: dict[str, Path], contract: dict) -> None:
    report = json.loads(trained["evaluation"].read_text(encoding="utf-8"))
    threshold = contract["metric"]["threshold"]
    assert report["binary_classification_metrics"]["auc"]["value"] >= threshold
    assert 0 <= report["binary_classification_metrics"]["accuracy"]["value"] <= 1
    assert report["rows"] > 0


def test_preprocess_writes_three_sets_with_the_label_first(trained: dict[str, Path]) -> None:
    sizes = {}
    for name in ("train", "validation", "test"):
        header = (trained["base"] / "out" / name / f"{name}.csv").read_text(encoding="utf-8").splitlines()
        assert header[0].split(",")[0] == "churned"
        sizes[name] = len(header) - 1
    assert sizes["train"] > sizes["validation"] > 0 and sizes["test"] > 0


def test_training_records_its_inputs_and_string_hyperparameters_are_parsed(trained: dict[str, Path], tmp_path: Path, run_step) -> None:
    meta = json.loads((trained["model"] / "metadata.json").read_text(encoding="utf-8"))
    assert meta["target"] == "churned" and meta["hyperparameters"]["n_estimators"] == 60
    config = tmp_path / "config"
    config.mkdir()
    (config / "hyperparameters.json").write_text('{"n_estimators": "5", "learning_rate": "0.3"}', encoding="utf-8")
    done = run_step("train.py", {"SM_CHANNEL_TRAIN": str(trained["base"] / "out/train"), "SM_CHANNEL_VALIDATION": str(tmp_path / "none"),
                                 "SM_MODEL_DIR": str(tmp_path / "model"), "SM_INPUT_CONFIG_DIR": str(config), "SM_HPS": ""})
    assert done.returncode == 0, done.stderr
    params = json.loads((tmp_path / "model" / "metadata.json").read_text(encoding="utf-8"))["hyperparameters"]
    assert params["n_estimators"] == 5 and params["learning_rate"] == 0.3


def test_no_csv_files_is_a_one_line_error(tmp_path: Path, run_step) -> None:
    done = run_step("preprocess.py", {"MLOPS_PROCESSING_INPUT": str(tmp_path), "MLOPS_PROCESSING_OUTPUT": str(tmp_path / "out")})
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "no CSV files" in done.stderr


def test_missing_target_column_is_a_one_line_error(tmp_path: Path, run_step, customers) -> None:
    customers(100).drop(columns=["churned"]).to_csv(tmp_path / "data.csv", index=False)
    done = run_step("preprocess.py", {"MLOPS_PROCESSING_INPUT": str(tmp_path), "MLOPS_PROCESSING_OUTPUT": str(tmp_path / "out")},
                    "--target", "churned")
    assert done.returncode == 1 and "target column 'churned'" in done.stderr
    assert done.stderr.strip().count("\n") == 0


def test_bad_hyperparameter_and_missing_channel_fail_training(tmp_path: Path, run_step, customers) -> None:
    done = run_step("train.py", {"SM_CHANNEL_TRAIN": str(tmp_path / "absent"), "SM_MODEL_DIR": str(tmp_path / "m")})
    assert done.returncode == 1 and "no CSV files in the train channel" in done.stderr
    (tmp_path / "train").mkdir()
    customers(80).drop(columns=["customer_id"]).to_csv(tmp_path / "train" / "t.csv", index=False)
    done = run_step("train.py", {"SM_CHANNEL_TRAIN": str(tmp_path / "train"), "SM_MODEL_DIR": str(tmp_path / "m"),
                                 "SM_HPS": '{"n_estimators": "many"}'})
    assert done.returncode == 1 and "n_estimators" in done.stderr


def test_evaluate_without_a_model_fails_clearly(tmp_path: Path, run_step) -> None:
    done = run_step("evaluate.py", {"MLOPS_PROCESSING_MODEL": str(tmp_path), "MLOPS_PROCESSING_TEST": str(tmp_path),
                                    "MLOPS_PROCESSING_EVALUATION": str(tmp_path / "ev")})
    assert done.returncode == 1 and "no model.tar.gz" in done.stderr
