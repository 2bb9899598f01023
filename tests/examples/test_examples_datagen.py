"""The tenant data generator: one distinct, deterministic, learnable dataset per tenant and model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def test_each_tenant_gets_its_own_size_and_distribution(datagen) -> None:
    acme, globex = datagen.generate("churn", "acme"), datagen.generate("churn", "globex")
    assert len(acme) != len(globex)
    profiles = {t: datagen.profile(t, "churn") for t in ("acme", "globex", "initech")}
    assert len({p.base_rate for p in profiles.values()}) == 3 and len({p.level for p in profiles.values()}) == 3
    assert abs(acme["monthly_charges"].mean() - globex["monthly_charges"].mean()) > 1.0
    homes_a, homes_g = datagen.generate("house-prices", "acme"), datagen.generate("house-prices", "globex")
    assert abs(np.log(homes_a["price"].median() / homes_g["price"].median())) > 0.05


def test_same_arguments_same_data_new_seed_new_drop(datagen) -> None:
    first, again = datagen.generate("churn", "acme", rows=200, seed=1), datagen.generate("churn", "acme", rows=200, seed=1)
    pd.testing.assert_frame_equal(first, again)
    newer = datagen.generate("churn", "acme", rows=200, seed=2)
    assert not newer.equals(first) and list(newer.columns) == list(first.columns)
    assert datagen.file_name("churn", "acme", 2) != datagen.file_name("churn", "acme", 1)


def test_the_signal_is_real_and_noise_destroys_it(datagen) -> None:
    clean = datagen.generate("churn", "globex", rows=3000)
    shuffled = datagen.generate("churn", "globex", rows=3000, noise=1.0)
    assert clean["tenure_months"].corr(clean["churned"]) < -0.15
    assert abs(shuffled["tenure_months"].corr(shuffled["churned"])) < 0.06
    assert shuffled["churned"].sum() == clean["churned"].sum()  # a shuffle keeps the base rate
    homes = datagen.generate("house-prices", "acme", rows=2000)
    assert np.corrcoef(np.log(homes["sqft"]), np.log(homes["price"]))[0, 1] > 0.6


def test_shift_moves_the_numeric_features(datagen) -> None:
    base = datagen.generate("churn", "acme", rows=1000)
    drifted = datagen.generate("churn", "acme", rows=1000, shift=1.0)
    assert drifted["monthly_charges"].mean() - base["monthly_charges"].mean() > 10


def test_bad_arguments_are_refused(datagen) -> None:
    with pytest.raises(ValueError, match="noise"):
        datagen.generate("churn", "acme", noise=1.5)
    with pytest.raises(ValueError, match="unknown model"):
        datagen.generate("fraud", "acme")
    with pytest.raises(SystemExit) as exit_info:
        datagen.main(["--model", "churn", "--out", "x"])
    assert exit_info.value.code == 2


def test_cli_one_file_with_a_header(datagen, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert datagen.main(["--model", "house-prices", "--tenant", "globex", "--rows", "50", "--seed", "4",
                         "--out", str(tmp_path / "drop.csv")]) == 0
    frame = pd.read_csv(tmp_path / "drop.csv")
    assert len(frame) == 50 and "price" in frame.columns
    assert "drop.csv" in capsys.readouterr().out


def test_cli_all_writes_every_tenant_and_model_of_the_registry(datagen, registry_dir: Path, tmp_path: Path) -> None:
    (registry_dir / "tenants" / "initech.yaml").write_text(
        "id: initech\ndisplay_name: Initech\ntier: silver\nmodels: [house-prices]\n", encoding="utf-8")
    assert datagen.main(["--all", "--root", str(registry_dir), "--rows", "30", "--seed", "7", "--out", str(tmp_path / "out")]) == 0
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.csv"))
    assert written == [
        "acme/churn/churn-acme-seed7.csv", "acme/house-prices/house-prices-acme-seed7.csv",
        "globex/churn/churn-globex-seed7.csv", "initech/house-prices/house-prices-initech-seed7.csv",
    ]


def test_cli_all_with_a_broken_registry_is_one_line(datagen, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert datagen.main(["--all", "--root", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_home_value_data_is_numeric_with_the_label_first_and_a_signal(datagen) -> None:
    acme, globex = datagen.generate("home-value", "acme"), datagen.generate("home-value", "globex")
    assert list(acme.columns)[0] == datagen.TARGETS["home-value"] == "value"
    assert all(pd.api.types.is_numeric_dtype(acme[c]) for c in acme.columns)
    assert len(acme) != len(globex) and acme["value"].median() != globex["value"].median()
    assert acme["median_income"].corr(acme["value"]) > 0.5
