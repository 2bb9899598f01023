"""Human or JSON output, chosen per command with --json.

Commands build plain data (dicts and lists) and hand it to `emit` with a function that renders it for
people (rich tables). Scripts get the same data as JSON on stdout; messages for people go to stderr.
A failed command answers `error_data` on stdout under --json (the CLI's `main` does it for every command)
and its one `error:` line on stderr either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of text.")


def wants_json(args: list[str]) -> bool:
    """Whether a command line asks for JSON: `--json` among its arguments (before a `--`).

    Read from the arguments rather than from the parsed option, so that errors found while parsing them
    (a bad option value, a missing argument) are answered in JSON too."""
    return "--json" in (args[:args.index("--")] if "--" in args else args)


def error_data(kind: str, message: str, hint: str | None, exit_code: int,
               problems: list[str] | None = None) -> dict[str, Any]:
    """What a failed command prints on stdout under --json: `{"error": {...}}`, as the README documents it."""
    return {"error": {"type": kind, "message": " ".join(message.split()), "hint": " ".join(hint.split()) if hint else None,
                      "exit_code": exit_code, "problems": list(problems or [])}}


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """Print `data` as JSON, or render it for people."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        render(data)


def console(stderr: bool = False):  # type: ignore[no-untyped-def]
    """A rich console (imported lazily: rich is not needed for --help)."""
    from rich.console import Console  # pylint: disable=import-outside-toplevel  # keep --help fast

    import shutil  # pylint: disable=import-outside-toplevel

    # Off a terminal (CI logs, pipes) rich would assume 80 columns and cut names; CI logs are wide.
    width = shutil.get_terminal_size((160, 24)).columns
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=max(width, 120))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a simple table to stdout."""
    from rich.table import Table  # pylint: disable=import-outside-toplevel  # keep --help fast

    tbl = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for col in columns:
        tbl.add_column(col)
    for row in rows:
        tbl.add_row(*["" if v is None else str(v) for v in row])
    console().print(tbl)


def info(message: str) -> None:
    """A progress or status line for people, on stderr (never mixed into --json output)."""
    click.echo(message, err=True)
