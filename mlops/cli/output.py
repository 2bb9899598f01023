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


# -- how figures and times read in human output (JSON keeps the full values) ----------------------------------

def fmt_number(value: Any, digits: int = 4) -> str:
    """A figure for people: `digits` significant digits (0.8123, 12.35, 0.0001235), larger ones whole (1234568);
    integers and text as they are, None as nothing."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(round(value)) if abs(value) >= 10 ** digits else f"{value:.{digits}g}"
    return str(value)


def fmt_time(value: Any) -> str:
    """A time for people, one format everywhere: ISO 8601 UTC to the second (`2026-12-05T10:11:12Z`). Text that is no
    time is shown as it is; None as nothing."""
    from datetime import datetime, timezone  # pylint: disable=import-outside-toplevel

    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_cost(amount: float | None, currency: str = "USD") -> str:
    """A cost for people: cents (`1.23 USD`), and below a cent two significant digits (`0.0031 USD`), never `0.00`
    for something that cost anything."""
    if amount is None:
        return ""
    if amount == 0:
        return f"0 {currency}"
    if abs(amount) < 0.01:
        return f"{amount:.2g} {currency}" if abs(amount) >= 1e-4 else f"<0.0001 {currency}"
    return f"{amount:.2f} {currency}"


def fmt_seconds(value: Any) -> str:
    """A duration for people: seconds to a tenth below a minute, else minutes and seconds (`12.3 s`, `4 min 05 s`)."""
    if value is None or value == "":
        return ""
    seconds = float(value)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


verbose_option = click.option("--verbose", "-v", is_flag=True, help="Also print debug figures (e.g. AWS calls per service).")
