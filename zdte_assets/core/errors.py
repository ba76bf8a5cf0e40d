"""Errors reach the user as one line: the first line of whatever a library raised."""

from __future__ import annotations


def first_line(text: str, default: str = "no message") -> str:
    """The first non-blank line of `text` (an error's message), or `default` when it has none:
    libraries put tracebacks, SQL or retry reports after the line that says what went wrong."""
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return default
