"""Loading the plan a command works on: :func:`load_plan` and its pairing policy.

Nothing is paired by guesswork: the files found are grouped by UID references
(:mod:`rtcheck.dicom.discovery`); several plans, an unknown ``--plan``, several whole-plan
doses, a missing beam dose or two different files with one UID are errors that name the
files and say how to choose; objects that state different frames of reference are refused.
The dose is then built (:mod:`rtcheck.dicom.summation`) and checked against the plan
(:func:`rtcheck.dicom.rtdose.check_dose_plausibility`), and the plan's delivery dates are
collected from its treatment records. Every decision that changes doses is recorded in
``PlanData.warnings``.

Leans on every other module of the package, and on :mod:`rtcheck.model`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

from rtcheck.dicom.discovery import (
    FileHeader,
    PlanGroup,
    group_plans,
    listing,
    scan,
    scan_file,
)
from rtcheck.dicom.read import (
    PathLike,
    as_date,
    as_paths,
    guarded,
    quietly,
    wrong_modality,
)
from rtcheck.dicom.rtdose import check_dose_plausibility, check_targets_in_grid
from rtcheck.dicom.rtplan import read_plan
from rtcheck.dicom.rtstruct import read_structure_set
from rtcheck.dicom.summation import build_dose
from rtcheck.errors import InputError
from rtcheck.model import Plan, PlanData

#: A pair of objects whose frames of reference must agree: (UID, path, UID, path).
FramePair = tuple[str | None, str, str | None, str]


def _choose_group(groups: list[PlanGroup], plan: str | None, where: str | None,
                  need_group: bool) -> PlanGroup | None:
    """The group to load: the plan named by ``plan`` (label or UID), else the only plan, else
    the only group; None when there is no group and none is needed (files given)."""
    with_plan = [(g, g.plan) for g in groups if g.plan is not None]
    if plan is not None:
        found = ([(g, p) for g, p in with_plan if p.sop_instance_uid == plan]
                 or [(g, p) for g, p in with_plan if p.label == plan])
        if len(found) == 1:
            return found[0][0]
        if not found:
            raise InputError(f"no plan with label or UID {plan!r}; plans found:"
                             + (listing(p for _, p in with_plan) or " none"), where)
        raise InputError(f"several plans are labelled {plan!r}: choose one by UID with --plan"
                         + listing(p for _, p in found), where)
    if len(with_plan) > 1:
        raise InputError(f"{len(with_plan)} plans found; choose one with --plan LABEL_OR_UID:"
                         + listing(p for _, p in with_plan), where)
    if with_plan:
        return with_plan[0][0]
    if len(groups) == 1:
        return groups[0]
    if not groups:
        if need_group:
            raise InputError("no RTPLAN, RTDOSE or RTSTRUCT found", where)
        return None
    if not need_group:
        return None
    raise InputError("no RTPLAN, and the doses and structure sets found do not belong together; "
                     "choose them with --structures FILE --dose FILE:"
                     + listing(h for g in groups for h in g.files()), where)


def _explicit(paths: PathLike | Sequence[PathLike] | None, modality: str) -> list[FileHeader]:
    """The headers of files the user named as ``modality`` (each must be one)."""
    if paths is None:
        return []
    out = []
    for p in as_paths(paths):
        header = scan_file(str(p), named=True)
        assert header is not None  # named=True: a file that is not DICOM raised
        if header.modality != modality:
            raise wrong_modality(header.modality, modality, p)
        out.append(header)
    return out


def _check_frames(pairs: list[FramePair]) -> None:
    """InputError when two paired objects state different frames of reference."""
    for uid_a, path_a, uid_b, path_b in pairs:
        if uid_a and uid_b and uid_a != uid_b:
            raise InputError(
                f"frame of reference mismatch: {path_a} is in {uid_a} but {path_b} is in "
                f"{uid_b}; they do not describe the same patient geometry", path_a)


@quietly
@guarded("plan")
def load_plan(path_or_paths: PathLike | Sequence[PathLike] | None = None,
              plan: str | None = None,
              structures: PathLike | None = None,
              dose: PathLike | Sequence[PathLike] | None = None,
              dose_summation: str | None = None, contours: str = "all") -> PlanData:
    """Load a plan with its dose and structure set, paired and checked.

    Parameters
    ----------
    path_or_paths : path, sequence of paths, or None
        Folders (searched recursively; CT/MR slices and non-DICOM files are skipped) and/or
        files. A file named here must be DICOM.
    plan : str, optional
        RTPlanLabel or SOPInstanceUID of the plan to use when several are found.
    structures : path, optional
        The RTSTRUCT to use (overrides the one the plan references).
    dose : path or sequence of paths, optional
        The RTDOSE file(s) to use (several for BEAM doses). With ``structures`` and no plan,
        doses are as stored and the number of fractions is unknown.
    dose_summation : {"PLAN", "FRACTION"}, optional
        Overrides the RTDOSE's DoseSummationType label, for a user who knows better than the
        file: ``"PLAN"`` takes the stored dose (or the sum of BEAM doses) as the whole course,
        never multiplied by the fractions (Pinnacle labels whole-course doses FRACTION);
        ``"FRACTION"`` takes it as one fraction and multiplies it by the plan's fractions
        (InputError when they are unknown). Recorded in ``DoseGrid.summation_override`` and
        in the dose's notes (hence the warnings).
    contours : {"all", "when_used"}
        ``"when_used"``: each ROI's contours are read on first use (see
        :func:`~rtcheck.dicom.read_structure_set`), and the warnings about them go to
        ``structure_set.warnings`` then, not to ``warnings``: :func:`rtcheck.check` reports
        those of the ROIs it used. A check reads a few ROIs of a structure set.

    Returns
    -------
    PlanData
        ``warnings`` gathers every note: how the dose was built (beams summed, fractions
        multiplied, the summation override), the plan's prescription notes, the structure
        set's warnings, missing parts, the files skipped and why (unreadable, not DICOM though
        named like it, not regular files such as FIFOs), treatment records not counted.
        ``dose.problems`` says why the dose must not become a verdict: it disagrees with the
        plan (see :func:`check_dose_plausibility`: the factors and why), or is a DoseType
        ERROR grid; each problem is also a warning. ``structure_set.structures[i].problems``
        says which structures are incomplete (contours skipped).
        ``treatment_dates`` and ``treatment_records``: the delivery dates found in the
        treatment records (RTRECORD) that reference the selected plan, and their files. A
        record whose date is not readable, or that states none, is a warning naming it; a
        record of a plan that is not among the files found is not counted, with a warning; a
        record of another plan found is that plan's (not counted, no warning).

    Raises
    ------
    InputError
        Several plans and no ``plan``; an ambiguous or unknown ``plan``; several whole-plan
        doses; an incomplete set of BEAM doses (a beam with monitor units needs its dose,
        whatever its BeamDose); mismatched frames of reference; unreadable, truncated or
        non-DICOM files named explicitly; two files of the plan with one SOPInstanceUID and
        different content; any RTDOSE, RTPLAN or RTSTRUCT value that lies (see
        :func:`~rtcheck.dicom.read_dose`, :func:`~rtcheck.dicom.read_plan`);
        ``dose_summation`` not PLAN or FRACTION.

    Notes
    -----
    Dose summation:

    - PLAN (and MULTI_PLAN): used as stored. Preferred when several kinds are present.
    - FRACTION (one fraction, as planning systems export it; FRACTION_SESSION likewise):
      multiplied by the plan's NumberOfFractionsPlanned (``DoseGrid.fractions_applied``).
      Without a plan it is kept as stored, with a warning.
    - BEAM: the doses of every treatment beam of the plan's fraction group are summed (a
      missing beam is an error); grids that differ are resampled onto the first grid by
      trilinear interpolation and must cover it. BEAM_SESSION sums are then multiplied by
      the fractions. A single BEAM dose without a plan is kept as stored, with a warning.
    - ``dose_summation`` overrides the label (PLAN: as stored; FRACTION: multiplied).

    Plausibility (:func:`check_dose_plausibility`): the dose so built is compared with the
    plan's prescription and its beams' BeamDose x fractions. Its maximum must lie within
    0.8-3.5 x one of them (:data:`DOSE_MAX_BAND`: SBRT hot spots reach 1.5 x, SRS at the
    30 % isodose 3.3 x; a per-fraction dose labelled PLAN is 1/n, a whole-course dose
    labelled FRACTION and multiplied is n x, a cGy grid 100 x) and, when a target ROI lies
    in the grid, the hottest target's median dose within 0.7-2.0 x
    (:data:`TARGET_MEDIAN_BAND`). Otherwise ``dose.problems`` says so with the numbers.

    Treatment dates: a plan's RTPlanDate is when it was made; when it was delivered is in
    its treatment records (one per session, as treatment systems export them). Every date a
    record states is collected: its TreatmentDate, the TreatmentControlPointDate of each
    delivered control point (and a TreatmentDate in beam items, which some systems write),
    the dates of an RT Treatment Summary Record. Records are only found in
    ``path_or_paths`` (folders or files).
    """
    where = None if path_or_paths is None else ", ".join(map(str, as_paths(path_or_paths)))
    override = _summation_override(dose_summation)
    notes: list[str] = []
    records = scan(path_or_paths) if path_or_paths is not None else []
    notes += [f"{r.path}: skipped ({r.error})" for r in records if r.error]
    given_structures = _explicit(structures, "RTSTRUCT")
    given_doses = _explicit(dose, "RTDOSE")
    groups = group_plans(records)
    referenced = {h.referenced_plan_uid for h in given_doses}
    if plan is None and len(referenced) == 1 and any(
            g.plan and g.plan.sop_instance_uid in referenced for g in groups):
        plan = referenced.pop()  # the dose given names its plan: no choice to make
    group = _choose_group(groups, plan, where, need_group=not (given_structures or given_doses))
    plan_header = group.plan if group else None
    if group is not None:
        _refuse_conflicts(group, bool(given_doses), bool(given_structures))
        notes += group.notes
        missing = [m for m, part in zip(group.missing, group.missing_parts)
                   if not (part == "RTDOSE" and given_doses)
                   and not (part == "RTSTRUCT" and given_structures)]
        _unreadable_may_be_missing(records, missing, where)
        notes += [f"{(plan_header or group.files()[0]).path}: missing {m}" for m in missing]
    plan_obj = read_plan(plan_header.path) if plan_header else None
    dose_headers = given_doses or (group.doses if group else [])
    if plan_obj is not None:
        for h in given_doses:
            if h.referenced_plan_uid and h.referenced_plan_uid != plan_obj.uid:
                notes.append(f"{h.path}: references plan {h.referenced_plan_uid}, not the "
                             f"selected plan {plan_obj.label or plan_obj.uid}")
    struct_header = (given_structures[0] if given_structures
                     else group.structure_set if group else None)
    if given_structures and struct_header is not None and plan_header is not None and (
            plan_header.referenced_structure_set_uid
            not in (None, struct_header.sop_instance_uid)):
        notes.append(f"{struct_header.path}: is not the structure set the plan references "
                     f"({plan_header.referenced_structure_set_uid})")
    _check_frames(_frame_pairs(plan_header, dose_headers, struct_header))
    dose_grid = build_dose(dose_headers, plan_obj, plan_header, bool(given_doses), notes,
                            override)
    ss = read_structure_set(struct_header.path, contours) if struct_header else None
    if plan_obj is None:
        notes.append("no RTPLAN: doses are as stored in the RTDOSE and the number of "
                     "fractions is unknown")
    else:
        notes = plan_obj.notes + notes
        if dose_grid is not None:
            dose_grid.problems.extend(check_dose_plausibility(dose_grid, plan_obj, ss))
    if dose_grid is not None:
        notes += dose_grid.notes
        notes += [f"dose not usable for a verdict: {p}" for p in dose_grid.problems]
    if ss is not None:
        notes += ss.warnings
        if dose_grid is not None:
            check_targets_in_grid(dose_grid, ss, notes)
    own = group.records if group else []
    dates = _treatment_dates(own, plan_obj, notes)
    _other_records(records, groups, notes)
    return PlanData(plan=plan_obj, dose=dose_grid, structure_set=ss,
                    warnings=list(dict.fromkeys(notes)), treatment_dates=dates,
                    treatment_records=[r.path for r in own])


def _summation_override(value: str | None) -> str | None:
    """The ``--dose-summation`` value, upper case (PLAN or FRACTION); None when not given."""
    if value is None:
        return None
    text = str(value).strip().upper()
    if text not in ("PLAN", "FRACTION"):
        raise InputError(f"dose summation override {value!r} is neither PLAN nor FRACTION")
    return text


def _refuse_conflicts(group: PlanGroup, given_doses: bool, given_structures: bool) -> None:
    """InputError when a file of the plan has a twin with the same UID and other content
    (a dose or structure set the user chose explicitly is not in doubt)."""
    for modality, _, _, message in group.conflicts:
        if (modality == "RTDOSE" and given_doses) or (modality == "RTSTRUCT"
                                                      and given_structures):
            continue
        raise InputError(message)


def _treatment_dates(own: list[FileHeader], plan: Plan | None,
                     notes: list[str]) -> list[_dt.date]:
    """The sorted, unique delivery dates of the plan's records; what cannot be read is noted."""
    dates: set[_dt.date] = set()
    for r in own:
        found = []
        for raw in r.treatment_dates:
            day = as_date(raw)
            if day is None:
                notes.append(f"{r.path}: treatment date {raw!r} is not a readable date "
                             "(YYYYMMDD): ignored, so this record's delivery dates may be "
                             "incomplete")
            else:
                found.append(day)
        if not found and not any(as_date(raw) is None for raw in r.treatment_dates):
            notes.append(f"{r.path}: treatment record states no treatment date: the delivery "
                         "it records is not dated")
        dates.update(found)
        if plan is not None and plan.patient_id and r.patient_id not in (None, plan.patient_id):
            notes.append(f"{r.path}: treatment record of patient {r.patient_id!r} references "
                         f"the plan of patient {plan.patient_id!r}; its dates are counted")
    return sorted(dates)


