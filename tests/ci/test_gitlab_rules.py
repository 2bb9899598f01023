"""Rules of real GitLab that gitlab-ci-local does not enforce: it accepts, or runs differently, what GitLab refuses.

Each test runs one rule (a function over parsed YAML) on the current CI files and cites the GitLab documentation
page the rule comes from. Offline: ci-templates/tools/citemplates.py reads and resolves the files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_helpers import CITEMPLATES, ROOT

Jobs = dict[str, Any]
CI_FILES = CITEMPLATES.ci_files()
CI_FILE_IDS = [str(path.relative_to(ROOT)) for path in CI_FILES]
# Rule functions return their violations (empty: the rule holds); the numbers are those of the rules' docstrings.
MODEL_REPO = "templates/model-repo.yml"
# Images whose ENTRYPOINT is a program (terraform, checkov, curl, aws) rather than a shell.
PROGRAM_ENTRYPOINT = re.compile(r"(^|/)(hashicorp/terraform|bridgecrew/checkov|curlimages/curl|amazon/aws-cli)([:@]|$)")
MATRIX_EXPRESSION = re.compile(r"\$\[\[\s*matrix\.")
SOURCES_LOCAL_ENV = re.compile(r"^(?!\s*#).*?(?<![\w.])(?:\.|source)\s+\S*local/env", re.MULTILINE)
GITLAB_CI_GUARD = re.compile(r"GITLAB_CI\b.*(?:\n.*)?\bexit\s+[1-9]")
COMMENT_LINE = re.compile(r"^\s*#.*$", re.MULTILINE)


def body(path: Path) -> Any:
    """A CI file's jobs as GitLab loads them, before any interpolation (`!reference` kept as a tuple)."""
    return CITEMPLATES.load_yaml(CITEMPLATES.Template.read(path).body)


def resolve_included(folder: Path, local: str, inputs: dict[str, Any], root: Path = ROOT) -> Jobs:
    """A template as a project including it with `inputs` sees it: extends and `!reference` resolved."""
    wrapper = folder / "include.yml"
    wrapper.write_text(yaml.safe_dump({"include": [{"local": local, "inputs": inputs}]}), encoding="utf-8")
    return CITEMPLATES.resolve_pipeline(wrapper, root)


