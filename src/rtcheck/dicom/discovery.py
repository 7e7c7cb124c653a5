"""Discovering the RT objects under folders, and grouping them per plan, from headers only.

:func:`scan` reads the header of every file under folders (nested, files without extension,
CT/MR slices and non-DICOM files mixed in; no pixel data) into :class:`FileHeader` records;
files that cannot be read are kept with the reason. :func:`group_plans` pairs them into
:class:`PlanGroup` objects by UID references only (dose -> plan, treatment record -> plan,
plan -> structure set), notes duplicates, flags two different files with one UID, and says
what each plan lacks (``missing`` and ``missing_parts``).

Leans on :mod:`rtcheck.dicom.read` (opening files) and, for the facts a header records of
each modality, :mod:`rtcheck.dicom.rtdose`, :mod:`rtcheck.dicom.rtplan`,
:mod:`rtcheck.dicom.rtstruct` and :mod:`rtcheck.dicom.rtrecord`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.filereader import read_partial

from rtcheck.dicom.read import (
    RT_MODALITIES,
    PathLike,
    as_paths,
    as_text,
    check_complete,
    first_in,
    modality_of,
    quietly,
    read_file,
)
from rtcheck.dicom.rtdose import dose_references
from rtcheck.dicom.rtplan import treatment_beams
from rtcheck.dicom.rtrecord import record_dates
from rtcheck.dicom.rtstruct import structure_set_frame
from rtcheck.errors import InputError, short_message
from rtcheck.files import file_sha256


@dataclass(frozen=True)
class FileHeader:
    """What a folder scan learns about one DICOM file from its header (no pixel data).

    Attributes
    ----------
    path : str
    modality : str
        ``RTPLAN``, ``RTDOSE``, ``RTSTRUCT``, ``RTRECORD`` (from the SOP class when known),
        else the Modality attribute (``CT``, ``MR``...), or ``""``.
    sop_instance_uid, sop_class_uid, frame_of_reference_uid, patient_id : str or None
    label : str or None
        RTPlanLabel or StructureSetLabel.
    referenced_plan_uid : str or None
        RTDOSE: the plan it belongs to. RTRECORD: the plan it records the delivery of.
    referenced_structure_set_uid : str or None
        RTPLAN: its structure set.
    summation : str or None
        RTDOSE: DoseSummationType.
    beam_numbers : tuple of int
        RTDOSE: the beams it holds (BEAM doses).
    fraction_group : int or None
        RTDOSE: the fraction group it refers to.
    treatment_beams : tuple of (int, tuple of int)
        RTPLAN: per fraction group number, the beams that deliver dose (BeamMeterset and
        BeamDose not zero: setup beams excluded).
    error : str or None
        Why the file could not be read (it is then otherwise empty).
    treatment_dates : tuple of str
        RTRECORD: every non-empty date value it holds (see
        :data:`rtcheck.dicom.rtrecord.RECORD_DATES`), as stored;
        :func:`rtcheck.dicom.load_plan` parses them and warns about those that are not dates.
    """

    path: str
    modality: str = ""
    sop_instance_uid: str | None = None
    sop_class_uid: str | None = None
    frame_of_reference_uid: str | None = None
    patient_id: str | None = None
    label: str | None = None
    referenced_plan_uid: str | None = None
    referenced_structure_set_uid: str | None = None
    summation: str | None = None
    beam_numbers: tuple[int, ...] = ()
    fraction_group: int | None = None
    treatment_beams: tuple[tuple[int, tuple[int, ...]], ...] = ()
    error: str | None = None
    treatment_dates: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line naming the object for error messages and listings."""
        what = self.modality or "DICOM"
        parts = [what]
        if self.label:
            parts.append(f"label {self.label!r}")
        if self.summation:
            parts.append(f"DoseSummationType {self.summation}")
        if self.beam_numbers:
            parts.append(f"beam(s) {', '.join(map(str, self.beam_numbers))}")
        parts.append(f"UID {self.sop_instance_uid}")
        return f"{', '.join(parts)} ({self.path})"


