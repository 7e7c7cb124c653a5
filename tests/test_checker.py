"""The checker, rule by rule: a plan that passes, one that fails, one that cannot be evaluated.

Plans are analytical phantoms: a dose grid that is uniform over each structure (so Dmax,
D0.035cc, D5cc... all equal the dose written into the grid) and cylinders for structures.
Expected values are computed by hand in the comments, with the LQ formulas
BED = D (1 + d/(a/b)) and EQD2 = D (d + a/b) / (2 + a/b), d = D/n.

The phantom has a cord but no thecal sac: in Sahgal's rules (first-course SBRT table, the four
re-irradiation rules), whose source structure is the thecal sac, the cord stands in for it
(``stands_for == "thecal_sac"``). The cord (z -20..20 mm) extends 10 mm beyond the PTV
(z -10..10 mm), more than the 5 mm TG-101 asks. The fractionation tiers in detail are tested in
test_fractionation_tiers.py, the thecal sac / cord choice and the re-irradiation scope in
test_verdicts.py; here each kind of rule goes through ``check()`` with its typed fields.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import types

import numpy as np
import pytest
from click.testing import CliRunner
from support.protocols import TG101
from support.synthetic import cylinder

from rtcheck.checker import PriorCourse, check, parse_prior_summary
from rtcheck.checker import findings as F
from rtcheck.cli import main
from rtcheck.errors import InputError
from rtcheck.model import (
    Contour,
    DoseGrid,
    FractionGroup,
    Plan,
    PlanData,
    Structure,
    StructureSet,
)
from rtcheck.radiobiology import bed, eqd2

AXIS = np.arange(-40.0, 40.01, 2.0)  # dose grid: -40..40 mm, 2 mm voxels, on x, y and z
CORD = (0.0, -20.0, 5.0, -20.0, 20.0)  # cx, cy, r, z0, z1: 3.3 cc, where y < 0
PTV = (0.0, 15.0, 8.0, -10.0, 10.0)  # where y > 0
ORGAN = (0.0, 0.0, 15.0, -20.0, 20.0)  # 29.6 cc, for the TG-101 volume rows (up to 20 cc)
# Sahgal 2013 / HyTEC first-course SBRT limits (thecal sac Dmax, Gy) by number of fractions
SAHGAL = {1: 12.4, 2: 17.0, 3: 20.3, 4: 23.0, 5: 25.3}
REIRR = ("reirradiation.cumulative-cord-eqd2", "reirradiation.course-cord-eqd2",
         "reirradiation.course-share", "reirradiation.interval")
NIEDER = ("reirradiation.conventional-cumulative-bed", "reirradiation.conventional-course-bed",
          "reirradiation.conventional-interval")


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
    _, yy, _ = np.meshgrid(AXIS, AXIS, AXIS, indexing="ij")
    values = np.where(yy > 0, ptv_gy, cord_gy).astype(float)
    dose = DoseGrid(AXIS, AXIS.copy(), AXIS.copy(), values, units=units) if with_dose else None
    groups = [FractionGroup(1, fractions)] if fractions is not None else []
    plan = Plan(uid=uid, label="PHANTOM", fraction_groups=groups, prescription_gy=rx, date=date)
    return PlanData(plan, dose, ss)


def find(result, rule_id: str, structure: str | None = None):
    hits = [f for f in result.findings if f.rule == rule_id
            and (structure is None or f.structure == structure)]
    assert len(hits) == 1, (rule_id, [f.rule for f in result.findings],
                            [s.as_dict() for s in result.skipped])
    return hits[0]


def skipped(result, rule_id: str) -> F.Skip:
    hits = [s for s in result.skipped if s.rule == rule_id]
    assert len(hits) == 1, (rule_id, [s.rule for s in result.skipped],
                            [f.rule for f in result.findings])
    assert all(f.rule != rule_id for f in result.findings)  # skipped, not also a finding
    return hits[0]


# ============================================================================ radiobiology


def test_lq_formulas_by_hand():
    assert bed(30, 10, 10) == pytest.approx(39.0)  # 30 (1 + 3/10)
    assert bed(27, 3, 10) == pytest.approx(51.3)  # 27 (1 + 9/10)
    assert eqd2(30, 10, 2) == pytest.approx(37.5)  # 30 (3 + 2) / 4
    assert eqd2(13, 1, 2) == pytest.approx(48.75)  # 13 (13 + 2) / 4
    assert eqd2(12.4, 1, 2) == pytest.approx(44.64)
    assert eqd2(10, 10, 0.87) == pytest.approx(18.7 / 2.87)  # 10 (1 + 0.87) / 2.87 = 6.5157


# ============================================================================ fractionation

FRACTIONATION = [
    # indication, passing scheme (Tableau 5 recommended), failing scheme (outside every tier)
    ("pain", (30, 10), (45, 15)),  # 15 fractions: no scheme, outside Tableau 7's 4-10 fr
    ("pain-fracture-risk", (30, 10), (8, 2)),
    # 20 Gy/5 is recommended too, but the box's "privilégier ... 30 Gy en 10" makes it a WARN
    ("post-operative", (30, 10), (30, 5)),
    ("cord-compression", (30, 10), (36, 12)),
    ("reirradiation", (35, 5), (30, 10)),  # 10 fractions: outside 1-5 (the SBRT schemes)
    ("oligometastatic", (27, 3), (50, 25)),  # 25 fractions: outside 1-7 at every site
]


@pytest.mark.parametrize("indication,good,bad", FRACTIONATION)
def test_fractionation_pass_fail_not_evaluated(indication, good, bad):
    rule = f"fractionation.{indication}"
    ok = check(make_plan(rx=good[0], fractions=good[1], with_dose=False), indication=indication)
    f = find(ok, rule)
    assert (f.status, f.value, f.metric, f.code) == ("PASS", good[0], "prescription", F.EVALUATED)
    assert (f.details["tier"], f.details["tier_source"]) == ("recommended", "Tableau 5")
    assert f.details["fractions"] == good[1]
    assert f.details["dose_per_fraction_gy"] == pytest.approx(good[0] / good[1])
    assert "recommended" in f.reason and f.source.startswith("Référentiel 2026, Tableau 5")
    ko = find(check(make_plan(rx=bad[0], fractions=bad[1], with_dose=False),
                    indication=indication), rule)
    assert (ko.status, ko.details["tier"]) == ("FAIL", None)
    assert "outside every tier" in ko.reason and "nearest listed" in ko.reason
    unknown = find(check(make_plan(rx=good[0], fractions=None, with_dose=False),
                         indication=indication), rule)
    assert (unknown.status, unknown.code) == ("NOT_EVALUATED", F.FRACTIONS_UNKNOWN)
    assert "fractions unknown" in unknown.reason
    no_rx = find(check(make_plan(rx=None, fractions=good[1], with_dose=False),
                       indication=indication), rule)
    assert (no_rx.status, no_rx.code) == ("NOT_EVALUATED", F.PRESCRIPTION_UNKNOWN)
    assert "prescribed dose unknown" in no_rx.reason


@pytest.mark.parametrize("indication,scheme,site,status,tier,where", [
    ("pain", (6, 1), None, "WARN", "other", "Tableau 5"),
    ("pain-fracture-risk", (8, 1), None, "WARN", "exceptional", "Tableau 5"),
    # issue 9: "20 à 30 Gy/4 à 10 fr" (Tableau 7) and 35 Gy/5 at the spine (section 2.2.2)
    ("cord-compression", (20, 4), None, "WARN", "allowed_elsewhere", "Tableau 7"),
    ("oligometastatic", (35, 5), "spine", "WARN", "allowed_elsewhere", "section 2.2.2"),
    # 30 Gy/4 at the spine: no 4-fraction range; BED10 = 30 (1 + 7.5/10) = 52.5 in [34.2, 81.6]
    ("reirradiation", (30, 4), "spine", "WARN", "biological_equivalent", "Tableau 5"),
    ("pain", (45, 15), None, "FAIL", None, None),
])
def test_fractionation_finding_carries_the_tier(indication, scheme, site, status, tier, where):
    """The tier assessment (test_fractionation_tiers.py) reaches the finding through check()."""
    result = check(make_plan(rx=scheme[0], fractions=scheme[1], with_dose=False),
                   indication=indication, site=site)
    f = find(result, f"fractionation.{indication}")
    assert (f.status, f.details["tier"], f.details["tier_source"]) == (status, tier, where)
    assert f.value == scheme[0] and f"{scheme[0]:g} Gy/{scheme[1]}" in f.reason
    assert "recommended" in f.limit  # the rule's summary, tiers and all


def test_biological_equivalent_definition_and_numbers_in_the_finding():
    f = find(check(make_plan(rx=30, fractions=4, with_dose=False), indication="reirradiation",
                   site="spine"), "fractionation.reirradiation")
    assert (f.status, f.alpha_beta, f.model) == ("WARN", 10.0, "LQ")
    assert "biological equivalent = rtcheck's reading" in f.reason
    assert f.details["BED10_gy"] == pytest.approx(52.5)  # 30 (1 + 7.5/10)
    assert f.details["bed_gy"] == pytest.approx(52.5)
    # spine: 18 Gy/2 -> 18 (1 + 9/10) = 34.2; 24 Gy/1 -> 24 (1 + 24/10) = 81.6
    assert f.details["bed_span_gy"] == pytest.approx([34.2, 81.6])
    assert f.details["fraction_span"] == [1, 5]
    # 24 Gy/2 without a site: allowed at the spine, FAIL at the sacrum: the site is needed
    f = find(check(make_plan(rx=24, fractions=2, with_dose=False), indication="reirradiation"),
             "fractionation.reirradiation")
    assert (f.status, f.code, f.missing) == ("NOT_EVALUATED", F.FACT_MISSING, "site")


def test_single_fraction_spine_pain_warns():
    f = find(check(make_plan(rx=8, fractions=1, with_dose=False), indication="pain", site="spine"),
             "fractionation.pain")
    assert f.status == "WARN" and "Préférer les schémas fractionnés" in f.reason
    assert f.details["tier"] == "recommended"  # recommended, but not at the spine


def test_other_indications_are_skipped_not_failed():
    result = check(make_plan(rx=30, fractions=10, with_dose=False), indication="pain")
    s = skipped(result, "fractionation.reirradiation")
    assert (s.code, s.needs) == (F.NOT_REQUESTED, None) and "not requested" in s.reason


def test_rules_skipped_for_a_missing_fact_give_a_facts_finding():
    # No indication, no site: the fractionation rows and the SBRT ranges were not evaluated;
    # the checker says so in one NOT_EVALUATED finding per missing fact (never a bare PASS).
    result = check(make_plan(rx=30, fractions=10))
    s = skipped(result, "fractionation.pain")
    assert (s.code, s.needs) == (F.FACT_MISSING, "indication")
    ind = find(result, "facts.indication")
    assert (ind.status, ind.code, ind.missing, ind.kind) == ("NOT_EVALUATED", F.FACT_MISSING,
                                                             "indication", "facts")
    assert set(ind.details["rules"]) == {f"fractionation.{i}" for i, _, _ in FRACTIONATION}
    site = find(result, "facts.site")
    # 30 Gy/10 is conventional (rtcheck's criterion): the SBRT ranges are out of scope, only
    # the oesophagus remark needs the site.
    assert site.details["rules"] == ["esophagus-c5-t10"]
    assert result.verdict == "NOT_EVALUATED" and result.exit_code == 3
    # the cord was checked all the same: 10 Gy in 10 fx -> 10 (1 + 0.87) / 2.87 = 6.52 Gy
    assert find(result, "conventional-cord-dmax").value == pytest.approx(18.7 / 2.87)
    # once given, no facts finding remains
    result = check(make_plan(rx=30, fractions=10), indication="pain", site="spine",
                   vertebral_level="L2")
    assert not [f for f in result.findings if f.kind == "facts"]


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
    assert (f.value, f.metric, f.details["fractions"]) == (scheme[0], "prescription", scheme[1])
    assert f.details["technique"]["how"] == "given"
    for other in {"spine", "sacrum", "extraspinal"} - {site}:
        assert skipped(result, f"sbrt-range.{other}").code == F.NOT_REQUESTED


@pytest.mark.parametrize("site", ["spine", "sacrum", "extraspinal"])
def test_sbrt_range_not_evaluated_without_fractions(site):
    f = find(check(make_plan(rx=30, fractions=None, with_dose=False), site=site),
             f"sbrt-range.{site}")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.FRACTIONS_UNKNOWN)
    assert "fractions unknown" in f.reason


def test_sbrt_range_skipped_for_a_conventional_course():
    # 20 Gy/5 is the re-irradiation row's conventional 'other' scheme: not an SBRT course.
    result = check(make_plan(rx=20, fractions=5, with_dose=False), indication="reirradiation",
                   site="spine")
    assert (result.facts["technique"], result.facts["technique_how"]) == (
        "conventional", "indication_scheme")
    s = skipped(result, "sbrt-range.spine")
    assert s.code == F.OUT_OF_SCOPE and "not an SBRT course" in s.reason
    result = check(make_plan(rx=8, fractions=1, with_dose=False), indication="pain", site="spine")
    s = skipped(result, "sbrt-range.spine")
    assert s.code == F.OUT_OF_SCOPE and "conventional" in s.reason
    # 35 Gy/5 is the row's SBRT scheme: the range is checked.
    result = check(make_plan(rx=35, fractions=5, with_dose=False), indication="reirradiation",
                   site="spine")
    assert (result.facts["technique"], result.facts["technique_how"]) == (
        "sbrt", "indication_scheme")
    assert find(result, "sbrt-range.spine").status == "PASS"


def test_technique_from_rtchecks_criterion_for_an_unlisted_scheme():
    # 30 Gy/10 for re-irradiation: not a scheme of the row; 3 Gy per fraction <= 5 Gy:
    # conventional by rtcheck's criterion, so no SBRT range is applied (and no scheme of the
    # row has 10 fractions: FAIL).
    result = check(make_plan(rx=30, fractions=10, with_dose=False), indication="reirradiation",
                   site="spine")
    assert (result.facts["technique"], result.facts["technique_how"]) == ("conventional",
                                                                          "criterion")
    s = skipped(result, "sbrt-range.spine")
    assert s.code == F.OUT_OF_SCOPE and "not an SBRT course" in s.reason
    assert find(result, "fractionation.reirradiation").status == "FAIL"
    # 30 Gy/4: not listed; 7.5 Gy per fraction, BED10 = 30 (1 + 7.5/10) = 52.5 >= 30 Gy in
    # <= 5 fractions: SBRT by the criterion, and 4 fractions have no spine range; the row
    # allows it as a biological equivalent, so the range rule WARNs rather than FAILs
    result = check(make_plan(rx=30, fractions=4, with_dose=False), indication="reirradiation",
                   site="spine")
    assert (result.facts["technique"], result.facts["technique_how"]) == ("sbrt", "criterion")
    assert find(result, "fractionation.reirradiation").details["tier"] == "biological_equivalent"
    f = find(result, "sbrt-range.spine")
    assert f.status == "WARN" and f.details["indication_tier"] == "biological_equivalent"
    # without an indication nothing lists it: the range rule FAILs
    result = check(make_plan(rx=30, fractions=4, with_dose=False), site="spine")
    assert find(result, "sbrt-range.spine").status == "FAIL"


# ============================================================================ SBRT cord Dmax


@pytest.mark.parametrize("fractions,cord,status", [
    (1, 12.0, "PASS"), (1, 13.0, "WARN"), (1, 14.5, "FAIL"),
    (2, 16.9, "PASS"), (2, 17.1, "FAIL"),
    (3, 20.0, "PASS"), (3, 20.5, "FAIL"),
    (4, 22.9, "PASS"), (4, 23.1, "FAIL"),
    (5, 25.0, "PASS"), (5, 25.5, "FAIL"),
])
def test_sbrt_cord_dmax(fractions, cord, status):
    # 30 Gy in 1-5 fractions: >= 6 Gy per fraction, BED10 >= 48 Gy: SBRT by rtcheck's criterion
    result = check(make_plan(fractions=fractions, rx=30, cord_gy=cord))
    assert (result.facts["technique"], result.facts["technique_how"]) == ("sbrt", "criterion")
    f = find(result, "sbrt-cord-dmax")
    assert (f.status, f.structure, f.role, f.metric) == (status, "SpinalCord", "spinal_cord", "Dmax")
    assert f.stands_for == "thecal_sac"  # no sac contoured: the cord stands in (Sahgal 2013)
    assert [(s.structure, s.stands_for) for s in f.evaluated] == [("SpinalCord", "thecal_sac")]
    assert (f.limit, f.operator, f.unit) == (SAHGAL[fractions], "<=", "Gy")
    assert f.value == pytest.approx(cord, abs=1e-6)  # uniform dose over the cord
    # both near-maximum volumes shown beside the point maximum
    assert f.details["D0.035cc"] == pytest.approx(cord, abs=0.02)
    assert f.details["D0.03cc"] == pytest.approx(cord, abs=0.02)
    assert f.alpha_beta is None and f.model is None
    # the conventional cord limit is superseded by the SBRT table for 1-5 fractions
    assert skipped(result, "conventional-cord-dmax").code == F.OUT_OF_SCOPE


def test_sbrt_cord_dmax_not_evaluated_cases():
    # no cord, no sac, no PRV contoured
    f = find(check(make_plan(fractions=3, structures={"PTV": PTV})), "sbrt-cord-dmax")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.STRUCTURE_MISSING)
    assert "none of thecal_sac, spinal_cord, spinal_cord_prv is contoured" in f.reason
    # two candidates
    both = {"SpinalCord": CORD, "Moelle": (0.0, -20.0, 4.0, -20.0, 20.0), "PTV": PTV}
    f = find(check(make_plan(fractions=3, structures=both)), "sbrt-cord-dmax")
    assert (f.status, f.code, f.role) == ("NOT_EVALUATED", F.STRUCTURE_AMBIGUOUS, "spinal_cord")
    assert "ambiguous" in f.reason
    assert "SpinalCord" in f.structure and "Moelle" in f.structure
    # ... resolved by --map
    f = find(check(make_plan(fractions=3, structures=both), explicit_roles={"spinal_cord": "Moelle"}),
             "sbrt-cord-dmax")
    assert (f.status, f.structure, f.stands_for) == ("PASS", "Moelle", "thecal_sac")
    # relative dose
    f = find(check(make_plan(fractions=3, units="RELATIVE")), "sbrt-cord-dmax")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.NO_DOSE) and "RELATIVE" in f.reason
    # no dose at all
    f = find(check(make_plan(fractions=3, with_dose=False)), "sbrt-cord-dmax")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.NO_DOSE) and "no dose grid" in f.reason
    # unknown number of fractions: the technique is unknown too, so both cord rules apply
    result = check(make_plan(fractions=None))
    assert result.facts["technique"] is None
    for rule in ("sbrt-cord-dmax", "conventional-cord-dmax"):
        f = find(result, rule)
        assert (f.status, f.code) == ("NOT_EVALUATED", F.FRACTIONS_UNKNOWN)
        assert "fractions unknown" in f.reason


def test_sbrt_cord_dmax_partial_coverage():
    # The cord runs from z = -60 to 20 mm, the grid from -40 (-41 with half a voxel): about a
    # quarter of the cord is outside. Low dose inside: the maximum outside is unknown.
    long_cord = {"SpinalCord": (0.0, -20.0, 5.0, -60.0, 20.0), "PTV": PTV}
    f = find(check(make_plan(fractions=3, cord_gy=10.0, structures=long_cord)), "sbrt-cord-dmax")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.NOT_COVERED)
    assert "inside the dose grid" in f.reason
    # High dose inside: the covered part alone exceeds 20.3 Gy, so the plan fails whatever
    # lies outside.
    f = find(check(make_plan(fractions=3, cord_gy=22.0, structures=long_cord)), "sbrt-cord-dmax")
    assert f.status == "FAIL" and "covered part alone" in f.reason
    assert f.value == pytest.approx(22.0, abs=1e-6)


def test_cord_rules_scope():
    # 30 Gy/10, 3 Gy per fraction: conventional by rtcheck's criterion: the SBRT table is out
    # of scope and QUANTEC's limit applies: 10 Gy in 10 fx -> 10 (1 + 0.87) / 2.87 = 6.52 Gy
    result = check(make_plan(fractions=10, rx=30))
    s = skipped(result, "sbrt-cord-dmax")
    assert s.code == F.OUT_OF_SCOPE and "stated for SBRT courses" in s.reason
    f = find(result, "conventional-cord-dmax")
    assert (f.status, f.structure, f.stands_for) == ("PASS", "SpinalCord", None)
    assert (f.alpha_beta, f.model, f.limit) == (0.87, "LQ", 50.0)
    assert f.value == pytest.approx(18.7 / 2.87)
    assert f.details["physical_gy"] == pytest.approx(10.0, abs=1e-6)
    # SBRT given, 10 fractions: outside the table's 1-5 fractions
    s = skipped(check(make_plan(fractions=10, rx=30), technique="sbrt"), "sbrt-cord-dmax")
    assert s.code == F.OUT_OF_SCOPE and "1-5 fractions; this plan has 10" in s.reason
    # extraspinal lesion and no cord contoured: not applicable (the cord is not near)
    result = check(make_plan(fractions=1, rx=20, structures={"PTV": PTV}), site="extraspinal")
    s = skipped(result, "sbrt-cord-dmax")
    assert s.code == F.NOT_APPLICABLE and "site extraspinal" in s.reason
    # ... but a contoured cord is checked whatever the site: 10 Gy <= 12.4 Gy in 1 fx
    f = find(check(make_plan(fractions=1, rx=20, cord_gy=10.0), site="extraspinal"),
             "sbrt-cord-dmax")
    assert (f.status, f.structure) == ("PASS", "SpinalCord")


@pytest.mark.parametrize("z0,z1,evaluated", [
    (-15.0, 15.0, True),   # exactly 5 mm beyond the PTV's z -10..10 at both ends
    (-14.0, 15.0, False),  # 4 mm below
    (-15.0, 14.0, False),  # 4 mm above
])
def test_cord_must_extend_5_mm_beyond_the_target(z0, z1, evaluated):
    # conventional 30 Gy/10, cord 31 Gy: 31 (3.1 + 0.87) / 2.87 = 42.88 Gy <= 50
    plan = make_plan(fractions=10, rx=30, cord_gy=31.0,
                     structures={"SpinalCord": (0.0, -20.0, 5.0, z0, z1), "PTV": PTV})
    result = check(plan)
    f = find(result, "conventional-cord-dmax")
    if evaluated:
        assert (f.status, f.code) == ("PASS", F.EVALUATED)
        assert f.value == pytest.approx(31 * 3.97 / 2.87)
    else:
        assert (f.status, f.code) == ("NOT_EVALUATED", F.STRUCTURE_TOO_SHORT)
        assert "not 5 mm beyond the target" in f.reason and "TG-101" in f.reason
        assert result.verdict == "NOT_EVALUATED"


def test_french_and_accented_cord_names():
    for name in ("Moelle", "MOELLE", "Moëlle", "moelle_epiniere"):
        f = find(check(make_plan(fractions=5, cord_gy=20, structures={name: CORD, "PTV": PTV})),
                 "sbrt-cord-dmax")
        assert (f.status, f.structure, f.role, f.stands_for) == ("PASS", name, "spinal_cord",
                                                                 "thecal_sac")


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
    s = skipped(result, "esophagus-c5-t10")
    assert s.code == F.NOT_APPLICABLE and "outside C5-T10" in s.reason
    # spine site without level: cannot tell
    f = find(check(make_plan(fractions=5, structures=organs), site="spine"), "esophagus-c5-t10")
    assert (f.status, f.code, f.missing) == ("NOT_EVALUATED", F.FACT_MISSING, "vertebral_level")
    assert "vertebral level unknown" in f.reason
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


def test_esophagus_warning_outside_the_spine_is_not_applicable():
    organs = {"Oesophage": ORGAN}
    result = check(make_plan(fractions=5, structures=organs), site="extraspinal")
    s = skipped(result, "esophagus-c5-t10")
    assert s.code == F.NOT_APPLICABLE and "spinal lesions only" in s.reason
    # site unknown: the skip names the fact it needs, and the checker reports that fact
    result = check(make_plan(fractions=5, structures=organs))
    s = skipped(result, "esophagus-c5-t10")
    assert (s.code, s.needs) == (F.FACT_MISSING, "site") and "--site" in s.reason
    assert "esophagus-c5-t10" in find(result, "facts.site").details["rules"]


# ============================================================================ re-irradiation


def test_reirradiation_all_pass_by_hand():
    # SBRT 27 Gy/3 (Tableau 5) after a conventional 30 Gy/10 (3 Gy per fraction):
    # prior: cord 30 Gy in 10 fx -> EQD2(a/b 2) = 30 (3 + 2) / 4 = 37.5 Gy
    # now:   cord 9 Gy in 3 fx   -> 9 (3 + 2) / 4 = 11.25 Gy
    # cumulative 48.75 < 70; course 11.25 < 25; share 11.25 / 48.75 = 0.2308 <= 0.5
    # interval from the last fraction 2025-01-01 to 2025-09-01: exactly 8 calendar months >= 5
    result = check(make_plan(fractions=3, rx=27, cord_gy=9.0), indication="reirradiation",
                   site="spine", vertebral_level="L2",
                   priors="30Gy/10 cord_dmax=30Gy end=2025-01-01")
    cum, course, share, interval = (find(result, r) for r in REIRR)
    assert (cum.status, cum.value) == ("PASS", pytest.approx(48.75, abs=1e-5))
    assert (course.status, course.value) == ("PASS", pytest.approx(11.25, abs=1e-5))
    assert (share.status, share.value) == ("PASS", pytest.approx(11.25 / 48.75, abs=1e-6))
    assert (interval.status, interval.value) == ("PASS", pytest.approx(8.0))
    for f in (cum, course, share):
        assert f.alpha_beta == 2.0 and f.model == "LQ" and f.structure == "SpinalCord"
        assert (f.role, f.stands_for) == ("spinal_cord", "thecal_sac")
    assert interval.alpha_beta is None and interval.unit == "months"
    assert interval.details["prior_end_how"] == "given"
    assert [(c["dose_gy"], c["fractions"], c["value_gy"]) for c in cum.details["courses"]] == [
        (pytest.approx(9.0), 3, pytest.approx(11.25)), (30.0, 10, pytest.approx(37.5))]
    assert cum.details["cumulative_eqd2_gy"] == pytest.approx(48.75)
    # Everything else: Tableau 5 27 Gy/3 recommended, spine 27-30 Gy/3, L2 outside C5-T10;
    # the first-course cord rules and Nieder's conventional rules are out of scope.
    assert find(result, "fractionation.reirradiation").status == "PASS"
    assert find(result, "sbrt-range.spine").status == "PASS"
    for rule in ("sbrt-cord-dmax", "conventional-cord-dmax", *NIEDER):
        assert skipped(result, rule).code == F.OUT_OF_SCOPE
    assert result.verdict == "PASS" and result.exit_code == 0
    assert any(n.code == "surrogate" and n.structure == "SpinalCord" for n in result.notes)


def test_reirradiation_all_fail_by_hand():
    # prior: 31 Gy in 10 fx -> 31 (3.1 + 2) / 4 = 39.525; now 13 Gy in 1 fx -> 13 x 15 / 4 = 48.75
    # cumulative 88.275 > 75 FAIL; course 48.75 >= 25 FAIL; share 0.5523 > 0.5 FAIL;
    # interval 2025-06-01 -> 2025-09-01 = 3.0 calendar months < 5 FAIL
    result = check(make_plan(fractions=1, rx=24, cord_gy=13.0),
                   priors=["30Gy/10 cord_dmax=31Gy end=2025-06-01"])
    cum, course, share, interval = (find(result, r) for r in REIRR)
    assert (cum.status, cum.value) == ("FAIL", pytest.approx(88.275, abs=1e-5))
    assert (course.status, course.value) == ("FAIL", pytest.approx(48.75, abs=1e-5))
    assert (share.status, share.value) == ("FAIL", pytest.approx(48.75 / 88.275, abs=1e-6))
    assert (interval.status, interval.value) == ("FAIL", pytest.approx(3.0))
    assert all(f.code == F.EVALUATED for f in (cum, course, share, interval))
    assert result.verdict == "FAIL" and result.exit_code == 1


def test_reirradiation_no_consensus_band_is_warn():
    # prior: 40 Gy in 20 fx (2 Gy/fx) -> EQD2 40; now 20 Gy in 5 fx -> 20 (4 + 2) / 4 = 30;
    # cumulative exactly 70: not < 70, within the 70-75 band -> WARN
    result = check(make_plan(fractions=5, rx=35, cord_gy=20.0),
                   priors="40Gy/20 cord_dmax=40Gy end=2024-01-01")
    f = find(result, "reirradiation.cumulative-cord-eqd2")
    assert (f.status, f.value) == ("WARN", pytest.approx(70.0, abs=1e-5))
    assert "no-consensus band" in f.reason and f.details["warn_up_to"] == 75.0
    # the course alone, 30 >= 25, FAILs: the plan fails, the WARN does not hide it
    assert find(result, "reirradiation.course-cord-eqd2").status == "FAIL"
    assert result.verdict == "FAIL"
    # 76 Gy: prior 46 Gy in 23 fx -> 46; now 20 Gy/5 -> 30; cumulative 76 > 75 -> FAIL
    result = check(make_plan(fractions=5, rx=35, cord_gy=20.0),
                   priors="46Gy/23 cord_dmax=46Gy end=2024-01-01")
    f = find(result, "reirradiation.cumulative-cord-eqd2")
    assert (f.status, f.value) == ("FAIL", pytest.approx(76.0, abs=1e-5))


def test_reirradiation_not_evaluated_cases():
    plan = make_plan(fractions=3, rx=27, cord_gy=9.0)
    # prior cord dose and end date unknown
    result = check(plan, priors="30Gy/10")
    cum, course, share, interval = (find(result, r) for r in REIRR)
    for f in (cum, share):
        assert (f.status, f.code, f.missing) == ("NOT_EVALUATED", F.PRIOR_UNKNOWN,
                                                 "prior_spinal_cord_dose")
        assert "Dmax of the spinal_cord unknown" in f.reason
    assert (interval.status, interval.code, interval.missing) == (
        "NOT_EVALUATED", F.PRIOR_UNKNOWN, "prior_end_date")
    assert "last fraction of the prior course unknown" in interval.reason
    # the course's own EQD2 needs no prior dose: 9 (3 + 2) / 4 = 11.25
    assert (course.status, course.value) == ("PASS", pytest.approx(11.25))
    # current cord missing
    result = check(make_plan(fractions=3, structures={"PTV": PTV}),
                   priors="30Gy/10 cord_dmax=30Gy end=2025-01-01")
    for rule in REIRR[:3]:
        f = find(result, rule)
        assert (f.status, f.code) == ("NOT_EVALUATED", F.STRUCTURE_MISSING)
    assert find(result, "reirradiation.interval").status == "PASS"
    # re-irradiation indication without any prior course
    result = check(plan, indication="reirradiation")
    for rule in REIRR:
        f = find(result, rule)
        assert (f.status, f.code, f.missing) == ("NOT_EVALUATED", F.FACT_MISSING, "prior_course")
        assert "no prior course" in f.reason
    # this plan undated
    result = check(make_plan(fractions=3, date=None), priors="30Gy/10 cord_dmax=30Gy end=2025-01-01")
    f = find(result, "reirradiation.interval")
    assert (f.status, f.code, f.missing) == ("NOT_EVALUATED", F.FACT_MISSING, "date")
    assert "date of this course unknown" in f.reason
    # a prior course dated after this plan (2025-12-01 > 2025-09-01) is not a prior course:
    # every re-irradiation rule is NOT_EVALUATED, its dose never summed
    result = check(plan, priors="30Gy/10 cord_dmax=30Gy date=2025-12-01")
    for f in result.findings:
        if f.kind == "reirradiation":
            assert (f.status, f.code) == ("NOT_EVALUATED", F.PRIOR_MISMATCH), f.rule
    f = find(result, "reirradiation.interval")
    assert "dated after this course (2025-09-01" in f.reason
    # a prior that started before but whose estimated end (2025-08-25 Monday + 10 weekday
    # fractions -> 2025-09-05) is after this plan's date: the interval is not evaluated
    result = check(plan, priors="30Gy/10 cord_dmax=30Gy date=2025-08-25")
    f = find(result, "reirradiation.interval")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.PRIOR_MISMATCH)
    assert "ends 2025-09-05" in f.reason and "after this course's date 2025-09-01" in f.reason


def test_reirradiation_interval_given_and_date_given():
    result = check(make_plan(fractions=3, cord_gy=9.0, date=None), priors="30Gy/10 cord_dmax=30Gy",
                   interval_months=6)
    f = find(result, "reirradiation.interval")
    assert (f.status, f.value) == ("PASS", 6.0) and "--interval-months" in f.reason
    result = check(make_plan(fractions=3, cord_gy=9.0, date=None),
                   priors="30Gy/10 cord_dmax=30Gy end=2025-01-01", date="2025-04-01")
    f = find(result, "reirradiation.interval")  # 2025-01-01 -> 2025-04-01: 3.0 months
    assert (f.status, f.value) == ("FAIL", pytest.approx(3.0))
    assert f.details["this_date_how"] == "given"


def test_reirradiation_interval_estimated_from_the_prior_plan_date():
    # No end date: the last fraction is estimated from the plan date. 2025-01-01 is a
    # Wednesday: 10 weekday fractions end on Tuesday 2025-01-14. To 2025-09-01: 7 whole months
    # (to 2025-08-14) + 18 days of the 31 from 2025-08-14 to 2025-09-14 = 7.5806 months.
    result = check(make_plan(fractions=3, rx=27, cord_gy=9.0),
                   priors="30Gy/10 cord_dmax=30Gy date=2025-01-01")
    f = find(result, "reirradiation.interval")
    assert (f.status, f.value) == ("PASS", pytest.approx(7 + 18 / 31))
    assert (f.details["prior_end"], f.details["prior_end_how"]) == ("2025-01-14", "estimate")
    assert "estimated last fraction 2025-01-14" in f.reason


def test_conventional_reirradiation_in_ten_fractions_gets_nieder_by_hand():
    # 30 Gy/10 after 30 Gy/10: conventional (3 Gy per fraction), so Nieder 2006, not Sahgal.
    # BED(a/b 2): now 9 Gy in 10 fx -> 9 (1 + 0.9/2) = 13.05; prior 30 Gy in 10 fx ->
    # 30 (1 + 3/2) = 75; cumulative 88.05 <= 135.5 PASS; largest course 75 <= 98 PASS (prior).
    # Interval 2025-03-14 -> 2025-09-01: 5 months + 18/31 = 5.58: Sahgal's 5 months would
    # pass, Nieder's 6 do not: FAIL.
    result = check(make_plan(fractions=10, rx=30, cord_gy=9.0),
                   priors="30Gy/10 cord_dmax=30Gy end=2025-03-14")
    cum, each, interval = (find(result, r) for r in NIEDER)
    assert (cum.status, cum.value) == ("PASS", pytest.approx(88.05))
    assert (cum.alpha_beta, cum.model, cum.limit, cum.structure) == (2.0, "LQ", 135.5, "SpinalCord")
    assert cum.stands_for is None  # Nieder's structure is the cord itself
    assert cum.details["cumulative_bed_gy"] == pytest.approx(88.05)
    assert (each.status, each.value, each.limit) == ("PASS", pytest.approx(75.0), 98.0)
    assert "largest: summary '30Gy/10" in each.reason
    assert (interval.status, interval.value, interval.limit) == (
        "FAIL", pytest.approx(5 + 18 / 31), 6.0)
    for rule in REIRR:
        assert skipped(result, rule).code == F.OUT_OF_SCOPE
    # no prior course: not a re-irradiation, every re-irradiation rule is not applicable
    result = check(make_plan(fractions=3))
    for rule in REIRR + NIEDER:
        s = skipped(result, rule)
        assert s.code == F.NOT_APPLICABLE and "no prior course" in s.reason


@pytest.mark.parametrize("fractions, status", [(5, "PASS"), (6, "WARN")])
def test_an_sbrt_reirradiation_beyond_5_fractions_is_outside_the_rules_derivation(
        fractions, status):
    # Sahgal's course rules (course EQD2 < 25 Gy, share <= 0.5) are stated for 1-5 fraction
    # SBRT and are skipped beyond; the cumulative rule, derived with them from the same
    # courses, still applies but its PASS is a WARN naming them (rtcheck budget says the
    # same of its bounds). 10 Gy in 6 fx: 10 (10/6 + 2) / 4 = 9.17 + 20 = 29.17 < 70 Gy.
    result = check(make_plan(fractions=fractions, rx=30.0, cord_gy=10.0), technique="sbrt",
                   indication="reirradiation", site="spine", vertebral_level="T8",
                   priors=["30Gy/10 cord_dmax=20Gy end=2024-01-01"])
    f = find(result, "reirradiation.cumulative-cord-eqd2")
    assert f.status == status
    caveats = f.details.get("outside_derivation", [])
    # the interval, Sahgal's fourth characteristic (section 4), likewise
    interval = find(result, "reirradiation.interval")
    assert interval.status == status
    if fractions == 6:
        assert f.code == F.OUTSIDE_DERIVATION
        assert f.value == pytest.approx(10 * (10 / 6 + 2) / 4 + 20)
        for rule in ("reirradiation.course-cord-eqd2", "reirradiation.course-share"):
            assert skipped(result, rule).code == F.OUT_OF_SCOPE
            for caveat_list in (caveats, interval.details["outside_derivation"]):
                assert any(c.startswith(f"{rule} not applied (stated for 1-5 fractions; this "
                                        "plan has 6)") for c in caveat_list), caveat_list
    else:
        assert caveats == [] and f.code == F.EVALUATED


def test_several_prior_courses_add_up():
    # 37.5 + 20 Gy in 10 fx at the cord (20 (2 + 2) / 4 = 20) + 11.25 = 68.75 < 70, but three
    # courses: the rule was derived for one prior course, so its PASS is a WARN (iterative).
    result = check(make_plan(fractions=3, cord_gy=9.0),
                   priors=["30Gy/10 cord_dmax=30Gy end=2023-01-13",
                           "20Gy/10 cord_dmax=20Gy end=2025-01-01"])
    f = find(result, "reirradiation.cumulative-cord-eqd2")
    assert (f.status, f.code, f.value) == ("WARN", F.OUTSIDE_DERIVATION, pytest.approx(68.75))
    assert [c["value_gy"] for c in f.details["courses"]] == pytest.approx([11.25, 37.5, 20.0])
    assert "iterative re-irradiation" in f.reason
    # the interval counts from the most recent course's last fraction: 2025-01-01 -> 8.0 months
    f = find(result, "reirradiation.interval")
    assert (f.status, f.value) == ("WARN", pytest.approx(8.0))
    assert f.details["prior_end"] == "2025-01-01"
    assert result.verdict == "NOT_EVALUATED"  # indication and site not given
    assert {x.rule for x in result.findings if x.status == "NOT_EVALUATED"} == {
        "facts.indication", "facts.site"}


def test_alpha_beta_override_is_applied_and_reported():
    plan = make_plan(fractions=1, cord_gy=13.0)  # 30 Gy/1: SBRT
    prior = "30Gy/10 cord_dmax=31Gy end=2025-01-01"
    # by the role of the rules' source (the thecal sac), a/b 3: now 13 Gy in 1 fx ->
    # 13 (13 + 3) / 5 = 41.6; prior 31 Gy in 10 fx -> 31 (3.1 + 3) / 5 = 37.82; sum 79.42
    result = check(plan, priors=prior, alpha_beta={"thecal_sac": 3.0})
    f = find(result, "reirradiation.course-cord-eqd2")
    assert (f.alpha_beta, f.value) == (3.0, pytest.approx(41.6))
    assert "--alpha-beta thecal_sac" in f.reason and "uses 2 Gy" in f.reason
    f = find(result, "reirradiation.cumulative-cord-eqd2")
    assert (f.alpha_beta, f.value) == (3.0, pytest.approx(79.42))
    assert result.facts["alpha_beta_overrides"] == {"thecal_sac": 3.0}
    # by rule id: that rule only; the cumulative stays at a/b 2: 48.75 + 39.525 = 88.275
    result = check(plan, priors=prior, alpha_beta={"reirradiation.course-cord-eqd2": 3.0})
    assert find(result, "reirradiation.course-cord-eqd2").value == pytest.approx(41.6)
    f = find(result, "reirradiation.cumulative-cord-eqd2")
    assert (f.alpha_beta, f.value) == (2.0, pytest.approx(88.275))
    # the cord's role reaches QUANTEC's cord rule: 10 Gy in 10 fx at a/b 3 -> 10 (1 + 3) / 5 = 8
    f = find(check(make_plan(fractions=10, rx=30), alpha_beta={"spinal_cord": 3.0}),
             "conventional-cord-dmax")
    assert (f.alpha_beta, f.value) == (3.0, pytest.approx(8.0))
    assert "--alpha-beta spinal_cord" in f.reason and "uses 0.87 Gy" in f.reason
    # the biological equivalent at a/b 3: 30 Gy/4 -> 30 (1 + 7.5/3) = 105, spine span
    # [18 (1 + 9/3), 24 (1 + 24/3)] = [72, 216]
    f = find(check(make_plan(rx=30, fractions=4, with_dose=False), indication="reirradiation",
                   site="spine", alpha_beta={"fractionation.reirradiation": 3.0}),
             "fractionation.reirradiation")
    assert (f.alpha_beta, f.status) == (3.0, "WARN") and "BED3 = 105.0 Gy" in f.reason
    assert f.details["bed_span_gy"] == pytest.approx([72.0, 216.0])
    with pytest.raises(InputError, match="not a role nor the id of a rule that converts"):
        check(make_plan(), alpha_beta={"cord": 2.0})
    with pytest.raises(InputError, match="not a role nor the id of a rule that converts"):
        check(make_plan(), alpha_beta={"sbrt-cord-dmax": 2.0})
    with pytest.raises(InputError, match="must be a number > 0"):
        check(make_plan(), alpha_beta={"spinal_cord": 0})


def test_prior_course_from_a_plan():
    # The prior plan: 30 Gy/10 with the cord at 31 Gy, planned Saturday 2025-03-01.
    # cumulative: now 13 Gy in 1 fx -> 48.75; prior 31 Gy in 10 fx -> 39.525; 88.275
    prior = make_plan(fractions=10, rx=30, cord_gy=31.0, date=dt.date(2025, 3, 1), uid="1.2.9")
    this = make_plan(fractions=1, cord_gy=13.0)
    # a prior plan must be shown to be this patient's: without PatientIDs it is never summed
    f = find(check(this, priors=[prior]), "reirradiation.cumulative-cord-eqd2")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.PRIOR_MISMATCH)
    prior.plan.patient_id = this.plan.patient_id = "P1"
    result = check(this, priors=[prior])
    f = find(result, "reirradiation.cumulative-cord-eqd2")
    assert f.value == pytest.approx(88.275, abs=1e-4)
    assert f.details["courses"][1]["structure"] == "SpinalCord"
    # No treatment records: last fraction estimated, Monday 2025-03-03 + 10 weekdays ->
    # Friday 2025-03-14; to 2025-09-01: 5 months + 18/31 = 5.58, less than a month above the
    # 5-month limit on an estimate: WARN (confirm with the records).
    f = find(result, "reirradiation.interval")
    assert (f.status, f.value) == ("WARN", pytest.approx(5 + 18 / 31))
    assert f.details["prior_end_how"] == "estimate" and "estimate" in f.reason
    # With its treatment records (two days lost: the last fraction on Tuesday 2025-03-18):
    # 5 months (to 2025-08-18) + 14/31 = 5.45 >= 5: PASS, no estimate.
    prior.treatment_dates = [dt.date(2025, 3, d) for d in (3, 4, 5, 6, 7, 12, 13, 14, 17, 18)]
    result = check(this, priors=[prior])
    f = find(result, "reirradiation.interval")
    assert (f.status, f.value) == ("PASS", pytest.approx(5 + 14 / 31))
    assert (f.details["prior_end"], f.details["prior_end_how"]) == ("2025-03-18",
                                                                   "treatment_records")
    assert result.facts["priors"][0]["end_how"] == "treatment_records"
    # Records of 5 of the 10 fractions (the last on Friday 2025-03-07): the other 5 are added
    # as weekday fractions, Monday 03-10 to Friday 03-14, labelled an estimate.
    prior.treatment_dates = [dt.date(2025, 3, d) for d in (3, 4, 5, 6, 7)]
    f = find(check(this, priors=[prior]), "reirradiation.interval")
    assert (f.details["prior_end"], f.details["prior_end_how"]) == ("2025-03-14", "estimate")
    with pytest.raises(InputError, match="is the plan being checked"):
        check(make_plan(), priors=[make_plan()])


@pytest.mark.parametrize("text,expected", [
    # 2025-03-01 is a Saturday: 10 weekday fractions from Monday 03-03 end on Friday 03-14
    ("30Gy/10 cord_dmax=31Gy date=2025-03-01",
     (30.0, 10, {"spinal_cord": 31.0}, dt.date(2025, 3, 1), dt.date(2025, 3, 14), "estimate",
      "conventional", "criterion")),
    ("10 x 3 Gy cord_dmax=31Gy",
     (30.0, 10, {"spinal_cord": 31.0}, None, None, "unknown", "conventional", "criterion")),
    # 8 Gy/1: BED10 = 8 (1 + 0.8) = 14.4 <= 20: conventional by rtcheck's criterion
    ("8Gy/1", (8.0, 1, {}, None, None, "unknown", "conventional", "criterion")),
    ("27Gy/3 sac_dmax=18Gy cauda_dmax=17Gy end=2025-03-14 technique=sbrt",
     (27.0, 3, {"thecal_sac": 18.0, "cauda_equina": 17.0}, None, dt.date(2025, 3, 14), "given",
      "sbrt", "given")),
    # 12 Gy/1: 12 Gy per fraction but BED10 = 12 (1 + 1.2) = 26.4: neither criterion
    ("12Gy/1", (12.0, 1, {}, None, None, "unknown", None, "unknown")),
])
def test_parse_prior_summary(text, expected):
    p = parse_prior_summary(text)
    assert isinstance(p, PriorCourse) and p.label == f"summary '{text}'"
    assert (p.total_dose, p.fractions, p.point_max, p.date, p.end_date, p.end_how,
            p.technique.value, p.technique.how) == expected
    assert p.cord_dmax == expected[2].get("spinal_cord")


def test_parse_prior_summary_rejects_a_dose_split_by_a_space():
    with pytest.raises(InputError, match="is not a dose"):  # "31 Gy": items split at spaces
        parse_prior_summary("10 x 3 Gy cord_dmax=31 Gy")


@pytest.mark.parametrize("text,message", [
    ("cord_dmax=31Gy", "start with the scheme"),
    ("30Gy/10 cord=31", "unknown item 'cord=31'"),
    ("30Gy/10 cord_dmax=lots", "is not a dose"),
    ("30Gy/10 date=01/03/2025", "is not YYYY-MM-DD"),
    ("30Gy/10 end=2025-13-01", "is not YYYY-MM-DD"),
    ("30Gy/0", "positive integer"),
    ("30Gy/10 technique=imrt", "expected sbrt or conventional"),
    ("27Gy/3 date=2025-03-14 end=2025-03-12", "end=2025-03-12 is before date=2025-03-14"),
])
def test_bad_prior_summary(text, message):
    with pytest.raises(InputError, match=message):
        parse_prior_summary(text)


@pytest.mark.parametrize("months", [float("nan"), float("inf"), -1.0])
def test_interval_must_be_a_finite_number_of_months(months):
    with pytest.raises(InputError, match="finite number >= 0"):
        check(make_plan(fractions=3, rx=27.0), indication="reirradiation",
              priors=[parse_prior_summary("30Gy/10 cord_dmax=20Gy")], interval_months=months)


# ============================================================================ TG-101

TG101_NAMES = {"spinal_cord": "SpinalCord", "cauda_equina": "CaudaEquina",
               "sacral_plexus": "SacralPlex", "esophagus": "Esophagus",
               "brachial_plexus": "BrachialPlex_L", "skin": "Skin", "heart": "Heart",
               "trachea": "Trachea", "ribs": "Rib05_L", "stomach": "Stomach",
               "duodenum": "Duodenum", "small_bowel": "Bowel_Small", "colon": "Colon",
               "rectum": "Rectum"}
CORD_FAMILY = ("spinal_cord", "cauda_equina")  # TG-101 roles of the cord family


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
            assert (f.role, f.stands_for) == (role, None)


@pytest.mark.parametrize("role", sorted(TG101_NAMES))
def test_tg101_not_evaluated_or_not_contoured(role):
    name = TG101_NAMES[role]
    slug = role.replace("_", "-")
    # 2 fractions: inside the 1-5 span, but TG-101 tabulates only 1, 3 and 5
    result = check(make_plan(fractions=2, structures={name: ORGAN}), protocols=["tg101"])
    f = find(result, f"tg101.{slug}.dmax")
    assert (f.status, f.code) == ("NOT_EVALUATED", F.NO_LIMIT)
    assert "no limit for 2 fractions" in f.reason
    # organ not contoured: a cord-family structure missing leaves the cord unchecked
    # (NOT_EVALUATED); any other organ's limit applies only when the organ is contoured.
    result = check(make_plan(fractions=3, structures={"PTV": PTV}), protocols=["tg101"])
    if role in CORD_FAMILY:
        f = find(result, f"tg101.{slug}.dmax")
        assert (f.status, f.code) == ("NOT_EVALUATED", F.STRUCTURE_MISSING)
        assert f"no structure matches role {role}" in f.reason
    else:
        s = skipped(result, f"tg101.{slug}.dmax")
        assert s.code == F.NOT_APPLICABLE and f"no {role} contoured" in s.reason


def test_tg101_volume_row_of_a_small_structure_passes_whatever_the_dose():
    # a 3.3 cc cauda equina at 40 Gy: less than 5 cc can receive 14 Gy, so D5cc < 14 holds
    plan = make_plan(fractions=1, cord_gy=40.0, structures={"CaudaEquina": CORD})
    result = check(plan, protocols=["tg101"])
    f = find(result, "tg101.cauda-equina.d5cc")
    assert f.status == "PASS" and "less than 5 cc" in f.reason
    assert find(result, "tg101.cauda-equina.dmax").status == "FAIL"


def test_heart_and_pericardium_are_read_as_one_organ():
    # TG-101 'heart/pericardium', 1 fx: D15cc < 16 Gy, Dmax <= 22 Gy. A 10.7 cc heart (r 9 mm,
    # 21 planes of 2 mm: pi 81 x 42 = 10.69 cc) inside a 29.7 cc pericardium (r 15 mm:
    # pi 225 x 42 = 29.69 cc), uniform 20 Gy. Alone, the heart is < 15 cc (met whatever the
    # dose); their union is the pericardium (the heart counts once), D15cc = 20 Gy: FAIL.
    heart = (0.0, 0.0, 9.0, -20.0, 20.0)
    result = check(make_plan(fractions=1, cord_gy=20.0, ptv_gy=20.0,
                             structures={"Heart": heart, "Pericardium": ORGAN}),
                   protocols=["tg101"])
    f = find(result, "tg101.heart.d15cc")
    assert set(f.structure.split(" + ")) == {"Heart", "Pericardium"} and f.role == "heart"
    assert f.details["volume_cc"] == pytest.approx(np.pi * 225 * 42 / 1000, rel=0.01)
    assert (f.status, f.value) == ("FAIL", pytest.approx(20.0, abs=0.02))
    assert find(result, "tg101.heart.dmax").status == "PASS"  # 20 <= 22
    alone = find(check(make_plan(fractions=1, cord_gy=20.0, ptv_gy=20.0,
                                 structures={"Heart": heart}), protocols=["tg101"]),
                 "tg101.heart.d15cc")
    assert alone.status == "PASS" and "less than 15 cc" in alone.reason


def test_paired_organs_are_each_evaluated():
    left = (0.0, -20.0, 5.0, -20.0, 20.0)
    right = (0.0, 20.0, 5.0, -20.0, 20.0)
    plan = make_plan(fractions=1, cord_gy=10.0, ptv_gy=20.0,
                     structures={"BrachialPlex_L": left, "BrachialPlex_R": right})
    result = check(plan, protocols=["tg101"])
    assert len([f for f in result.findings if f.rule == "tg101.brachial-plexus.dmax"]) == 2
    assert find(result, "tg101.brachial-plexus.dmax", "BrachialPlex_L").status == "PASS"
    assert find(result, "tg101.brachial-plexus.dmax", "BrachialPlex_R").status == "FAIL"  # 20 > 17.5


def test_paired_organs_are_both_read():
    # What holds today whatever the finding layout: both sides are evaluated, by hand
    # 10 Gy (left) <= 17.5 and 20 Gy (right) > 17.5 in 1 fx, and the right side decides FAIL.
    left = (0.0, -20.0, 5.0, -20.0, 20.0)
    right = (0.0, 20.0, 5.0, -20.0, 20.0)
    plan = make_plan(fractions=1, cord_gy=10.0, ptv_gy=20.0,
                     structures={"BrachialPlex_L": left, "BrachialPlex_R": right})
    result = check(plan, protocols=["tg101"])
    hits = [f for f in result.findings if f.rule == "tg101.brachial-plexus.dmax"]
    sides = {s.structure: (s.status, s.value) for f in hits for s in f.evaluated}
    assert sides["BrachialPlex_L"] == ("PASS", pytest.approx(10.0, abs=1e-6))
    assert sides["BrachialPlex_R"] == ("FAIL", pytest.approx(20.0, abs=1e-6))
    assert result.verdict == "FAIL"


# ============================================================================ verdict and API


def test_verdict_levels_and_exit_codes():
    # PASS: 30 Gy/10 for pain at L2 (Tableau 5 recommended), the cord 10 Gy in 10 fx ->
    # 10 (1 + 0.87) / 2.87 = 6.52 Gy <= 50; L2 lies outside the oesophagus range C5-T10.
    r = check(make_plan(rx=30, fractions=10), indication="pain", site="spine",
              vertebral_level="L2")
    assert (r.verdict, r.exit_code) == ("PASS", 0)
    assert {f.rule: f.status for f in r.findings} == {"fractionation.pain": "PASS",
                                                      "conventional-cord-dmax": "PASS"}
    # REVIEW: 20 Gy/5 is Tableau 5's 'other' scheme for fracture risk (WARN); the cord
    # 10 Gy in 5 fx -> 10 (2 + 0.87) / 2.87 = 10.0 Gy passes. A WARN never ends in PASS.
    r = check(make_plan(rx=20, fractions=5), indication="pain-fracture-risk", site="spine",
              vertebral_level="L2")
    assert (r.verdict, r.exit_code) == ("REVIEW", 5)
    assert find(r, "conventional-cord-dmax").value == pytest.approx(10.0)
    # FAIL: 45 Gy/15 is outside every tier for pain
    r = check(make_plan(rx=45, fractions=15), indication="pain", site="spine",
              vertebral_level="L2")
    assert (r.verdict, r.exit_code) == ("FAIL", 1)
    # NOT_EVALUATED: the cord rule applies but no cord is contoured
    r = check(make_plan(rx=30, fractions=10, structures={"PTV": PTV}), indication="pain",
              site="spine", vertebral_level="L2")
    assert (r.verdict, r.exit_code) == ("NOT_EVALUATED", 3)
    assert find(r, "conventional-cord-dmax").code == F.STRUCTURE_MISSING
    # nothing applies (TG-101 is for 1-5 fractions; a 10-fraction plan): never PASS
    r = check(make_plan(fractions=10), protocols=["tg101"])
    assert (r.verdict, r.exit_code, r.findings) == ("NOT_EVALUATED", 3, [])
    assert any(n.code == "nothing_evaluated" for n in r.notes)
    assert any("nothing was evaluated" in w for w in r.warnings)
    assert all(isinstance(w, str) for w in r.warnings)


def test_a_warn_makes_the_plan_review_not_pass():
    # 8 Gy/1 for fracture risk: "exceptionnellement" (WARN). Conventional (Tableau 5 lists it
    # so): the cord 8 Gy in 1 fx -> 8 (8 + 0.87) / 2.87 = 24.72 Gy <= 50 PASS.
    r = check(make_plan(fractions=1, rx=8, cord_gy=8.0), indication="pain-fracture-risk",
              site="extraspinal")
    got = {f.rule: f.status for f in r.findings}
    assert got == {"fractionation.pain-fracture-risk": "WARN", "conventional-cord-dmax": "PASS"}
    assert find(r, "conventional-cord-dmax").value == pytest.approx(8 * 8.87 / 2.87)
    assert (r.verdict, r.exit_code) == ("REVIEW", 5)


def test_result_json_document():
    r = check(make_plan(fractions=3, cord_gy=9.0),
              priors="30Gy/10 cord_dmax=30Gy end=2025-01-01")
    doc = json.loads(json.dumps(r.to_dict()))
    assert set(doc) >= {"plan", "verdict", "exit_code", "counts", "findings", "warnings",
                        "notes", "roles", "skipped", "facts"}
    f = next(x for x in doc["findings"] if x["rule"] == "reirradiation.cumulative-cord-eqd2")
    assert set(f) >= {"rule", "structure", "role", "stands_for", "evaluated", "code", "missing",
                      "metric", "value", "limit", "unit", "alpha_beta", "model", "status",
                      "reason", "source"}
    assert (f["unit"], f["alpha_beta"], f["model"], f["limit"]) == ("Gy", 2.0, "LQ", 70.0)
    # 9 (3 + 2) / 4 + 30 (3 + 2) / 4 = 11.25 + 37.5 = 48.75
    assert (f["status"], f["code"], f["value"]) == ("PASS", "evaluated", 48.75)
    assert (f["structure"], f["stands_for"]) == ("SpinalCord", "thecal_sac")
    assert f["evaluated"] == [{"structure": "SpinalCord", "role": "spinal_cord",
                               "stands_for": "thecal_sac", "value": 48.75, "status": "PASS",
                               "code": "evaluated"}]
    interval = next(x for x in doc["findings"] if x["rule"] == "reirradiation.interval")
    assert (interval["alpha_beta"], interval["value"], interval["unit"]) == ("none", 8.0,
                                                                             "months")
    assert doc["roles"]["spinal_cord"]["structures"] == ["SpinalCord"]
    assert doc["roles"]["thecal_sac"]["status"] == "missing"
    assert doc["facts"]["technique"] == "sbrt" and doc["facts"]["technique_how"] == "criterion"
    assert doc["facts"]["priors"][0]["end_how"] == "given"
    # the facts not given are findings, and the skips say which fact they need
    missing = {x["rule"]: x["missing"] for x in doc["findings"] if x["code"] == "fact_missing"}
    assert missing == {"facts.indication": "indication", "facts.site": "site"}
    assert {"rule": "fractionation.pain", "code": "fact_missing", "needs": "indication"}.items() \
        <= next(s for s in doc["skipped"] if s["rule"] == "fractionation.pain").items()
    assert (doc["verdict"], doc["exit_code"]) == ("NOT_EVALUATED", 3)
    assert doc["counts"] == {"PASS": 4, "WARN": 0, "FAIL": 0, "NOT_EVALUATED": 2}
    assert {"code": "surrogate", "structure": "SpinalCord"}.items() <= next(
        n for n in doc["notes"] if n["code"] == "surrogate").items()


def test_top_level_api_exports_check():
    import rtcheck

    assert rtcheck.check is check


# ============================================================================ CLI


@pytest.fixture
def fake_loader(monkeypatch):
    """``rtcheck check`` with load_plan replaced: PATH names one of the plans below."""
    plans = {}
    module = types.ModuleType("rtcheck.dicom")
    module.load_plan = lambda paths, plan=None, structures=None, dose=None, **kw: plans[str(
        paths[0] if isinstance(paths, list) else paths).rsplit("/", 1)[-1]]
    monkeypatch.setitem(sys.modules, "rtcheck.dicom", module)
    return plans


def _run(tmp_path, plans, name, *args):
    (tmp_path / name).mkdir(exist_ok=True)
    return CliRunner().invoke(main, ["check", str(tmp_path / name), *args])


def test_cli_exit_codes(tmp_path, fake_loader):
    facts = ("--site", "spine", "--vertebral-level", "L2")
    # PASS: pain 30 Gy/10 recommended; cord 10 Gy in 10 fx -> 6.52 Gy EQD2(0.87) <= 50
    fake_loader["pass"] = make_plan(rx=30, fractions=10)
    # REVIEW: fracture risk 20 Gy/5 is Tableau 5's 'other' scheme (WARN)
    fake_loader["review"] = make_plan(rx=20, fractions=5)
    # FAIL: 30 Gy/1 (SBRT by the criterion), cord 15 Gy > 14 Gy (beyond the 12.4-14 WARN band)
    fake_loader["fail"] = make_plan(fractions=1, cord_gy=15.0)
    # NOT_EVALUATED: the cord rule applies, no cord is contoured
    fake_loader["ne"] = make_plan(rx=30, fractions=10, structures={"PTV": PTV})
    assert _run(tmp_path, fake_loader, "pass", "--indication", "pain", *facts).exit_code == 0
    res = _run(tmp_path, fake_loader, "review", "--indication", "pain-fracture-risk", *facts)
    assert res.exit_code == 5 and "Verdict: REVIEW" in res.output
    assert _run(tmp_path, fake_loader, "fail").exit_code == 1
    assert _run(tmp_path, fake_loader, "ne", "--indication", "pain", *facts).exit_code == 3
    # facts not given: the rules waiting for them leave the plan NOT_EVALUATED, not PASS
    res = _run(tmp_path, fake_loader, "pass", "--indication", "pain")
    assert res.exit_code == 3 and "needs site: esophagus-c5-t10" in res.output
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
    # By hand (a/b 2): prior 31 Gy in 10 fx -> 39.525; now 13 Gy in 1 fx -> 48.75;
    # cumulative 88.275 > 75 FAIL; last fraction 2025-06-01 -> 2025-09-01 = 3.0 months FAIL.
    fake_loader["reirr"] = make_plan(fractions=1, rx=24, cord_gy=13.0)
    args = ("--indication", "reirradiation", "--site", "spine", "--vertebral-level", "L2",
            "--prior-summary", "30Gy/10 cord_dmax=31Gy end=2025-06-01")
    table = _run(tmp_path, fake_loader, "reirr", *args)
    assert table.exit_code == 1
    for text in ("spinal_cord", "'SpinalCord' (synonym)", "88.28 Gy", "< 70 Gy", "Verdict: FAIL",
                 "exit code 1", "reirradiation.interval", "3.00 months",
                 "SpinalCord (spinal_cord) (stands for thecal_sac)",
                 # 24 Gy/1 at the spine: section 2.2.2's SBRT range 18-24 Gy in 1-2 fx
                 "Technique: sbrt (indication_scheme)", "[out_of_scope]",
                 "sbrt-cord-dmax: stated for a first irradiation"):
        assert text in table.output, text
    doc = json.loads(_run(tmp_path, fake_loader, "reirr", *args, "--format", "json").output)
    assert (doc["verdict"], doc["exit_code"]) == ("FAIL", 1)
    assert doc["facts"]["priors"][0]["cord_dmax_gy"] == 31.0
    assert doc["facts"]["priors"][0]["end_date"] == "2025-06-01"
    cum = next(f for f in doc["findings"] if f["rule"] == "reirradiation.cumulative-cord-eqd2")
    assert (cum["status"], cum["value"], cum["stands_for"]) == ("FAIL", 88.275, "thecal_sac")
    csv_text = _run(tmp_path, fake_loader, "reirr", *args, "--format", "csv").output
    lines = csv_text.splitlines()
    assert lines[0] == ("rule,protocol,structure,role,stands_for,metric,value,limit,operator,"
                        "unit,alpha_beta,model,status,code,missing,reason,source")
    assert any(line.startswith("reirradiation.cumulative-cord-eqd2,bone-metastases-2026,"
                               "SpinalCord,spinal_cord,thecal_sac,") for line in lines)
    out = tmp_path / "report.json"
    res = _run(tmp_path, fake_loader, "reirr", *args, "--format", "json", "--output", str(out))
    assert res.exit_code == 1 and json.loads(out.read_text())["verdict"] == "FAIL"


def test_cli_map_and_roles_file(tmp_path, fake_loader):
    # A cord PRV only, conventional 30 Gy/10: QUANTEC's rule reads the cord, and rtcheck never
    # takes a PRV for it on its own. Mapped: 20 Gy in 10 fx -> 20 (2 + 0.87) / 2.87 = 20 Gy.
    fake_loader["prv"] = make_plan(fractions=10, rx=30, cord_gy=20.0,
                                   structures={"MOELLE_PRV3": CORD, "PTV": PTV})
    facts = ("--indication", "pain", "--site", "spine", "--vertebral-level", "L2")
    res = _run(tmp_path, fake_loader, "prv", *facts)
    assert res.exit_code == 3 and "possible stand-ins: 'MOELLE_PRV3' (spinal_cord_prv)" in res.output
    res = _run(tmp_path, fake_loader, "prv", *facts, "--map", "spinal_cord=MOELLE_PRV3")
    assert res.exit_code == 0 and "--map spinal_cord=MOELLE_PRV3" in res.output
    assert "20.00 Gy" in res.output
    roles = tmp_path / "roles.toml"
    roles.write_text('schema_version = 1\n[roles.spinal_cord]\nsynonyms = ["MOELLE_PRV3"]\n')
    res = _run(tmp_path, fake_loader, "prv", *facts, "--roles", str(roles))
    assert res.exit_code == 0, res.output


# ============================================================================ DICOM end to end


def write_dicom_plan(folder, *, label, fractions, rx, cord_gy, ptv_gy, date, seed,
                     cord_name="SpinalCord"):
    """RTPLAN + RTSTRUCT + RTDOSE files: a PTV at y = 0 (``ptv_gy`` where y < 12 mm) and a cord
    at y = 25 mm (``cord_gy`` where y > 12 mm, a uniform region around the whole cord)."""
    from support import synthetic as syn

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
    """Prior 30 Gy/10 with the cord at 31 Gy (planned Saturday 2025-03-01); now SBRT 27 Gy/3
    with the cord at 12 Gy (2025-10-01). By hand, a/b 2: prior 31 (3.1 + 2) / 4 = 39.525;
    now 12 (4 + 2) / 4 = 18; cumulative 57.525 < 70; course 18 < 25; share 0.3129 <= 0.5.
    No treatment records: the prior's last fraction is estimated, Monday 2025-03-03 + 10
    weekdays = Friday 2025-03-14; to 2025-10-01: 6 months (to 2025-09-14) + 17/30 = 6.567 >= 5
    (more than a month above the limit: no WARN for the estimate). Tableau 5 re-irradiation:
    27 Gy/3 recommended; spine range 27-30 Gy/3; no thecal sac: the cord stands in."""
    prior = write_dicom_plan(tmp_path / "prior", label="PRIOR", fractions=10, rx=30.0,
                             cord_gy=31.0, ptv_gy=30.0, date="20250301", seed="prior")
    now = write_dicom_plan(tmp_path / "now", label="NOW", fractions=3, rx=27.0, cord_gy=12.0,
                           ptv_gy=27.0, date="20251001", seed="now")
    res = CliRunner().invoke(main, ["check", str(now), "--indication", "reirradiation", "--site",
                                    "spine", "--vertebral-level", "L1", "--prior", str(prior),
                                    "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert (doc["verdict"], doc["exit_code"]) == ("PASS", 0)
    got = {f["rule"]: (f["status"], f["value"]) for f in doc["findings"]}
    assert got["fractionation.reirradiation"] == ("PASS", 27.0)
    assert got["sbrt-range.spine"] == ("PASS", 27.0)
    assert got["reirradiation.cumulative-cord-eqd2"][1] == pytest.approx(57.525, abs=1e-3)
    assert got["reirradiation.course-cord-eqd2"][1] == pytest.approx(18.0, abs=1e-3)
    assert got["reirradiation.course-share"][1] == pytest.approx(18 / 57.525, abs=1e-4)
    assert got["reirradiation.interval"][1] == pytest.approx(6 + 17 / 30, abs=1e-4)
    assert set(got) == {"fractionation.reirradiation", "sbrt-range.spine", *REIRR,
                        "case.sbrt.relative.tumour_cord_distance"}  # measured on the contours
    assert {s for s, _ in got.values()} == {"PASS"}
    assert {f["stands_for"] for f in doc["findings"] if f["rule"] in REIRR[:3]} == {"thecal_sac"}
    skips = {s["rule"]: s["code"] for s in doc["skipped"]}
    for rule in ("sbrt-cord-dmax", "conventional-cord-dmax", *NIEDER):
        assert skips[rule] == "out_of_scope"  # first-course and conventional rules
    assert doc["facts"]["technique_how"] == "indication_scheme"
    prior_doc = doc["facts"]["priors"][0]
    assert prior_doc["cord_dmax_gy"] == pytest.approx(31.0, abs=1e-3)
    assert (prior_doc["end_date"], prior_doc["end_how"]) == ("2025-03-14", "estimate")
    assert prior_doc["technique"]["technique"] == "conventional"