def _walk(node: Any) -> Iterator[Any]:
    """Every node of a parsed CI file: the node, mapping keys and values, list items, `!reference` arguments."""
    yield node
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _walk(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _walk(item)


def _jobs(config: Jobs) -> Jobs:
    return {name: job for name, job in config.items()
            if name not in CITEMPLATES.GLOBAL_KEYWORDS and not str(name).startswith(".") and isinstance(job, dict)}


def _needs(job: Jobs) -> list[Jobs]:
    return [{"job": need} if isinstance(need, str) else need for need in job.get("needs") or []]


def _instances(job: Any) -> int:
    """How many jobs a (possibly `parallel`) job or need stands for."""
    parallel = job.get("parallel") if isinstance(job, dict) else None
    if isinstance(parallel, int):
        return parallel
    if isinstance(parallel, dict):
        return sum(math.prod(len(v) if isinstance(v, list) else 1 for v in entry.values()) for entry in parallel["matrix"])
    return 1


def reference_interpolations(parsed: Any) -> list[str]:
    """Rule 1: `!reference` arguments are not interpolated, so none may hold `$[[ ... ]]`."""
    return [f"!reference {node[1]}" for node in _walk(parsed)
            if isinstance(node, tuple) and node[:1] == ("!reference",) and "$[[" in str(node[1])]


def trigger_violations(jobs: Jobs) -> list[str]:
    """Rule 2: the trigger passes inputs (literal values), no variables, and forwards no pipeline variables."""
    triggers = {name: job for name, job in _jobs(jobs).items() if "trigger" in job}
    found = [] if triggers else ["no trigger job"]
    for name, job in triggers.items():
        trigger = job["trigger"] if isinstance(job["trigger"], dict) else {"project": job["trigger"]}
        inputs = trigger.get("inputs") or {}
        found += [f"{name}: trigger:inputs has no {key}" for key in ("model", "tenants") if key not in inputs]
        found += [f"{name}: trigger:inputs:{key} {value!r} is passed literally" for key, value in inputs.items() if "$" in str(value)]
        problems = {"variables:": "variables" in job,
                    "no inherit: {variables: false}": (job.get("inherit") or {}).get("variables") is not False,
                    "trigger:forward:pipeline_variables: true": (trigger.get("forward") or {}).get("pipeline_variables") is True}
        found += [f"{name}: {problem} (variables cross a trigger as pipeline variables)" for problem, yes in problems.items() if yes]
    return found


def pipeline_input_violations(spec: Jobs | None) -> list[str]:
    """Rule 3: the pipeline's own inputs (model, tenants, ...) are constrained and their defaults pass."""
    inputs = (spec or {}).get("inputs") or {}
    found = [f"no input {name} in the spec:inputs header" for name in ("model", "tenants") if name not in inputs]
    for name, item in inputs.items():
        item = item or {}
        if item.get("type", "string") == "boolean":
            continue
        if "regex" not in item and "options" not in item:
            found.append(f"{name}: neither regex nor options")
        elif "default" in item and not (re.fullmatch(item["regex"], str(item["default"])) if "regex" in item
                                        else item["default"] in item["options"]):
            found.append(f"{name}: default {item['default']!r} does not match its regex or options")
    return found


def entrypoint_violations(jobs: Jobs) -> list[str]:
    """Rule 4: an image whose entrypoint is a program runs the job script only with `entrypoint: [""]`."""
    found = []
    for name, job in _jobs(jobs).items():
        image = job.get("image")
        image_name = str(image.get("name") if isinstance(image, dict) else image or "")
        if PROGRAM_ENTRYPOINT.search(image_name) and not (isinstance(image, dict) and image.get("entrypoint") == [""]):
            found.append(f"{name}: image {image_name} without entrypoint: [\"\"]")
    return found


def matrix_expressions(parsed: Any) -> list[str]:
    """Rule 5: no `$[[ matrix.* ]]` (a feature-flagged beta GitLab.com does not run)."""
    return sorted({node for node in _walk(parsed) if isinstance(node, str) and MATRIX_EXPRESSION.search(node)})


def needs_violations(pipeline: Jobs) -> list[str]:
    """Rule 6: at most 50 needed jobs (parallel ones counted one by one); a per-tenant job needs one tenant's jobs."""
    jobs, found = _jobs(pipeline), []
    for name, job in jobs.items():
        needs = _needs(job)
        count = sum(_instances(need if "parallel" in need else jobs.get(need.get("job"))) for need in needs)
        if count > 50:
            found.append(f"{name} needs {count} jobs (GitLab's limit is 50)")
        if "MLOPS_TENANT" in str(job.get("parallel")):
            found += [f"{name} (per tenant) needs every instance of {need['job']}" for need in needs
                      if "parallel" not in need and _instances(jobs.get(need.get("job"))) > 1]
    return found


def staging_check_violations(pipeline: Jobs) -> list[str]:
    """Rule 7: a production job checks the staging result when the staging job may fail (allow_failure)."""
    jobs, found = _jobs(pipeline), []
    for name, job in jobs.items():
        if "deploy-production" not in name:
            continue
        staging = [need for need in _needs(job) if "staging" in str(need.get("job"))]
        if not staging:
            found.append(f"{name} needs no staging job")
        for need in staging:
            staged = jobs.get(need["job"], {})
            # allow_failure defaults to true for `when: manual`, to false for `when: manual` inside rules.
            explicit, rules = staged.get("allow_failure"), [r for r in staged.get("rules") or [] if r.get("when") != "never"]
            if not (any(r.get("allow_failure", explicit or False) for r in rules) if rules
                    else (explicit if explicit is not None else staged.get("when") == "manual")):
                continue
            if "MLOPS_STAGED_VERSION" not in str([job.get("before_script"), job.get("script")]):
                found.append(f"{name}: {need['job']} has allow_failure and the script does not check MLOPS_STAGED_VERSION")
            if not ((staged.get("artifacts") or {}).get("reports") or {}).get("dotenv"):
                found.append(f"{need['job']}: no artifacts:reports:dotenv for {name} to check")
            if need.get("artifacts") is False:
                found.append(f"{name}: needs {need['job']} with artifacts: false (its dotenv never arrives)")
    return found


def credential_violations(pipeline: Jobs) -> list[str]:
    """Rule 8: jobs running the model's own code have no id_tokens; only the report job gets the MR-note environment."""
    jobs = _jobs(pipeline)
    found = [f"{name}: id_tokens in a job that runs the model repository's code" for name, job in jobs.items()
             if name.endswith(("-test", "-lint")) and "id_tokens" in job]
    note = {name: job["environment"] for name, job in jobs.items() if "mlops/mr-note" in str(job.get("environment"))}
    if len(note) != 1 or not next(iter(note)).endswith("-report"):
        found.append(f"jobs with environment mlops/mr-note: {list(note)} (expected the report job only)")
    found += [f"{name}: no environment {{name: mlops/mr-note, action: access}}" for name, environment in note.items()
              if not isinstance(environment, dict) or (environment.get("name"), environment.get("action")) != ("mlops/mr-note", "access")]
    return found


def coverage_violations(pipeline: Jobs) -> list[str]:
    """Rule 9: the test job publishes a Cobertura coverage report."""
    tests = {name: job for name, job in _jobs(pipeline).items() if name.endswith("-test")}
    found = [] if tests else ["no *-test job"]
    for name, job in tests.items():
        report = ((job.get("artifacts") or {}).get("reports") or {}).get("coverage_report") or {}
        if report.get("coverage_format") != "cobertura" or not report.get("path"):
            found.append(f"{name}: no artifacts:reports:coverage_report (coverage_format: cobertura, path)")
    return found


def auto_cancel_violations(parsed: Any) -> list[str]:
    """Rule 10: the workflow rule that starts model mode never auto-cancels (a push to ml-ops would cancel builds)."""
    rules = [rule for rule in ((parsed or {}).get("workflow") or {}).get("rules") or []
             if rule.get("when") != "never" and ('"pipeline"' in str(rule.get("if")) or "inputs.model" in str(rule.get("if"))
                                                 or (rule.get("variables") or {}).get("MLOPS_MODE") == "model")]
    found = [] if rules else ["no workflow rule starts model mode"]
    found += [f"workflow rule {rule.get('if')!r}: no auto_cancel: {{on_new_commit: none}}" for rule in rules
              if (rule.get("auto_cancel") or {}).get("on_new_commit") != "none"]
    return found


def local_env_violations(parsed: Any) -> list[str]:
    """Rule 11: a script that sources `local/env` refuses first to run on GitLab (GITLAB_CI=true)."""
    found = []
    for node in _walk(parsed):
        text = COMMENT_LINE.sub("", node) if isinstance(node, str) else ""
        found += [match.group(0).strip() for match in SOURCES_LOCAL_ENV.finditer(text)
                  if not GITLAB_CI_GUARD.search(text[:match.start()])]
    return found


# What a trigger job (GitLab's "bridge") may hold: Entry::Bridge::ALLOWED_KEYS + Processable::PROCESSABLE_ALLOWED_KEYS
# (gitlabhq lib/gitlab/ci/config/entry/bridge.rb and processable.rb); anything else is "contains unknown keys".
BRIDGE_KEYS = frozenset({"trigger", "extends", "stage", "only", "except", "rules", "variables", "inherit",
                         "allow_failure", "when", "needs", "resource_group"})
COMPONENT_AT_COMMIT = re.compile(r"\$CI_SERVER_FQDN/\$CI_PROJECT_PATH/(?P<name>[a-z0-9-]+)@\$CI_COMMIT_SHA")


def bridge_violations(parsed: Any) -> list[str]:
    """Rule 12: a trigger job holds only the keywords GitLab accepts in a bridge job."""
    return [f"{name}: {sorted(set(job) - BRIDGE_KEYS)} in a trigger job" for name, job in _jobs(parsed or {}).items()
            if "trigger" in job and set(job) - BRIDGE_KEYS]


def component_test_violations(root: Path = ROOT) -> list[str]:
    """Rule 13: every component under templates/ is included at this commit by a child pipeline of ml-ops' own CI."""
    own = _jobs(body(root / ".gitlab-ci.yml"))
    children = {name: job["trigger"]["include"] for name, job in own.items()
                if isinstance(job.get("trigger"), dict) and "include" in job["trigger"]}
    found = [] if children else ["no job of .gitlab-ci.yml starts a child pipeline"]
    tested: set[str] = set()
    for name, include in children.items():
        if own[name]["trigger"].get("strategy") != "depend":
            found.append(f"{name}: no strategy: depend (a failing component test would not fail the pipeline)")
        child = body(root / str(include).lstrip("/"))
        rules = [r for r in ((child.get("workflow") or {}).get("rules") or []) if r.get("when") != "never"]
        if not any("parent_pipeline" in str(r.get("if")) for r in rules):
            found.append(f"{include}: no workflow rule for CI_PIPELINE_SOURCE == parent_pipeline")
        for entry in child.get("include") or []:
            match = COMPONENT_AT_COMMIT.fullmatch(str(entry.get("component", ""))) if isinstance(entry, dict) else None
            tested |= {match["name"]} if match else set()
    components = {path.stem for path in (root / "templates").glob("*.yml")}
    found += [f"component {name} is not included at $CI_COMMIT_SHA by a child pipeline" for name in sorted(components - tested)]
    return found


@pytest.fixture(scope="module")
def model_repo(tmp_path_factory: pytest.TempPathFactory) -> Jobs:
    """The component as a model repository includes it, with `model: churn`."""
    return resolve_included(tmp_path_factory.mktemp("model-repo"), MODEL_REPO, {"model": "churn"})


@pytest.mark.parametrize("path", CI_FILES, ids=CI_FILE_IDS)
def test_no_input_interpolation_inside_reference_tags(path: Path) -> None:
    """https://docs.gitlab.com/ci/inputs/ and https://docs.gitlab.com/ci/yaml/yaml_optimization/#reference-tags"""
    assert not reference_interpolations(body(path))


def test_the_model_trigger_passes_inputs_and_no_pipeline_variables(model_repo: Jobs) -> None:
    """https://docs.gitlab.com/ci/variables/#restrict-pipeline-variables, https://docs.gitlab.com/ci/yaml/#triggerinputs
    (values are passed literally, never expanded: gitlab-org/gitlab#528630)."""
    assert not trigger_violations(model_repo)


def test_the_pipelines_own_inputs_are_constrained_and_their_defaults_match() -> None:
    """https://docs.gitlab.com/ci/yaml/#specinputsregex (GitLab uses RE2; the regexes here are RE2-compatible)."""
    assert not pipeline_input_violations(CITEMPLATES.Template.read(ROOT / ".gitlab-ci.yml").spec)


def test_images_whose_entrypoint_is_a_program_override_it(pipeline: Jobs, model_repo: Jobs) -> None:
    """https://docs.gitlab.com/ci/docker/using_docker_images/#override-the-entrypoint-of-an-image"""
    assert not entrypoint_violations(pipeline) + entrypoint_violations(model_repo)


@pytest.mark.parametrize("path", CI_FILES, ids=CI_FILE_IDS)
def test_no_matrix_expressions(path: Path) -> None:
    """https://docs.gitlab.com/ci/yaml/matrix_expressions/ (beta behind the disabled flag ci_matrix_expressions)."""
    assert not matrix_expressions(body(path))


def test_needs_stay_within_fifty_jobs_and_per_tenant_jobs_need_their_own_tenant(pipeline: Jobs) -> None:
    """https://docs.gitlab.com/ci/yaml/#needs ("maximum of 50 jobs"; a need of a parallel job needs every instance)."""
    assert not needs_violations(pipeline)


def test_production_checks_the_staging_result_when_staging_may_fail(pipeline: Jobs) -> None:
    """https://docs.gitlab.com/ci/yaml/#allow_failure (jobs with allow_failure: true are considered successful)."""
    assert [name for name in _jobs(pipeline) if "deploy-production" in name]
    assert not staging_check_violations(pipeline)


def test_model_code_holds_no_credential_and_the_mr_note_token_comes_from_an_environment(pipeline: Jobs) -> None:
    """https://docs.gitlab.com/ci/environments/#limit-the-environment-scope-of-a-cicd-variable"""
    assert not credential_violations(pipeline)


def test_the_test_job_publishes_a_cobertura_coverage_report(pipeline: Jobs) -> None:
    """https://docs.gitlab.com/ci/yaml/artifacts_reports/#artifactsreportscoverage_report"""
    assert not coverage_violations(pipeline)


def test_model_builds_are_not_auto_cancelled_by_a_push_to_ml_ops() -> None:
    """https://docs.gitlab.com/ci/yaml/#workflowrulesauto_cancel"""
    assert not auto_cancel_violations(body(ROOT / ".gitlab-ci.yml"))


@pytest.mark.parametrize("path", CI_FILES, ids=CI_FILE_IDS)
def test_mlops_local_never_swaps_the_role_for_a_file_on_gitlab(path: Path) -> None:
    """https://docs.gitlab.com/ci/variables/predefined_variables/ (GITLAB_CI is true on GitLab's runners)."""
    assert not local_env_violations(body(path))


@pytest.mark.parametrize("path", CI_FILES, ids=CI_FILE_IDS)
def test_trigger_jobs_hold_only_the_keywords_of_a_bridge(path: Path) -> None:
    """https://docs.gitlab.com/ci/yaml/#trigger ("jobs with trigger can only use a limited set of keywords")."""
    assert not bridge_violations(body(path))


def test_every_component_is_tested_at_the_commit_in_a_child_pipeline() -> None:
    """https://docs.gitlab.com/ci/components/#test-the-component and
    https://docs.gitlab.com/ci/pipelines/downstream_pipelines/#parent-child-pipelines"""
    assert not component_test_violations()
