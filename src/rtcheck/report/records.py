"""What a report records beside the findings: the findings in report order, the DVHs the
rules used, the input files and protocol files with their SHA-256.

pydicom is not imported here; the DVH engine and the protocol reader only when called.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtcheck.files import file_sha256

if TYPE_CHECKING:  # pragma: no cover - typing only
    from rtcheck.dvh import DVH

#: Finding statuses in report order: what needs attention first.
STATUS_ORDER = ("FAIL", "NOT_EVALUATED", "WARN", "PASS")


def sort_findings(findings: Iterable[dict]) -> list[dict]:
    """Findings in report order: FAIL, NOT_EVALUATED, WARN, PASS (stable within a status).

    An unknown status sorts right after FAIL: it is not a pass.
    """
    def rank(f: dict) -> float:
        status = str(f.get("status"))
        return STATUS_ORDER.index(status) if status in STATUS_ORDER else 0.5

    return sorted(findings, key=rank)


def used_dvhs(result: dict, dvhs: Iterable[DVH]) -> list[DVH]:
    """The DVHs of the structures the findings name, in the order given."""
    names = {f.get("structure") for f in result.get("findings", []) if f.get("structure")}
    return [d for d in dvhs if d.name in names]


def input_records(paths: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """``[{"path", "sha256"}]`` for the input files, in a stable (sorted) order; a file that
    cannot be read gets ``sha256 = None`` and an ``error``."""
    out: list[dict[str, Any]] = []
    for p in sorted({str(p) for p in paths}):
        try:
            out.append({"path": p, "sha256": file_sha256(p)})
        except OSError as exc:
            out.append({"path": p, "sha256": None, "error": exc.strerror or str(exc)})
    return out


def protocol_records(protocols: Iterable[Any]) -> list[dict[str, Any]]:
    """``[{"id", "version", "title", "path", "sha256"}]`` from Protocol objects or dicts."""
    out = []
    for p in protocols or []:
        rec: dict[str, Any]
        if isinstance(p, Mapping):
            rec = {k: p.get(k) for k in ("id", "version", "title", "path", "sha256")}
        elif isinstance(p, str):
            rec = _shipped_protocol_record(p)
        else:
            rec = {k: getattr(p, k, None) for k in ("id", "version", "title", "path")}
            rec["sha256"] = None
        path = rec.get("path")
        if rec.get("sha256") is None and path and Path(path).is_file():
            rec["sha256"] = file_sha256(path)
        out.append(rec)
    return out


def _shipped_protocol_record(name: str) -> dict[str, Any]:
    """Id, version, title and file of a protocol given by id or path (as far as it loads)."""
    from rtcheck.errors import RTCheckError
    from rtcheck.rules.protocols import load_protocol

    rec: dict[str, Any] = {"id": name, "version": None, "title": None, "path": None,
                           "sha256": None}
    try:
        proto = load_protocol(name)
    except (RTCheckError, OSError):
        return rec
    rec.update(id=proto.id, version=proto.version, title=proto.title, path=proto.path)
    return rec



def plan_input_files(data: Any) -> list[str]:
    """The files a loaded plan (:class:`rtcheck.model.PlanData`) was read from."""
    files: list[str] = []
    if getattr(data, "plan", None) is not None and data.plan.path:
        files.append(data.plan.path)
    if getattr(data, "structure_set", None) is not None and data.structure_set.path:
        files.append(data.structure_set.path)
    if getattr(data, "dose", None) is not None:
        files += list(data.dose.paths)
    return files


def report_dvhs(result: dict, data: Any) -> list[DVH]:
    """DVHs of the structures the findings name, computed on the plan's dose.

    Structures absent from the structure set (or without contours) are left out; the
    findings already say why they could not be used.
    """
    if getattr(data, "dose", None) is None or getattr(data, "structure_set", None) is None:
        return []
    from rtcheck.dvh import compute_dvh

    names = {f.get("structure") for f in result.get("findings") or [] if f.get("structure")}
    spacing = getattr(data.structure_set, "plane_spacing_mm", None)
    return [compute_dvh(s, data.dose, slice_spacing_mm=spacing)
            for s in data.structure_set.structures
            if s.name in names and s.contours]

