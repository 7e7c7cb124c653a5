"""Strict JSON for batch records: nothing in a plan's content can make the writer fail.

Records hold whatever the checker and the plan's numbers gave: NumPy values, a BED that
overflowed to inf, NaN, sets, bytes, even cycles. :func:`strict_record` turns a record into
plain JSON data that ``json.dumps(..., allow_nan=False)`` always accepts (non-finite numbers
become null and the record's warnings name them); :func:`loads_strict` reads JSON rejecting
the ``NaN`` and ``Infinity`` tokens that most JSON readers refuse.

Leans on the standard library only.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from typing import Any

#: Containers nested deeper than this in a record are written as a placeholder string.
MAX_RECORD_DEPTH = 64


def _json_safe(value: Any, where: str, notes: list[str], depth: int = 0,
               active: frozenset = frozenset()) -> Any:
    """``value`` as plain JSON data: non-finite numbers become None (named in ``notes``),
    NumPy values plain numbers, containers lists and str-keyed dicts, anything else its text.
    Never raises on content (cycles and absurd nesting are cut, with a note)."""
    if value is None or isinstance(value, (str, bool)):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates (undecodable file names...)
                value = value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) or (isinstance(value, numbers.Real)
                                    and not isinstance(value, numbers.Integral)):
        try:
            number = float(value)
        except (OverflowError, ValueError, TypeError):
            number = math.nan
        if math.isfinite(number):
            return number
        notes.append(f"{where or 'value'} ({value})")
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if hasattr(value, "tolist") and callable(value.tolist) and not isinstance(
            value, (Mapping, list, tuple)):  # NumPy scalars and arrays
        try:
            plain = value.tolist()
        except Exception:
            plain = str(value)
        if plain is not value:
            return _json_safe(plain, where, notes, depth, active)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        if depth >= MAX_RECORD_DEPTH or id(value) in active:
            notes.append(f"{where or 'value'} (nested too deep or circular: cut)")
            return "<cut>"
        inner = active | {id(value)}
        if isinstance(value, Mapping):
            out = {}
            for k, v in list(value.items()):
                key = k if isinstance(k, str) else str(
                    _json_safe(k, where, [], depth + 1, inner))
                out[key] = _json_safe(v, f"{where}.{key}" if where else str(key), notes,
                                      depth + 1, inner)
            return out
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_json_safe(v, f"{where}[{i}]", notes, depth + 1, inner)
                for i, v in enumerate(items)]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if hasattr(value, "isoformat"):
        try:
            return str(value.isoformat())
        except Exception:
            pass
    try:
        return _json_safe(str(value), where, notes, depth, active)
    except Exception:
        return f"<{type(value).__name__}>"


def strict_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``record`` that ``json.dumps(..., allow_nan=False)`` always accepts.

    Non-finite numbers (inf from an overflow, NaN) become null and the record's warnings
    name where they were; other non-JSON values are converted (see :func:`_json_safe`).
    """
    notes: list[str] = []
    out = _json_safe(dict(record), "", notes)
    if notes:
        warned = out.get("warnings")
        warned = warned if isinstance(warned, list) else ([] if warned is None else [warned])
        shown = ", ".join(notes[:10]) + (f" and {len(notes) - 10} more" if len(notes) > 10
                                          else "")
        out["warnings"] = [*warned, "not a finite number or not JSON, written as null: "
                           + shown]
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not strict JSON")


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` that rejects the ``NaN``, ``Infinity`` and ``-Infinity`` tokens."""
    return json.loads(text, parse_constant=_reject_constant)
