"""`make demo` end to end: the whole story on a fresh local AWS, through the real `mlops` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.terraform
def test_the_demo_tells_the_whole_story(tmp_path: Path) -> None:
    # No MLOPS_TF_PLUGIN_DIR: the demo finds the provider where Terraform would, as a new user's shell does.
    env = {key: value for key, value in os.environ.items() if key != "MLOPS_TF_PLUGIN_DIR"}
    env.update(MLOPS_STATE_DIR=str(tmp_path / "state"), MLOPS_ROOT=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "mlops.demo"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=1500, check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "Traceback" not in out
    for expected in (
        "published churn 0.1.0", "published churn 0.2.0",          # versions from conventional commits
        "gate for acme 0.3.0: refuse",                               # the worse challenger is refused
        "challenger is worse than the champion",
        "decided: retrain globex/churn (max-age)",                   # the stale tenant (14-day override, 15 days later)
        "decided: retrain acme/churn (new-data)",                    # acme's scheduled upload, left to the check
        "retraining requested: globex/churn", "retraining requested: acme/churn",
        "demo finished in",
        "local AWS stopped",
    ):
        assert expected in out, expected
    assert not (tmp_path / "state" / "local" / "state.json").exists()


@pytest.mark.parametrize(("running_before", "stopped"), [(True, False), (False, True)])
def test_the_demo_stops_only_a_local_aws_it_started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    running_before: bool, stopped: bool) -> None:
    # The stages up to the local AWS, then a failing step: what the demo does at its end, without running it all.
    from mlops import demo as demo_module
    from mlops.settings import Settings

    calls: list[tuple[str, ...]] = []

    def run(self: object, *args: str, **_: object) -> object:
        del self
        calls.append(args)
        return {"running": running_before} if args == ("local", "status") else {}

    def fail(self: object) -> None:
        raise demo_module.StepFailed("`mlops lint` exited with 1")

    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path))
    for name in ("registry_copy", "registry", "load_local_env"):
        monkeypatch.setattr(demo_module.Demo, name, lambda self: None)
    monkeypatch.setattr(demo_module.Demo, "run", run)
    monkeypatch.setattr(demo_module.Demo, "model_repo", fail)
    assert demo_module.run_demo(Settings.from_env()) == 1
    assert (("local", "down") in calls) is stopped
    assert ("local", "up") in calls


def test_the_demo_generates_and_uploads_data_only_for_the_model_it_builds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A registry with more models and tenants than the demo's example (say, one added with `mlops models add`):
    no data generator is asked for a model it does not know, and the demo says which models it leaves alone."""
    from mlops import demo as demo_module
    from mlops.settings import Settings

    scripts: list[tuple[str, ...]] = []
    uploads: list[tuple[str, str]] = []

    def python(self: object, *args: str) -> None:
        del self
        scripts.append(args)
        out = Path(args[args.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "data.csv").write_text("a,b\n1,2\n", encoding="utf-8")

    def put_data(self: object, tenant: str, model: str, csv: Path) -> dict[str, object]:
        del self
        uploads.append((tenant, model))
        return {"tenant": tenant, "model": model, "uri": f"s3://b/{csv.name}", "rows": 1}

    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(demo_module.Demo, "python", python)
    monkeypatch.setattr(demo_module.Demo, "put_data", put_data)
    monkeypatch.setattr(demo_module.Demo, "wait_for_builds", lambda self, count: [])
    demo = demo_module.Demo(Settings.from_env())
    demo.summary["tenants"] = [{"id": "acme", "models": ["churn", "house-prices", "fraud"]},
                               {"id": "initech", "models": ["fraud"]}, {"id": "globex", "models": ["churn"]}]
    demo.upload_data()
    assert [s[s.index("--model") + 1] for s in scripts] == ["churn", "churn"]
    assert uploads == [("acme", "churn"), ("globex", "churn")]
    assert "other models (fraud, house-prices) get no data or build here" in capsys.readouterr().out
