"""Read, render, check and document the GitLab CI files of ml-ops (`.gitlab-ci.yml`, `ci-templates/*.yml`,
and the CI/CD Catalog component `templates/*.yml`).

A template is two YAML documents: the `spec:` header (typed inputs) and the jobs, which use
`$[[ inputs.NAME ]]`. GitLab's schema checker (`check-jsonschema --builtin-schema vendor.gitlab-ci`) reads one
document per file and does not know inputs, so `check` validates the header and the jobs rendered with
the default inputs (what GitLab sees when a project includes a template without inputs) as separate files.
`docs` writes the table of every input (docs/ci-inputs.md); `docs --check` fails when it is stale.

    python ci-templates/tools/citemplates.py check          # schema check of every CI file
    python ci-templates/tools/citemplates.py docs [--check] # write or verify docs/ci-inputs.md
    python ci-templates/tools/citemplates.py tenants [--check] # write or verify ci-templates/mlops-tenants.yml

This tool only reads YAML and runs check-jsonschema; it never talks to GitLab or AWS.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = ROOT / "ci-templates"
DOCS_TABLE = ROOT / "docs" / "ci-inputs.md"
TENANT_JOBS = ROOT / "ci-templates" / "mlops-tenants.yml"
INPUT_REF = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")
# The variable a setting falls back to is named in its description ("Variable MLOPS_X.") or in the job's
# `variables:` (MLOPS_X: $[[ inputs.x ]]).
VARIABLE_IN_DESCRIPTION = re.compile(r"Variable (MLOPS_[A-Z0-9_]+)")
VARIABLE_ASSIGNMENT = re.compile(r"^\s+(MLOPS_[A-Z0-9_]+):\s*\"?\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]\"?\s*$", re.MULTILINE)


class CiLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors  # PyYAML's loader hierarchy
    """A YAML loader that keeps GitLab's `!reference [job, key]` tags as ("!reference", [...]) tuples."""


