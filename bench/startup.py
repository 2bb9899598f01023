"""How fast `mlops --help` starts, next to `python -c "import boto3"` (median of several runs).

`mlops --help` must stay well under 0.5 s: commands are loaded lazily and no command module imports boto3
or sagemaker at the top. Run: `.venv/bin/python bench/startup.py [runs]`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def median_seconds(command: list[str], runs: int) -> float:
    """Median wall time of `command` over `runs` runs, after one warm-up run (disk cache)."""
    subprocess.run(command, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str]) -> None:
    """Print the figures."""
    runs = int(argv[1]) if len(argv) > 1 else 7
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "mlops --help": [sys.executable, "-m", "mlops", "--help"],
        'python -c "import boto3"': [sys.executable, "-c", "import boto3"],
    }
    print(f"median of {runs} runs (after one warm-up), {sys.executable}")
    for label, command in commands.items():
        print(f"  {label:<28} {median_seconds(command, runs) * 1000:7.0f} ms")


if __name__ == "__main__":
    main(sys.argv)
