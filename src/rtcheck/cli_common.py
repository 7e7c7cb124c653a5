"""What every ``rtcheck`` command shares: the one way to fail on the command line.

A command's bad-input path raises :class:`CommandError`; click prints it as one line
(``rtcheck: error: FILE: the problem``) on standard error and exits with code 2, the code of
click's own usage errors. Light on purpose (click only): ``rtcheck --help`` and ``rtcheck
convert`` import it.
"""

from __future__ import annotations

from typing import IO, Any

import click

#: Exit code of bad input or usage (click's usage errors use it too).
EXIT_USAGE = 2


class CommandError(click.ClickException):
    """Bad input: one line naming the file (or option) and the problem, exit code 2.

    Raise it anywhere under a command; click's ``main`` shows it and exits, with no traceback.
    """

    exit_code = EXIT_USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        """Print ``rtcheck: error: MESSAGE`` (to standard error unless ``file``)."""
        message = self.format_message()
        if file is None:
            click.echo(f"rtcheck: error: {message}", err=True)
        else:
            click.echo(f"rtcheck: error: {message}", file=file)
