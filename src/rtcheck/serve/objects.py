"""What the node accepts, and what one received object is.

The node reads a received dataset once, here, into an :class:`ObjectInfo`: the rest of the
node (store, index, completeness, checks) exchanges these typed values, never datasets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from pydicom.dataset import Dataset

#: SOP classes the Storage SCP accepts, and the kind of object each one is. Every other
#: storage class is refused at association: its presentation context is rejected
#: ("abstract syntax not supported"), so the sender is told before it sends anything.
ACCEPTED_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.481.5": "RTPLAN",    # RT Plan Storage (photon, electron)
    "1.2.840.10008.5.1.4.1.1.481.8": "RTPLAN",    # RT Ion Plan Storage
    "1.2.840.10008.5.1.4.1.1.481.2": "RTDOSE",    # RT Dose Storage
    "1.2.840.10008.5.1.4.1.1.481.3": "RTSTRUCT",  # RT Structure Set Storage
    "1.2.840.10008.5.1.4.1.1.481.4": "RTRECORD",  # RT Beams Treatment Record Storage
    "1.2.840.10008.5.1.4.1.1.481.9": "RTRECORD",  # RT Ion Beams Treatment Record Storage
}
#: Verification SOP class (C-ECHO).
VERIFICATION = "1.2.840.10008.1.1"

#: C-STORE statuses the node answers (PS3.4 Annex B.2.3).
STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700  # the object could not be written or indexed
STATUS_NOT_THIS_CLASS = 0xA900    # dataset does not match its SOP class / lacks its UIDs
STATUS_CANNOT_UNDERSTAND = 0xC000  # the dataset cannot be decoded (truncated, corrupt)


class BadObject(ValueError):
    """A received dataset the node refuses: ``status`` is the C-STORE failure status, the
    message names the object and the problem."""

    def __init__(self, message: str, status: int = STATUS_NOT_THIS_CLASS) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PlanSummary:
    """The list page's columns for an RTPLAN: label, date, fractions, dose, beams."""

    label: str | None = None
    date: str | None = None
    fractions: int | None = None
    prescription_gy: float | None = None
    structure_set_uid: str | None = None
    #: Beams that deliver dose (meterset not zero), for the completeness of BEAM doses.
    treatment_beams: tuple[int, ...] = ()


@dataclass(frozen=True)
class DoseSummary:
    """What decides whether a plan's doses are complete: the summation and the beams."""

    summation: str | None = None
    beams: tuple[int, ...] = ()


@dataclass(frozen=True)
class ObjectInfo:
    """One received object, as the node reads its header.

    Attributes
    ----------
    uid, sop_class : str
        SOPInstanceUID and SOPClassUID.
    kind : str
        ``RTPLAN``, ``RTDOSE``, ``RTSTRUCT`` or ``RTRECORD``.
    patient_id, patient_name, study_uid : str or None
    referenced_uid : str or None
        RTDOSE and RTRECORD: the plan they belong to; RTPLAN: its structure set.
    plan : PlanSummary or None
        RTPLAN only.
    dose : DoseSummary or None
        RTDOSE only.
    notes : tuple of str
        What the reading noticed (a plan whose values could not be read for the list).
    """

    uid: str
    sop_class: str
    kind: str
    patient_id: str | None = None
    patient_name: str | None = None
    study_uid: str | None = None
    referenced_uid: str | None = None
    plan: PlanSummary | None = None
    dose: DoseSummary | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """``RTDOSE 1.2.3...`` for messages."""
        return f"{self.kind} {self.uid}"


def _not_processed(exc: BaseException) -> BadObject:
    """The node itself failed (out of memory, an import): the sender should retry later."""
    return BadObject(f"the node could not process the object ({type(exc).__name__}: {exc}); "
                     "send it again later", STATUS_OUT_OF_RESOURCES)


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _first(ds: Dataset, sequence: str) -> Dataset | None:
    items = ds.get(sequence) or []
    return items[0] if len(items) else None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _treatment_beams(ds: Dataset) -> tuple[int, ...]:
    """Beams of the first fraction group that deliver dose (meterset absent or not zero)."""
    group = _first(ds, "FractionGroupSequence")
    if group is None:
        return ()
    beams: list[int] = []
    for item in group.get("ReferencedBeamSequence") or []:
        number = _number(item.get("ReferencedBeamNumber"))
        meterset = _number(item.get("BeamMeterset"))
        if number is not None and (meterset is None or meterset > 0):
            beams.append(int(number))
    return tuple(beams)


def _plan_summary(ds: Dataset) -> tuple[PlanSummary, tuple[str, ...]]:
    """The plan's list columns, read with rtcheck's own plan reader; a plan it cannot read
    is still stored and checked (the check then says why), with a note here."""
    from rtcheck import read_plan
    from rtcheck.errors import RTCheckError

    ss = _first(ds, "ReferencedStructureSetSequence")
    ss_uid = _text(ss.get("ReferencedSOPInstanceUID")) if ss is not None else None
    beams = _treatment_beams(ds)
    try:
        plan = read_plan(ds)
    except (RTCheckError, ValueError, TypeError, AttributeError) as exc:
        return (PlanSummary(label=_text(ds.get("RTPlanLabel")), structure_set_uid=ss_uid,
                            treatment_beams=beams), (f"plan not readable: {exc}",))
    return PlanSummary(label=plan.label, date=plan.date.isoformat() if plan.date else None,
                       fractions=plan.fractions, prescription_gy=plan.prescription_gy,
                       structure_set_uid=ss_uid, treatment_beams=beams), ()


