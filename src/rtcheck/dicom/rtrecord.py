"""The delivery dates an RT treatment record (RTRECORD) states.

A plan's RTPlanDate is when it was made; when it was delivered is in its treatment records
(RT Beams, Ion Beams or Brachy Treatment Record, RT Treatment Summary Record; one per session,
as treatment systems export them). :func:`record_dates` collects every date value a record
holds, as stored, for a folder scan; :func:`rtcheck.dicom.loading.load_plan` parses them and
warns about those that are not dates.

Leans on pydicom only.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

#: Where a treatment record states delivery dates: (sequence path, keyword). The record's own
#: TreatmentDate (RT General Treatment Record, Type 2: may be empty) is the session's date;
#: TreatmentControlPointDate (Type 1) dates each delivered control point of each beam; some
#: systems put a TreatmentDate in the beam items; an RT Treatment Summary Record gives the
#: first and most recent treatment dates and a TreatmentDate per fraction.
RECORD_DATES: tuple[tuple[tuple[str, ...], str], ...] = (
    ((), "TreatmentDate"),
    (("TreatmentSessionBeamSequence",), "TreatmentDate"),
    (("TreatmentSessionBeamSequence", "ControlPointDeliverySequence"),
     "TreatmentControlPointDate"),
    (("TreatmentSessionIonBeamSequence",), "TreatmentDate"),
    (("TreatmentSessionIonBeamSequence", "IonControlPointDeliverySequence"),
     "TreatmentControlPointDate"),
    ((), "FirstTreatmentDate"),
    ((), "MostRecentTreatmentDate"),
    (("FractionGroupSummarySequence", "FractionStatusSummarySequence"), "TreatmentDate"),
)


def _items(ds: Dataset, path: tuple[str, ...]) -> Iterator[Dataset]:
    """The items at the end of a path of nested sequences (the dataset itself for ())."""
    if not path:
        yield ds
        return
    for item in ds.get(path[0]) or []:
        yield from _items(item, path[1:])


def record_dates(ds: Dataset) -> tuple[str, ...]:
    """Every non-empty date value of a treatment record, as stored (unique, in file order).

    A value pydicom cannot even decode is kept as ``"?"`` so that it is reported, not lost.
    """
    out: list[str] = []
    for path, keyword in RECORD_DATES:
        try:
            values = [item.get(keyword) for item in _items(ds, path)]
        except Exception:  # a malformed sequence or value: reported as unreadable
            values = ["?"]
        for value in values:
            if isinstance(value, (list, tuple, MultiValue)):
                out.extend(str(v) for v in value)
            elif value is not None:
                out.append(str(value))
    return tuple(dict.fromkeys(v.strip() for v in out if v and v.strip()))
