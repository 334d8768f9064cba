"""Errors the user can act on, and the exit codes every command shares.

Exit codes (docs/cli.md "Exit codes"), the same for the same situation in
every command, in the convention of linters (ruff, mypy):

- `0` (`EXIT_OK`): done; for `check` and `replay-check`, no regression;
- `1` (`EXIT_FOUND`): `check` / `replay-check` found a regression (or a tool
  file that no longer loads): the command ran, and the answer is "no";
- `2` (`EXIT_ERROR`): could not run: bad input or usage, a refused operation,
  a missing folder, file or proposal, no git repository, a model endpoint that
  failed — printed as one line `funcforge: error: ...`;
- `130` (`EXIT_INTERRUPTED`): interrupted (Ctrl-C);
- `141` (`EXIT_BROKEN_PIPE`): the reader of the output went away (`| head`),
  as a shell reports SIGPIPE; nothing is printed.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class UserError(Exception):
    """Something the user must fix (bad input, refused operation); no stack trace."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code
