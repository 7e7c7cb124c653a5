"""Prior courses of a re-irradiation: their doses at the cord (or thecal sac), dates, technique.

A prior course comes from its DICOM (:func:`prior_from_plan`) or from a summary
(:func:`parse_prior_summary`, ``"30Gy/10 cord_dmax=31Gy end=2025-03-14"``). Each course keeps
the point maximum of every cord-like structure it has (cord, thecal sac, cauda equina), by role,
so that the re-irradiation rules add the same kind of structure across courses, never one
course's cord to another's sac.

The interval of the re-irradiation rules runs from the prior course's *last fraction*
(:attr:`PriorCourse.end_date`): RT treatment-record dates when the prior plan has them, else an
end date given in the summary, else the plan date plus the course length, labelled an estimate.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rtcheck.checker import extent
from rtcheck.checker.technique import (
    TECHNIQUES,
    Technique,
    given_technique,
    technique_from_scheme,
)
from rtcheck.errors import InputError
from rtcheck.model import PlanData
from rtcheck.radiobiology import parse_dose, split_scheme
from rtcheck.rules import ReirradiationRule, Rule
from rtcheck.rules.roles import RoleMap

#: Summary keys naming a point maximum, and the role each stands for.
SUMMARY_DOSE_KEYS = {"cord_dmax": "spinal_cord", "sac_dmax": "thecal_sac",
                     "cauda_dmax": "cauda_equina"}
_SUMMARY_KEYS = (*SUMMARY_DOSE_KEYS, "date", "end", "technique")
#: Margin beyond the prior target a prior cord contour must cover (TG-101, as the rules' own).
EXTENT_MARGIN_MM = 5.0
#: Roles whose point maximum a prior plan records (the structures of the cord rules).
CORD_ROLES = ("spinal_cord", "thecal_sac", "cauda_equina", "spinal_cord_prv")

# How the end of a prior course is known (PriorCourse.end_how).
END_RECORDS = "treatment_records"
END_GIVEN = "given"
END_ESTIMATE = "estimate"
END_UNKNOWN = "unknown"


@dataclass
class PriorCourse:
    """A previous course, as far as the re-irradiation rules need it.

    Attributes
    ----------
    label : str
        How the course was given (``summary '30Gy/10 cord_dmax=31Gy ...'`` or a path).
    total_dose : float or None
        Prescribed total dose (Gy).
    fractions : int or None
    point_max : dict role -> float
        Physical point maximum (Gy) in that course of each cord-like structure, by role
        (``spinal_cord``, ``thecal_sac``, ``cauda_equina``).
    structures : dict role -> str
        The structure names those maxima were read from (prior plans).
    date : datetime.date or None
        The course's plan (or start) date.
    end_date : datetime.date or None
        Its last fraction, known or estimated (see :attr:`end_how`).
    end_how : str
        ``treatment_records``, ``given``, ``estimate`` or ``unknown``; ``end_text`` in words.
    technique : Technique
    patient_id : str or None
    notes : list of str
    """

    label: str
    total_dose: float | None = None
    fractions: int | None = None
    point_max: dict[str, float] = field(default_factory=dict)
    structures: dict[str, str] = field(default_factory=dict)
    date: dt.date | None = None
    end_date: dt.date | None = None
    end_how: str = END_UNKNOWN
    end_text: str = "date of the last fraction unknown"
    technique: Technique = field(default_factory=lambda: technique_from_scheme(None, None))
    patient_id: str | None = None
    from_plan: bool = False
    notes: list[str] = field(default_factory=list)
    #: DVHs of the prior plan by role, so that a rule reads the same metric in every course.
    dvhs: dict[str, Any] = field(default_factory=dict, repr=False)
    #: The prior plan's dose grid (Gy, whole course) when usable, for voxel-wise sums.
    dose: Any = field(default=None, repr=False)
    #: Folders the prior course was read from (a REG beside it relates its frame).
    folders: tuple[str, ...] = ()

    @property
    def cord_dmax(self) -> float | None:
        """The spinal cord's point maximum, when known."""
        return self.point_max.get("spinal_cord")

    def value(self, metric: str, role: str) -> float | None:
        """``metric`` (e.g. ``Dmax``) of the structure of ``role`` in this course, in Gy.

        Read on the prior plan's DVH when it has one for that role; a summary gives only point
        maxima, so any other metric is unknown (None), never a maximum standing in for it.
        """
        if role in self.dvhs:
            return float(self.dvhs[role].metric(metric))
        from rtcheck.dvh import parse_metric

        if parse_metric(metric).kind == "max":
            return self.point_max.get(role)
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "total_dose_gy": self.total_dose, "fractions": self.fractions,
                "point_max_gy": dict(self.point_max), "structures": dict(self.structures),
                "cord_dmax_gy": self.cord_dmax,
                "date": self.date.isoformat() if self.date else None,
                "end_date": self.end_date.isoformat() if self.end_date else None,
                "end_how": self.end_how, "end_text": self.end_text,
                "technique": self.technique.as_dict(), "patient_id": self.patient_id,
                "notes": self.notes}