def _reference(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[str, list[Any]]:
    return ("!reference", loader.construct_sequence(node))  # type: ignore[arg-type]


CiLoader.add_constructor("!reference", _reference)


def load_yaml(text: str) -> Any:
    """Parse one YAML document, keeping `!reference` tags."""
    return yaml.load(text, Loader=CiLoader)  # nosec B506 - CiLoader is a SafeLoader


@dataclass
class Template:
    """A CI file: its optional `spec:` header and its body (the jobs) as text."""

    path: Path
    spec: dict[str, Any] | None
    body: str
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> "Template":
        """Split a CI file into header and body; a file without `spec:` is all body."""
        text = path.read_text(encoding="utf-8")
        parts = re.split(r"^---[ \t]*$", text, maxsplit=1, flags=re.MULTILINE)
        if len(parts) == 2 and "spec" in (load_yaml(parts[0]) or {}):
            spec = load_yaml(parts[0])["spec"] or {}
            return cls(path, spec, parts[1], dict(spec.get("inputs") or {}))
        return cls(path, None, text)

    def render(self, values: dict[str, Any] | None = None) -> str:
        """The body with every `$[[ inputs.NAME ]]` replaced by `values` or the input's default."""
        values = values or {}

        def value_of(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.inputs:
                raise KeyError(f"{self.path.name}: unknown input '{name}'")
            # A required input (no default) renders as an example value of its kind for the checks.
            value = values.get(name, self.inputs[name].get("default", f"example-{name}"))
            if isinstance(value, (list, dict, bool)):
                return json.dumps(value)
            # GitLab interpolates over loaded YAML: an empty input that is a whole value stays the string "".
            whole_value = match.string[:match.start()].endswith(": ") and match.string[match.end():].startswith("\n")
            if value == "" and whole_value:
                return '""'
            return str(value)

        return INPUT_REF.sub(value_of, self.body)

    def jobs(self, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """The rendered body as a mapping."""
        return load_yaml(self.render(values)) or {}

    def used_inputs(self) -> set[str]:
        """Names of the inputs the body refers to."""
        return set(INPUT_REF.findall(self.body))

    def fallback_variables(self) -> dict[str, str]:
        """input name -> the MLOPS_ variable that overrides it."""
        found = {name: var for var, name in VARIABLE_ASSIGNMENT.findall(self.body)}
        for name, spec in self.inputs.items():
            match = VARIABLE_IN_DESCRIPTION.search(str(spec.get("description", "")))
            if match:
                found.setdefault(name, match.group(1))
        return found


GLOBAL_KEYWORDS = frozenset({"default", "include", "stages", "variables", "workflow", "image", "services", "cache",
                             "before_script", "after_script", "spec"})


def _merge(base: Any, override: Any) -> Any:
    """GitLab's `extends` merge: hashes merge deeply, everything else (lists included) is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    return override


def _includes(config: dict[str, Any], root: Path) -> list[dict[str, Any]]:
    """The jobs of every local include, recursively, rendered with the given inputs."""
    jobs: list[dict[str, Any]] = []
    for entry in config.get("include") or []:
        entry = {"local": entry} if isinstance(entry, str) else entry
        if "local" not in entry:
            continue
        template = Template.read(root / entry["local"].lstrip("/"))
        included = template.jobs(entry.get("inputs"))
        jobs += _includes(included, root)
        jobs.append(included)
    return jobs


def _dereference(value: Any, jobs: dict[str, Any]) -> Any:
    """Replace `!reference [job, key, ...]` by what it points at (lists are spliced, as GitLab does)."""
    if isinstance(value, tuple) and value and value[0] == "!reference":
        target: Any = jobs
        for key in value[1]:
            target = target[key]
        return _dereference(target, jobs)
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            resolved = _dereference(item, jobs)
            if isinstance(item, tuple) and isinstance(resolved, list):
                out.extend(resolved)
            else:
                out.append(resolved)
        return out
    if isinstance(value, dict):
        return {k: _dereference(v, jobs) for k, v in value.items()}
    return value


def resolve_pipeline(path: Path, root: Path = ROOT) -> dict[str, Any]:
    """The merged configuration of a CI file: local includes, `extends` and `!reference` resolved.

    Global keywords stay at the top level; every other key is a job (hidden ones keep their dot).
    """
    config = Template.read(path).jobs()
    merged: dict[str, Any] = {}
    # GitLab merges included files and the including file like `extends`: a job defined again in the
    # including file overrides only the keys it names (docs: "Override included configuration values").
    for part in (*_includes(config, root), config):
        for key, value in part.items():
            if key != "include":
                merged[key] = _merge(merged[key], value) if key in merged else value
    jobs = {k: v for k, v in merged.items() if k not in GLOBAL_KEYWORDS}

    def expand(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        if name in seen:
            raise ValueError(f"extends loop: {' -> '.join((*seen, name))}")
        job = dict(jobs[name])
        parents = job.pop("extends", [])
        result: dict[str, Any] = {}
        for parent in [parents] if isinstance(parents, str) else parents:
            result = _merge(result, expand(parent, (*seen, name)))
        return _merge(result, job)

    resolved = {name: expand(name) for name in jobs}
    resolved = {name: _dereference(job, jobs) for name, job in resolved.items()}
    return {**{k: v for k, v in merged.items() if k in GLOBAL_KEYWORDS}, **resolved}


TEMPLATE_DIRS = ("templates", "ci-templates")


def template_files(root: Path = ROOT) -> list[Path]:
    """The catalog component(s) under templates/ and the ml-ops pipeline's own templates under ci-templates/."""
    return [path for folder in TEMPLATE_DIRS for path in sorted((root / folder).glob("*.yml"))]


def ci_files(root: Path = ROOT) -> list[Path]:
    """Every GitLab CI file of the project: its pipeline, the templates and the examples' includes."""
    files = [root / ".gitlab-ci.yml", *template_files(root)]
    files += sorted((root / "examples").glob("*/.gitlab-ci.yml"))
    return [f for f in files if f.is_file()]


def templates(root: Path = ROOT) -> list[Template]:
    """Every CI file with a `spec:` header: the pipeline's own inputs, the component, the templates."""
    paths = [root / ".gitlab-ci.yml", *template_files(root)]
    return [t for t in (Template.read(p) for p in paths if p.is_file()) if t.spec is not None]


def check_jsonschema() -> str:
    """The check-jsonschema executable next to this Python, or on PATH."""
    candidate = Path(sys.executable).with_name("check-jsonschema")
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("check-jsonschema")
    if not found:
        raise SystemExit("error: check-jsonschema is not installed (pip install check-jsonschema)")
    return found


def schema_check(files: list[Path]) -> subprocess.CompletedProcess[str]:
    """Validate CI files against GitLab's CI schema: templates as header + rendered body, offline."""
    with tempfile.TemporaryDirectory(prefix="ci-schema-") as tmp:
        targets = []
        for path in files:
            template = Template.read(path)
            name = path.relative_to(ROOT).as_posix().replace("/", "__") if path.is_relative_to(ROOT) else path.name
            body = Path(tmp) / f"{name}.body.yml"
            body.write_text(template.render(), encoding="utf-8")
            targets.append(body)
            if template.spec is not None:
                header = Path(tmp) / f"{name}.spec.yml"
                header.write_text(yaml.safe_dump({"spec": template.spec}, sort_keys=False), encoding="utf-8")
                targets.append(header)
        command = [check_jsonschema(), "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci",
                   *map(str, targets)]
        return subprocess.run(command, capture_output=True, text=True, check=False)


def _cell(value: Any) -> str:
    if isinstance(value, (list, dict)):
        value = ", ".join(map(str, value)) if isinstance(value, list) else json.dumps(value)
    elif isinstance(value, bool):
        value = str(value).lower()
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return f"`{text}`" if text else "_(empty)_"


def inputs_table(root: Path = ROOT) -> str:
    """Markdown: one section per template, one row per input (Input / Variable | Description | Default)."""
    lines = [
        "<!-- Generated by `python ci-templates/tools/citemplates.py docs`; do not edit by hand. -->",
        "# CI template inputs",
        "",
        "Every input of ml-ops' own pipeline (`.gitlab-ci.yml`, given by a model repository's `trigger:inputs`),",
        "of the component `templates/model-repo.yml` and of the templates under `ci-templates/`. Give inputs in",
        "`include: inputs:`; where a variable is named, a CI/CD variable of that name overrides the input. An",
        "input without a default is required.",
    ]
    for template in templates(root):
        fallbacks = template.fallback_variables()
        lines += ["", f"## `{template.path.relative_to(root).as_posix()}`", "", "| Input / Variable | Description | Default |",
                  "| --- | --- | --- |"]
        for name, spec in template.inputs.items():
            label = f"`{name}`" + (f" / `{fallbacks[name]}`" if name in fallbacks else "")
            description = str(spec.get("description", "")).replace("|", "\\|")
            if spec.get("options"):
                description += " One of: " + ", ".join(f"`{o}`" for o in spec["options"]) + "."
            default = _cell(spec["default"]) if "default" in spec else "_(required)_"
            lines.append(f"| {label} | {description} | {default} |")
    return "\n".join(lines) + "\n"


def registry_tenants(root: Path = ROOT) -> list[str]:
    """The ids of tenants/*.yaml, sorted."""
    return sorted(str(yaml.safe_load(p.read_text(encoding="utf-8"))["id"]) for p in (root / "tenants").glob("*.yaml"))


def tenant_jobs(tenants: list[str]) -> str:
    """ci-templates/mlops-tenants.yml: a training job and two manual deployments per tenant.

    Jobs of their own, not a `parallel:matrix`: GitLab's `needs` on a matrix job waits for all of it, and
    naming one matrix job from another matrix job needs matrix expressions (beta, off by default). Each job
    needs at most three jobs, far under GitLab's limit of 50, so the number of tenants is not capped by it.
    """
    lines = [
        "# Generated by `python ci-templates/tools/citemplates.py tenants` from tenants/*.yaml; do not edit by hand",
        "# (self-ci-files and the tests fail when it is stale). Included by mlops-pipeline.yml: per tenant, a training",
        "# job, a manual staging deployment that needs only that training, and a manual production deployment",
        "# that needs only that staging deployment.",
        "spec:",
        "  inputs:",
        "    job-prefix:",
        "      type: string",
        "      default: mlops",
        "      regex: ^[a-z][a-z0-9-]*$",
        "      description: Prefix of every job name (as in mlops-pipeline.yml).",
        "---",
    ]
    prefix = "$[[ inputs.job-prefix ]]"
    for tenant in tenants:
        lines += [
            f"{prefix}-train-{tenant}:",
            f"  extends: .{prefix}-train",
            "  needs:",
            f"    - {prefix}-source",
            f"    - {prefix}-image",  # its dotenv report holds MODEL_VERSION
            f"    - job: {prefix}-pipeline",
            "      artifacts: false",
            "  variables:",
            f"    MLOPS_TENANT: {tenant}",
            "",
            f"{prefix}-deploy-staging-{tenant}:",
            f"  extends: .{prefix}-deploy-staging",
            "  needs:",
            f"    - {prefix}-source",
            f"    - {prefix}-image",
            f"    - job: {prefix}-train-{tenant}",
            "      artifacts: false",
            "  variables:",
            f"    MLOPS_TENANT: {tenant}",
            "",
            f"{prefix}-deploy-production-{tenant}:",
            f"  extends: .{prefix}-deploy-production",
            "  needs:",
            f"    - {prefix}-source",
            f"    - {prefix}-image",
            f"    - job: {prefix}-deploy-staging-{tenant}",
            "      artifacts: true",
            "  variables:",
            f"    MLOPS_TENANT: {tenant}",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: `check`, `docs [--check]` or `tenants [--check]`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="validate every CI file against GitLab's CI schema (offline)")
    docs = sub.add_parser("docs", help="write docs/ci-inputs.md")
    docs.add_argument("--check", action="store_true", help="fail if docs/ci-inputs.md is not up to date")
    tenants = sub.add_parser("tenants", help="write ci-templates/mlops-tenants.yml from tenants/*.yaml")
    tenants.add_argument("--check", action="store_true", help="fail if ci-templates/mlops-tenants.yml is stale")
    args = parser.parse_args(argv)
    if args.command == "check":
        files = ci_files()
        result = schema_check(files)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.returncode == 0:
            print(f"{len(files)} CI files valid: " + ", ".join(str(f.relative_to(ROOT)) for f in files))
        return result.returncode
    target, text, how = ((TENANT_JOBS, tenant_jobs(registry_tenants()), "tenants") if args.command == "tenants"
                         else (DOCS_TABLE, inputs_table(), "docs"))
    if args.check:
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            print(f"error: {target.relative_to(ROOT)} is stale: run python ci-templates/tools/citemplates.py {how}",
                  file=sys.stderr)
            return 1
        print(f"{target.relative_to(ROOT)} is up to date")
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
