"""Set-up figures: `make venv` on a fresh clone (cold) and again (nothing changed), and `mlops local up`.

Prints seconds, never asserts them. The cold run clones the committed HEAD of this checkout into a temporary
folder and runs `make venv` there with an empty uv cache, as CI's fresh clone does (downloads included). The
local AWS runs in this checkout's environment with a temporary state folder: the time to `usable` (what
`mlops local up` waits for) and to `ready` (the background part done).

    python bench/setup_times.py                 # all three
    python bench/setup_times.py --skip-venv     # the local AWS only
    python bench/setup_times.py --runs 3        # local AWS up/down three times (min and median)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"`{' '.join(command)}` failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.monotonic() - started, done


def venv_figures(work: Path) -> dict[str, float]:
    """Seconds of `make venv` in a fresh clone (cold, empty caches) and once more (nothing changed)."""
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_CACHE_DIR", "MLOPS_VENV")}
    cold, _ = _timed(["make", "venv"], clone, env)
    warm, _ = _timed(["make", "venv"], clone, env)
    return {"make venv, fresh clone (s)": cold, "make venv, nothing changed (s)": warm}


def local_up_figures(work: Path, runs: int) -> dict[str, float]:
    """Seconds to `usable` and to `ready` of `mlops local up` (min and median over `runs`)."""
    usable, ready = [], []
    for run in range(runs):
        env = {**os.environ, "MLOPS_ROOT": str(ROOT), "MLOPS_STATE_DIR": str(work / f"state-{run}")}
        mlops = [sys.executable, "-m", "mlops"]
        try:
            _, up = _timed([*mlops, "local", "up", "--json"], ROOT, env)
            usable.append(json.loads(up.stdout)["timings"]["usable"])
            _, waited = _timed([*mlops, "local", "wait", "--json"], ROOT, env)
            ready.append(json.loads(waited.stdout)["timings"]["total"])
        finally:
            subprocess.run([*mlops, "local", "down"], cwd=ROOT, env=env, capture_output=True, check=False)
    return {
        "local up: usable, min (s)": min(usable), "local up: usable, median (s)": statistics.median(usable),
        "local up: ready, min (s)": min(ready), "local up: ready, median (s)": statistics.median(ready),
    }


def main() -> None:
    """Print the figures asked for."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-venv", action="store_true", help="do not time `make venv` in a fresh clone")
    parser.add_argument("--skip-local", action="store_true", help="do not time `mlops local up`")
    parser.add_argument("--runs", type=int, default=1, help="local AWS up/down runs (default 1)")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mlops-bench-setup-") as folder:
        if not args.skip_venv:
            figures.update(venv_figures(Path(folder)))
        if not args.skip_local:
            figures.update(local_up_figures(Path(folder), args.runs))
    width = max(map(len, figures), default=0)
    for name, seconds in figures.items():
        print(f"{name:<{width}}  {seconds:7.1f}")


if __name__ == "__main__":
    main()
