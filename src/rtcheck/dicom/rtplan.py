"""Reading an RTPLAN into a :class:`~rtcheck.model.Plan`: fractions, beam doses, prescription.

The number of fractions, BeamDose and BeamMeterset are read strictly (a value that lies is an
InputError naming the attribute: they scale FRACTION doses and every biological conversion);
the prescription is the largest site or volume TargetPrescriptionDose, else the beams' doses
x fractions (:func:`beams_total_gy`), and how it was chosen is in ``Plan.notes``. Also gives,
per fraction group, the beams that deliver dose (:func:`treatment_beams`), which a folder
scan records to check that BEAM doses are complete.

Leans on :mod:`rtcheck.dicom.read`, :mod:`rtcheck.dose` (strict number parsing) and
:mod:`rtcheck.model`.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from rtcheck.dicom.read import (
    PathLike,
    as_date,
    as_float,
    as_int,
    as_text,
    expect_modality,
    first_in,
    guarded,
    open_dataset,
    quietly,
)
from rtcheck.dose import parse_count, parse_number
from rtcheck.errors import InputError
from rtcheck.model import FractionGroup, Plan


def _fraction_groups(ds: Dataset, where: str | None) -> list[FractionGroup]:
    """The fraction groups, their numbers read strictly.

    NumberOfFractionsPlanned must be a positive whole number when present ("3.5" is not 3,
    "-3" and "0" are no number of fractions); BeamDose and BeamMeterset must be finite
    numbers, BeamDose not negative. Anything else is an InputError naming the attribute: the
    fractions scale FRACTION doses and every biological conversion.
    """
    groups = []
    for i, item in enumerate(ds.get("FractionGroupSequence") or [], start=1):
        beams, doses, metersets = [], {}, {}
        for ref in item.get("ReferencedBeamSequence") or []:
            number = as_int(ref.get("ReferencedBeamNumber"))
            if number is None:
                continue
            beams.append(number)
            dose = parse_number(ref.get("BeamDose"), f"BeamDose of beam {number}", where,
                                "RTPLAN")
            if dose is not None:
                if dose < 0:
                    raise InputError(f"RTPLAN BeamDose of beam {number} is negative ({dose:g} "
                                     "Gy)", where)
                doses[number] = dose
            mu = parse_number(ref.get("BeamMeterset"), f"BeamMeterset of beam {number}", where,
                              "RTPLAN")
            if mu is not None:
                metersets[number] = mu
        groups.append(FractionGroup(
            number=as_int(item.get("FractionGroupNumber")) or i,
            fractions=parse_count(item.get("NumberOfFractionsPlanned"),
                                  f"NumberOfFractionsPlanned (fraction group {i})", where,
                                  "RTPLAN"),
            beam_numbers=tuple(beams), beam_doses_gy=doses, beam_metersets=metersets))
    return groups


def _prescription(ds: Dataset, groups: list[FractionGroup], notes: list[str],
                  where: str | None = None) -> float | None:
    """Total prescribed dose (Gy): TARGET TargetPrescriptionDose, else beam doses x fractions.

    Site or volume targets are preferred over point targets (a plan's calculation point
    often carries a lower dose than the site, as in the breast example: 14 Gy site, 11.3 Gy
    point). If several different target prescriptions remain, the largest is used (in a
    simultaneous boost it is the boost's) and the choice is recorded in the notes.
    """
    targets = []
    for item in ds.get("DoseReferenceSequence") or []:
        if str(item.get("DoseReferenceType", "") or "").strip().upper() != "TARGET":
            continue
        dose = parse_number(item.get("TargetPrescriptionDose"), "TargetPrescriptionDose",
                            where, "RTPLAN")
        if dose is not None and dose < 0:
            raise InputError(f"RTPLAN TargetPrescriptionDose is negative ({dose:g} Gy)", where)
        if dose is not None and dose > 0:
            kind = str(item.get("DoseReferenceStructureType", "") or "").strip().upper()
            label = as_text(item.get("DoseReferenceDescription")) or kind or "target"
            targets.append((kind, label, dose))
    preferred = [t for t in targets if t[0] in ("SITE", "VOLUME")] or targets
    values = sorted({round(t[2], 6) for t in preferred})
    if len(values) > 1:
        listed = ", ".join(f"{label} {dose:g} Gy" for _, label, dose in preferred)
        notes.append(f"several target prescriptions ({listed}): the largest, {values[-1]:g} Gy, "
                     "is taken as the plan's prescription")
    if values:
        return values[-1]
    return _prescription_from_beams(groups, notes)


def beams_total_gy(groups: list[FractionGroup]) -> float | None:
    """The whole-course dose the plan's beams state: sum of BeamDose x fractions.

    None unless every fraction group states its fractions and every beam that delivers
    (BeamMeterset not 0) states a positive BeamDose: a beam with monitor units but BeamDose
    0 delivers dose the sum would miss.
    """
    total = 0.0
    for g in groups:
        if not g.fractions or not g.beam_numbers:
            return None
        for n in g.beam_numbers:
            mu, dose = g.beam_metersets.get(n), g.beam_doses_gy.get(n)
            if mu == 0 or (mu is None and dose == 0):
                continue  # a setup beam (as treatment_beams decides)
            if not dose or dose <= 0:
                return None
        total += sum(g.beam_doses_gy.values()) * g.fractions
    return total if total > 0 else None


def _prescription_from_beams(groups: list[FractionGroup], notes: list[str]) -> float | None:
    """The beams' doses x fractions as the prescription, when every beam states its dose."""
    for g in groups:
        if not g.fractions or not g.beam_numbers or set(g.beam_doses_gy) != set(g.beam_numbers):
            return None
    total = beams_total_gy(groups)
    if total is None:
        return None
    notes.append(f"no target prescription dose in the plan: prescription taken as the sum of "
                 f"beam doses x fractions, {total:g} Gy")
    return total


@quietly
@guarded("RTPLAN")
def read_plan(source: PathLike | Dataset) -> Plan:
    """Read the facts of an RTPLAN a checker needs into a :class:`Plan`.

    See :func:`_prescription` for how the prescription is chosen; how it was derived, when
    not from a single target prescription, is in ``Plan.notes``.

    Raises
    ------
    InputError
        Not an RTPLAN, no SOPInstanceUID, or an unreadable file.
    """
    ds, where = open_dataset(source)
    expect_modality(ds, "RTPLAN", where)
    uid = as_text(ds.get("SOPInstanceUID"))
    if not uid:
        raise InputError("RTPLAN has no SOPInstanceUID", where)
    notes: list[str] = []
    groups = _fraction_groups(ds, where)
    if not groups:
        notes.append("plan has no FractionGroupSequence: the number of fractions is unknown")
    if len(groups) > 1:
        notes.append(f"plan has {len(groups)} fraction groups: the number of fractions is "
                     "not a single number")
    return Plan(
        uid=uid,
        label=as_text(ds.get("RTPlanLabel")),
        name=as_text(ds.get("RTPlanName")),
        patient_id=as_text(ds.get("PatientID")),
        patient_name=as_text(ds.get("PatientName")),
        date=as_date(ds.get("RTPlanDate")),
        intent=as_text(ds.get("PlanIntent")),
        fraction_groups=groups,
        prescription_gy=_prescription(ds, groups, notes, where),
        referenced_structure_set_uid=as_text(
            first_in(ds, "ReferencedStructureSetSequence", "ReferencedSOPInstanceUID")),
        frame_of_reference_uid=as_text(ds.get("FrameOfReferenceUID")),
        path=where,
        notes=notes,
    )


# --------------------------------------------------------------------------------------
# Discovery: headers of every file, grouped per plan


def treatment_beams(ds: Dataset) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """Per fraction group, the beams that deliver dose.

    A beam delivers unless it is a SETUP beam (TreatmentDeliveryType), its BeamMeterset is 0,
    or it states no meterset and a BeamDose of 0. A BeamDose of 0 with monitor units is not a
    setup beam (some systems write 0 when the dose is specified elsewhere): its BEAM dose is
    required, never dropped.
    """
    setup = set()
    for key in ("BeamSequence", "IonBeamSequence"):
        for beam in ds.get(key) or []:
            if str(beam.get("TreatmentDeliveryType", "") or "").strip().upper() == "SETUP":
                number = as_int(beam.get("BeamNumber"))
                if number is not None:
                    setup.add(number)
    out = []
    for i, item in enumerate(ds.get("FractionGroupSequence") or [], start=1):
        beams = []
        for ref in item.get("ReferencedBeamSequence") or []:
            number = as_int(ref.get("ReferencedBeamNumber"))
            meterset, dose = as_float(ref.get("BeamMeterset")), as_float(ref.get("BeamDose"))
            if number is None or number in setup or meterset == 0:
                continue
            if meterset is None and dose == 0:
                continue
            beams.append(number)
        out.append((as_int(item.get("FractionGroupNumber")) or i, tuple(beams)))
    return tuple(out)
