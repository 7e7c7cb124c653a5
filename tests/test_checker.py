"""The checker, rule by rule: a plan that passes, one that fails, one that cannot be evaluated.

Plans are analytical phantoms: a dose grid that is uniform over each structure (so Dmax,
D0.035cc, D5cc... all equal the dose written into the grid) and cylinders for structures.
Expected values are computed by hand in the comments, with the LQ formulas
BED = D (1 + d/(a/b)) and EQD2 = D (d + a/b) / (2 + a/b), d = D/n.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import types

import numpy as np
import pytest
from click.testing import CliRunner

from rtcheck.checker import PriorCourse, bed, check, eqd2, parse_prior_summary
from rtcheck.cli import main
from rtcheck.errors import InputError
from rtcheck.model import Contour, DoseGrid, FractionGroup, Plan, PlanData, Structure, StructureSet
from rtcheck.synthetic import cylinder
from test_protocols import TG101

AXIS = np.arange(-40.0, 40.01, 2.0)  # dose grid: -40..40 mm, 2 mm voxels, on x, y and z
CORD = (0.0, -20.0, 5.0, -20.0, 20.0)  # cx, cy, r, z0, z1: 3.3 cc, where y < 0
PTV = (0.0, 15.0, 8.0, -10.0, 10.0)  # where y > 0
ORGAN = (0.0, 0.0, 15.0, -20.0, 20.0)  # 29.6 cc, for the TG-101 volume rows (up to 20 cc)


def _structure(number: int, name: str, geometry) -> Structure:
    cx, cy, r, z0, z1 = geometry
    zs = np.arange(z0, z1 + 1e-9, 2.0)
    return Structure(number, name, [Contour(z, xy) for z, xy in cylinder(cx, cy, r, zs)])


def make_plan(*, fractions: int | None = 5, rx: float | None = 30.0, cord_gy: float = 10.0,
              ptv_gy: float = 30.0, structures=None, date=dt.date(2025, 9, 1),
              units: str = "GY", with_dose: bool = True, uid: str = "1.2.826.0.1.1") -> PlanData:
    """A plan whose dose is ``cord_gy`` where y < 0 (the cord side) and ``ptv_gy`` where y > 0.

    ``structures`` maps names to geometries (default: SpinalCord and PTV).
    """
    if structures is None:
        structures = {"SpinalCord": CORD, "PTV": PTV}
    ss = StructureSet([_structure(i + 1, n, g) for i, (n, g) in enumerate(structures.items())])
    zz, yy, _ = np.meshgrid(AXIS, AXIS, AXIS, indexing="ij")
    values = np.where(yy > 0, ptv_gy, cord_gy).astype(float)
    dose = DoseGrid(AXIS, AXIS.copy(), AXIS.copy(), values, units=units) if with_dose else None
    groups = [FractionGroup(1, fractions)] if fractions is not None else []
    plan = Plan(uid=uid, label="PHANTOM", fraction_groups=groups, prescription_gy=rx, date=date)
    return PlanData(plan, dose, ss)


def find(result, rule_id: str, structure: str | None = None):
    hits = [f for f in result.findings if f.rule == rule_id
            and (structure is None or f.structure == structure)]
    assert len(hits) == 1, (rule_id, [f.rule for f in result.findings], result.skipped)
    return hits[0]


def skipped(result, rule_id: str) -> str:
    hits = [s["reason"] for s in result.skipped if s["rule"] == rule_id]
    assert hits, (rule_id, result.skipped)
    return hits[0]


# ============================================================================ radiobiology


def test_lq_formulas_by_hand():
    assert bed(30, 10, 10) == pytest.approx(39.0)  # 30 (1 + 3/10)
    assert bed(27, 3, 10) == pytest.approx(51.3)  # 27 (1 + 9/10)
    assert eqd2(30, 10, 2) == pytest.approx(37.5)  # 30 (3 + 2) / 4
    assert eqd2(13, 1, 2) == pytest.approx(48.75)  # 13 (13 + 2) / 4
    assert eqd2(12.4, 1, 2) == pytest.approx(44.64)


# ============================================================================ fractionation


FRACTIONATION = [
    # indication, passing scheme, failing scheme
    ("pain", (30, 10), (25, 4)),
    ("pain-fracture-risk", (30, 10), (8, 2)),
    ("post-operative", (20, 5), (30, 5)),
    ("cord-compression", (30, 10), (36, 12)),
    ("reirradiation", (35, 5), (25, 4)),  # 25/4: BED10 = 25 (1 + 0.625) = 40.6 < 51.3
    ("oligometastatic", (27, 3), (30, 5)),  # 30/5: BED10 = 30 (1 + 0.6) = 48.0 < 51.3
]


@pytest.mark.parametrize("indication,good,bad", FRACTIONATION)
def test_fractionation_pass_fail_not_evaluated(indication, good, bad):
    rule = f"fractionation.{indication}"
    ok = check(make_plan(rx=good[0], fractions=good[1], with_dose=False), indication=indication)
    f = find(ok, rule)
    assert (f.status, f.value, f.metric) == ("PASS", good[0], "prescription")
    assert "recommended" in f.reason and f.source.startswith("Référentiel 2026, Tableau 5")
    ko = find(check(make_plan(rx=bad[0], fractions=bad[1], with_dose=False),
                    indication=indication), rule)
    assert ko.status == "FAIL" and "nearest listed" in ko.reason
    unknown = find(check(make_plan(rx=good[0], fractions=None, with_dose=False),
                         indication=indication), rule)
    assert unknown.status == "NOT_EVALUATED" and "fractions unknown" in unknown.reason
    no_rx = find(check(make_plan(rx=None, fractions=good[1], with_dose=False),
                       indication=indication), rule)
    assert no_rx.status == "NOT_EVALUATED" and "prescribed dose unknown" in no_rx.reason


@pytest.mark.parametrize("indication,scheme,status,words", [
    ("pain", (6, 1), "PASS", "other possible"),
    ("pain-fracture-risk", (8, 1), "WARN", "exceptionally"),
    ("cord-compression", (8, 1), "WARN", "section 2.1"),
    ("post-operative", (8, 1), "PASS", "other possible"),
    ("reirradiation", (20, 5), "PASS", "other possible"),
    # 24/2: BED10 = 24 (1 + 12/10) = 52.8, inside [51.3, 59.5]
    ("reirradiation", (24, 2), "PASS", "BED10 = 52.8 Gy, a biological equivalent"),
    # 30/4: BED10 = 30 (1 + 7.5/10) = 52.5, inside [51.3, 52.5] (table's 35/7 row)
    ("oligometastatic", (30, 4), "PASS", "BED10 = 52.5 Gy"),
    # 35/5: BED10 = 59.5, outside [51.3, 52.5]: the Tableau 5 / section 2.2.2 discrepancy
    ("oligometastatic", (35, 5), "FAIL", "BED10 = 59.5 Gy is outside [51.3, 52.5]"),
    ("pain", (29.9, 10), "PASS", "recommended"),  # within the 0.5 % tolerance (0.15 Gy)
    ("pain", (29.8, 10), "FAIL", "not a listed scheme"),
])
def test_fractionation_tiers_and_biological_equivalent(indication, scheme, status, words):
    f = find(check(make_plan(rx=scheme[0], fractions=scheme[1], with_dose=False),
                   indication=indication), f"fractionation.{indication}")
    assert f.status == status and words in f.reason, f.reason


def test_biological_equivalent_definition_and_numbers_in_the_finding():
    f = find(check(make_plan(rx=24, fractions=2, with_dose=False), indication="reirradiation"),
             "fractionation.reirradiation")
    assert f.alpha_beta == 10 and f.model == "LQ"
    assert "biological equivalent = BED at alpha/beta 10 Gy (LQ)" in f.reason
    assert f.details["bed_span_min_gy"] == pytest.approx(51.3)
    assert f.details["bed_span_max_gy"] == pytest.approx(59.5)
    assert f.details["BED10_gy"] == pytest.approx(52.8)


def test_single_fraction_spine_pain_warns():
    f = find(check(make_plan(rx=8, fractions=1, with_dose=False), indication="pain", site="spine"),
             "fractionation.pain")
    assert f.status == "WARN" and "Préférer les schémas fractionnés" in f.reason


def test_other_indications_are_skipped_not_failed():
    result = check(make_plan(rx=30, fractions=10, with_dose=False), indication="pain")
    assert "not requested" in skipped(result, "fractionation.reirradiation")
    assert all(f.rule != "fractionation.reirradiation" for f in result.findings)


def test_unknown_indication_is_bad_input():
    with pytest.raises(InputError, match="unknown indication 'palliative'"):
        check(make_plan(with_dose=False), indication="palliative")


# ============================================================================ SBRT ranges


@pytest.mark.parametrize("site,scheme,status,words", [
    ("spine", (27, 3), "PASS", "27-30 Gy in 3 fx"),
    ("spine", (35, 5), "PASS", "30-35 Gy in 5 fx"),
    ("spine", (20, 2), "PASS", "18-24 Gy in 1-2 fx"),
    ("spine", (24, 1), "WARN", "cas particuliers"),
    ("spine", (36, 5), "FAIL", "outside 30-35 Gy in 5 fx"),
    ("spine", (30, 4), "FAIL", "no spine SBRT range for 4 fractions"),
    ("spine", (24.2, 1), "FAIL", "outside 18-24 Gy in 1-2 fx"),  # beyond 0.5 % of 24 Gy
    ("sacrum", (30, 5), "PASS", "24-40 Gy in 3-5 fx"),
    ("sacrum", (45, 5), "FAIL", "outside 24-40 Gy"),
    ("sacrum", (24, 2), "FAIL", "no sacrum SBRT range for 2 fractions"),
    ("extraspinal", (40, 5), "PASS", "24-50 Gy in 3-5 fx"),
    ("extraspinal", (20, 1), "WARN", "cas particuliers"),
    ("extraspinal", (55, 5), "FAIL", "outside 24-50 Gy"),
    ("extraspinal", (24, 2), "FAIL", "no extraspinal SBRT range for 2 fractions"),
])
def test_sbrt_ranges(site, scheme, status, words):
    result = check(make_plan(rx=scheme[0], fractions=scheme[1], with_dose=False), site=site,
                   technique="sbrt")
    f = find(result, f"sbrt-range.{site}")
    assert f.status == status and words in f.reason, f.reason


@pytest.mark.parametrize("site", ["spine", "sacrum", "extraspinal"])
def test_sbrt_range_not_evaluated_without_fractions(site):
    f = find(check(make_plan(rx=30, fractions=None, with_dose=False), site=site),
             f"sbrt-range.{site}")
    assert f.status == "NOT_EVALUATED" and "fractions unknown" in f.reason


def test_sbrt_range_skipped_for_a_conventional_course():
    # 20 Gy/5 is the re-irradiation row's conventional 'other' scheme: not an SBRT course.
    result = check(make_plan(rx=20, fractions=5, with_dose=False), indication="reirradiation",
                   site="spine")
    assert "not an SBRT course" in skipped(result, "sbrt-range.spine")
    result = check(make_plan(rx=8, fractions=1, with_dose=False), indication="pain", site="spine")
    assert "conventional" in skipped(result, "sbrt-range.spine")
    # 35 Gy/5 is the row's SBRT scheme: the range is checked.
    result = check(make_plan(rx=35, fractions=5, with_dose=False), indication="reirradiation",
                   site="spine")
    assert find(result, "sbrt-range.spine").status == "PASS"


# ============================================================================ SBRT cord Dmax


@pytest.mark.parametrize("fractions,cord,status", [
    (1, 12.0, "PASS"), (1, 13.0, "WARN"), (1, 14.5, "FAIL"),
    (2, 16.9, "PASS"), (2, 17.1, "FAIL"),
    (3, 20.0, "PASS"), (3, 20.5, "FAIL"),
    (4, 22.9, "PASS"), (4, 23.1, "FAIL"),
    (5, 25.0, "PASS"), (5, 25.5, "FAIL"),
])
def test_sbrt_cord_dmax(fractions, cord, status):
    f = find(check(make_plan(fractions=fractions, rx=30, cord_gy=cord)), "sbrt-cord-dmax")
    assert (f.status, f.structure, f.role, f.metric) == (status, "SpinalCord", "spinal_cord", "Dmax")
    assert f.value == pytest.approx(cord, abs=1e-6)  # uniform dose over the cord
    # both near-maximum volumes shown beside the point maximum
    assert f.details["D0.035cc"] == pytest.approx(cord, abs=0.02)
    assert f.details["D0.03cc"] == pytest.approx(cord, abs=0.02)
    assert f.alpha_beta is None and f.model is None


def test_sbrt_cord_dmax_not_evaluated_cases():
    # no cord contour
    f = find(check(make_plan(fractions=3, structures={"PTV": PTV})), "sbrt-cord-dmax")
    assert f.status == "NOT_EVALUATED" and "no structure matches role spinal_cord" in f.reason
    # two candidates
    both = {"SpinalCord": CORD, "Moelle": (0.0, -20.0, 4.0, -20.0, 20.0), "PTV": PTV}
    f = find(check(make_plan(fractions=3, structures=both)), "sbrt-cord-dmax")
    assert f.status == "NOT_EVALUATED" and "ambiguous" in f.reason
    assert "SpinalCord" in f.structure and "Moelle" in f.structure
    # ... resolved by --map
    f = find(check(make_plan(fractions=3, structures=both), explicit_roles={"spinal_cord": "Moelle"}),
             "sbrt-cord-dmax")
    assert (f.status, f.structure) == ("PASS", "Moelle")
    # relative dose
    f = find(check(make_plan(fractions=3, units="RELATIVE")), "sbrt-cord-dmax")
    assert f.status == "NOT_EVALUATED" and "RELATIVE" in f.reason
    # no dose at all
    f = find(check(make_plan(fractions=3, with_dose=False)), "sbrt-cord-dmax")
    assert f.status == "NOT_EVALUATED" and "no dose grid" in f.reason
    # unknown number of fractions
    f = find(check(make_plan(fractions=None)), "sbrt-cord-dmax")
    assert f.status == "NOT_EVALUATED" and "fractions unknown" in f.reason


def test_sbrt_cord_dmax_partial_coverage():
    # The cord runs from z = -60 to 20 mm, the grid from -40 (-41 with half a voxel): about a
    # quarter of the cord is outside. Low dose inside: the maximum outside is unknown.
    long_cord = {"SpinalCord": (0.0, -20.0, 5.0, -60.0, 20.0)}
    f = find(check(make_plan(fractions=3, cord_gy=10.0, structures=long_cord)), "sbrt-cord-dmax")
    assert f.status == "NOT_EVALUATED" and "inside the dose grid" in f.reason
    # High dose inside: the covered part alone exceeds 20.3 Gy, so the plan fails whatever
    # lies outside.
    f = find(check(make_plan(fractions=3, cord_gy=22.0, structures=long_cord)), "sbrt-cord-dmax")
    assert f.status == "FAIL" and "covered part alone" in f.reason


def test_sbrt_cord_dmax_scope():
    result = check(make_plan(fractions=10, rx=30))
    assert "outside the rule's scope (1-5 fractions)" in skipped(result, "sbrt-cord-dmax")
    result = check(make_plan(fractions=1, rx=20, structures={"PTV": PTV}), site="extraspinal")
    assert "site extraspinal" in skipped(result, "sbrt-cord-dmax")


def test_french_and_accented_cord_names():
    for name in ("Moelle", "MOELLE", "Moëlle", "moelle_epiniere"):
        f = find(check(make_plan(fractions=5, cord_gy=20, structures={name: CORD})),
                 "sbrt-cord-dmax")
        assert (f.status, f.structure) == ("PASS", name)


# ============================================================================ oesophagus warning


def test_esophagus_warning():
    organs = {"Œsophage": ORGAN}
    result = check(make_plan(fractions=5, cord_gy=12, structures=organs), vertebral_level="T4")
    f = find(result, "esophagus-c5-t10")
    # ORGAN spans y in [-15, 15]: its dose runs from 12 Gy (y < 0) to 30 Gy (y > 0)
    assert f.status == "WARN" and f.structure == "Œsophage" and "T4 within C5-T10" in f.reason
    assert f.details["Dmax"] == pytest.approx(30.0, abs=1e-6)
    # a span that overlaps the range
    assert find(check(make_plan(fractions=5, structures=organs), vertebral_level="T10-L1"),
                "esophagus-c5-t10").status == "WARN"
    # outside the range: not applicable
    result = check(make_plan(fractions=5, structures=organs), vertebral_level="L2")
    assert "outside C5-T10" in skipped(result, "esophagus-c5-t10")
    # spine site without level: cannot tell
    f = find(check(make_plan(fractions=5, structures=organs), site="spine"), "esophagus-c5-t10")
    assert f.status == "NOT_EVALUATED" and "vertebral level unknown" in f.reason
    # French dorsal numbering is the same vertebra
    assert find(check(make_plan(fractions=5, structures=organs), vertebral_level="D10"),
                "esophagus-c5-t10").status == "WARN"
    with pytest.raises(InputError, match="vertebral-level"):
        check(make_plan(fractions=5), vertebral_level="T13")


def test_esophagus_warning_never_passes():
    statuses = set()
    for level in ("C5", "T10", "C4", "T11", None):
        for site in ("spine", None):
            result = check(make_plan(fractions=5, structures={"Esophagus": ORGAN}),
                           vertebral_level=level, site=site)
            statuses |= {f.status for f in result.findings if f.rule == "esophagus-c5-t10"}
    assert "PASS" not in statuses and statuses == {"WARN", "NOT_EVALUATED"}


# ============================================================================ re-irradiation

REIRR = ("reirradiation.cumulative-cord-eqd2", "reirradiation.course-cord-eqd2",
         "reirradiation.course-share", "reirradiation.interval")


def test_reirradiation_all_pass_by_hand():
    # prior: cord 30 Gy in 10 fx -> EQD2(a/b 2) = 30 (3 + 2) / 4 = 37.5 Gy
    # now:   cord 9 Gy in 3 fx   -> 9 (3 + 2) / 4 = 11.25 Gy
    # cumulative 48.75 < 70; course 11.25 < 25; share 11.25 / 48.75 = 0.2308 <= 0.5
    # interval 2025-01-01 -> 2025-09-01 = 243 days = 7.98 months >= 5
    result = check(make_plan(fractions=3, rx=27, cord_gy=9.0),
                   priors="30Gy/10 cord_dmax=30Gy date=2025-01-01")
    cum, course, share, interval = (find(result, r) for r in REIRR)
    assert (cum.status, cum.value) == ("PASS", pytest.approx(48.75, abs=1e-5))
    assert (course.status, course.value) == ("PASS", pytest.approx(11.25, abs=1e-5))
    assert (share.status, share.value) == ("PASS", pytest.approx(11.25 / 48.75, abs=1e-6))
    assert (interval.status, interval.value) == ("PASS", pytest.approx(243 / 30.4375))
    for f in (cum, course, share):
        assert f.alpha_beta == 2.0 and f.model == "LQ" and f.structure == "SpinalCord"
    assert interval.alpha_beta is None
    assert cum.details["courses"][1]["eqd2_gy"] == pytest.approx(37.5)


def test_reirradiation_all_fail_by_hand():
    # prior: 31 Gy in 10 fx -> 31 (3.1 + 2) / 4 = 39.525; now 13 Gy in 1 fx -> 13 x 15 / 4 = 48.75
    # cumulative 88.275 > 75 FAIL; course 48.75 >= 25 FAIL; share 0.5523 > 0.5 FAIL;
    # interval 2025-06-01 -> 2025-09-01 = 92 days = 3.02 months < 5 FAIL
    result = check(make_plan(fractions=1, rx=24, cord_gy=13.0),
                   priors=["30Gy/10 cord_dmax=31Gy date=2025-06-01"])
    cum, course, share, interval = (find(result, r) for r in REIRR)
    assert (cum.status, cum.value) == ("FAIL", pytest.approx(88.275, abs=1e-5))
    assert (course.status, course.value) == ("FAIL", pytest.approx(48.75, abs=1e-5))
    assert (share.status, share.value) == ("FAIL", pytest.approx(48.75 / 88.275, abs=1e-6))
    assert (interval.status, interval.value) == ("FAIL", pytest.approx(92 / 30.4375))
    assert result.verdict == "FAIL" and result.exit_code == 1


def test_reirradiation_no_consensus_band_is_warn():
    # prior: 40 Gy in 20 fx (2 Gy/fx) -> EQD2 40; now 20 Gy in 5 fx -> 20 (4 + 2) / 4 = 30;
    # cumulative exactly 70: not < 70, within the 70-75 band -> WARN
    result = check(make_plan(fractions=5, rx=35, cord_gy=20.0),
                   priors="40Gy/20 cord_dmax=40Gy date=2024-01-01")
    f = find(result, "reirradiation.cumulative-cord-eqd2")
    assert (f.status, f.value) == ("WARN", pytest.approx(70.0, abs=1e-5))
    assert "no-consensus band" in f.reason
    # 76 Gy: prior 46 Gy in 23 fx -> 46; now 20 Gy/5 -> 30; cumulative 76 > 75 -> FAIL
    result = check(make_plan(fractions=5, rx=35, cord_gy=20.0),
                   priors="46Gy/23 cord_dmax=46Gy date=2024-01-01")
    assert find(result, "reirradiation.cumulative-cord-eqd2").status == "FAIL"


def test_reirradiation_not_evaluated_cases():
    plan = make_plan(fractions=3, rx=27, cord_gy=9.0)
    # prior cord dose and date unknown
    result = check(plan, priors="30Gy/10")
    cum, course, share, interval = (find(result, r) for r in REIRR)
    assert cum.status == share.status == interval.status == "NOT_EVALUATED"
    assert "prior cord dose unknown" in cum.reason and "date of the prior course" in interval.reason
    assert course.status == "PASS"  # the course's own EQD2 needs no prior dose
    # current cord missing
    result = check(make_plan(fractions=3, structures={"PTV": PTV}),
                   priors="30Gy/10 cord_dmax=30Gy date=2025-01-01")
    for rule in REIRR[:3]:
        assert find(result, rule).status == "NOT_EVALUATED"
    # re-irradiation indication without any prior course
    result = check(plan, indication="reirradiation")
    for rule in REIRR:
        f = find(result, rule)
        assert f.status == "NOT_EVALUATED" and "no prior course" in f.reason
    # this plan undated
    result = check(make_plan(fractions=3, date=None), priors="30Gy/10 cord_dmax=30Gy date=2025-01-01")
    assert "date of this course unknown" in find(result, "reirradiation.interval").reason
    # prior dated after this plan
    result = check(plan, priors="30Gy/10 cord_dmax=30Gy date=2025-12-01")
    assert "dated after" in find(result, "reirradiation.interval").reason


def test_reirradiation_interval_given_and_date_given():
    result = check(make_plan(fractions=3, cord_gy=9.0, date=None), priors="30Gy/10 cord_dmax=30Gy",
                   interval_months=6)
    assert find(result, "reirradiation.interval").status == "PASS"
    result = check(make_plan(fractions=3, cord_gy=9.0, date=None),
                   priors="30Gy/10 cord_dmax=30Gy date=2025-01-01", date="2025-04-01")
    f = find(result, "reirradiation.interval")  # 90 days = 2.96 months
    assert (f.status, f.value) == ("FAIL", pytest.approx(90 / 30.4375))


def test_reirradiation_scope_and_no_prior():
    # a 10-fraction course: the two SBRT-course rules are out of scope, the others apply
    result = check(make_plan(fractions=10, rx=30, cord_gy=9.0),
                   priors="30Gy/10 cord_dmax=30Gy date=2024-01-01")
    assert "SBRT courses of 1-5 fractions" in skipped(result, "reirradiation.course-cord-eqd2")
    assert "SBRT courses of 1-5 fractions" in skipped(result, "reirradiation.course-share")
    # 9 Gy in 10 fx -> 9 (0.9 + 2) / 4 = 6.525; + 37.5 = 44.025
    assert find(result, "reirradiation.cumulative-cord-eqd2").value == pytest.approx(44.025)
    result = check(make_plan(fractions=3))
    assert "no prior course" in skipped(result, "reirradiation.cumulative-cord-eqd2")


def test_several_prior_courses_add_up():
    # 37.5 + 20 Gy in 10 fx at the cord (20 (2 + 2) / 4 = 20) + 11.25 = 68.75 < 70
    result = check(make_plan(fractions=3, cord_gy=9.0),
                   priors=["30Gy/10 cord_dmax=30Gy date=2023-01-01",
                           "20Gy/10 cord_dmax=20Gy date=2025-01-01"])
    f = find(result, "reirradiation.cumulative-cord-eqd2")
    assert (f.status, f.value) == ("PASS", pytest.approx(68.75))
    # the interval counts from the most recent course: 243 days
    assert find(result, "reirradiation.interval").value == pytest.approx(243 / 30.4375)


def test_alpha_beta_override_is_applied_and_reported():
    # a/b 3: now 13 Gy in 1 fx -> 13 (13 + 3) / 5 = 41.6
    result = check(make_plan(fractions=1, cord_gy=13.0), priors="30Gy/10 cord_dmax=31Gy",
                   alpha_beta={"spinal_cord": 3.0})
    f = find(result, "reirradiation.course-cord-eqd2")
    assert (f.alpha_beta, f.value) == (3.0, pytest.approx(41.6))
    assert "--alpha-beta spinal_cord" in f.reason and "uses 2 Gy" in f.reason
    f = find(check(make_plan(rx=24, fractions=2, with_dose=False), indication="reirradiation",
                   alpha_beta={"fractionation.reirradiation": 3.0}), "fractionation.reirradiation")
    assert f.alpha_beta == 3.0 and "BED3" in f.reason
    with pytest.raises(InputError, match="not a role nor the id of a rule that converts"):
        check(make_plan(), alpha_beta={"cord": 2.0})
    with pytest.raises(InputError, match="not a role nor the id of a rule that converts"):
        check(make_plan(), alpha_beta={"sbrt-cord-dmax": 2.0})
    with pytest.raises(InputError, match="must be a number > 0"):
        check(make_plan(), alpha_beta={"spinal_cord": 0})


def test_prior_course_from_a_plan():
    prior = make_plan(fractions=10, rx=30, cord_gy=31.0, date=dt.date(2025, 3, 1), uid="1.2.9")
    result = check(make_plan(fractions=1, cord_gy=13.0), priors=[prior])
    f = find(result, "reirradiation.cumulative-cord-eqd2")
    assert f.value == pytest.approx(88.275, abs=1e-4)
    assert find(result, "reirradiation.interval").value == pytest.approx(184 / 30.4375)
    with pytest.raises(InputError, match="is the plan being checked"):
        check(make_plan(), priors=[make_plan()])


@pytest.mark.parametrize("text,course", [
    ("30Gy/10 cord_dmax=31Gy date=2025-03-01",
     PriorCourse("summary '30Gy/10 cord_dmax=31Gy date=2025-03-01'", 30.0, 10, 31.0,
                 dt.date(2025, 3, 1))),
    ("10 x 3 Gy cord_dmax=31 Gy", None),
    ("10 x 3 Gy cord_dmax=31Gy", PriorCourse("summary '10 x 3 Gy cord_dmax=31Gy'",
                                             30.0, 10, 31.0, None)),
    ("8Gy/1", PriorCourse("summary '8Gy/1'", 8.0, 1, None, None)),
])
def test_parse_prior_summary(text, course):
    if course is None:  # "31 Gy": the summary's items are split at spaces
        with pytest.raises(InputError, match="is not a dose"):
            parse_prior_summary(text)
    else:
        assert parse_prior_summary(text) == course


@pytest.mark.parametrize("text,message", [
    ("cord_dmax=31Gy", "start with the scheme"),
    ("30Gy/10 cord=31", "unknown item 'cord=31'"),
    ("30Gy/10 cord_dmax=lots", "is not a dose"),
    ("30Gy/10 date=01/03/2025", "is not YYYY-MM-DD"),
    ("30Gy/0", "positive integer"),
])
def test_bad_prior_summary(text, message):
    with pytest.raises(InputError, match=message):
        parse_prior_summary(text)


# ============================================================================ TG-101

TG101_NAMES = {"spinal_cord": "SpinalCord", "cauda_equina": "CaudaEquina",
               "sacral_plexus": "SacralPlex", "esophagus": "Esophagus",
               "brachial_plexus": "BrachialPlex_L", "skin": "Skin", "heart": "Heart",
               "trachea": "Trachea", "ribs": "Rib05_L", "stomach": "Stomach",
               "duodenum": "Duodenum", "small_bowel": "Bowel_Small", "colon": "Colon",
               "rectum": "Rectum"}


def _tg101_rules(role):
    out = {}
    for r, vol, one, three, five in TG101:
        if r == role:
            for fx, (thr, mx) in zip((1, 3, 5), (one, three, five)):
                out[(f"D{vol:g}cc", fx)] = thr
                out[("Dmax", fx)] = mx
    if role == "spinal_cord":  # the 1.2 cc row
        out.update({("D1.2cc", 1): 7.0, ("D1.2cc", 3): 12.3, ("D1.2cc", 5): 14.5})
    return out


@pytest.mark.parametrize("role", sorted(TG101_NAMES))
@pytest.mark.parametrize("fractions", [1, 3, 5])
def test_tg101_pass_and_fail(role, fractions):
    """A uniform dose over a 29.6 cc organ: Dmax = Dv cc = the dose. Below every limit of the
    organ at this fraction number, every rule passes; above every limit, every rule fails."""
    limits = {m: lim for (m, fx), lim in _tg101_rules(role).items() if fx == fractions}
    name = TG101_NAMES[role]
    for dose, status in ((min(limits.values()) - 0.5, "PASS"), (max(limits.values()) + 0.5, "FAIL")):
        plan = make_plan(fractions=fractions, cord_gy=dose, ptv_gy=dose, structures={name: ORGAN})
        result = check(plan, protocols=["tg101"])
        for metric, limit in limits.items():
            rule = f"tg101.{role.replace('_', '-')}.{metric.lower()}"
            f = find(result, rule, name)
            assert (f.status, f.limit) == (status, limit), (rule, dose, f.reason)
            assert f.value == pytest.approx(dose, abs=0.02)


@pytest.mark.parametrize("role", sorted(TG101_NAMES))
def test_tg101_not_evaluated(role):
    name = TG101_NAMES[role]
    # 2 fractions: inside the 1-5 span, but TG-101 tabulates only 1, 3 and 5
    result = check(make_plan(fractions=2, structures={name: ORGAN}), protocols=["tg101"])
    slug = role.replace("_", "-")
    f = find(result, f"tg101.{slug}.dmax")
    assert f.status == "NOT_EVALUATED" and "no limit for 2 fractions" in f.reason
    # organ not contoured
    result = check(make_plan(fractions=3, structures={"PTV": PTV}), protocols=["tg101"])
    f = find(result, f"tg101.{slug}.dmax")
    assert f.status == "NOT_EVALUATED" and f"no structure matches role {role}" in f.reason


def test_tg101_volume_row_of_a_small_structure_passes_whatever_the_dose():
    # a 3.3 cc cauda equina at 40 Gy: less than 5 cc can receive 14 Gy, so D5cc < 14 holds
    plan = make_plan(fractions=1, cord_gy=40.0, structures={"CaudaEquina": CORD})
    result = check(plan, protocols=["tg101"])
    f = find(result, "tg101.cauda-equina.d5cc")
    assert f.status == "PASS" and "less than 5 cc" in f.reason
    assert find(result, "tg101.cauda-equina.dmax").status == "FAIL"


def test_paired_organs_are_each_evaluated():
    left = (0.0, -20.0, 5.0, -20.0, 20.0)
    right = (0.0, 20.0, 5.0, -20.0, 20.0)
    plan = make_plan(fractions=1, cord_gy=10.0, ptv_gy=20.0,
                     structures={"BrachialPlex_L": left, "BrachialPlex_R": right})
    result = check(plan, protocols=["tg101"])
    assert find(result, "tg101.brachial-plexus.dmax", "BrachialPlex_L").status == "PASS"
    assert find(result, "tg101.brachial-plexus.dmax", "BrachialPlex_R").status == "FAIL"  # 20 > 17.5


# ============================================================================ verdict and API


def test_verdict_rules():
    assert check(make_plan(rx=30, fractions=10, with_dose=False), indication="pain").verdict == "PASS"
    r = check(make_plan(rx=30, fractions=10, with_dose=False), indication="pain-fracture-risk")
    assert r.verdict == "PASS" and r.exit_code == 0
    r = check(make_plan(rx=25, fractions=4, with_dose=False), indication="pain")
    assert (r.verdict, r.exit_code) == ("FAIL", 1)
    r = check(make_plan(fractions=3, structures={"PTV": PTV}))  # cord rule not evaluable
    assert (r.verdict, r.exit_code) == ("NOT_EVALUATED", 3)
    # nothing applies (10 fractions, no indication, no prior): never PASS
    r = check(make_plan(fractions=10))
    assert (r.verdict, r.findings) == ("NOT_EVALUATED", [])
    assert any("nothing was evaluated" in w for w in r.warnings)


def test_a_warn_does_not_fail_the_plan():
    r = check(make_plan(fractions=1, rx=8, cord_gy=8.0), indication="pain-fracture-risk")
    assert [f.status for f in r.findings] == ["WARN", "PASS"] and r.verdict == "PASS"


def test_result_json_document():
    r = check(make_plan(fractions=3, cord_gy=9.0),
              priors="30Gy/10 cord_dmax=30Gy date=2025-01-01")
    doc = json.loads(json.dumps(r.to_dict()))
    assert set(doc) >= {"plan", "verdict", "findings", "warnings", "roles", "skipped", "facts"}
    f = next(x for x in doc["findings"] if x["rule"] == "reirradiation.cumulative-cord-eqd2")
    assert set(f) >= {"rule", "structure", "role", "metric", "value", "limit", "unit",
                      "alpha_beta", "model", "status", "reason", "source"}
    assert (f["unit"], f["alpha_beta"], f["model"], f["limit"]) == ("Gy", 2.0, "LQ", 70.0)
    assert doc["roles"]["spinal_cord"]["structures"] == ["SpinalCord"]
    cord = next(x for x in doc["findings"] if x["rule"] == "sbrt-cord-dmax")
    assert cord["alpha_beta"] == "none"


def test_top_level_api_exports_check():
    import rtcheck

    assert rtcheck.check is check


# ============================================================================ CLI


@pytest.fixture
def fake_loader(monkeypatch):
    """``rtcheck check`` with load_plan replaced: PATH names one of the plans below."""
    plans = {}
    module = types.ModuleType("rtcheck.dicom")
    module.load_plan = lambda paths, plan=None, structures=None, dose=None: plans[str(
        paths[0] if isinstance(paths, list) else paths).rsplit("/", 1)[-1]]
    monkeypatch.setitem(sys.modules, "rtcheck.dicom", module)
    return plans


def _run(tmp_path, plans, name, *args):
    (tmp_path / name).mkdir(exist_ok=True)
    return CliRunner().invoke(main, ["check", str(tmp_path / name), *args])


def test_cli_exit_codes(tmp_path, fake_loader):
    fake_loader["pass"] = make_plan(rx=30, fractions=10, with_dose=False)
    fake_loader["fail"] = make_plan(fractions=1, cord_gy=15.0)
    fake_loader["ne"] = make_plan(fractions=3, structures={"PTV": PTV})
    assert _run(tmp_path, fake_loader, "pass", "--indication", "pain").exit_code == 0
    assert _run(tmp_path, fake_loader, "fail").exit_code == 1
    assert _run(tmp_path, fake_loader, "ne").exit_code == 3
    bad = _run(tmp_path, fake_loader, "pass", "--indication", "palliative")
    assert bad.exit_code == 2 and "rtcheck: error: unknown indication" in bad.output
    bad = _run(tmp_path, fake_loader, "pass", "--prior-summary", "cord=3")
    assert bad.exit_code == 2 and "start with the scheme" in bad.output
    bad = _run(tmp_path, fake_loader, "pass", "--map", "cord=X")
    assert bad.exit_code == 2 and "unknown role" in bad.output
    bad = _run(tmp_path, fake_loader, "pass", "--alpha-beta", "spinal_cord=two")
    assert bad.exit_code == 2 and "expected ROLE=VALUE" in bad.output
    assert "Traceback" not in bad.output


def test_cli_table_json_csv_and_output(tmp_path, fake_loader):
    fake_loader["reirr"] = make_plan(fractions=1, rx=24, cord_gy=13.0)
    args = ("--indication", "reirradiation", "--site", "spine", "--vertebral-level", "L2",
            "--prior-summary", "30Gy/10 cord_dmax=31Gy date=2025-06-01")
    table = _run(tmp_path, fake_loader, "reirr", *args)
    assert table.exit_code == 1
    for text in ("spinal_cord", "'SpinalCord' (synonym)", "88.28 Gy", "< 70 Gy", "Verdict: FAIL",
                 "reirradiation.interval", "sbrt-cord-dmax"):
        assert text in table.output, text
    doc = json.loads(_run(tmp_path, fake_loader, "reirr", *args, "--format", "json").output)
    assert doc["verdict"] == "FAIL"
    assert doc["facts"]["priors"][0]["cord_dmax_gy"] == 31.0
    csv_text = _run(tmp_path, fake_loader, "reirr", *args, "--format", "csv").output
    assert csv_text.splitlines()[0].startswith("rule,protocol,structure,role,metric,value,limit")
    out = tmp_path / "report.json"
    res = _run(tmp_path, fake_loader, "reirr", *args, "--format", "json", "--output", str(out))
    assert res.exit_code == 1 and json.loads(out.read_text())["verdict"] == "FAIL"


def test_cli_map_and_roles_file(tmp_path, fake_loader):
    fake_loader["prv"] = make_plan(fractions=5, cord_gy=20.0, structures={"MOELLE_PRV3": CORD})
    res = _run(tmp_path, fake_loader, "prv")
    assert res.exit_code == 3 and "possible stand-ins: 'MOELLE_PRV3' (spinal_cord_prv)" in res.output
    res = _run(tmp_path, fake_loader, "prv", "--map", "spinal_cord=MOELLE_PRV3")
    assert res.exit_code == 0 and "--map spinal_cord=MOELLE_PRV3" in res.output
    roles = tmp_path / "roles.toml"
    roles.write_text('schema_version = 1\n[roles.spinal_cord]\nsynonyms = ["MOELLE_PRV3"]\n')
    res = _run(tmp_path, fake_loader, "prv", "--roles", str(roles))
    assert res.exit_code == 0, res.output


# ============================================================================ DICOM end to end


def write_dicom_plan(folder, *, label, fractions, rx, cord_gy, ptv_gy, date, seed,
                     cord_name="SpinalCord"):
    """RTPLAN + RTSTRUCT + RTDOSE files: a PTV at y = 0 (``ptv_gy`` where y < 12 mm) and a cord
    at y = 25 mm (``cord_gy`` where y > 12 mm, a uniform region around the whole cord)."""
    from rtcheck import synthetic as syn

    folder.mkdir(parents=True, exist_ok=True)
    frame = syn.make_uid(seed, "frame")
    ss = syn.structure_set_dataset(
        [syn.ROI("PTV", syn.cylinder(0, 0, 10, syn.planes(-20.0, 20.0, 2.0)), roi_type="PTV"),
         syn.ROI(cord_name, syn.cylinder(0, 25, 5, syn.planes(-30.0, 30.0, 2.0)))],
        frame_uid=frame, sop_uid=syn.make_uid(seed, "ss"))
    plan = syn.plan_dataset(label, fractions, rx, structure_set_uid=ss.SOPInstanceUID,
                            frame_uid=frame, date=date, plan_uid=syn.make_uid(seed, "plan"))
    dose = syn.dose_dataset_from_function(
        lambda x, y, z: np.where(y > 12.0, cord_gy, ptv_gy), (-40.0, -40.0, -40.0),
        (40.0, 40.0, 40.0), (2.5, 2.5, 2.5), plan_uid=plan.SOPInstanceUID, frame_uid=frame,
        sop_uid=syn.make_uid(seed, "dose"))
    for ds, name in ((plan, "RP.dcm"), (ss, "RS.dcm"), (dose, "RD.dcm")):
        syn.write(ds, folder / name)
    return folder


def test_cli_on_dicom_reirradiation_pair(tmp_path):
    """Prior 30 Gy/10 with the cord at 31 Gy (2025-03-01); now 27 Gy/3 with the cord at 12 Gy
    (2025-10-01). By hand, a/b 2: prior 31 (3.1 + 2) / 4 = 39.525; now 12 (4 + 2) / 4 = 18;
    cumulative 57.525 < 70; course 18 < 25; share 0.3129 <= 0.5; 214 days = 7.03 months >= 5;
    first-course cord limit 3 fx: 12 <= 20.3; Tableau 5 re-irradiation: 27 Gy/3 recommended."""
    prior = write_dicom_plan(tmp_path / "prior", label="PRIOR", fractions=10, rx=30.0,
                             cord_gy=31.0, ptv_gy=30.0, date="20250301", seed="prior")
    now = write_dicom_plan(tmp_path / "now", label="NOW", fractions=3, rx=27.0, cord_gy=12.0,
                           ptv_gy=27.0, date="20251001", seed="now")
    res = CliRunner().invoke(main, ["check", str(now), "--indication", "reirradiation", "--site",
                                    "spine", "--vertebral-level", "L1", "--prior", str(prior),
                                    "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    got = {f["rule"]: (f["status"], f["value"]) for f in doc["findings"]}
    assert got["fractionation.reirradiation"] == ("PASS", 27.0)
    assert got["sbrt-range.spine"] == ("PASS", 27.0)
    assert got["sbrt-cord-dmax"][0] == "PASS"
    assert got["sbrt-cord-dmax"][1] == pytest.approx(12.0, abs=1e-3)
    assert got["reirradiation.cumulative-cord-eqd2"][1] == pytest.approx(57.525, abs=1e-3)
    assert got["reirradiation.course-cord-eqd2"][1] == pytest.approx(18.0, abs=1e-3)
    assert got["reirradiation.course-share"][1] == pytest.approx(18 / 57.525, abs=1e-4)
    assert got["reirradiation.interval"][1] == pytest.approx(214 / 30.4375, abs=1e-4)
    assert {s for s, _ in got.values()} == {"PASS"}
    assert doc["facts"]["priors"][0]["cord_dmax_gy"] == pytest.approx(31.0, abs=1e-3)


def test_technique_from_the_fraction_count_of_an_unlisted_scheme():
    # 30 Gy/10 for re-irradiation: unlisted, 10 fractions > 5 (the row's SBRT schemes): not SBRT
    result = check(make_plan(rx=30, fractions=10, with_dose=False), indication="reirradiation",
                   site="spine")
    assert "more than any SBRT scheme" in skipped(result, "sbrt-range.spine")
    assert find(result, "fractionation.reirradiation").status == "FAIL"
    # 30 Gy/4: unlisted, 4 fractions: taken as SBRT, and 4 fractions have no spine range
    result = check(make_plan(rx=30, fractions=4, with_dose=False), indication="reirradiation",
                   site="spine")
    assert find(result, "sbrt-range.spine").status == "FAIL"


def test_esophagus_warning_outside_the_spine_is_not_applicable():
    organs = {"Oesophage": ORGAN}
    result = check(make_plan(fractions=5, structures=organs), site="extraspinal")
    assert "spinal lesions only" in skipped(result, "esophagus-c5-t10")
    # site unknown: the skip names the facts it needs (batch turns that into NOT_EVALUATED)
    result = check(make_plan(fractions=5, structures=organs))
    assert "--site" in skipped(result, "esophagus-c5-t10")


@pytest.mark.parametrize("months", [float("nan"), float("inf"), -1.0])
def test_interval_must_be_a_finite_number_of_months(months):
    with pytest.raises(InputError, match="finite number >= 0"):
        check(make_plan(fractions=3, rx=27.0), indication="reirradiation",
              priors=[parse_prior_summary("30Gy/10 cord_dmax=20Gy")], interval_months=months)