def listing(headers: Iterable[FileHeader]) -> str:
    """The headers described one per indented line, for error messages."""
    return "".join(f"\n  - {h.describe()}" for h in headers)


def _header(ds: Dataset, path: str) -> FileHeader:
    """What a scan records of one dataset: its identity, and the references and facts of
    its modality that pairing needs."""
    modality = modality_of(ds)
    fields: dict[str, Any] = {}
    if modality == "RTDOSE":
        plan_uid, group, beams = dose_references(ds)
        fields = {"referenced_plan_uid": plan_uid, "fraction_group": group,
                  "beam_numbers": beams,
                  "summation": (as_text(ds.get("DoseSummationType")) or "PLAN").upper()}
    elif modality == "RTPLAN":
        fields = {"label": as_text(ds.get("RTPlanLabel")),
                  "treatment_beams": treatment_beams(ds),
                  "referenced_structure_set_uid": as_text(first_in(
                      ds, "ReferencedStructureSetSequence", "ReferencedSOPInstanceUID"))}
    elif modality == "RTSTRUCT":
        fields = {"label": as_text(ds.get("StructureSetLabel"))}
    elif modality == "RTRECORD":
        fields = {"referenced_plan_uid": as_text(first_in(
                      ds, "ReferencedRTPlanSequence", "ReferencedSOPInstanceUID")),
                  "treatment_dates": record_dates(ds)}
    frame = (structure_set_frame(ds, []) if modality == "RTSTRUCT"
             else as_text(ds.get("FrameOfReferenceUID")))
    return FileHeader(
        path=path, modality=modality, sop_instance_uid=as_text(ds.get("SOPInstanceUID")),
        sop_class_uid=as_text(ds.get("SOPClassUID")), frame_of_reference_uid=frame,
        patient_id=as_text(ds.get("PatientID")), **fields)


def scan_file(path: str, named: bool) -> FileHeader | None:
    """The header of one file; None for a non-DICOM file met in a folder (``named=False``).

    A file met in a folder that cannot be read gives a header with ``error`` set; a file the
    user named (``named=True``) must be readable (else InputError).
    """
    try:
        ds = read_file(path, header_only=True, named=named)
        if ds is not None and modality_of(ds) == "RTRECORD":  # no pixel data: all was read
            check_complete(ds, path, os.path.getsize(path), whole_file=True)
        return None if ds is None else _header(ds, path)
    except InputError as exc:
        if named:
            raise
        return FileHeader(path=path, error=exc.message)
    except Exception as exc:  # a corrupt header in an archive must not stop the scan
        if named:
            raise InputError(f"unreadable DICOM header ({short_message(exc)})", path) from exc
        return FileHeader(path=path, error=f"unreadable DICOM header ({short_message(exc)})")


