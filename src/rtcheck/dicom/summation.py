"""Building a plan's dose from its RTDOSE files, by DoseSummationType.

PLAN (and MULTI_PLAN) doses are used as stored; FRACTION (and FRACTION_SESSION) doses hold
one fraction and are multiplied by the plan's fractions; BEAM doses are summed over every
treatment beam of the plan's fraction group, and a missing beam is an error (BEAM_SESSION
sums are then multiplied). When several kinds are present the whole-plan dose is preferred
and the others are noted. A user who knows better than the file overrides the label
(``override``, from ``--dose-summation``).

Leans on :mod:`rtcheck.dicom.discovery` (the headers of the files),
:mod:`rtcheck.dicom.rtdose` (reading each grid), :mod:`rtcheck.dose` (summing, multiplying)
and :mod:`rtcheck.model`.
"""

from __future__ import annotations

from rtcheck.dicom.discovery import FileHeader, listing
from rtcheck.dicom.rtdose import read_dose
from rtcheck.dose import multiply_fractions, sum_doses
from rtcheck.errors import InputError
from rtcheck.model import DoseGrid, Plan

#: DoseSummationType families: one fraction, per beam, the whole course. The first of each is
#: the family's name.
_ONE_FRACTION = ("FRACTION", "FRACTION_SESSION")
_BEAMS = ("BEAM", "BEAM_SESSION")
_WHOLE = ("PLAN", "MULTI_PLAN")


def _fractions_for(plan: Plan | None, group_number: int | None) -> int | None:
    """The fractions of the fraction group a dose names (else the plan's); None without plan."""
    if plan is None:
        return None
    if group_number is not None:
        for g in plan.fraction_groups:
            if g.number == group_number:
                return g.fractions
    return plan.fractions


def _only_one(headers: list[FileHeader], kind: str) -> FileHeader:
    """The one dose of a kind; several is an InputError listing them."""
    if len(headers) > 1:
        raise InputError(f"{len(headers)} {kind} doses found for this plan; choose one with "
                         "--dose FILE:" + listing(headers), headers[0].path)
    return headers[0]


def _beam_doses(headers: list[FileHeader], plan_header: FileHeader | None,
                notes: list[str]) -> list[tuple[int, FileHeader]]:
    """The BEAM doses of the plan's treatment beams, one per beam, checked complete."""
    if plan_header is None:
        if len(headers) > 1:
            raise InputError(
                f"{len(headers)} BEAM doses without their RTPLAN: rtcheck cannot check that "
                "every beam is there; give the plan, or a PLAN dose:" + listing(headers),
                headers[0].path)
        notes.append(f"BEAM dose without its RTPLAN: the dose of beam(s) "
                     f"{', '.join(map(str, headers[0].beam_numbers)) or '?'} only, kept as "
                     "stored; other beams may be missing")
        return [(headers[0].beam_numbers[0] if headers[0].beam_numbers else 0, headers[0])]
    groups = dict(plan_header.treatment_beams)
    wanted_group = next((h.fraction_group for h in headers if h.fraction_group in groups), None)
    if wanted_group is None:
        if len(groups) != 1:
            raise InputError("BEAM doses do not say which of the plan's fraction groups they "
                             "belong to", plan_header.path)
        wanted_group = next(iter(groups))
    by_beam: dict[int, list[FileHeader]] = {}
    for h in headers:
        if not h.beam_numbers:
            raise InputError("BEAM dose does not say which beam it holds "
                             "(no ReferencedBeamNumber)", h.path)
        for n in h.beam_numbers:
            by_beam.setdefault(n, []).append(h)
    expected = groups[wanted_group]
    if not expected:
        raise InputError(
            f"the plan's fraction group {wanted_group} has no beam that delivers dose (every "
            "beam has BeamMeterset 0 or is a setup beam): its BEAM doses cannot be matched",
            plan_header.path)
    missing = [n for n in expected if n not in by_beam]
    if missing:
        raise InputError(
            f"BEAM doses are incomplete: no dose for beam(s) {', '.join(map(str, missing))} of "
            f"fraction group {wanted_group}; doses found:" + listing(headers), plan_header.path)
    twice = [n for n in expected if len(by_beam[n]) > 1]
    if twice:
        raise InputError(f"several BEAM doses for beam(s) {', '.join(map(str, twice))}; choose "
                         "with --dose FILE..." + listing(by_beam[twice[0]]), plan_header.path)
    extra = sorted(set(by_beam) - set(expected))
    if extra:
        notes.append(f"BEAM doses for beam(s) {', '.join(map(str, extra))}, not treatment beams "
                     f"of fraction group {wanted_group}, were not added")
    chosen: dict[str, tuple[int, FileHeader]] = {}
    for n in expected:  # a file holding several beams is added once
        chosen.setdefault(by_beam[n][0].path, (n, by_beam[n][0]))
    return list(chosen.values())


