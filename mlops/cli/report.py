"""`mlops report evaluation`: the evaluation of a build for the job log, GitLab's metrics report and the MR.

Wiring only: reads the files `mlops train --wait --json` wrote (one per tenant, named `<tenant>.json`),
renders them with `mlops.report`, writes the OpenMetrics file for `artifacts:reports:metrics`, and with
--mr-note posts the report on the upstream model repository's merge request. The note needs a project
or group access token in MLOPS_MR_NOTE_TOKEN (never an option: options show in process lists and logs);
a note that cannot be posted prints one line why and never fails the command.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from mlops.cli.output import emit, error_data, info, json_option
from mlops.errors import MlopsError

TOKEN_VARIABLE = "MLOPS_MR_NOTE_TOKEN"


@click.group()
def report() -> None:
    """Reports of a build: the evaluation per tenant, for people, GitLab and the merge request."""


def _files(paths: tuple[Path, ...]) -> list[Path]:
    """The result files: each file given, and every *.json in each folder given."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(path.glob("*.json"))
        elif path.is_file():
            files.append(path)
        else:
            raise MlopsError(f"{path} does not exist", "pass the files (or the folder) `mlops train --wait --json` wrote")
    return files


def _rule(repo: Path | None) -> Any:
    if repo is None:
        return None
    from mlops.config.contract import load_contract
    from mlops.gate import MetricRule

    return MetricRule.from_contract(load_contract(repo).metric)


def _read(files: list[Path], model: str, version: str | None, tenant: str | None) -> tuple[list[Any], list[str]]:
    """(evaluations, problems): an unreadable file becomes a "no result" row and a problem line."""
    from mlops.report import Evaluation, parse_evaluation

    evaluations, problems = [], []
    for path in files:
        name = tenant if tenant and len(files) == 1 else path.stem
        try:
            evaluations.append(parse_evaluation(path.read_text(encoding="utf-8"), tenant=name, model=model, version=version))
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: {exc}")
            evaluations.append(Evaluation(name, model, version, "NoResult", failure_reason=f"{path.name} is unreadable: {exc}"))
    return evaluations, problems


def _note(body: str, project: str | None, iid: str | None, api_url: str | None) -> dict[str, Any]:
    """Post the note when everything it needs is there; {"posted": bool, "detail": one line}."""
    from mlops.report import NoteError, note_target, post_merge_request_note

    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        return {"posted": False, "detail": f"{TOKEN_VARIABLE} is not set (a masked project or group access token enables it)"}
    target = note_target(project, iid)
    if isinstance(target, str):
        return {"posted": False, "detail": target}
    if not api_url:
        return {"posted": False, "detail": "CI_API_V4_URL is not set (GitLab sets it in every job)"}
    try:
        answer = post_merge_request_note(api_url, target[0], target[1], token, body)
    except NoteError as exc:
        return {"posted": False, "detail": str(exc)}
    return {"posted": True, "detail": f"note {answer.get('id', '?')} on merge request !{target[1]} of project {target[0]}"}


@report.command("evaluation")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--model", envvar="MLOPS_MODEL", required=True, help="Model name [MLOPS_MODEL].")
@click.option("--version", "version", envvar="MODEL_VERSION", help="Model version, where a result does not name it [MODEL_VERSION].")
@click.option("--tenant", help="Tenant of a single result file (default: the one in the file, else the file's name).")
@click.option("--repo", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Model repository: its mlops.yaml's metric threshold is shown against each result.")
@click.option("--metrics", "metrics_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write GitLab's metrics report (OpenMetrics text) to this file.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the merge-request note's Markdown to this file.")
@click.option("--mr-note", is_flag=True, help=f"Post the report on the upstream merge request (needs {TOKEN_VARIABLE}).")
@click.option("--mr-project", envvar="MLOPS_UPSTREAM_PROJECT_ID", help="Upstream project id [MLOPS_UPSTREAM_PROJECT_ID].")
@click.option("--mr-iid", envvar="MLOPS_MODEL_MR_IID", help="Upstream merge request iid [MLOPS_MODEL_MR_IID].")
@click.option("--gitlab-api", envvar="CI_API_V4_URL", help="GitLab REST API URL [CI_API_V4_URL].")
@json_option
def evaluation(  # pylint: disable=too-many-arguments,too-many-positional-arguments,too-many-locals  # CLI options
        paths: tuple[Path, ...], model: str, version: str | None, tenant: str | None, repo: Path | None,
        metrics_path: Path | None, markdown_path: Path | None, mr_note: bool, mr_project: str | None,
        mr_iid: str | None, gitlab_api: str | None, as_json: bool) -> None:
    """Report the training results of a build (files of `mlops train --wait --json`, or folders of them)."""
    from mlops.report import markdown_note, openmetrics, text_report

    rule = _rule(repo)
    evaluations, problems = _read(_files(paths), model, version, tenant)
    if metrics_path:
        metrics_path.write_text(openmetrics(evaluations), encoding="utf-8")
    body = markdown_note(evaluations, rule, {"ml-ops pipeline": os.environ.get("CI_PIPELINE_URL", "")})
    if markdown_path:
        markdown_path.write_text(body, encoding="utf-8")
    note = _note(body, mr_project, mr_iid, gitlab_api) if mr_note and evaluations else None
    data = {"evaluations": [asdict(e) | {"registered": e.registered} for e in evaluations],
            "metrics_file": str(metrics_path) if metrics_path else None, "merge_request_note": note, "problems": problems}
    failure = MlopsError(f"{len(problems)} result file(s) unreadable: {problems[0]}",
                         "pass the files `mlops train --wait --json` wrote") if problems else None
    if failure is not None and as_json:  # one document on stdout: the evaluations and the error
        data |= error_data(type(failure).__name__, failure.message, failure.hint, failure.exit_code)

    def render(_: dict[str, Any]) -> None:
        click.echo(text_report(evaluations, rule), nl=False)
        if metrics_path:
            info(f"metrics report: {metrics_path}")
        if note is not None:
            info(f"merge-request note: {'posted, ' if note['posted'] else 'not posted: '}{note['detail']}")

    emit(data, as_json, render)
    if failure is not None and as_json:
        info(f"error: {failure.one_line()}")
        raise SystemExit(failure.exit_code)
    if failure is not None:
        raise failure
