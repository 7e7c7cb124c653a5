"""Facts DICOM does not hold (indication, site, vertebral level, technique, prior course),
from ``--facts`` (the format of ``rtcheck batch --indication-from``) or posted to the API.

A plan's facts are its row of the facts file (by plan UID, else patient ID) overlaid with
what was posted for it. ``prior`` in a posted body is either a prior course summary
(``"30Gy/10 cord_dmax=31Gy end=2025-03-14"``) or the UID of another plan of the store, whose
files are then loaded as the prior course.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Keys a client may post, and the facts-file column each one becomes.
POSTED_KEYS = {
    "indication": "indication",
    "site": "site",
    "vertebral_level": "vertebral_level",
    "technique": "technique",
    "prior": "prior_summary",
    "prior_summary": "prior_summary",
    "interval_months": "interval_months",
    "date": "date",
}
#: The column that names a prior plan of the store (not a facts-file column).
PRIOR_PLAN = "prior_plan_uid"
#: Bookkeeping keys of a facts-file row, not facts.
_ROW_KEYS = ("row", "matched_by")


class FactsError(ValueError):
    """Posted facts that cannot be used: one sentence naming the key and the problem."""


def posted_facts(body: Any, is_plan: Any) -> dict[str, str]:
    """The facts of a posted JSON body, as facts-file columns.

    Parameters
    ----------
    body : object
        The decoded JSON: an object of facts (strings; ``interval_months`` may be a
        number); ``null`` or an empty string removes a fact.
    is_plan : callable
        ``is_plan(text)`` -> the plan UID when ``text`` names a plan of the store, else None.

    Raises
    ------
    FactsError
        Not an object, an unknown key, a value that is not text or a finite number.
    """
    if not isinstance(body, Mapping):
        raise FactsError("the body must be a JSON object of facts, e.g. "
                         '{"indication": "pain", "site": "spine"}')
    out: dict[str, str] = {}
    for key, value in body.items():
        column = POSTED_KEYS.get(str(key))
        if column is None:
            raise FactsError(f"unknown fact {key!r}; known: {', '.join(sorted(POSTED_KEYS))}")
        if value is None or value == "":
            out[column] = ""
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise FactsError(f"{key}: expected text, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise FactsError(f"{key}: {value!r} is not a number")
        text = str(value).strip()
        if column == "prior_summary":
            plan_uid = is_plan(text)
            if plan_uid:
                out[PRIOR_PLAN], out[column] = plan_uid, ""
                continue
            out[PRIOR_PLAN] = ""
        out[column] = text
    return out


def merged(file_facts: Mapping[str, str] | None, posted: Mapping[str, str] | None
           ) -> dict[str, str]:
    """The facts a check uses: the facts file's row overlaid with the posted ones (an empty
    posted value removes the fact)."""
    out = {k: v for k, v in (file_facts or {}).items() if k not in _ROW_KEYS}
    for key, value in (posted or {}).items():
        if value == "":
            out.pop(key, None)
        else:
            out[key] = value
    return out


def check_arguments(facts: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments of :func:`rtcheck.check` (the batch's conversion of a facts row;
    the prior plan of the store is added by the worker).

    Raises
    ------
    rtcheck.InputError
        A value that does not convert.
    """
    from rtcheck.batch import check_arguments as batch_arguments

    return batch_arguments({k: v for k, v in facts.items() if k != PRIOR_PLAN})


def validate(facts: Mapping[str, str], protocols: tuple[str, ...]) -> None:
    """Run the checker on no plan with these facts, so that a typo (``indication=pian``)
    is refused when posted, not found later as a check error.

    Raises
    ------
    FactsError
        Naming the fact and the problem.
    """
    from rtcheck import check
    from rtcheck.batch import load_protocols
    from rtcheck.errors import RTCheckError
    from rtcheck.model import PlanData

    try:
        check(PlanData(None, None, None), protocols=load_protocols(protocols),
              **check_arguments(facts))
    except RTCheckError as exc:
        raise FactsError(str(exc)) from None
