"""Verdicts as a radiation oncologist would sign them (issue 9).

Phantoms: a dose grid that is ``cord_gy`` within 7 mm of the cord's axis, ``sac_gy`` in the rest
of the posterior half (y < 0) and ``ptv_gy`` in the anterior half; a cord of radius 4 mm and a
thecal sac of radius 10 mm around it. Every point the cord's DVH samples interpolates only
voxels within 7 mm of the axis (4 mm + a 2 mm voxel's diagonal), so the cord Dmax is exactly
``cord_gy`` and the sac Dmax exactly ``max(cord_gy, sac_gy)``. Expected values by hand:
BED = D (1 + d/(a/b)), EQD2 = D (d + a/b) / (2 + a/b), d = D/n.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from click.testing import CliRunner
from support.synthetic import cylinder

from rtcheck.checker import check
from rtcheck.checker import findings as F
from rtcheck.checker.courses import estimated_end, parse_prior_summary
from rtcheck.cli import main
from rtcheck.model import (
    Contour,
    DoseGrid,
    FractionGroup,
    Plan,
    PlanData,
    Structure,
    StructureSet,
)

AXIS = np.arange(-40.0, 40.01, 2.0)
CORD = (0.0, -20.0, 4.0, -30.0, 30.0)
SAC = (0.0, -20.0, 10.0, -30.0, 30.0)
PTV = (0.0, 15.0, 8.0, -10.0, 10.0)
SHORT_CORD = (0.0, -20.0, 4.0, -12.0, 12.0)  # stops 2 mm beyond the PTV, not 5
BOTH = {"SpinalCord": CORD, "ThecalSac": SAC, "PTV": PTV}


def _structure(number: int, name: str, geometry) -> Structure:
    cx, cy, r, z0, z1 = geometry
    zs = np.arange(z0, z1 + 1e-9, 2.0)
    return Structure(number, name, [Contour(z, xy) for z, xy in cylinder(cx, cy, r, zs)])


def spine_plan(*, cord_gy: float, sac_gy: float | None = None, fractions: int = 3,
               rx: float = 27.0, ptv_gy: float | None = None, structures=None,
               date=dt.date(2026, 3, 1), patient: str = "P1", uid: str = "1.2.3.4") -> PlanData:
    structures = BOTH if structures is None else structures
    ss = StructureSet([_structure(i + 1, n, g) for i, (n, g) in enumerate(structures.items())])
    zz, yy, xx = np.meshgrid(AXIS, AXIS, AXIS, indexing="ij")
    near_cord = np.hypot(xx - CORD[0], yy - CORD[1]) <= 7.0
    values = np.where(yy > 0, rx if ptv_gy is None else ptv_gy,
                      np.where(near_cord, cord_gy, cord_gy if sac_gy is None else sac_gy))
    dose = DoseGrid(AXIS, AXIS.copy(), AXIS.copy(), values.astype(float))
    plan = Plan(uid=uid, label="PHANTOM", fraction_groups=[FractionGroup(1, fractions)],
                prescription_gy=rx, date=date, patient_id=patient)
    return PlanData(plan, dose, ss)


def only(result, rule_id: str):
    hits = [f for f in result.findings if f.rule == rule_id]
    assert len(hits) == 1, (rule_id, [f.rule for f in result.findings],
                            [s.as_dict() for s in result.skipped])
    return hits[0]


def skip_of(result, rule_id: str):
    hits = [s for s in result.skipped if s.rule == rule_id]
    assert hits, (rule_id, [f.rule for f in result.findings])
    return hits[0]


def eqd2(d, n, ab):
    return d * (d / n + ab) / (2 + ab)


# ============================================================== thecal sac or cord (item 1)


def test_sbrt_limit_read_on_the_thecal_sac_when_contoured():
    # 27 Gy/3: cord 17 Gy (within 20.3), sac 22 Gy (beyond): the sac, Sahgal's structure, decides.
    r = check(spine_plan(cord_gy=17.0, sac_gy=22.0))
    f = only(r, "sbrt-cord-dmax")
    assert f.status == "FAIL" and f.structure == "ThecalSac" and f.stands_for is None
    assert f.value == pytest.approx(22.0, abs=1e-6)
    by_name = {s.structure: s for s in f.evaluated}
    assert by_name["SpinalCord"].status == "PASS"
    assert by_name["SpinalCord"].value == pytest.approx(17.0, abs=1e-6)
    assert r.verdict == "FAIL" and r.exit_code == 1


def test_cord_stands_in_for_an_uncontoured_sac_and_every_format_says_so():
    r = check(spine_plan(cord_gy=17.0, structures={"SpinalCord": CORD, "PTV": PTV}),
              indication="oligometastatic", site="spine", vertebral_level="L1")
    f = only(r, "sbrt-cord-dmax")
    assert (f.status, f.structure, f.role, f.stands_for) == ("PASS", "SpinalCord",
                                                             "spinal_cord", "thecal_sac")
    assert "stood in for the thecal_sac" in f.reason
    assert any(n.code == "surrogate" for n in r.notes)
    assert f.as_dict()["stands_for"] == "thecal_sac"
    assert r.verdict == "PASS"


def test_no_cord_and_no_sac_is_not_evaluated_unless_extraspinal():
    plan = spine_plan(cord_gy=17.0, structures={"PTV": PTV})
    f = only(check(plan), "sbrt-cord-dmax")
    assert f.status == "NOT_EVALUATED" and f.code == F.STRUCTURE_MISSING
    assert check(plan).verdict == "NOT_EVALUATED"
    r = check(plan, site="extraspinal")
    assert skip_of(r, "sbrt-cord-dmax").code == F.NOT_APPLICABLE
    assert "extraspinal" in skip_of(r, "sbrt-cord-dmax").reason


def test_below_the_conus_the_cord_rules_read_the_sac_not_the_cord():
    # L4: below the lowest conus position (L3, Saifuddin 1998). No cord contoured: no problem.
    plan = spine_plan(cord_gy=17.0, sac_gy=19.0, structures={"ThecalSac": SAC, "PTV": PTV})
    r = check(plan, site="spine", vertebral_level="L4")
    f = only(r, "sbrt-cord-dmax")
    assert (f.status, f.structure) == ("PASS", "ThecalSac")
    assert r.facts["below_conus"] is True
    assert any(n.code == "below_conus" for n in r.notes)
    # At T10 the same plan lacks its cord: the sac still is Sahgal's structure, and it decides.
    f = only(check(plan, site="spine", vertebral_level="T10"), "sbrt-cord-dmax")
    assert (f.status, f.structure) == ("PASS", "ThecalSac")
    # The conventional cord rule (a cord rule) reads the sac below the conus, standing in.
    conv = spine_plan(cord_gy=30.0, fractions=10, rx=30.0,
                      structures={"ThecalSac": SAC, "PTV": PTV})
    f = only(check(conv, site="spine", vertebral_level="L5"), "conventional-cord-dmax")
    assert (f.status, f.structure, f.stands_for) == ("PASS", "ThecalSac", "spinal_cord")
    f = only(check(conv, site="spine", vertebral_level="T8"), "conventional-cord-dmax")
    assert f.status == "NOT_EVALUATED" and f.code == F.STRUCTURE_MISSING


def test_sacrum_site_is_below_the_conus():
    plan = spine_plan(cord_gy=17.0, sac_gy=19.0, structures={"ThecalSac": SAC, "PTV": PTV})
    r = check(plan, site="sacrum")
    assert r.facts["below_conus"] is True
    assert only(r, "sbrt-cord-dmax").structure == "ThecalSac"


def test_cord_not_extending_past_the_target_is_not_evaluated():
    plan = spine_plan(cord_gy=10.0, structures={"SpinalCord": SHORT_CORD, "PTV": PTV})
    f = only(check(plan), "sbrt-cord-dmax")
    assert f.status == "NOT_EVALUATED" and f.code == F.STRUCTURE_TOO_SHORT
    assert "5 mm beyond the target" in f.reason


# ============================================================== verdict levels (item 2)


def test_single_fraction_warn_band_gives_review_and_exit_5():
    # 1 fraction: <= 12.4 PASS, 12.4-14 WARN, > 14 FAIL (Sahgal 2013 / HyTEC).
    plan = spine_plan(cord_gy=13.0, sac_gy=13.0, fractions=1, rx=18.0)
    r = check(plan, technique="sbrt", indication="oligometastatic", site="extraspinal")
    assert only(r, "sbrt-cord-dmax").status == "WARN"
    assert only(r, "fractionation.oligometastatic").status == "WARN"  # 18/1: 2.2.2 range
    assert r.verdict == "REVIEW" and r.exit_code == 5
    assert F.EXIT_CODES == {"PASS": 0, "FAIL": 1, "NOT_EVALUATED": 3, "REVIEW": 5}


def test_verdict_order():
    assert F.verdict_of({"PASS", "WARN"}) == "REVIEW"
    assert F.verdict_of({"WARN", "NOT_EVALUATED"}) == "NOT_EVALUATED"
    assert F.verdict_of({"NOT_EVALUATED", "FAIL", "WARN"}) == "FAIL"
    assert F.verdict_of(set()) == "NOT_EVALUATED"
    assert F.worst_verdict(["PASS", "REVIEW", "PASS"]) == "REVIEW"


def test_cli_exit_code_review():
    # Through the command line a WARN never exits 0: 30 Gy/10 at T4, the oesophagus remark of
    # section 2.2.4 (C5-T10) is a WARN; the cord passes (EQD2 42.88 Gy at a/b 0.87).
    args = ["check", "sample_plans/spine-30Gy10", "--indication", "pain", "--site", "spine"]
    res = CliRunner().invoke(main, args + ["--vertebral-level", "T4", "--format", "json"])
    assert res.exit_code == 5, res.output
    assert '"verdict": "REVIEW"' in res.output
    res = CliRunner().invoke(main, args + ["--vertebral-level", "L2"])
    assert res.exit_code == 0, res.output
    # Without the indication the fractionation is not checked: NOT_EVALUATED, exit 3.
    res = CliRunner().invoke(main, args[:2] + ["--site", "spine", "--vertebral-level", "L2"])
    assert res.exit_code == 3, res.output


# ============================================================== no PASS without the cord (item 3)


@pytest.mark.parametrize("cord, n, status", [
    (31.0, 10, "PASS"),   # 31 (3.1 + 0.87) / 2.87 = 42.88 Gy <= 50
    (35.0, 10, "WARN"),   # 35 (3.5 + 0.87) / 2.87 = 53.29 Gy in (50, 54]
    (36.0, 10, "FAIL"),   # 36 (3.6 + 0.87) / 2.87 = 56.06 Gy > 54
    (45.0, 15, "FAIL"),   # 45 (3 + 0.87) / 2.87 = 60.68 Gy > 54
    (33.0, 15, "PASS"),   # 33 (2.2 + 0.87) / 2.87 = 35.30 Gy
])
def test_conventional_cord_limit_eqd2_at_alpha_beta_087(cord, n, status):
    value = eqd2(cord, n, 0.87)
    plan = spine_plan(cord_gy=cord, fractions=n, rx=30.0 if n == 10 else 45.0)
    f = only(check(plan), "conventional-cord-dmax")
    assert f.status == status
    assert f.value == pytest.approx(value, abs=1e-6)
    assert f.alpha_beta == 0.87 and f.model == "LQ" and f.structure == "SpinalCord"


def test_conventional_plan_without_cord_is_not_evaluated():
    plan = spine_plan(cord_gy=31.0, fractions=10, rx=30.0, structures={"PTV": PTV})
    r = check(plan)
    f = only(r, "conventional-cord-dmax")
    assert f.status == "NOT_EVALUATED" and f.code == F.STRUCTURE_MISSING
    assert r.verdict == "NOT_EVALUATED"


def test_sbrt_course_uses_the_sbrt_table_not_quantec():
    # 27 Gy/3 with the sac at 20 Gy: Sahgal PASS (<= 20.3); QUANTEC would give
    # 20 (6.667 + 0.87) / 2.87 = 52.5 Gy (WARN): it is superseded for SBRT courses of 1-5 fx.
    r = check(spine_plan(cord_gy=15.0, sac_gy=20.0))
    assert only(r, "sbrt-cord-dmax").status == "PASS"
    assert "supersedes" in skip_of(r, "conventional-cord-dmax").reason
    # An SBRT course of 7 fractions: the table has no row, the conventional rule applies.
    r = check(spine_plan(cord_gy=20.0, fractions=7, rx=35.0), technique="sbrt")
    assert skip_of(r, "sbrt-cord-dmax").code == F.OUT_OF_SCOPE
    assert only(r, "conventional-cord-dmax").value == pytest.approx(eqd2(20.0, 7, 0.87))


# ============================================================== technique never guessed (item 4)


def test_site_alone_implies_no_technique():
    # 30 Gy/10 with --site spine: conventional by the criterion, so no SBRT-range FAIL.
    r = check(spine_plan(cord_gy=31.0, fractions=10, rx=30.0), site="spine",
              vertebral_level="L1")
    assert r.facts["technique"] == "conventional" and r.facts["technique_how"] == "criterion"
    assert skip_of(r, "sbrt-range.spine").code == F.OUT_OF_SCOPE
    assert only(r, "conventional-cord-dmax").status == "PASS"
    # ... but without the indication the plan is not fully checked: NOT_EVALUATED, never PASS.
    facts = only(r, "facts.indication")
    assert (facts.status, facts.code, facts.missing) == ("NOT_EVALUATED", F.FACT_MISSING,
                                                         "indication")
    assert r.verdict == "NOT_EVALUATED" and r.exit_code == 3
    r = check(spine_plan(cord_gy=31.0, fractions=10, rx=30.0), site="spine",
              vertebral_level="L1", indication="pain")
    assert r.facts["technique_how"] == "indication_scheme" and r.verdict == "PASS"
    r = check(spine_plan(cord_gy=31.0, fractions=10, rx=30.0), site="spine",
              vertebral_level="L1", technique="sbrt")
    assert r.facts["technique_how"] == "given"
    assert only(r, "sbrt-range.spine").status == "FAIL"


def test_unknown_technique_applies_both_readings():
    # 12 Gy/1: 12 Gy per fraction but BED10 26.4 Gy: neither criterion.
    r = check(spine_plan(cord_gy=9.0, fractions=1, rx=12.0))
    assert r.facts["technique"] is None
    assert only(r, "sbrt-cord-dmax").status == "PASS"
    assert "technique is unknown" in only(r, "sbrt-cord-dmax").reason
    assert only(r, "conventional-cord-dmax").value == pytest.approx(eqd2(9.0, 1, 0.87))


# ============================================================== re-irradiation scope (item 6)


CONV_PRIOR = "30Gy/10 cord_dmax=31Gy sac_dmax=31.5Gy end=2025-03-14"


def test_sbrt_after_conventional_gets_the_four_rules_on_the_sac():
    # This course 27 Gy/3: cord 15, sac 20 Gy; prior 30 Gy/10: cord 31, sac 31.5 Gy.
    r = check(spine_plan(cord_gy=15.0, sac_gy=20.0), priors=[CONV_PRIOR])
    cum = only(r, "reirradiation.cumulative-cord-eqd2")
    sac = eqd2(20.0, 3, 2.0) + eqd2(31.5, 10, 2.0)  # 43.333 + 40.556 = 83.89
    assert (cum.status, cum.structure) == ("FAIL", "ThecalSac")
    assert cum.value == pytest.approx(sac, abs=1e-6)
    cord = {s.structure: s for s in cum.evaluated}["SpinalCord"]
    assert cord.value == pytest.approx(eqd2(15.0, 3, 2.0) + eqd2(31.0, 10, 2.0))  # 26.25+39.53
    course = only(r, "reirradiation.course-cord-eqd2")
    assert course.value == pytest.approx(eqd2(20.0, 3, 2.0)) and course.status == "FAIL"
    assert only(r, "reirradiation.interval").status == "PASS"
    for rule in ("sbrt-cord-dmax", "conventional-cord-dmax"):
        assert skip_of(r, rule).code == F.OUT_OF_SCOPE  # first-course rules
    for rule in ("reirradiation.conventional-cumulative-bed", "reirradiation.conventional-interval"):
        assert skip_of(r, rule).code == F.OUT_OF_SCOPE  # conventional re-irradiation rules


def test_never_adds_one_courses_cord_to_anothers_sac():
    # The prior gives only its cord maximum: the sac is not summed cord + sac. But the sac
    # contains the cord, so the prior's sac maximum is at least 31 Gy: this course's sac
    # 20 Gy/3 (EQD2 43.33) + 39.53 = 82.86 Gy at least, above 75: FAIL on the sac, a lower bound.
    r = check(spine_plan(cord_gy=14.0, sac_gy=20.0), priors=["30Gy/10 cord_dmax=31Gy "
                                                             "end=2025-03-14"])
    cum = only(r, "reirradiation.cumulative-cord-eqd2")
    assert cum.structure == "ThecalSac" and cum.status == "FAIL"
    assert cum.value == pytest.approx(eqd2(20.0, 3, 2.0) + eqd2(31.0, 10, 2.0))
    assert "at least" in cum.reason and "contains the spinal_cord" in cum.reason


def test_a_cord_standing_in_for_the_sac_never_passes_for_it():
    # sac 10 Gy/3 (EQD2 13.33) + prior cord 39.53 = 52.86 Gy: no certain failure; the cord sum
    # (14 Gy/3 -> 23.33 + 39.53 = 62.86) would pass, but the prior's sac maximum is unknown
    # and this course's sac dose is known: NOT_EVALUATED naming the missing prior sac dose.
    r = check(spine_plan(cord_gy=9.0, sac_gy=10.0), priors=["30Gy/10 cord_dmax=31Gy "
                                                            "end=2025-03-14"])
    cum = only(r, "reirradiation.cumulative-cord-eqd2")
    assert (cum.structure, cum.stands_for) == ("SpinalCord", "thecal_sac")
    assert cum.status == "NOT_EVALUATED" and cum.missing == "prior_thecal_sac_dose"
    assert cum.value == pytest.approx(eqd2(9.0, 3, 2.0) + eqd2(31.0, 10, 2.0))
    # with the prior's sac maximum given, the rule is evaluated on the sac itself
    r = check(spine_plan(cord_gy=9.0, sac_gy=10.0), priors=["30Gy/10 cord_dmax=31Gy "
                                                            "sac_dmax=32Gy end=2025-03-14"])
    cum = only(r, "reirradiation.cumulative-cord-eqd2")
    assert (cum.structure, cum.status) == ("ThecalSac", "PASS")
    assert cum.value == pytest.approx(eqd2(10.0, 3, 2.0) + eqd2(32.0, 10, 2.0))


def test_conventional_reirradiation_gets_nieder_not_sahgal():
    # 20 Gy/5 after 30 Gy/10: cord 20.67 Gy in 5 -> BED 20.67 (1 + 4.134/2) = 63.39 Gy2;
    # prior 31 Gy in 10 -> 31 (1 + 1.55) = 79.05; sum 142.43 > 135.5: FAIL.
    r = check(spine_plan(cord_gy=20.67, fractions=5, rx=20.0), priors=[CONV_PRIOR])
    f = only(r, "reirradiation.conventional-cumulative-bed")
    assert f.value == pytest.approx(20.67 * (1 + 20.67 / 5 / 2) + 31 * (1 + 3.1 / 2))
    assert f.status == "FAIL" and f.structure == "SpinalCord"
    assert only(r, "reirradiation.conventional-course-bed").status == "PASS"  # 79.05 <= 98
    assert only(r, "reirradiation.conventional-interval").status == "PASS"
    assert skip_of(r, "reirradiation.course-cord-eqd2").code == F.OUT_OF_SCOPE


def test_sbrt_after_sbrt_and_third_course_warn_not_derived():
    plan = spine_plan(cord_gy=5.0, sac_gy=6.0)
    r = check(plan, priors=["27Gy/3 cord_dmax=10Gy sac_dmax=12Gy end=2025-03-14"])
    f = only(r, "reirradiation.cumulative-cord-eqd2")
    # sac: 6 (2 + 2)/4 = 6.0 + 12 (4 + 2)/4 = 18.0 -> 24 Gy < 70, but derived after conventional.
    assert f.value == pytest.approx(24.0)
    assert f.status == "WARN" and f.code == F.OUTSIDE_DERIVATION
    assert "derived for re-irradiation after a conventional course" in f.reason
    r = check(plan, priors=[CONV_PRIOR, "8Gy/1 cord_dmax=8Gy sac_dmax=8Gy end=2025-06-02"])
    f = only(r, "reirradiation.interval")
    assert f.status == "WARN" and "iterative" in f.reason


def test_prior_of_another_patient_is_never_summed():
    prior = spine_plan(cord_gy=31.0, fractions=10, rx=30.0, patient="SOMEONE-ELSE",
                       uid="9.9", date=dt.date(2025, 3, 1))
    r = check(spine_plan(cord_gy=10.0), priors=[prior])
    for f in r.findings:
        if f.kind == "reirradiation":
            assert f.status == "NOT_EVALUATED" and f.code == F.PRIOR_MISMATCH
    assert r.verdict == "NOT_EVALUATED"


def test_prior_plan_metrics_read_on_the_same_structure_kind():
    # A prior plan with cord 31 Gy and sac 33 Gy (30 Gy/10), this course cord 10, sac 12 Gy.
    prior = spine_plan(cord_gy=31.0, sac_gy=33.0, fractions=10, rx=30.0, uid="9.9",
                       date=dt.date(2025, 3, 1))
    r = check(spine_plan(cord_gy=10.0, sac_gy=12.0), priors=[prior])
    f = only(r, "reirradiation.cumulative-cord-eqd2")
    assert f.structure == "ThecalSac"
    assert f.value == pytest.approx(eqd2(12.0, 3, 2.0) + eqd2(33.0, 10, 2.0), abs=1e-4)


# ---------------------------------------------------------------- the interval


@pytest.mark.parametrize("end, status", [
    ("2025-10-01", "PASS"),   # 2025-10-01 -> 2026-03-01: exactly 5.0 calendar months
    ("2025-10-02", "FAIL"),   # one day short: 4 + 27/28 months
])
def test_interval_boundary_exactly_five_months(end, status):
    r = check(spine_plan(cord_gy=5.0, sac_gy=6.0), priors=[f"30Gy/10 cord_dmax=31Gy "
                                                           f"sac_dmax=31Gy end={end}"])
    f = only(r, "reirradiation.interval")
    assert f.status == status
    if status == "PASS":
        assert f.value == 5.0


def test_interval_runs_from_the_last_fraction_not_the_plan_date():
    # Plan date 2025-09-20 (Saturday), 10 fractions: estimated last fraction Fri 2025-10-03.
    assert estimated_end(dt.date(2025, 9, 20), 10) == dt.date(2025, 10, 3)
    prior = parse_prior_summary("30Gy/10 cord_dmax=31Gy sac_dmax=31Gy date=2025-09-20")
    assert prior.end_how == "estimate"
    f = only(check(spine_plan(cord_gy=5.0, sac_gy=6.0), priors=[prior]),
             "reirradiation.interval")
    # From the plan date it would be 5.37 months (PASS); from the last fraction, 4.9: FAIL.
    assert f.status == "FAIL"
    assert f.details["prior_end"] == "2025-10-03"


def test_estimated_interval_close_to_the_limit_is_review():
    prior = parse_prior_summary("30Gy/10 cord_dmax=31Gy sac_dmax=31Gy date=2025-09-01")
    f = only(check(spine_plan(cord_gy=5.0, sac_gy=6.0), priors=[prior]),
             "reirradiation.interval")
    # Last fraction estimated 2025-09-12 -> 2026-03-01: 5.6 months, within a month of 5.
    assert f.status == "WARN" and "estimate" in f.reason


def test_reirradiation_indication_without_prior_is_not_evaluated():
    r = check(spine_plan(cord_gy=5.0, sac_gy=6.0), technique="sbrt")
    assert all(s.code == F.NOT_APPLICABLE for s in r.skipped if s.rule.startswith("reirr"))


# ============================================================== one grammar, union organs (item 7)


def test_organ_in_parts_is_read_on_the_union():
    # TG-101 jejunum/ileum, 1 fraction: D5cc < 11.9 Gy. Two 3.39 cc parts (r 7 mm, 22 mm of
    # slabs: pi 49 x 22 = 3387 mm3) in a uniform 20 Gy: alone each is < 5 cc (met whatever the
    # dose); their union, 6.77 cc, has D5cc = 20 Gy: FAIL.
    parts = {"Jejunum": (-12.0, -20.0, 7.0, -10.0, 10.0), "Ileum": (12.0, -20.0, 7.0, -10.0, 10.0),
             "SpinalCord": CORD, "PTV": PTV}
    plan = spine_plan(cord_gy=20.0, sac_gy=20.0, fractions=1, rx=18.0, structures=parts)
    r = check(plan, protocols=["tg101"])
    f = only(r, "tg101.small-bowel.d5cc")
    assert f.structure == "Jejunum + Ileum" or f.structure == "Ileum + Jejunum"
    assert f.details["volume_cc"] == pytest.approx(2 * np.pi * 49 * 22 / 1000, rel=0.01)
    assert (f.status, round(f.value, 6)) == ("FAIL", 20.0)


def test_equal_metrics_spelled_differently_give_equal_verdicts(tmp_path):
    base = open("constraints/tg101.toml", encoding="utf-8").read()
    spelled = base.replace('metric = "D0.35cc"', 'metric = "D0.35cc[Gy]"') \
        .replace('id = "tg101"', 'id = "tg101-spelled"', 1).replace('metric = "Dmax"',
                                                                      'metric = "Max[Gy]"')
    assert spelled != base
    path = tmp_path / "spelled.toml"
    path.write_text(spelled, encoding="utf-8")
    plan = spine_plan(cord_gy=15.0, sac_gy=16.0, fractions=3, rx=27.0)
    a = {(f.rule, f.status, f.value) for f in check(plan, protocols=["tg101"]).findings}
    b = {(f.rule, f.status, f.value) for f in check(plan, protocols=[str(path)]).findings}
    assert a == b and a


def test_user_reirradiation_rule_reads_its_own_metric_in_every_course(tmp_path):
    # A protocol on the thecal sac's D0.035cc: a prior summary gives only point maxima, so the
    # prior D0.035cc is unknown: NOT_EVALUATED, never the prior cord Dmax added to the sac.
    path = tmp_path / "mine.toml"
    path.write_text('''schema_version = 1
id = "mine"
title = "sac"
version = "1"
source = "test"
[[rules]]
id = "mine.cumulative"
kind = "reirradiation"
quantity = "cumulative_eqd2_max"
role = "thecal_sac"
metric = "D0.035cc"
description = "cumulative sac D0.035cc"
source = "test"
alpha_beta = 2.0
model = "LQ"
unit = "Gy"
severity = "FAIL"
operator = "<"
limit = 60.0
''', encoding="utf-8")
    r = check(spine_plan(cord_gy=10.0, sac_gy=12.0), protocols=[str(path)],
              priors=["30Gy/10 cord_dmax=31Gy sac_dmax=31Gy end=2025-03-14"])
    f = only(r, "mine.cumulative")
    assert f.status == "NOT_EVALUATED" and f.code == F.PRIOR_UNKNOWN
    # With the prior plan itself, its sac D0.035cc is read: 33 Gy there (uniform region):
    # 12 (4 + 2)/4 = 18.0 + 33 (3.3 + 2)/4 = 43.725 -> 61.7 Gy >= 60: FAIL.
    prior = spine_plan(cord_gy=31.0, sac_gy=33.0, fractions=10, rx=30.0, uid="9.9",
                       date=dt.date(2025, 3, 1))
    f = only(check(spine_plan(cord_gy=10.0, sac_gy=12.0), protocols=[str(path)],
                   priors=[prior]), "mine.cumulative")
    assert f.status == "FAIL" and f.structure == "ThecalSac"
    assert f.value == pytest.approx(eqd2(12.0, 3, 2.0) + eqd2(33.0, 10, 2.0), abs=0.05)


def test_interval_alone_never_sums_this_course_as_cumulative():
    # --interval-months without a prior dose: the cumulative rules cannot be evaluated (this
    # course alone is not a cumulative dose); the interval and this course's EQD2 can.
    r = check(spine_plan(cord_gy=10.0, sac_gy=12.0), interval_months=7.0)
    for rule in ("reirradiation.cumulative-cord-eqd2", "reirradiation.course-share"):
        f = only(r, rule)
        assert (f.status, f.code, f.missing) == ("NOT_EVALUATED", F.PRIOR_UNKNOWN,
                                                 "prior_course")
    assert only(r, "reirradiation.interval").value == 7.0
    # 12 Gy in 3 (sac): 12 (4 + 2) / 4 = 18.0 Gy < 25
    assert only(r, "reirradiation.course-cord-eqd2").value == pytest.approx(18.0)


def test_alpha_beta_override_by_the_role_read_beside_the_source_structure():
    # --alpha-beta spinal_cord=3 on a rule whose source structure is the thecal sac: it applies
    # (the cord is read there), and the finding says the source used 2 Gy.
    r = check(spine_plan(cord_gy=10.0, sac_gy=12.0), priors=[CONV_PRIOR],
              alpha_beta={"spinal_cord": 3.0})
    f = only(r, "reirradiation.course-cord-eqd2")
    assert f.alpha_beta == 3.0
    assert f.value == pytest.approx(12.0 * (4.0 + 3.0) / 5.0)  # sac, 12 Gy in 3 at a/b 3: 16.8
    assert "source uses 2 Gy" in f.reason


# ============================================================== loader flags (issue 10)


def test_implausible_dose_never_becomes_a_verdict():
    # A per-fraction dose labelled PLAN reads 1/3 of the course: the sac at 22/3 Gy would PASS.
    plan = spine_plan(cord_gy=17.0 / 3, sac_gy=22.0 / 3)
    assert only(check(plan), "sbrt-cord-dmax").status == "PASS"
    plan.dose.problems = ["dose max 9.0 Gy = 0.33 x the prescription 27 Gy"]
    r = check(plan, indication="oligometastatic", site="spine", vertebral_level="L1")
    f = only(r, "sbrt-cord-dmax")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.DOSE_IMPLAUSIBLE)
    assert "0.33 x the prescription" in f.reason
    assert r.verdict == "NOT_EVALUATED"


def test_incomplete_structure_is_not_evaluated_on_what_is_left():
    plan = spine_plan(cord_gy=17.0, sac_gy=22.0)
    sac = plan.structure_set.get("ThecalSac")
    sac.problems = ["contour 12 skipped: odd number of coordinates"]
    f = only(check(plan), "sbrt-cord-dmax")
    # the cord (17 Gy) would PASS; the sac cannot be read: NOT_EVALUATED, never PASS
    assert (f.status, f.code) == ("NOT_EVALUATED", F.STRUCTURE_INCOMPLETE)
    assert f.structure == "ThecalSac" and "odd number" in f.reason


def test_cord_contour_with_missing_planes_across_the_target_is_not_evaluated():
    # Cord planes every 2 mm from z -30 to 30 but none for |z| <= 14: the hot region is there.
    gap = [c for c in _structure(1, "SpinalCord", CORD).contours if abs(c.z) > 14]
    plan = spine_plan(cord_gy=17.0, structures={"PTV": PTV})
    plan.structure_set.structures.append(Structure(9, "SpinalCord", gap))
    f = only(check(plan), "sbrt-cord-dmax")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.STRUCTURE_TOO_SHORT)
    assert "no contour between z -16.0 and 16.0 mm" in f.reason


def test_target_found_by_roi_type_or_the_cord_coverage_is_not_evaluated():
    plan = spine_plan(cord_gy=10.0, structures={"SpinalCord": SHORT_CORD, "Target": PTV})
    f = only(check(plan), "sbrt-cord-dmax")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.STRUCTURE_TOO_SHORT)
    assert "no target (PTV/CTV/GTV) contoured" in f.reason
    plan.structure_set.get("Target").roi_type = "PTV"  # RTROIInterpretedType names it
    f = only(check(plan), "sbrt-cord-dmax")
    assert f.code == F.STRUCTURE_TOO_SHORT and "not 5 mm beyond the target (Target" in f.reason


# ============================================================== review findings (false PASS hunt)


def test_prior_plan_cord_too_short_is_never_read_low():
    # The prior's cord stops at |z| = 12 around a PTV spanning |z| <= 25: its maximum may lie
    # outside the contour, so the prior cord Dmax is unknown and nothing is summed.
    prior = spine_plan(cord_gy=35.0, sac_gy=35.0, fractions=10, rx=30.0, uid="9.9",
                       date=dt.date(2025, 3, 1),
                       structures={"SpinalCord": SHORT_CORD, "PTV": (0.0, 15.0, 8.0, -25.0, 25.0)})
    r = check(spine_plan(cord_gy=14.0, sac_gy=14.0), priors=[prior])
    f = only(r, "reirradiation.cumulative-cord-eqd2")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.PRIOR_UNKNOWN)
    assert "spinal_cord Dmax unknown" in " ".join(r.facts["priors"][0]["notes"])


def test_contradictory_site_and_level_are_bad_input():
    from rtcheck.errors import InputError
    plan = spine_plan(cord_gy=10.0)
    with pytest.raises(InputError, match="extraspinal"):
        check(plan, site="extraspinal", vertebral_level="L1")
    with pytest.raises(InputError, match="above the sacrum"):
        check(plan, site="sacrum", vertebral_level="T8")
    assert check(plan, site="sacrum", vertebral_level="S2").facts["below_conus"] is True


def test_nieder_rules_after_an_sbrt_prior_warn_not_derived():
    # 20 Gy/5 (conventional) after SBRT 27 Gy/3: cumulative BED 10 (1 + 2/2) = 20 +
    # 15 (1 + 5/2) = 52.5 -> 72.5 Gy2 <= 135.5, but Nieder's data are two conventional courses.
    r = check(spine_plan(cord_gy=10.0, fractions=5, rx=20.0),
              priors=["27Gy/3 cord_dmax=15Gy sac_dmax=18Gy end=2025-03-14"])
    f = only(r, "reirradiation.conventional-cumulative-bed")
    assert f.value == pytest.approx(72.5)
    assert (f.status, f.code) == ("WARN", F.OUTSIDE_DERIVATION)


def test_plan_whose_beams_contradict_its_fractions_is_not_evaluated():
    # 30 Gy in 10 fractions prescribed, but the beams deliver 9 Gy per fraction (90 Gy in 10,
    # 3 x the prescription): the fraction count that selects the rules is unknown.
    plan = spine_plan(cord_gy=17.0, sac_gy=24.0, fractions=10, rx=30.0)
    plan.plan.fraction_groups[0].beam_doses_gy = {1: 4.5, 2: 4.5}
    r = check(plan)
    for rule in ("sbrt-cord-dmax", "conventional-cord-dmax"):
        f = only(r, rule)
        assert (f.status, f.code) == ("NOT_EVALUATED", F.FRACTIONS_UNKNOWN)
        assert "3.00 x" in f.reason
    # beams that agree within the factor (1.2 x) are fine
    plan.plan.fraction_groups[0].beam_doses_gy = {1: 1.8, 2: 1.8}
    assert only(check(plan), "conventional-cord-dmax").code == F.EVALUATED


@pytest.mark.parametrize("text, message", [
    ("30Gy/10 cord_dmax=31Gy cord_dmax=5Gy", "given twice"),
    ("0Gy/10 cord_dmax=31Gy", "above 0 Gy"),
    ("30Gy/10 cord_dmax=-3Gy", "not a dose|>= 0"),
])
def test_prior_summary_is_strict(text, message):
    from rtcheck.errors import InputError
    with pytest.raises(InputError, match=message):
        parse_prior_summary(text)


def test_reirradiation_metric_that_does_not_exist_is_not_evaluated(tmp_path):
    path = tmp_path / "d50.toml"
    path.write_text(open("constraints/bone-metastases-2026.toml", encoding="utf-8").read()
                    .replace('id = "bone-metastases-2026"', 'id = "d50"', 1)
                    .replace('quantity = "course_eqd2_max"\nrole = "thecal_sac"',
                             'quantity = "course_eqd2_max"\nrole = "thecal_sac"', 1)
                    .replace('metric = "Dmax"\ndescription = "Thecal sac (and cord) point-maximum '
                             'EQD2 of the new SBRT course',
                             'metric = "D50cc"\ndescription = "Thecal sac (and cord) point-maximum '
                             'EQD2 of the new SBRT course', 1), encoding="utf-8")
    r = check(spine_plan(cord_gy=10.0, sac_gy=12.0), protocols=[str(path)], interval_months=7.0)
    f = only(r, "reirradiation.course-cord-eqd2")
    assert f.metric.endswith("D50cc, this course")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.METRIC_UNDEFINED)


@pytest.mark.parametrize("rx", [0.0, float("nan"), -5.0])
def test_prescription_zero_or_nan_is_unknown(rx):
    plan = spine_plan(cord_gy=10.0, sac_gy=12.0)
    plan.plan.prescription_gy = rx
    f = only(check(plan, indication="oligometastatic"), "fractionation.oligometastatic")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.PRESCRIPTION_UNKNOWN)


def test_scheme_listed_for_the_indication_is_not_failed_by_the_site_range():
    # Tableau 5 recommends 35 Gy/7 for oligometastatic disease; section 2.2.2 has no 7-fraction
    # spine range: the range rule WARNs (review), it does not FAIL a listed scheme.
    r = check(spine_plan(cord_gy=10.0, sac_gy=12.0, fractions=7, rx=35.0),
              indication="oligometastatic", site="spine", vertebral_level="L1")
    assert only(r, "fractionation.oligometastatic").status == "PASS"
    f = only(r, "sbrt-range.spine")
    assert f.status == "WARN" and f.details["indication_tier"] == "recommended"
    assert r.verdict == "REVIEW"


def test_organ_in_parts_with_an_empty_part_is_read_on_the_others():
    parts = {"Jejunum": (-12.0, -20.0, 7.0, -10.0, 10.0), "SpinalCord": CORD, "PTV": PTV}
    plan = spine_plan(cord_gy=20.0, sac_gy=20.0, fractions=1, rx=18.0, structures=parts)
    plan.structure_set.structures.append(Structure(9, "Ileum", []))
    f = only(check(plan, protocols=["tg101"]), "tg101.small-bowel.dmax")
    # the jejunum alone at 20 Gy is beyond Dmax <= 15.4 Gy (TG-101, 1 fraction)
    assert (f.status, f.structure) == ("FAIL", "Jejunum")


@pytest.mark.parametrize("name", ["ThecalSac_old", "zzThecalSac", "Dural_sac_x"])
def test_a_sac_under_another_name_is_not_replaced_by_the_cord(name):
    # The cord (inside the sac) always reads lower: it must not stand in while a structure
    # that looks like the sac is there under a name the role table does not know.
    plan = spine_plan(cord_gy=17.0, sac_gy=24.0, structures={"SpinalCord": CORD, name: SAC,
                                                             "PTV": PTV})
    f = only(check(plan), "sbrt-cord-dmax")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.STRUCTURE_AMBIGUOUS)
    assert name in f.reason and "--map thecal_sac=" in f.reason
    f = only(check(plan, explicit_roles={"thecal_sac": name}), "sbrt-cord-dmax")
    assert (f.status, f.structure) == ("FAIL", name)


def test_sac_reduced_to_its_end_planes_is_not_read():
    # Only the first and last planes of the sac are left (z -30 and 30 mm, around a PTV at
    # |z| <= 10): a 60 mm gap where the structure set's planes are 2 mm apart.
    sac = _structure(2, "ThecalSac", SAC)
    sac.contours = [sac.contours[0], sac.contours[-1]]
    plan = spine_plan(cord_gy=17.0, sac_gy=24.0, structures={"SpinalCord": CORD, "PTV": PTV})
    plan.structure_set.structures.append(sac)
    plan.structure_set.plane_spacing_mm = 2.0
    f = only(check(plan), "sbrt-cord-dmax")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.STRUCTURE_TOO_SHORT)
    assert "no contour between z -30.0 and 30.0 mm" in f.reason