def walk_files(folder: PathLike) -> Iterator[str]:
    """Every file under ``folder``, in a stable (sorted) order; hidden files and folders are
    skipped and symlinked folders are not followed (no loops). Non-regular entries (FIFOs...)
    are included: the caller sorts them out without opening them."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield os.path.join(root, name)


@quietly
def scan(paths: PathLike | Sequence[PathLike]) -> list[FileHeader]:
    """Headers of the DICOM files in folders (recursively) and/or named files.

    Files met while walking a folder that are not DICOM are skipped silently, unless named
    like DICOM (``.dcm``, ``.dicom``, ``.dic``, ``.ima``); those, DICOM files that cannot be
    read and anything that is not a regular file (a FIFO or device is never opened: it would
    block) are returned with ``error`` set, saying why they were skipped. Whether a file is
    DICOM is decided from its first 4 KB (a zero-filled file is rejected in microseconds). A
    file named explicitly must be a readable DICOM file (else InputError).

    Parameters
    ----------
    paths : path or sequence of paths
        Folders and/or files.

    Returns
    -------
    list of FileHeader
        In path order; every DICOM file (CT and MR slices included: filter on ``modality``).
    """
    out: list[FileHeader] = []
    for item in as_paths(paths):
        p = Path(item)
        if p.is_dir():
            out.extend(h for h in (scan_file(f, named=False) for f in walk_files(p)) if h)
        elif p.exists():
            header = scan_file(str(p), named=True)
            assert header is not None
            out.append(header)
        else:
            raise InputError("no such file or folder", p)
    return out



@dataclass
class PlanGroup:
    """A plan and the files that belong to it, as found by :func:`group_plans`.

    ``plan`` is None for doses or structure sets whose plan is not there. ``missing`` names
    what a complete plan would have but this group lacks (a plan without a dose is reported,
    never dropped); ``notes`` records duplicates and other findings. ``records`` are the
    treatment records (RTRECORD) that name this plan (or, without a plan, the plan the doses
    name); a plan without records is not incomplete.

    ``conflicts`` lists files of this group that share a SOPInstanceUID with another file
    but differ in content, as ``(modality, kept path, other path, message)``: which one is
    the object cannot be told, so :func:`~rtcheck.dicom.load_plan` refuses the plan
    (InputError naming both files). The messages are in ``notes`` too. Identical copies are
    only noted.
    """

    plan: FileHeader | None
    doses: list[FileHeader] = field(default_factory=list)
    structure_set: FileHeader | None = None
    missing: list[str] = field(default_factory=list)
    #: The modality of each ``missing`` entry ("RTDOSE", "RTSTRUCT"), in the same order:
    #: what programs read (the sentences are for people).
    missing_parts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    records: list[FileHeader] = field(default_factory=list)
    conflicts: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add_missing(self, part: str, text: str) -> None:
        """Record a missing part (``"RTDOSE"``, ``"RTSTRUCT"``) and its sentence."""
        self.missing.append(text)
        self.missing_parts.append(part)

    def describe(self) -> str:
        """One line naming the plan, or the first file of a group without one."""
        if self.plan is not None:
            return self.plan.describe()
        first = self.doses[0] if self.doses else self.structure_set
        return f"no plan: {first.describe() if first else 'empty'}"

    def files(self) -> list[FileHeader]:
        """Every file of the group: plan, doses, structure set, records."""
        out = [self.plan, *self.doses, self.structure_set, *self.records]
        return [h for h in out if h is not None]


def _same_content(a: str, b: str) -> bool:
    """True when two files hold the same DICOM object: the same bytes, or (copies written by
    different tools) equal datasets once the file meta group is set aside."""
    try:
        if os.path.getsize(a) == os.path.getsize(b):
            with open(a, "rb") as fa, open(b, "rb") as fb:
                while True:
                    block_a, block_b = fa.read(1 << 20), fb.read(1 << 20)
                    if block_a != block_b:
                        break
                    if not block_a:
                        return True
        datasets = []
        for path in (a, b):
            with open(path, "rb") as f:
                datasets.append(read_partial(f, None, force=True))
        return datasets[0] == datasets[1]
    except Exception:  # unreadable: cannot be shown to be the same object
        return False


def _digest(path: str) -> str:
    """The first 12 hex digits of a file's SHA-256, to tell two files apart in a message."""
    return file_sha256(path)[:12]


def _deduplicate(records: Iterable[FileHeader]) -> tuple[list[FileHeader], dict[str, list[str]]]:
    """Records with one per SOPInstanceUID (the first), and the duplicates' paths per UID."""
    kept: dict[str, FileHeader] = {}
    duplicates: dict[str, list[str]] = {}
    for r in records:
        if r.error or r.modality not in RT_MODALITIES:
            continue
        uid = r.sop_instance_uid or r.path
        if uid in kept:
            duplicates.setdefault(uid, []).append(r.path)
        else:
            kept[uid] = r
    return list(kept.values()), duplicates


