"""Lint a model repository with pylint and write a GitLab Code Quality report.

pylint runs as a subprocess (`python -m pylint`) in the model repository, so the model's code is never
imported into this process and pylint's global state starts fresh each time. Three reporters run at once:
text for the job log, `json2` for the score and counts this module reads, and pylint-gitlab's
`GitlabCodeClimateReporter` for the report GitLab shows in merge requests.

The rcfile is the model repository's own (`.pylintrc`, `pylintrc`, or `[tool.pylint...]` in
`pyproject.toml`) when it has one, else the platform default `mlops/resources/model.pylintrc`; `--rcfile`
overrides both. The run fails on any error or fatal message, or when the score is below `fail_under`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from mlops.errors import MlopsError

CODEQUALITY_REPORTER = "pylint_gitlab.GitlabCodeClimateReporter"
SKIP_DIRS = frozenset({".git", ".venv", "venv", "env", "__pycache__", ".tox", ".nox", "build", "dist", "node_modules",
                       ".mypy_cache", ".pytest_cache", ".mlops", "site-packages"})
# pylint's exit status is a bit field; 32 means it was called wrongly (bad rcfile, bad option).
_USAGE_ERROR = 32
_FATAL_OR_ERROR = 1 | 2


@dataclass
class LintResult:
    """The outcome of one lint run, as text, JSON and an exit status."""

    path: str
    rcfile: str
    rcfile_source: str
    files: int
    score: float | None
    fail_under: float
    counts: dict[str, int] = field(default_factory=dict)
    messages: list[dict] = field(default_factory=list)
    codequality: str | None = None
    passed: bool = True
    reason: str = ""

    def as_dict(self) -> dict:
        """Plain data for --json."""
        return asdict(self)


def default_rcfile() -> Path:
    """The platform's default pylintrc for model repositories (package data)."""
    return Path(str(resources.files("mlops") / "resources" / "model.pylintrc"))


def resolve_rcfile(repo: Path, explicit: Path | None = None) -> tuple[Path, str]:
    """The rcfile to use and where it came from: --rcfile, the model repository's own, or the default."""
    if explicit is not None:
        if not explicit.is_file():
            raise MlopsError(f"rcfile {explicit} not found", "fix --rcfile or leave it out to use the default")
        return explicit, "--rcfile"
    for name in (".pylintrc", "pylintrc"):
        if (repo / name).is_file():
            return repo / name, f"model repository ({name})"
    pyproject = repo / "pyproject.toml"
    if pyproject.is_file() and "[tool.pylint" in pyproject.read_text(encoding="utf-8", errors="replace"):
        return pyproject, "model repository (pyproject.toml)"
    return default_rcfile(), "platform default"


def python_files(root: Path) -> list[Path]:
    """Python files under `root` (relative to it), skipping virtual environments, caches and build output."""
    if root.is_file():
        return [Path(root.name)] if root.suffix == ".py" else []
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if not any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            found.append(rel)
    return found


def _write_empty_report(codequality: Path | None) -> None:
    if codequality is not None:
        codequality.parent.mkdir(parents=True, exist_ok=True)
        codequality.write_text("[]\n", encoding="utf-8")


def lint(path: Path, *, rcfile: Path | None = None, codequality: Path | None = None, fail_under: float = 8.0,
         echo=print) -> LintResult:  # type: ignore[no-untyped-def]
    """Run pylint on a model repository (or one file); `echo` receives pylint's text report."""
    if not path.exists():
        raise MlopsError(f"{path} does not exist", "pass the model repository folder (or a Python file)")
    if path.is_file() and path.suffix != ".py":
        raise MlopsError(f"{path} is not a Python file", "pass the model repository folder or a .py file")
    repo = path if path.is_dir() else path.parent
    rc, rc_source = resolve_rcfile(repo, rcfile)
    rc = rc.resolve()
    codequality = codequality.resolve() if codequality is not None else None
    result = LintResult(path=str(path), rcfile=str(rc), rcfile_source=rc_source, files=0, score=None,
                        fail_under=fail_under, codequality=str(codequality) if codequality else None)
    files = python_files(path)
    result.files = len(files)
    if not files:
        _write_empty_report(codequality)
        result.reason = f"no Python files under {path}: nothing to lint"
        return result
    with tempfile.TemporaryDirectory(prefix="mlops-lint-") as tmp:
        stats_file = Path(tmp) / "pylint.json"
        report = codequality or Path(tmp) / "codequality.json"
        report.parent.mkdir(parents=True, exist_ok=True)
        formats = f"text,json2:{stats_file},{CODEQUALITY_REPORTER}:{report}"
        cmd = [sys.executable, "-m", "pylint", f"--rcfile={rc}", f"--output-format={formats}", "--score=y",
               "--persistent=n", *[str(f) for f in files]]
        try:
            done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise MlopsError(f"pylint could not start: {exc}", "install the mlops package with its dependencies") from exc
        if done.stdout.strip():
            echo(done.stdout.rstrip())
        if done.returncode & _USAGE_ERROR or not stats_file.is_file():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise MlopsError(f"pylint could not run with rcfile {rc}: {' '.join(tail) or done.returncode}",
                             "fix the rcfile (or pass --rcfile) and retry")
        data = json.loads(stats_file.read_text(encoding="utf-8"))
        status = done.returncode
    stats = data.get("statistics", {})
    result.counts = {k: int(v) for k, v in stats.get("messageTypeCount", {}).items()}
    result.score = round(float(stats["score"]), 2) if stats.get("score") is not None else None
    result.messages = [
        {"path": m["path"], "line": m["line"], "column": m["column"], "id": m["messageId"], "symbol": m["symbol"],
         "type": m["type"], "message": m["message"]}
        for m in data.get("messages", [])
    ]
    # Messages about the configuration itself (a plugin that does not load) are missing from pylint's
    # counts and sometimes from its exit status, so count the messages themselves.
    blocking = sum(1 for m in result.messages if m["type"] in {"error", "fatal"}) or (1 if status & _FATAL_OR_ERROR else 0)
    if blocking:
        result.passed = False
        result.reason = f"{blocking} error/fatal message(s)"
    elif result.score is not None and result.score < fail_under:
        result.passed = False
        result.reason = f"score {result.score:.2f} is below --fail-under {fail_under:.2f}"
    else:
        result.reason = f"score {result.score:.2f}/10" if result.score is not None else "no score"
    return result