def estimated_end(start: dt.date, fractions: int) -> dt.date:
    """The last fraction of ``fractions`` daily weekday fractions from ``start``.

    The plan date precedes the first fraction, so this end is the *earliest* the course can
    have ended: an interval measured from it may be longer than the true one.
    """
    day, left = start, fractions - 1
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    while left > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def _settle_end(course: PriorCourse) -> None:
    """Fill end_date/end_how/end_text from what is known, in the order of the module doc."""
    if course.end_how in (END_RECORDS, END_GIVEN):
        return
    if course.date is not None and course.fractions:
        course.end_date = estimated_end(course.date, course.fractions)
        course.end_how = END_ESTIMATE
        course.end_text = (f"estimated last fraction {course.end_date} = {course.date} (plan "
                           f"date) + {course.fractions} weekday fractions; give the treatment "
                           "records or end=YYYY-MM-DD")
    else:
        course.end_date, course.end_how = None, END_UNKNOWN
        course.end_text = "date of the last fraction unknown (give end=YYYY-MM-DD)"


def parse_prior_summary(text: str) -> PriorCourse:
    """A prior course from its summary, e.g. ``"30Gy/10 cord_dmax=31Gy end=2025-03-14"``.

    The scheme comes first (any form :func:`rtcheck.radiobiology.parse_scheme` reads); then
    optional items: ``cord_dmax=``, ``sac_dmax=``, ``cauda_dmax=`` (the physical point maximum
    of the spinal cord, thecal sac or cauda equina in that course, Gy), ``date=`` (its plan or
    start date), ``end=`` (its last fraction, YYYY-MM-DD) and ``technique=`` (``sbrt`` or
    ``conventional``; otherwise rtcheck's criterion on the scheme decides). A missing item
    makes the rules that need it NOT_EVALUATED.

    Raises
    ------
    InputError
        For text that does not follow this form.
    """
    where = f"--prior-summary {text!r}"
    try:
        scheme, rest = split_scheme(text)
    except ValueError as exc:
        raise InputError(f"{where}: start with the scheme, e.g. 30Gy/10 ({exc})") from exc
    if not scheme.total_gy > 0:
        raise InputError(f"{where}: the total dose must be above 0 Gy")
    course = PriorCourse(label=f"summary '{text}'", total_dose=scheme.total_gy,
                         fractions=scheme.fractions,
                         technique=technique_from_scheme(scheme.total_gy, scheme.fractions))
    seen: set[str] = set()
    for token in rest.replace(",", " ").split():
        key, sep, value = token.partition("=")
        key = key.lower()
        if not sep or key not in _SUMMARY_KEYS:
            raise InputError(f"{where}: unknown item {token!r} (expected "
                             f"{', '.join(k + '=...' for k in _SUMMARY_KEYS)})")
        if key in seen:
            raise InputError(f"{where}: {key}= given twice")
        seen.add(key)
        if key in SUMMARY_DOSE_KEYS:
            try:
                dose = parse_dose(value)
            except ValueError as exc:
                raise InputError(f"{where}: {key}={value!r} is not a dose (e.g. 31Gy)") from exc
            if not dose >= 0:
                raise InputError(f"{where}: {key}={value!r} must be a dose >= 0 Gy")
            course.point_max[SUMMARY_DOSE_KEYS[key]] = dose
        elif key == "technique":
            if value.lower() not in TECHNIQUES:
                raise InputError(f"{where}: technique={value!r}; expected "
                                 f"{' or '.join(TECHNIQUES)}")
            course.technique = given_technique(value.lower(), "prior summary")
        elif key == "end":
            course.end_date = parse_date(value, where)
            course.end_how, course.end_text = END_GIVEN, f"last fraction {value} (given, end=)"
        else:
            course.date = parse_date(value, where)
    if course.end_date and course.date and course.end_date < course.date:
        raise InputError(f"{where}: end={course.end_date} is before date={course.date}")
    _settle_end(course)
    return course


