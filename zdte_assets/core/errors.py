"""Errors that reach the user as one line: the known failures and the first line of a message.

`ZdteError` is the base of every failure that means bad input or an unavailable service (not a
bug): the CLI matches it by class and prints its message in one line, without a traceback. The
domain's own errors derive from it next to the code that raises them.
"""

from __future__ import annotations


class ZdteError(Exception):
    """A known failure (bad input, missing data, an unreachable service): its message is one
    line that says what is wrong and where."""


class UsageError(ZdteError, ValueError):
    """Arguments that do not make sense together."""


#: What the command line reports in one line (exit 2) rather than as a traceback: our known
#: failures and a file the user named that does not exist.
KNOWN_ERRORS: tuple[type[BaseException], ...] = (ZdteError, FileNotFoundError)


def is_known_error(exc: BaseException) -> bool:
    return isinstance(exc, KNOWN_ERRORS)


def first_line(text: str, default: str = "no message") -> str:
    """The first non-blank line of `text` (an error's message), or `default` when it has none:
    libraries put tracebacks, SQL or retry reports after the line that says what went wrong."""
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return default
