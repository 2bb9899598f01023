"""The GitLab CI files: GitLab's schema, the template conventions, keyless AWS access and the docs table.

Fast and offline: YAML is read and rendered with the default inputs by ci-templates/tools/citemplates.py;
only the schema check runs a subprocess (check-jsonschema with GitLab's bundled schema).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ci_helpers import CITEMPLATES, ROOT

TEMPLATES = CITEMPLATES.templates()
TEMPLATE_IDS = [t.path.name for t in TEMPLATES]
CI_FILES = CITEMPLATES.ci_files()
# `mlops` commands that call AWS; a job running one must carry an OIDC token and a role.
AWS_COMMAND = re.compile(r"\bmlops (version next|image publish|pipeline upsert|train|gate|deploy|retrain-check|infra)\b")
# Stage names are free text; every other string input is constrained.
FREE_TEXT_INPUT = re.compile(r"^stage(-.*)?$")


def _visible_jobs(config: dict) -> dict[str, dict]:
    return {k: v for k, v in config.items() if k not in CITEMPLATES.GLOBAL_KEYWORDS and not k.startswith(".")}


def _script(job: dict) -> str:
    return "\n".join(str(line) for key in ("before_script", "script") for line in job.get(key) or [])


def test_every_ci_file_is_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in CI_FILES}
    assert {".gitlab-ci.yml", "templates/model-repo.yml", "ci-templates/mlops-pipeline.yml", "ci-templates/mlops-tenants.yml",
            "ci-templates/mlops-retrain.yml", "ci-templates/mlops-base.yml", "examples/churn/.gitlab-ci.yml"} <= names


def test_every_ci_file_validates_against_gitlab_schema() -> None:
    result = CITEMPLATES.schema_check(CI_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_an_unknown_keyword_and_a_bad_input_type(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("spec:\n  inputs:\n    x:\n      type: strng\n      default: a\n      description: x\n---\n"
                   "job:\n  stage: $[[ inputs.x ]]\n  script: [echo]\n  bogus: 1\n", encoding="utf-8")
    result = CITEMPLATES.schema_check([bad])
    assert result.returncode == 1
    assert "'bogus' was unexpected" in result.stdout
    assert "strng" in result.stdout


@pytest.mark.parametrize("template", TEMPLATES, ids=TEMPLATE_IDS)
def test_every_input_is_typed_described_and_has_a_default(template) -> None:
    for name, spec in template.inputs.items():
        assert spec.get("type") in {"string", "boolean", "number", "array"}, f"{name}: type"
        assert len(str(spec.get("description", ""))) >= 15, f"{name}: description"
        if "default" not in spec:  # required: only the model a repository builds has no sensible default
            assert (template.path.name, name) == ("model-repo.yml", "model"), f"{name}: default"
            continue
        default = spec["default"]
        expected = {"string": str, "boolean": bool, "number": (int, float), "array": list}[spec["type"]]
        assert isinstance(default, expected), f"{name}: default {default!r} is not a {spec['type']}"


@pytest.mark.parametrize("template", TEMPLATES, ids=TEMPLATE_IDS)
def test_constrained_inputs_have_options_or_a_regex_their_default_matches(template) -> None:
    for name, spec in template.inputs.items():
        if spec["type"] == "string" and not FREE_TEXT_INPUT.match(name):
            assert "options" in spec or "regex" in spec, f"{name}: needs options or regex"
        if "regex" in spec and "default" in spec:
            assert re.fullmatch(spec["regex"], spec["default"]), f"{name}: default does not match its regex"
        if "options" in spec:
            assert spec["default"] in spec["options"], f"{name}: default is not one of the options"
        if spec["type"] == "boolean":
            assert name.endswith("-enabled"), f"{name}: feature switches are named *-enabled"


@pytest.mark.parametrize("template", TEMPLATES, ids=TEMPLATE_IDS)
def test_every_input_is_used_and_every_use_is_declared(template) -> None:
    assert template.used_inputs() == set(template.inputs)


# Hidden jobs that `!reference` points at: fixed names, since GitLab does not interpolate inputs inside a
# `!reference` tag. They hold no input, so two includes with two prefixes define them identically.
FIXED_HIDDEN_JOBS = {".mlops-python-setup", ".mlops-aws-login", ".mlops-tenant-guard", ".mlops-deploy-script",
                     ".mlops-source-fetch"}
PREFIXED_TEMPLATES = [t for t in TEMPLATES if t.path.name != ".gitlab-ci.yml"]


@pytest.mark.parametrize("template", PREFIXED_TEMPLATES, ids=[t.path.name for t in PREFIXED_TEMPLATES])
def test_templates_have_a_job_prefix_and_stage_inputs_and_no_global_keywords(template) -> None:
    assert "job-prefix" in template.inputs
    jobs = template.jobs({"job-prefix": "zz"})
    assert not set(jobs) & (CITEMPLATES.GLOBAL_KEYWORDS - {"include"}), "no global keywords in a template"
    for name, job in jobs.items():
        if name != "include" and name not in FIXED_HIDDEN_JOBS:
            assert name.startswith(("zz-", ".zz-")), f"job {name} ignores the job-prefix input"
        if name in FIXED_HIDDEN_JOBS:
            assert "$[[" not in yaml.safe_dump(job), f"{name} has a fixed name, so it may hold no input"
    for name, job in _visible_jobs(jobs).items():
        if "stage" not in job:  # a generated per-tenant job: its stage comes from the hidden job it extends
            assert str(job.get("extends", "")).startswith(".zz-"), f"{name}: no stage"
            continue
        stage = str(job.get("stage", ""))
        assert re.fullmatch(r"\$\[\[ inputs\.stage(-[a-z]+)? \]\]", _raw_stage(template, name)), f"{name}: stage {stage}"


def _raw_stage(template, job_name: str) -> str:
    prefix_free = job_name.removeprefix("zz-")
    block = re.search(r"^\$\[\[ inputs\.job-prefix \]\]-" + re.escape(prefix_free) + r":\n((?:[ #].*\n|\n)*)",
                      template.body, re.MULTILINE)
    assert block, job_name
    stage = re.search(r"^  stage: (.+)$", block.group(1), re.MULTILINE)
    assert stage, f"{job_name}: no stage"
    return stage.group(1).strip()


def test_no_latest_or_untagged_image_anywhere(pipeline) -> None:
    for path in CI_FILES:
        assert ":latest" not in path.read_text(encoding="utf-8"), path
    for template in TEMPLATES:
        for name, spec in template.inputs.items():
            if name.endswith("image"):
                assert re.fullmatch(r"[^\s:]+(:\d+)?/?[^\s:]*:[^\s:]*\d[^\s:]*", spec["default"]), spec["default"]
                assert re.fullmatch(spec["regex"], "registry.example.com/ci/python@sha256:" + "0" * 64), \
                    f"{name}: an image pinned by digest is accepted"
    images = {job["image"]["name"] if isinstance(job["image"], dict) else job["image"]
              for job in pipeline.values() if isinstance(job, dict) and "image" in job}
    assert images
    for image in images:
        assert re.search(r":[^:/]*\d[^:/]*$", image), f"image {image} is not pinned by version"


def test_every_job_that_calls_aws_has_an_oidc_token_and_a_role_of_its_purpose(pipeline) -> None:
    aws_jobs = {name: job for name, job in _visible_jobs(pipeline).items() if AWS_COMMAND.search(_script(job))}
    assert {"mlops-version", "mlops-image", "mlops-pipeline", "mlops-train-acme", "mlops-deploy-staging-acme",
            "mlops-deploy-production-globex", "mlops-retrain-check", "infra-plan", "infra-apply"} <= set(aws_jobs)
    audiences = {}
    for name, job in aws_jobs.items():
        token = (job.get("id_tokens") or {}).get("MLOPS_ID_TOKEN")
        assert token and token.get("aud"), f"{name} calls AWS without id_tokens"
        role = job["variables"]["MLOPS_AWS_ROLE_ARN"]
        purpose = token["aud"].rsplit("-", 1)[1]
        if purpose == "deploy":
            # One deploy role per environment and tenant; its trust needs the job's protected environment of
            # that tier in the token's sub (docs/security.md), so the environment and the role must agree.
            tier = job["environment"]["deployment_tier"]
            assert job["environment"]["name"].startswith(f"{tier}/"), f"{name}: environment {job['environment']}"
            assert role == f"${{MLOPS_AWS_DEPLOY_ROLE_PREFIX}}{tier}-${{MLOPS_TENANT}}", f"{name}: {tier} but role {role}"
        else:
            assert role == f"$MLOPS_AWS_ROLE_ARN_{purpose.upper()}", f"{name}: audience {token['aud']} but role {role}"
        assert "MLOPS_LOCAL" in _script(job), f"{name}: no local (MLOPS_LOCAL=1) path"
        audiences[name] = purpose
    assert audiences["mlops-deploy-production-acme"] == "deploy"
    assert audiences["infra-apply"] == "infra"
    assert audiences["mlops-train-globex"] == "train"


def test_no_aws_key_or_personal_token_anywhere() -> None:
    files = [*CI_FILES, ROOT / "ci-templates" / "tools" / "citemplates.py", ROOT / "docs" / "ci.md"]
    for path in files:
        text = path.read_text(encoding="utf-8")
        # Defining or reading a static key (`unset` of one is fine: it keeps the web identity in charge).
        assert not re.search(r"(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)\s*[:=]", text), path
        assert not re.search(r"\$\{?(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)", text), path
        assert not re.search(r"PRIVATE[-_]TOKEN|glpat-|GITLAB_TOKEN|PERSONAL_ACCESS_TOKEN", text), path
    source_job = CITEMPLATES.resolve_pipeline(ROOT / ".gitlab-ci.yml")["mlops-source"]
    assert '--header "JOB-TOKEN: $CI_JOB_TOKEN"' in "\n".join(source_job["script"])


def test_workflow_separates_the_three_modes(pipeline) -> None:
    modes = {rule.get("variables", {}).get("MLOPS_MODE") for rule in pipeline["workflow"]["rules"]}
    assert modes == {"model", "schedule", "self", "release", None}
    model_rule = CITEMPLATES.Template.read(ROOT / ".gitlab-ci.yml").jobs({"model": "churn"})["workflow"]["rules"][0]
    # Model mode comes from the trigger's input, never from a variable another project could set.
    assert model_rule["if"] == '$CI_PIPELINE_SOURCE == "pipeline" && "churn" != ""'
    assert model_rule["auto_cancel"] == {"on_new_commit": "none"}, "a push to ml-ops never cancels a model build"


def test_model_jobs_have_needs_and_are_interruptible_except_deployments(pipeline) -> None:
    for name, job in _visible_jobs(pipeline).items():
        if not name.startswith("mlops-") or name == "mlops-retrain-check":
            continue
        assert all('$CI_PIPELINE_SOURCE == "pipeline" && "" != ""' in rule["if"] for rule in job["rules"]), name
        assert job["variables"]["MLOPS_MODEL"] == "" and job["variables"]["MLOPS_TENANTS"] == "all", name
        deploy = "-deploy-" in name
        assert job.get("interruptible") is (not deploy), name
        if name not in ("mlops-source", "mlops-report"):  # the report waits for the train stage as a whole
            assert job.get("needs"), f"{name} has no needs"


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_deployments_are_manual_per_tenant_with_a_resource_group_per_tenant_and_model(pipeline, environment) -> None:
    for tenant in ("acme", "globex"):
        job = pipeline[f"mlops-deploy-{environment}-{tenant}"]
        assert job["variables"]["MLOPS_TENANT"] == tenant
        assert [rule.get("when") for rule in job["rules"]] == ["manual"]
        assert job["environment"]["deployment_tier"] == environment
        assert job["environment"]["name"] == f"{environment}/$MLOPS_TENANT-$MLOPS_MODEL"
        assert "$MLOPS_TENANT" in job["resource_group"] and "$MLOPS_MODEL" in job["resource_group"]
        assert "parallel" not in job
        assert "mlops deploy" in _script(job), "deploy runs the gate first"
        assert '${MLOPS_GATE_FORCE:+--force --reason "$MLOPS_GATE_FORCE"}' in _script(job)
        needed = {need["job"] if isinstance(need, dict) else need: need for need in job["needs"]}
        if environment == "staging":
            # This tenant's training only, not every tenant's.
            assert [n for n in needed if "-train" in n] == [f"mlops-train-{tenant}"]
            assert job["artifacts"]["reports"]["dotenv"] == "staged.env"
            assert 'MLOPS_STAGED_VERSION=$MODEL_VERSION' in "\n".join(job["after_script"])
        else:
            # This tenant's staging only, with its result (a failed allow_failure job counts as passed for needs).
            assert needed[f"mlops-deploy-staging-{tenant}"] == {"job": f"mlops-deploy-staging-{tenant}", "artifacts": True}
            assert [n for n in needed if "-staging" in n] == [f"mlops-deploy-staging-{tenant}"]
            assert '"${MLOPS_STAGED_VERSION:-}" != "$MODEL_VERSION"' in _script(job)
            assert '"${MLOPS_MODEL_BRANCH:-}" != "${MLOPS_MODEL_DEFAULT_BRANCH:-}"' in _script(job), "releases only"


def test_training_keeps_each_tenants_result_and_the_report_job_reports_them_all(pipeline) -> None:
    train, report = pipeline["mlops-train-acme"], pipeline["mlops-report"]
    assert train["artifacts"]["when"] == "always" and train["artifacts"]["paths"] == ["evaluation/"]
    assert '--wait --json > "evaluation/$MLOPS_TENANT.json"' in _script(train)
    assert "mlops report evaluation" in _script(train), "the evaluation shows in the train job's log"
    # The report runs after every training (its stage comes after theirs; no `needs`, so any number of
    # tenants), also after a failed one, needs no AWS, and publishes GitLab's metrics report.
    assert report["rules"][-1]["when"] == "always"
    assert "needs" not in report
    stages = pipeline["stages"]
    assert stages.index(report["stage"]) == stages.index(train["stage"]) + 1
    assert "id_tokens" not in report
    assert report["environment"] == {"name": "mlops/mr-note", "action": "access"}, "the MR-note token's scope"
    assert report["artifacts"]["reports"]["metrics"] == "metrics.txt"
    assert "--metrics metrics.txt" in _script(report) and "--mr-note" in _script(report)
    assert "MLOPS_MR_NOTE_TOKEN" not in _script(report), "the token is read from the environment, never passed"


def test_the_per_tenant_jobs_are_generated_from_the_registry(pipeline) -> None:
    registry = CITEMPLATES.registry_tenants()
    committed = (ROOT / "ci-templates" / "mlops-tenants.yml").read_text(encoding="utf-8")
    assert committed == CITEMPLATES.tenant_jobs(registry), "run: python ci-templates/tools/citemplates.py tenants"
    for tenant in registry:
        for kind in ("train", "deploy-staging", "deploy-production"):
            assert f"mlops-{kind}-{tenant}" in pipeline
    assert max(len(job.get("needs") or []) for job in _visible_jobs(pipeline).values()) <= 50


def test_model_repo_template_packages_and_triggers_with_inputs_only() -> None:
    template = next(t for t in TEMPLATES if t.path.name == "model-repo.yml")
    jobs = template.jobs({"model": "churn"})
    trigger = jobs["mlops-trigger"]
    assert trigger["trigger"]["strategy"] == "depend"
    assert trigger["trigger"]["project"] == template.inputs["mlops-project"]["default"]
    assert trigger["trigger"]["inputs"] == {"model": "churn", "tenants": "all"}
    assert "variables" not in trigger and trigger["inherit"] == {"variables": False}
    # ml-ops declares exactly these inputs
    assert set(trigger["trigger"]["inputs"]) == set(CITEMPLATES.Template.read(ROOT / ".gitlab-ci.yml").inputs)
    package = jobs["mlops-package"]
    assert package["variables"]["GIT_DEPTH"] == "0"
    assert package["image"]["entrypoint"] == [""]
    script = _script(package)
    assert "packages/generic/mlops-model-source/$CI_PIPELINE_ID" in script
    # every line the package's request file holds is a line ml-ops' source job accepts
    source = _script(CITEMPLATES.resolve_pipeline(ROOT / ".gitlab-ci.yml")["mlops-source"])
    for key in re.findall(r'echo "(MLOPS_[A-Z_]+)=', script):
        assert f"{key}=" in source, key


def test_the_example_model_repo_needs_at_most_ten_lines() -> None:
    path = ROOT / "examples" / "churn" / ".gitlab-ci.yml"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert len(lines) <= 10
    include = yaml.safe_load(path.read_text(encoding="utf-8"))["include"][0]
    assert include["file"] == "templates/model-repo.yml"
    template = next(t for t in TEMPLATES if t.path.name == "model-repo.yml")
    assert set(include["inputs"]) <= set(template.inputs)
    for name, value in include["inputs"].items():
        assert re.fullmatch(template.inputs[name]["regex"], str(value)), name


def test_the_generated_inputs_table_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "ci-inputs.md").read_text(encoding="utf-8")
    assert committed == CITEMPLATES.inputs_table(), "run: python ci-templates/tools/citemplates.py docs"
    for template in TEMPLATES:
        for name in template.inputs:
            assert f"`{name}`" in committed


def test_the_inputs_table_names_variable_fallbacks() -> None:
    table = CITEMPLATES.inputs_table()
    assert "| `lint-fail-under` / `MLOPS_LINT_FAIL_UNDER` |" in table
    assert "| `source-dir` / `MLOPS_SOURCE_DIR` |" in table


def test_the_upgrade_schedule_runs_make_lock_and_make_test_and_never_the_retraining_check(pipeline) -> None:
    """`make lock && make test` on a schedule of its own (MLOPS_SELF_UPGRADE=true), which starts no retraining."""
    upgrade = pipeline["self-upgrade"]
    assert upgrade["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule" && $MLOPS_SELF_UPGRADE == "true"'}]
    assert upgrade["script"][0] == "make lock" and any(line.startswith("make test") for line in upgrade["script"])
    assert upgrade["allow_failure"] is True and "lock-diff.patch" in upgrade["artifacts"]["paths"]
    # the override keeps the included job whole and only narrows when it runs
    retrain = pipeline["mlops-retrain-check"]
    assert retrain["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule" && $MLOPS_SELF_UPGRADE != "true"'}]
    assert "mlops retrain-check" in " ".join(retrain["script"]) and retrain["stage"] == "retrain"


def test_jobs_install_ml_ops_from_its_locks_only(pipeline) -> None:
    """Without a prepared environment a job installs exactly uv.lock, as `make venv` does (docs/dependencies.md)."""
    script = "\n".join(pipeline[".mlops-python"]["before_script"])
    assert "--require-hashes" in script and ".ci/locks/uv.txt" in script
    assert "uv\" sync --locked" in script and "--extra examples --extra dev" in script
    for path in CI_FILES:
        assert "$CI_PROJECT_DIR[" not in path.read_text(encoding="utf-8"), f"{path}: installs ml-ops from ranges"