def _other_records(records: list[FileHeader], groups: list[PlanGroup],
                   notes: list[str]) -> None:
    """Note the treatment records whose plan is not among the files found: their deliveries
    count for no plan (a record of a replaced plan may hold a course's last fraction).

    Records of another plan that was found belong to that plan and are not mentioned.
    """
    known = ({g.plan.sop_instance_uid for g in groups if g.plan is not None}
             | {d.referenced_plan_uid for g in groups if g.plan is None for d in g.doses})
    for r in records:
        if r.modality != "RTRECORD" or r.error or (
                r.referenced_plan_uid and r.referenced_plan_uid in known):
            continue
        what = (f"references plan {r.referenced_plan_uid}, which is not among the files found"
                if r.referenced_plan_uid else
                "references no RTPLAN (it names none, or the file is cut short)")
        notes.append(f"{r.path}: treatment record {what}: its dates are not counted")


def _unreadable_may_be_missing(records: list[FileHeader], missing: list[str],
                               where: str | None) -> None:
    """A part of the plan is missing and some files could not be read: say which, loudly.

    A truncated RTDOSE in the plan's folder would otherwise surface as "no dose".
    """
    bad = [r for r in records if r.error]
    if bad and missing:
        raise InputError(
            f"{'; '.join(missing)}; these files could not "
            "be read and may be the missing part:"
            + "".join(f"\n  - {r.path}: {r.error}" for r in bad), where)


def _frame_pairs(plan: FileHeader | None, doses: list[FileHeader],
                 structure_set: FileHeader | None) -> list[FramePair]:
    """Every pair of the objects to load, with their frames of reference."""
    objects = [h for h in (plan, *doses, structure_set) if h is not None]
    return [(a.frame_of_reference_uid, a.path, b.frame_of_reference_uid, b.path)
            for i, a in enumerate(objects) for b in objects[i + 1:]]