def _dose_summary(ds: Dataset) -> tuple[str | None, DoseSummary]:
    ref = _first(ds, "ReferencedRTPlanSequence")
    plan_uid = _text(ref.get("ReferencedSOPInstanceUID")) if ref is not None else None
    beams: list[int] = []
    group = _first(ref, "ReferencedFractionGroupSequence") if ref is not None else None
    for item in (group.get("ReferencedBeamSequence") or []) if group is not None else []:
        number = _number(item.get("ReferencedBeamNumber"))
        if number is not None:
            beams.append(int(number))
    summation = _text(ds.get("DoseSummationType"))
    return plan_uid, DoseSummary(summation=summation.upper() if summation else None,
                                 beams=tuple(beams))


def _record_plan(ds: Dataset) -> str | None:
    ref = _first(ds, "ReferencedRTPlanSequence")
    return _text(ref.get("ReferencedSOPInstanceUID")) if ref is not None else None


def describe_dataset(ds: Dataset, sop_class: str) -> ObjectInfo:
    """Read what the node needs from a received dataset.

    Parameters
    ----------
    ds : Dataset
        The decoded dataset.
    sop_class : str
        The SOP class of the presentation context it came on.

    Raises
    ------
    BadObject
        The dataset's SOPClassUID is not the context's or not one the node accepts, or it has
        no SOPInstanceUID (status 0xA900), or its elements cannot be decoded (0xC000).
    """
    try:
        uid = _text(ds.get("SOPInstanceUID"))
        own_class = _text(ds.get("SOPClassUID"))
        kind = ACCEPTED_SOP_CLASSES.get(own_class or "")
        if kind is None or own_class != sop_class:
            raise BadObject(f"object {uid or '(no SOPInstanceUID)'}: SOPClassUID "
                            f"{own_class or '(none)'} is not an RT class the node accepts or "
                            f"not the class it was sent as ({sop_class})")
        if uid is None:
            raise BadObject(f"{kind} object without SOPInstanceUID")
        base = ObjectInfo(uid=uid, sop_class=own_class, kind=kind,
                          patient_id=_text(ds.get("PatientID")),
                          patient_name=_text(ds.get("PatientName")),
                          study_uid=_text(ds.get("StudyInstanceUID")))
        if kind == "RTPLAN":
            summary, notes = _plan_summary(ds)
            return replace(base, referenced_uid=summary.structure_set_uid, plan=summary,
                           notes=notes)
        if kind == "RTDOSE":
            plan_uid, dose = _dose_summary(ds)
            return replace(base, referenced_uid=plan_uid, dose=dose)
        if kind == "RTRECORD":
            return replace(base, referenced_uid=_record_plan(ds))
        return base
    except BadObject:
        raise
    except (ImportError, MemoryError) as exc:  # the node's trouble, not the object's
        raise _not_processed(exc) from exc
    except Exception as exc:  # pydicom raises many types on a corrupt element
        raise BadObject(f"object cannot be decoded ({type(exc).__name__}: {exc})",
                        STATUS_CANNOT_UNDERSTAND) from exc


_UNDEFINED_LENGTH = 0xFFFFFFFF


def short_element(ds: Dataset) -> str | None:
    """The element cut short in a truncated object (pydicom reads what there is without a
    word), as ``(3006,0050): 202 of 1134 bytes``; None when the object ends whole.

    A byte stream cut anywhere ends inside its last element: every element before it was
    read whole. So only the last element is looked at -- its raw length when it states one
    (a sequence of defined length included), else, for a sequence of undefined length, the
    last element of its last item, and so on down. Values are never decoded: a structure
    set of 100,000 contour points is checked in microseconds.
    """
    from pydicom.dataelem import RawDataElement

    tags = list(ds.keys())
    if not tags:
        return None
    element = ds.get_item(tags[-1])
    if isinstance(element, RawDataElement) and element.length != _UNDEFINED_LENGTH:
        value = element.value
        if value is not None and len(value) != element.length:
            return f"{tags[-1]}: {len(value)} of {element.length} bytes"
        return None
    element = ds[tags[-1]]  # undefined length: a sequence (its items parsed, values raw)
    if element.VR == "SQ" and len(element.value):
        return short_element(element.value[-1])
    return None


def check_content(ds: Dataset, info: ObjectInfo) -> None:
    """Refuse a truncated object (an element shorter than its stated length) and, for a
    dose, one rtcheck's dose reader refuses (pixel data shorter or longer than declared,
    non-finite scaling...): better refused now, which the sender sees, than found later by
    a check.

    Raises
    ------
    BadObject
        Naming the object and the problem (status 0xC000).
    """
    from rtcheck.errors import RTCheckError

    try:
        problem = short_element(ds)
        if problem:
            raise BadObject(f"{info.describe()}: truncated: element {problem}",
                            STATUS_CANNOT_UNDERSTAND)
        if info.kind == "RTDOSE":
            from rtcheck import read_dose

            read_dose(ds)
    except BadObject:
        raise
    except (ImportError, MemoryError) as exc:
        raise _not_processed(exc) from exc
    except RTCheckError as exc:
        raise BadObject(f"{info.describe()}: {getattr(exc, 'message', exc)}",
                        STATUS_CANNOT_UNDERSTAND) from exc
    except Exception as exc:  # pydicom's decoding errors have no common type
        raise BadObject(f"{info.describe()}: cannot be decoded ({type(exc).__name__}: {exc})",
                        STATUS_CANNOT_UNDERSTAND) from exc
