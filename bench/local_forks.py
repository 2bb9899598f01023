"""Count the places in business code that know about the local AWS (issue: stand-ins behind the AWS API).

The product should talk to AWS through boto3 only and never ask whether AWS is local: only the local AWS
itself (`mlops/local/`), the `mlops local` commands and the demo may. This prints every other place that
imports `mlops.local` or asks a local question (`local_engine_enabled`, `local_aws`, `MLOPS_LOCAL`,
`LocalStack`, `LocalEndpoints`, a loopback address), and their count.

    python bench/local_forks.py [--json]
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Where knowing the local AWS is the job.
ALLOWED = ("mlops/local/", "mlops/cli/local.py", "mlops/demo.py")
QUESTIONS = re.compile(r"\b(local_engine_enabled|local_aws|LocalStack|LocalEndpoints)\s*\(|MLOPS_LOCAL\b|is_loopback|"""
                       r"""["']localhost["']|127\.0\.0\.1""")


def forks(root: Path = ROOT) -> list[dict[str, object]]:
    """Every import of mlops.local and every local question outside the allowed places."""
    found: list[dict[str, object]] = []
    for path in sorted([*(root / "mlops").rglob("*.py"), *(root / "lambda").rglob("*.py")]):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(ALLOWED) or "__pycache__" in relative:
            continue
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            module = None
            if isinstance(node, ast.ImportFrom) and node.module:
                module = node.module
            elif isinstance(node, ast.Import):
                module = next((a.name for a in node.names if a.name.startswith("mlops.local")), None)
            if module and (module == "mlops.local" or module.startswith("mlops.local.")):
                found.append({"file": relative, "line": node.lineno, "kind": "import", "what": module})
        for number, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith(("#", "def ")):
                continue
            for match in QUESTIONS.finditer(line):
                found.append({"file": relative, "line": number, "kind": "question", "what": match.group(0).rstrip("(").strip()})
    return found


def main() -> int:
    """Print the places and their count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    places = forks()
    if args.json:
        print(json.dumps({"count": len(places), "places": places}, indent=1))
        return 0
    for place in places:
        print(f"{place['file']}:{place['line']}: {place['kind']} {place['what']}")
    imports = sum(1 for p in places if p["kind"] == "import")
    print(f"local forks in business code: {len(places)} ({imports} imports of mlops.local, {len(places) - imports} local questions)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
