"""The table of bad CLI input (tests/config/test_cli_bad_input.py): how many cases, and how they were answered.

Runs that test module with pytest, collects the outcome each case recorded, and prints the totals: cases,
tracebacks, inputs silently accepted, cases without exactly one `error:` line, refused inputs that wrote
files anyway, well-formed JSON errors under --json, and cases answered as expected (refused, in one line,
naming the bad input). `--cases` also lists every case that was not answered
as it should be. Run: `.venv/bin/python bench/bad_input.py [--cases]`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULE = "tests/config/test_cli_bad_input.py"


class Outcomes:
    """A pytest plugin keeping each case's recorded outcome and whether its test passed."""

    def __init__(self) -> None:
        self.cases: list[tuple[str, dict[str, Any], bool]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the outcome of each case's call phase."""
        if report.when == "call":
            recorded = dict(report.user_properties).get("outcome")
            if isinstance(recorded, dict):
                self.cases.append((report.nodeid.split("[", 1)[-1].rstrip("]"), recorded, report.passed))


def main(argv: list[str]) -> int:
    """Run the table and print its totals."""
    outcomes = Outcomes()
    code = pytest.main([str(ROOT / MODULE), "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "--tb=no", "--no-header",
                        "-o", "console_output_style=classic", "--rootdir", str(ROOT)], plugins=[outcomes])
    cases = outcomes.cases
    as_json = [o for name, o, _ in cases if name.endswith("-json")]
    print(f"\nbad CLI input ({MODULE}), each case as typed and with --json:")
    print(f"  cases                     {len(cases)} ({len(cases) - len(as_json)} text, {len(as_json)} --json)")
    print(f"  tracebacks                {sum(o['traceback'] for _, o, _ in cases)}")
    print(f"  silently accepted         {sum(o['accepted'] for _, o, _ in cases)}")
    print(f"  not one error: line       {sum(o['error_lines'] != 1 for _, o, _ in cases)}")
    print(f"  wrote files anyway        {sum(bool(o.get('written')) for _, o, _ in cases)}")
    print(f"  JSON errors well-formed   {sum(bool(o.get('json_error')) for o in as_json)} of {len(as_json)}")
    print(f"  answered as expected      {sum(passed for _, _, passed in cases)} of {len(cases)}")
    if "--cases" in argv:
        for name, result, passed in cases:
            if not passed:
                print(f"  {name}: exit {result['exit_code']}: {result['message'][:200]}")
    return 0 if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) else int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
