"""Errors that reach the user as one line: what is wrong and what to do.

Every failure the user can fix raises `MlopsError` (or a subclass) with a message and a hint. The CLI
prints `error: <message> (<hint>)` on one line (with --json also `{"error": ...}` on stdout) and exits
non-zero; nothing else prints tracebacks for expected failures.
"""

from __future__ import annotations


class MlopsError(Exception):
    """A failure the user can act on. `exit_code` 2 means bad input, 1 means the operation failed."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and hint on one line, as the CLI prints them."""
        text = " ".join(self.message.split())
        if self.hint:
            text += f" ({' '.join(self.hint.split())})"
        return text


class ConfigError(MlopsError):
    """A configuration file (tenant registry, platform.yaml, mlops.yaml) is missing or invalid."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, problems: list[str] | None = None):
        super().__init__(message, hint)
        self.problems = problems or []


class NamingError(MlopsError):
    """A resource name would break an AWS length or character rule."""

    exit_code = 2