def _select_doses(headers: list[FileHeader], explicit: bool, notes: list[str]
                  ) -> tuple[str, list[FileHeader]]:
    """The summation kind to build and its files; other kinds present are noted and unused."""
    kinds = {h.summation or "PLAN" for h in headers}
    unsupported = kinds - set(_WHOLE + _ONE_FRACTION + _BEAMS)
    if unsupported and (explicit or kinds <= unsupported):
        raise InputError(f"DoseSummationType {', '.join(sorted(unsupported))} is not supported "
                         "(PLAN, FRACTION or BEAM doses are)", headers[0].path)
    for family in (_WHOLE, _ONE_FRACTION, _BEAMS):
        chosen = [h for h in headers if h.summation in family]
        if chosen:
            if explicit and len(chosen) != len(headers):
                raise InputError("the doses given mix DoseSummationTypes "
                                 f"({', '.join(sorted(kinds))}): give one kind",
                                 headers[0].path)
            unused = [h for h in headers if h not in chosen]
            if unused:
                others = ", ".join(sorted(kinds - set(family)))
                notes.append(f"{len(unused)} other dose file(s) ({others}) not used: the "
                             f"{chosen[0].summation} dose is preferred")
            return family[0], chosen
    raise AssertionError("unreachable")


def build_dose(headers: list[FileHeader], plan: Plan | None, plan_header: FileHeader | None,
               explicit: bool, notes: list[str], override: str | None = None
               ) -> DoseGrid | None:
    """The plan's whole-course dose from its dose files; None without any.

    Parameters
    ----------
    headers : list of FileHeader
        The plan's RTDOSE files (found, or given by the user).
    plan, plan_header : Plan and its FileHeader, or None
        Give the fractions and the treatment beams a BEAM sum must cover.
    explicit : bool
        The user named the files: an unsupported or mixed summation type is an error rather
        than a note.
    notes : list of str
        Receives how the dose was built.
    override : {"PLAN", "FRACTION"}, optional
        The user's DoseSummationType, recorded in ``DoseGrid.summation_override``.
    """
    if not headers:
        return None
    family, chosen = _select_doses(headers, explicit, notes)
    if family == "BEAM":
        beams = _beam_doses(chosen, plan_header, notes)
        grids = [read_dose(h.path) for _, h in beams]
        dose = grids[0] if len(grids) == 1 else sum_doses(grids, [f"beam {n}" for n, _ in beams])
        per_session = any(h.summation == "BEAM_SESSION" for _, h in beams)
    else:
        header = _only_one(chosen, family)
        dose, per_session = read_dose(header.path), family == "FRACTION"
        if header.summation == "MULTI_PLAN":
            notes.append("MULTI_PLAN dose: the summed dose of several plans, used as stored")
    fractions = _fractions_for(plan, chosen[0].fraction_group)
    if override is not None:
        labels = ", ".join(sorted({h.summation or "PLAN" for h in chosen}))
        per_session = override == "FRACTION"
        dose.summation_override = override
        if per_session and not fractions:
            raise InputError(
                f"--dose-summation FRACTION: the dose (DoseSummationType {labels}) cannot be "
                "multiplied by the fractions: "
                + ("there is no RTPLAN" if plan is None
                   else "the plan does not give a single number of fractions"),
                ", ".join(h.path for h in chosen))
        dose.notes.append(
            f"DoseSummationType {labels} overridden by the user (--dose-summation {override}): "
            + (f"the stored dose is one fraction, multiplied by {fractions} fractions"
               if per_session else "the stored dose is the whole course, used as stored "
               "(not multiplied by the fractions)"))
    if per_session:
        if fractions:
            multiply_fractions(dose, fractions)
        else:
            notes.append(
                f"{chosen[0].summation} dose holds one fraction and is kept as stored: the "
                + ("number of fractions is unknown without the RTPLAN" if plan is None
                   else "plan does not give a single number of fractions"))
    return dose