def prior_from_plan(data: PlanData, role_table: RoleMap, explicit: Mapping[str, str],
                    label: str, roles: Iterable[str] = CORD_ROLES) -> PriorCourse:
    """A prior course from a loaded plan: fractions, dates, technique, cord-like point maxima."""
    plan = data.plan
    total = plan.prescription_gy if plan else None
    course = PriorCourse(label=label, total_dose=total, fractions=data.fractions,
                         date=plan.date if plan else None,
                         technique=technique_from_scheme(total, data.fractions),
                         patient_id=plan.patient_id if plan else None, from_plan=True)
    _end_from_records(course, list(getattr(data, "treatment_dates", []) or []))
    _settle_end(course)
    structures = data.structure_set.structures if data.structure_set else []
    names = [s.name for s in structures]
    usable = {r: n for r, n in explicit.items() if n in names}
    matches = role_table.match(names, explicit=usable, roles=list(roles))
    if data.dose is None or data.dose.units != "GY":
        course.notes.append("point maxima unknown: no dose in Gy in the prior course")
        return course
    if getattr(data.dose, "problems", None):
        course.notes.append("point maxima unknown: the prior dose is not usable for a verdict: "
                            + "; ".join(data.dose.problems))
        return course
    course.dose = data.dose
    course.folders = _folders(data)
    from rtcheck.dvh import compute_dvh

    found_targets = extent.targets(structures, role_table, usable)
    for role, match in matches.items():
        if match.status != "matched" or match.name is None:
            if match.status == "ambiguous":
                course.notes.append(f"{role}: {match.how}")
            continue
        structure = data.structure_set.get(match.name)  # type: ignore[union-attr]
        if not structure.contours:
            continue
        # the same reading conditions as this course's structures: complete contours that
        # cover the prior target's extent, or the prior maximum may be read low
        problem = ("; ".join(getattr(structure, "problems", None) or [])
                   or extent.coverage_problem([structure], found_targets, EXTENT_MARGIN_MM,
                                              getattr(data.structure_set, "plane_spacing_mm",
                                                      None)))
        if problem:
            course.notes.append(f"{role} Dmax unknown: {problem}")
            continue
        dvh = compute_dvh(structure, data.dose,
                          slice_spacing_mm=getattr(data.structure_set, "plane_spacing_mm", None))
        if not dvh.fully_covered:
            course.notes.append(f"{role} Dmax unknown: {match.name!r} only "
                                f"{dvh.covered_fraction:.1%} inside the prior dose grid")
            continue
        course.point_max[role] = dvh.dmax
        course.dvhs[role] = dvh
        course.structures[role] = match.name
        course.notes.append(f"{role} Dmax {dvh.dmax:.2f} Gy from {match.how}")
    return course


