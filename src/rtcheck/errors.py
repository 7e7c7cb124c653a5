"""Exceptions raised by rtcheck.

Every error about input data names the file and the problem, so that a command-line user
or a batch log can act on it without a traceback.
"""

from __future__ import annotations

from os import PathLike


class RTCheckError(Exception):
    """Base class of every error rtcheck raises on purpose."""


class InputError(RTCheckError):
    """Bad or unusable input: a file that is not DICOM, inconsistent UIDs, unknown units...

    Parameters
    ----------
    message : str
        What is wrong, in words a dosimetrist understands.
    path : str or PathLike, optional
        The file (or folder) the problem was found in.
    """

    def __init__(self, message: str, path: str | PathLike | None = None) -> None:
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class MetricError(RTCheckError, ValueError):
    """A DVH metric name that cannot be parsed (e.g. ``D95``: missing unit)."""


def short_message(exc: BaseException) -> str:
    """The first line of an exception's message (its type when empty), at most 200 characters:
    what a one-line error quotes of a library's exception."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
