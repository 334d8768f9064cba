"""Errors the user can act on: printed as one line by the CLI, shown by the editor."""

from __future__ import annotations


class UserError(Exception):
    """Something the user must fix (bad input, refused operation); no stack trace."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
