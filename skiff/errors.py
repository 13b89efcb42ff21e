"""Errors a user can act on: one line, what and where, and the exit status to use.

The exit statuses follow docker's: 125 for skiff's own errors, 126 when the
container's command cannot be executed, 127 when it cannot be found.
"""


class SkiffError(Exception):
    """An error reported to the user as one line, exiting with ``exit_code``."""

    exit_code = 125

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class NotFound(SkiffError):
    """A named object (image, container, network) does not exist."""


class Conflict(SkiffError):
    """The request clashes with the current state (name in use, image in use)."""


class InvalidArgument(SkiffError):
    """A flag or value the user gave cannot be understood."""


class CommandNotFound(SkiffError):
    exit_code = 127


class CommandNotExecutable(SkiffError):
    exit_code = 126