def _orphan_groups(doses: list[FileHeader], structures: list[FileHeader],
                   records_of: dict[str | None, list[FileHeader]]) -> list[PlanGroup]:
    """Groups without a plan: doses by the plan UID they name (with the treatment records
    that name the same plan), structure sets by frame."""
    by_plan: dict[str, PlanGroup] = {}
    for d in doses:
        key = d.referenced_plan_uid or f"dose:{d.sop_instance_uid}"
        if key not in by_plan:
            reason = (f"plan: RTPLAN {d.referenced_plan_uid} (referenced by the dose) not found"
                      if d.referenced_plan_uid else "plan: the dose references no RTPLAN")
            by_plan[key] = PlanGroup(plan=None, missing=[reason],
                                     records=list(records_of.get(d.referenced_plan_uid, []))
                                     if d.referenced_plan_uid else [])
        by_plan[key].doses.append(d)
    groups = list(by_plan.values())
    for s in structures:
        same_frame = [g for g in groups if g.structure_set is None and g.doses
                      and g.doses[0].frame_of_reference_uid == s.frame_of_reference_uid
                      and s.frame_of_reference_uid]
        if len(same_frame) == 1:
            same_frame[0].structure_set = s
            same_frame[0].notes.append(
                f"structure set {s.path} paired with the dose by frame of reference only")
        else:
            groups.append(PlanGroup(plan=None, structure_set=s,
                                    missing=["plan: no RTPLAN references this structure set",
                                             "dose: no RTDOSE"]))
    for g in groups:
        if g.doses and g.structure_set is None:
            g.add_missing("RTSTRUCT", "structure set: none found for this dose")
    return groups


def group_plans(records: Iterable[FileHeader]) -> list[PlanGroup]:
    """Group scanned headers per plan: each plan with its dose file(s) and structure set.

    Pairing is by UID reference only (dose -> plan, treatment record -> plan, plan ->
    structure set); duplicates (same SOPInstanceUID in several files) are kept once and noted.
    Doses whose plan is absent form groups with ``plan=None`` (with the records naming the
    same plan); a structure set no plan references joins such a group when exactly one has
    its frame of reference, else it forms its own group. Records whose plan is absent and
    that no dose joins belong to no group (:func:`~rtcheck.dicom.load_plan` notes them).

    Returns
    -------
    list of PlanGroup
        Plans first (in scan order), then the groups without a plan.
    """
    unique, duplicates = _deduplicate(records)
    plans = [r for r in unique if r.modality == "RTPLAN"]
    doses = [r for r in unique if r.modality == "RTDOSE"]
    structs = {r.sop_instance_uid: r for r in unique if r.modality == "RTSTRUCT"}
    plan_uids = {p.sop_instance_uid for p in plans}
    doses_of: dict[str | None, list[FileHeader]] = {}  # by referenced plan: linear, not n^2
    for d in doses:
        doses_of.setdefault(d.referenced_plan_uid, []).append(d)
    records_of: dict[str | None, list[FileHeader]] = {}
    for r in unique:
        if r.modality == "RTRECORD":
            records_of.setdefault(r.referenced_plan_uid, []).append(r)
    groups = []
    for p in plans:
        g = PlanGroup(plan=p, doses=list(doses_of.get(p.sop_instance_uid, [])),
                      records=list(records_of.get(p.sop_instance_uid, [])))
        if not g.doses:
            g.add_missing("RTDOSE", "dose: no RTDOSE references this plan")
        ref = p.referenced_structure_set_uid
        g.structure_set = structs.get(ref) if ref else None
        if g.structure_set is None:
            g.add_missing("RTSTRUCT",
                          f"structure set: RTSTRUCT {ref} (referenced by the plan) not found"
                          if ref else "structure set: the plan references none")
        groups.append(g)
    referenced = {p.referenced_structure_set_uid for p in plans}
    groups += _orphan_groups([d for d in doses if d.referenced_plan_uid not in plan_uids],
                             [s for uid, s in structs.items() if uid not in referenced],
                             records_of)
    for g in groups:
        for h in g.files():
            for path in duplicates.get(h.sop_instance_uid or h.path, []):
                if _same_content(h.path, path):
                    g.notes.append(f"{path} duplicates {h.path} (same SOPInstanceUID, same "
                                   "content): ignored")
                    continue
                message = (f"{h.path} and {path} are two different {h.modality} objects with "
                           f"the same SOPInstanceUID {h.sop_instance_uid} (contents differ: "
                           f"sha256 {_digest(h.path)}... and {_digest(path)}...): which one "
                           "is the plan's cannot be told; remove or fix one of them")
                g.conflicts.append((h.modality, h.path, path, message))
                g.notes.append(message)
    return groups
