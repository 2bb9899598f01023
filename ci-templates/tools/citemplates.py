"""Read, render, check and document the GitLab CI files of ml-ops (`.gitlab-ci.yml`, `ci-templates/*.yml`).

A template is two YAML documents: the `spec:` header (typed inputs) and the jobs, which use
`$[[ inputs.NAME ]]`. GitLab's schema checker (`check-jsonschema --builtin-schema vendor.gitlab-ci`) reads one
document per file and does not know inputs, so `check` validates the header and the jobs rendered with
the default inputs (what GitLab sees when a project includes a template without inputs) as separate files.
`docs` writes the table of every input (docs/ci-inputs.md); `docs --check` fails when it is stale.

    python ci-templates/tools/citemplates.py check          # schema check of every CI file
    python ci-templates/tools/citemplates.py docs [--check] # write or verify docs/ci-inputs.md

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
            value = values.get(name, self.inputs[name].get("default"))
            if isinstance(value, (list, dict, bool)):
                return json.dumps(value)
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


def ci_files(root: Path = ROOT) -> list[Path]:
    """Every GitLab CI file of the project: its pipeline, the templates and the examples' includes."""
    files = [root / ".gitlab-ci.yml", *sorted((root / "ci-templates").glob("*.yml"))]
    files += sorted((root / "examples").glob("*/.gitlab-ci.yml"))
    return [f for f in files if f.is_file()]


def templates(root: Path = ROOT) -> list[Template]:
    """The templates under ci-templates/ (files with a `spec:` header)."""
    return [t for t in (Template.read(p) for p in sorted((root / "ci-templates").glob("*.yml"))) if t.spec is not None]


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
        "Every input of every template under `ci-templates/`. Give inputs in `include: inputs:`; where a",
        "variable is named, a CI/CD variable of that name overrides the input.",
    ]
    for template in templates(root):
        fallbacks = template.fallback_variables()
        lines += ["", f"## `ci-templates/{template.path.name}`", "", "| Input / Variable | Description | Default |",
                  "| --- | --- | --- |"]
        for name, spec in template.inputs.items():
            label = f"`{name}`" + (f" / `{fallbacks[name]}`" if name in fallbacks else "")
            description = str(spec.get("description", "")).replace("|", "\\|")
            if spec.get("options"):
                description += " One of: " + ", ".join(f"`{o}`" for o in spec["options"]) + "."
            lines.append(f"| {label} | {description} | {_cell(spec.get('default', ''))} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: `check` or `docs [--check]`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="validate every CI file against GitLab's CI schema (offline)")
    docs = sub.add_parser("docs", help="write docs/ci-inputs.md")
    docs.add_argument("--check", action="store_true", help="fail if docs/ci-inputs.md is not up to date")
    args = parser.parse_args(argv)
    if args.command == "check":
        files = ci_files()
        result = schema_check(files)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.returncode == 0:
            print(f"{len(files)} CI files valid: " + ", ".join(str(f.relative_to(ROOT)) for f in files))
        return result.returncode
    table = inputs_table()
    if args.check:
        if not DOCS_TABLE.is_file() or DOCS_TABLE.read_text(encoding="utf-8") != table:
            print(f"error: {DOCS_TABLE.relative_to(ROOT)} is stale: run python ci-templates/tools/citemplates.py docs",
                  file=sys.stderr)
            return 1
        print(f"{DOCS_TABLE.relative_to(ROOT)} is up to date")
        return 0
    DOCS_TABLE.write_text(table, encoding="utf-8")
    print(f"wrote {DOCS_TABLE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
