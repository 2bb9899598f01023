"""`mlops demo`: the same as `make demo` (see mlops.demo)."""

from __future__ import annotations

import click


@click.command()
def demo() -> None:
    """Run the whole story on the embedded local AWS and print a summary (stops the local AWS at the end)."""
    from mlops.demo import run_demo

    raise SystemExit(run_demo())
