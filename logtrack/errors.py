"""Exceptions the library raises; the CLI maps them to exit codes (DESIGN §7)."""

from __future__ import annotations


class LogtrackError(Exception):
    """Base class: a failure the user can act on (exit code 1 unless a subclass says otherwise)."""

    exit_code = 1


class UsageError(LogtrackError):
    """Bad flags or arguments (exit code 2)."""

    exit_code = 2


class ConfigError(LogtrackError):
    """A bad config or rule file, reported with its file, line and key path (exit code 2).

    `problems` holds every problem found, so one run reports all of them at once.
    """

    exit_code = 2

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 key: str | None = None, problems: list[str] | None = None) -> None:
        self.file, self.line, self.key = file, line, key
        where = ":".join(str(p) for p in (file, line) if p is not None)
        text = f"{where}: " if where else ""
        text += f"{key}: " if key else ""
        text += message
        self.problems = problems or [text]
        super().__init__("\n".join(self.problems))


class LockedError(LogtrackError):
    """Another run holds the state directory's lock (exit code 75, EX_TEMPFAIL)."""

    exit_code = 75