def read_priors(priors: Any, data: PlanData | None, table: RoleMap,
                explicit: Mapping[str, str], rules: Iterable[Rule]) -> list[PriorCourse]:
    """Prior courses from summaries, :class:`PriorCourse` objects or loaded prior plans.

    A prior plan records the point maximum of every cord-like role and of every role a
    re-irradiation rule of ``rules`` reads. ``data`` is the course being checked (None while
    it is being planned): a prior course that is that very plan is refused.

    Raises
    ------
    InputError
        A malformed summary, a prior plan that is the plan being checked, or an object of
        another type.
    """
    if priors is None:
        return []
    if isinstance(priors, (str, PriorCourse, PlanData)):
        priors = [priors]
    roles = set(CORD_ROLES)
    for r in rules:
        if isinstance(r, ReirradiationRule) and r.role:
            roles.update((r.role, *r.also_roles, *r.below_conus_roles))
    this_plan = data.plan if data is not None else None
    out = []
    for i, p in enumerate(priors):
        if isinstance(p, PriorCourse):
            out.append(p)
        elif isinstance(p, str):
            out.append(parse_prior_summary(p))
        elif isinstance(p, PlanData):
            where = (p.plan.path if p.plan and p.plan.path else None) or f"prior plan {i + 1}"
            if this_plan is not None and p.plan is not None and p.plan.uid == this_plan.uid:
                raise InputError(f"{where}: the prior course is the plan being checked")
            out.append(prior_from_plan(p, table, explicit, where,
                                       roles=[r for r in sorted(roles) if r in table]))
        else:
            raise InputError(f"prior course {i + 1}: expected a summary, PriorCourse or PlanData")
    return out


def registrations_for(given: Iterable[Any], priors: list[PriorCourse],
                      current_frame: str | None) -> list[Any]:
    """Spatial registrations for the voxel-wise sums: the files given (``--registration``,
    read now: a bad file is bad input) and, for a prior course whose dose lies in another
    frame of reference, the REG objects found beside it.

    Raises
    ------
    InputError
        A given file that is not a rigid spatial registration.
    """
    given = list(given)
    if not given and not any(p.dose is not None for p in priors):
        return []  # nothing to relate: no import, no folder walk
    from rtcheck.accumulation import find_registrations, read_registration

    out = [g if not isinstance(g, (str, os.PathLike)) else read_registration(g)
           for g in given]
    other = [p for p in priors if p.dose is not None
             and p.dose.frame_of_reference_uid != current_frame]
    folders = dict.fromkeys(f for p in other for f in p.folders)
    return out + (find_registrations(folders) if folders else [])


def _folders(data: PlanData) -> tuple[str, ...]:
    """The folders holding a plan's files (where a registration object may sit beside it)."""
    paths = [data.plan.path if data.plan else None, *(data.dose.paths if data.dose else ()),
             data.structure_set.path if data.structure_set else None]
    return tuple(dict.fromkeys(os.path.dirname(os.path.abspath(p)) for p in paths if p))


def _end_from_records(course: PriorCourse, dates: list[dt.date]) -> None:
    """The last fraction from treatment-record dates; when the records hold fewer dates than
    the fractions planned, the remaining fractions are added as weekday fractions (estimate)."""
    if not dates:
        return
    last, n = max(dates), len(set(dates))
    remaining = (course.fractions or n) - n
    if remaining <= 0:
        course.end_date, course.end_how = last, END_RECORDS
        course.end_text = f"last fraction {last} from {n} treatment-record date(s)"
        return
    course.end_date = estimated_end(last + dt.timedelta(days=1), remaining)
    course.end_how = END_ESTIMATE
    course.end_text = (f"estimated last fraction {course.end_date}: the treatment records hold "
                       f"{n} of {course.fractions} fractions (last {last}), the other {remaining} "
                       "counted as weekday fractions after it")


def parse_date(value: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{where}: date {value!r} is not YYYY-MM-DD") from exc
