"""The case checks (constraints/bone-metastases-case-2026.toml), each satisfied, violated and
with its fact missing, on a plan without dose (the case checks read facts and contours only).

The expected statuses follow the referential's words: a contra-indication FAILs, a relative
contra-indication or an indication criterion not met WARNs (section 2.2.1, lines 803-809).
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from support.phantoms import case_plan, cylinder, planes, sphere

from rtcheck.checker import check
from rtcheck.errors import InputError

CASE_PROTOCOL = str(Path(__file__).resolve().parents[1] / "constraints"
                    / "bone-metastases-case-2026.toml")
START = dt.date(2026, 3, 2)
ZS = planes(-30, 30, 2)

#: A case that meets every SBRT criterion (thoracic T4, so no fracture-risk factor).
BASE: dict[str, Any] = {
    "indication": "oligometastatic", "site": "spine", "vertebral_levels": "T4",
    "start_date": START.isoformat(), "karnofsky": 80, "life_expectancy_months": 24,
    "metastatic_sites": 1, "metastases": 2, "largest_metastasis_cm": 1.8,
    "primary_controlled": True, "bilsky": "1a", "cord_compression": "none",
    "lesion_type": "mixed", "vertebral_body_involvement_pct": 15, "canal_narrowing_pct": 0,
    "mri_contraindicated": False, "symptomatic": True, "sins": 5, "surgery_kind": "none",
    "previous_radiotherapy_dates": [], "metabolic_radiotherapy_dates": [],
    "systemic_treatments": [],
}


def rois(cord_y: float = 25.0, gtv_r: float = 9.0, gtv: bool = True, cord: bool = True,
         ptv: bool = False) -> dict[str, Any]:
    """GTV: sphere of radius gtv_r at the origin; cord: cylinder r 5 mm along z at y = cord_y
    (surface gap cord_y - 5 - gtv_r, exact for these 64-vertex polygons)."""
    out: dict[str, Any] = {}
    if gtv:
        out["GTV"] = sphere(0, 0, 0, gtv_r, ZS)
    if ptv:
        out["PTV"] = sphere(0, 0, 0, gtv_r + 2, ZS)
    if cord:
        out["SpinalCord"] = cylinder(0, cord_y, 5, ZS)
    return out


def run(case: dict[str, Any] | None = None, rx: float = 27.0, fractions: int = 3,
        technique: str = "sbrt", structures: dict[str, Any] | None = None, **kw: Any):
    plan = case_plan(rx, fractions, START.isoformat(), rois() if structures is None else structures)
    # the referential's protocol too: it knows the indications (its Tableau 5 rows)
    return check(plan, protocols=["bone-metastases-2026", CASE_PROTOCOL], technique=technique,
                 case=case, **kw)


def case_findings(result) -> dict[str, str]:
    return {f.rule: f.status for f in result.findings if f.rule.startswith("case.")}


def finding(result, rule: str):
    found = [f for f in result.findings if f.rule == rule]
    assert len(found) == 1, (rule, [f.rule for f in result.findings],
                             [(s.rule, s.reason) for s in result.skipped if s.rule == rule])
    return found[0]


def with_(**changes: Any) -> dict[str, Any]:
    case = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            case.pop(key, None)
        else:
            case[key] = value
    return case


def days_before(n: int) -> str:
    return (START - dt.timedelta(days=n)).isoformat()


def test_the_base_case_passes_every_applicable_check():
    statuses = case_findings(run(BASE))
    assert set(statuses.values()) == {"PASS"}, statuses
    assert len(statuses) == 17


# (rule, change that breaks it, status when broken, key removed for "missing")
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("case.sbrt.indication.oligometastatic", {"metastases": 6}, "WARN", "metastases"),
    ("case.sbrt.indication.oligometastatic", {"metastatic_sites": 4}, "WARN", "metastatic_sites"),
    ("case.sbrt.indication.oligometastatic", {"largest_metastasis_cm": 5.0}, "WARN",
     "largest_metastasis_cm"),
    ("case.sbrt.indication.oligometastatic", {"primary_controlled": False}, "WARN",
     "primary_controlled"),
    ("case.sbrt.indication.vertebrae", {"vertebral_levels": "T3-T6"}, "WARN", "vertebral_levels"),
    ("case.sbrt.indication.karnofsky", {"karnofsky": 60}, "WARN", "karnofsky"),
    ("case.sbrt.contraindication.life_expectancy", {"life_expectancy_months": 2}, "FAIL",
     "life_expectancy_months"),
    ("case.sbrt.indication.life_expectancy", {"life_expectancy_months": 3}, "WARN",
     "life_expectancy_months"),
    ("case.sbrt.contraindication.cord_compression", {"cord_compression": "inoperable"}, "FAIL",
     "cord_compression"),
    ("case.sbrt.contraindication.cord_compression", {"cord_compression": "symptomatic"}, "FAIL",
     "cord_compression"),
    ("case.sbrt.contraindication.instability", {"sins": 9}, "WARN", "sins"),
    ("case.sbrt.contraindication.instability", {"sins": 13}, "FAIL", "sins"),
    ("case.sbrt.contraindication.bilsky", {"bilsky": 2}, "FAIL", "bilsky"),
    ("case.sbrt.contraindication.bilsky", {"bilsky": "3"}, "FAIL", "bilsky"),
    ("case.sbrt.contraindication.radiotherapy_1_month",
     {"previous_radiotherapy_dates": [days_before(20)]}, "FAIL", "previous_radiotherapy_dates"),
    ("case.sbrt.contraindication.metabolic_1_month",
     {"metabolic_radiotherapy_dates": [days_before(27)]}, "FAIL", "metabolic_radiotherapy_dates"),
    ("case.sbrt.relative.canal_narrowing", {"canal_narrowing_pct": 30}, "WARN",
     "canal_narrowing_pct"),
    ("case.sbrt.relative.mri", {"mri_contraindicated": True}, "WARN", "mri_contraindicated"),
    ("case.sins.surgical_opinion", {"sins": 7}, "WARN", "sins"),
]


@pytest.mark.parametrize("rule, change, status, key", CASES,
                         ids=[f"{c[0]}:{next(iter(c[1].values()))}" for c in CASES])
def test_each_check_satisfied_violated_and_missing(rule, change, status, key):
    assert finding(run(BASE), rule).status == "PASS"
    broken = finding(run(with_(**change)), rule)
    assert broken.status == status, broken.reason
    missing = finding(run(with_(**{key: None})), rule)
    assert missing.status == "NOT_EVALUATED"
    assert (missing.code, missing.missing) == ("fact_missing", key)


def test_a_broken_requirement_decides_even_when_another_fact_is_unknown():
    f = finding(run(with_(metastases=9, primary_controlled=None)), "case.sbrt.indication.oligometastatic")
    assert f.status == "WARN"
    assert "metastases <= 5" in f.reason and "primary_controlled" in f.reason


def test_radiotherapy_one_month_counts_calendar_months_and_prior_courses():
    ok = finding(run(with_(previous_radiotherapy_dates=["2026-02-02"])),
                 "case.sbrt.contraindication.radiotherapy_1_month")
    assert ok.status == "PASS" and ok.value == pytest.approx(1.0)
    from rtcheck.checker import PriorCourse

    prior = PriorCourse(label="30Gy/10", total_dose=30.0, fractions=10,
                        end_date=dt.date(2026, 2, 20))
    late = finding(run(with_(previous_radiotherapy_dates=[]), priors=[prior]),
                   "case.sbrt.contraindication.radiotherapy_1_month")
    assert late.status == "FAIL"


def test_sbrt_rules_are_out_of_scope_for_a_conventional_course():
    result = run(with_(karnofsky=40), rx=30.0, fractions=10, technique="conventional")
    assert not any(f.rule.startswith("case.sbrt.") for f in result.findings)
    assert any(s.rule == "case.sbrt.indication.karnofsky" and s.code == "out_of_scope"
               for s in result.skipped)


# ------------------------------------------------------------------ contours


def test_tumour_cord_distance_is_measured_on_the_contours():
    far = finding(run(BASE), "case.sbrt.relative.tumour_cord_distance")
    assert far.status == "PASS"
    assert far.value == pytest.approx(25 - 5 - 9, abs=1e-6)
    assert far.structure == "GTV" and far.role == "gtv"
    near = finding(run(BASE, structures=rois(cord_y=17.0)), "case.sbrt.relative.tumour_cord_distance")
    assert near.status == "WARN"
    assert near.value == pytest.approx(3.0, abs=1e-6)


def test_tumour_cord_distance_without_gtv_reads_the_ptv_and_says_so():
    f = finding(run(BASE, structures=rois(gtv=False, ptv=True)),
                "case.sbrt.relative.tumour_cord_distance")
    assert f.value == pytest.approx(25 - 5 - 11, abs=1e-6)
    assert f.role == "ptv" and "PTV stands in" in f.reason


def test_tumour_cord_distance_without_a_cord_uses_the_case_value_or_is_not_evaluated():
    no_cord = rois(cord=False)
    f = finding(run(BASE, structures=no_cord), "case.sbrt.relative.tumour_cord_distance")
    assert f.status == "NOT_EVALUATED" and f.missing == "tumour_cord_distance_mm"
    # without a case file the contour rule runs on the plans that have the structures
    skipped = run(None, indication="oligometastatic", site="spine", structures=no_cord).skipped
    assert [(s.code, s.reason) for s in skipped
            if s.rule == "case.sbrt.relative.tumour_cord_distance"] == [
        ("not_applicable", "tumour_cord_distance_mm not measured: no spinal cord, thecal sac "
                           "or cauda equina contoured")]
    g = finding(run(with_(tumour_cord_distance_mm=3.5), structures=no_cord),
                "case.sbrt.relative.tumour_cord_distance")
    assert g.status == "WARN" and g.value == 3.5


def test_contour_rules_run_without_a_case_file():
    # GTV 52 mm across overlapping the cord: distance 0, diameter 5.2 cm
    result = run(None, indication="oligometastatic", site="spine",
                 structures=rois(cord_y=17.0, gtv_r=26.0))
    got = {f.rule: f for f in result.findings}
    assert (got["case.sbrt.relative.tumour_cord_distance"].status,
            got["case.sbrt.relative.tumour_cord_distance"].value) == ("WARN", 0.0)
    assert got["case.sbrt.indication.gtv_size"].status == "WARN"


def test_gtv_diameter_against_five_cm():
    small = finding(run(BASE, structures=rois(gtv_r=9.0)), "case.sbrt.indication.gtv_size")
    assert small.status == "PASS" and small.value == pytest.approx(1.8, abs=1e-6)
    big = finding(run(BASE, structures=rois(gtv_r=26.0, cord_y=40.0)),
                  "case.sbrt.indication.gtv_size")
    assert big.status == "WARN" and big.value == pytest.approx(5.2, abs=1e-6)
    # no GTV: not applicable (largest_metastasis_cm of the case covers the criterion)
    none = run(BASE, structures=rois(gtv=False, ptv=True))
    assert not any(f.rule == "case.sbrt.indication.gtv_size" for f in none.findings)
    assert any(s.rule == "case.sbrt.indication.gtv_size" and s.code == "not_applicable"
               for s in none.skipped)


def test_measurements_are_reported_with_the_structures_used():
    facts = run(BASE).facts
    m = facts["measurements"]
    assert m["tumour_cord_distance_mm"]["value"] == pytest.approx(11.0, abs=1e-6)
    assert (m["tumour_cord_distance_mm"]["target"], m["tumour_cord_distance_mm"]["cord"]) == \
        ("GTV", "SpinalCord")
    assert m["gtv_diameter_cm"] == {"value": pytest.approx(1.8), "structure": "GTV",
                                    "how": "measured: largest 3-D diameter of GTV's contours"}
    assert facts["case"]["karnofsky"] == 80


# ------------------------------------------------------------------ fracture risk (2.2.4)


@pytest.mark.parametrize("change, kw, factor", [
    ({"vertebral_levels": "L1"}, {}, "lesion between T10 and the sacrum"),
    ({"lesion_type": "lytic"}, {}, "lytic lesion"),
    ({"vertebral_body_involvement_pct": 25}, {}, "more than 20 % of the vertebral body invaded"),
    ({}, {"rx": 24.0, "fractions": 1}, "more than 20 Gy per fraction"),
])
def test_fracture_risk_lists_each_factor(change, kw, factor):
    f = finding(run(with_(**change), **kw), "case.sbrt.fracture_risk")
    assert f.status == "WARN"
    assert f.details["decided_by"] == [factor]


def test_fracture_risk_without_factors_passes_and_unknown_factors_are_not_evaluated():
    assert finding(run(BASE), "case.sbrt.fracture_risk").status == "PASS"
    f = finding(run(with_(lesion_type=None)), "case.sbrt.fracture_risk")
    assert (f.status, f.missing) == ("NOT_EVALUATED", "lesion_type")
    # a factor present decides even with another unknown
    g = finding(run(with_(lesion_type=None, vertebral_levels="T11-L1")), "case.sbrt.fracture_risk")
    assert g.status == "WARN" and "lesion_type" in g.reason


# ------------------------------------------------------------------ Mirels (1.2, Tableau 3)

LONG_BONE = with_(site="extraspinal", vertebral_levels=None, long_bone=True, mirels=7,
                  indication="pain")


@pytest.mark.parametrize("mirels, life, fixation, rcp", [
    (7, 24, "PASS", "PASS"), (8, 24, "PASS", "WARN"), (9, 24, "FAIL", "PASS"),
    (12, 24, "FAIL", "PASS"), (9, 2, "PASS", "PASS")])
def test_mirels_bands(mirels, life, fixation, rcp):
    result = run({**LONG_BONE, "mirels": mirels, "life_expectancy_months": life},
                 rx=30.0, fractions=10, technique="conventional")
    assert finding(result, "case.mirels.fixation").status == fixation
    assert finding(result, "case.mirels.rcp").status == rcp


def test_mirels_scope_and_missing_facts():
    result = run({**LONG_BONE, "long_bone": False}, rx=30.0, fractions=10, technique="conventional")
    assert not any(f.rule.startswith("case.mirels") for f in result.findings)
    unknown = run({k: v for k, v in LONG_BONE.items() if k != "long_bone"}, rx=30.0,
                  fractions=10, technique="conventional")
    f = finding(unknown, "case.mirels.rcp")
    assert (f.status, f.missing) == ("NOT_EVALUATED", "long_bone")
    no_score = run({k: v for k, v in LONG_BONE.items() if k != "mirels"}, rx=30.0, fractions=10,
                   technique="conventional")
    assert finding(no_score, "case.mirels.rcp").missing == "mirels"
    post_op = run({**LONG_BONE, "indication": "post-operative", "mirels": 10}, rx=30.0,
                  fractions=10, technique="conventional")
    assert not any(f.rule == "case.mirels.fixation" for f in post_op.findings)


@pytest.mark.parametrize("axial, circ, mirels, status", [
    (35, 55, 9, "WARN"), (35, 40, 9, "PASS"), (25, 55, 9, "PASS"), (35, 55, 8, "PASS")])
def test_cortical_osteolysis_needs_all_three(axial, circ, mirels, status):
    case = {**LONG_BONE, "mirels": mirels, "cortical_osteolysis_axial_pct": axial,
            "cortical_osteolysis_circumference_pct": circ}
    f = finding(run(case, rx=30.0, fractions=10, technique="conventional"),
                "case.mirels.cortical_osteolysis")
    assert f.status == status


# ------------------------------------------------------------------ timing (1.3, 1.4)


@pytest.mark.parametrize("days, status", [(15, "PASS"), (18, "PASS"), (21, "PASS"),
                                          (10, "WARN"), (30, "WARN")])
def test_post_operative_timing(days, status):
    case = with_(indication="post-operative", surgery_kind="stabilisation",
                 surgery_date=days_before(days))
    f = finding(run(case, rx=20.0, fractions=5, technique="conventional"),
                "case.timing.post_operative")
    assert f.status == status and f.value == days


def test_post_operative_timing_without_the_surgery_date():
    case = with_(indication="post-operative", surgery_kind="stabilisation")
    f = finding(run(case, rx=20.0, fractions=5, technique="conventional"),
                "case.timing.post_operative")
    assert (f.status, f.missing) == ("NOT_EVALUATED", "surgery_date")


@pytest.mark.parametrize("days, status", [(14, "PASS"), (13, "WARN"), (25, "WARN")])
def test_decompression_timing(days, status):
    case = with_(indication="cord-compression", surgery_kind="decompression",
                 surgery_date=days_before(days))
    f = finding(run(case, rx=30.0, fractions=10, technique="conventional"),
                "case.timing.decompression")
    assert f.status == status


@pytest.mark.parametrize("indication, kind, days, status", [
    ("pain", "stabilisation", 5, "WARN"),  # before the skin has healed (section 1.4)
    ("pain", "stabilisation", 14, "WARN"),
    ("pain", "stabilisation", 15, "PASS"),
    ("pain", "other", 400, "PASS"),  # an old surgery at this site: nothing to say
    ("cord-compression", "other", 3, "WARN"),
])
def test_a_recent_surgery_at_the_site_is_said_whatever_the_indication(indication, kind, days,
                                                                     status):
    case = with_(indication=indication, surgery_kind=kind, surgery_date=days_before(days))
    f = finding(run(case, rx=20.0, fractions=5, technique="conventional"),
                "case.timing.recent_surgery")
    assert (f.status, f.value) == (status, days)


@pytest.mark.parametrize("kind", ["decompression", "none", "cementoplasty"])
def test_the_recent_surgery_rule_leaves_decompression_to_its_own_rule(kind):
    # decompression: case.timing.decompression (2-3 weeks, section 1.3); no surgery: nothing;
    # a cementoplasty may be done before or during the irradiation (section 2.2.4, line 850)
    case = with_(indication="pain", surgery_kind=kind, surgery_date=days_before(5))
    if kind == "none":
        case.pop("surgery_date")
    result = run(case, rx=20.0, fractions=5, technique="conventional")
    assert "case.timing.recent_surgery" not in case_findings(result)
    assert any(s.rule == "case.timing.recent_surgery" for s in result.skipped)


@pytest.mark.parametrize("indication, code", [("post-operative", "not_applicable"),
                                               (None, "fact_missing")])
def test_a_recent_surgery_with_a_post_operative_or_unknown_indication(indication, code):
    # post-operative: its own rule gives the whole window (one WARN, not two); unknown: the
    # timing rules wait for the indication (the plan is NOT_EVALUATED for it anyway)
    case = with_(indication=indication, surgery_kind="stabilisation", surgery_date=days_before(7))
    result = run(case, rx=20.0, fractions=5, technique="conventional")
    skip = next(s for s in result.skipped if s.rule == "case.timing.recent_surgery")
    assert skip.code == code
    if indication:
        assert finding(result, "case.timing.post_operative").status == "WARN"
    else:
        assert result.verdict == "NOT_EVALUATED"


def test_a_surgery_at_the_site_without_its_date_is_not_evaluated():
    case = with_(indication="pain", surgery_kind="stabilisation")
    f = finding(run(case, rx=20.0, fractions=5, technique="conventional"),
                "case.timing.recent_surgery")
    assert (f.status, f.missing) == ("NOT_EVALUATED", "surgery_date")


# ------------------------------------------------------------------ preventive RT (1.6)

PREVENTIVE = with_(symptomatic=False, lesion_size_cm=1.5, girdle=False,
                   cortical_involvement="under-1/3", posterior_arch=False)


@pytest.mark.parametrize("change, factor", [
    ({"lesion_size_cm": 2.0, "largest_metastasis_cm": 2.0}, "lesion of 2 cm or more"),
    ({"girdle": True}, "girdle involved (hip, shoulder, sacro-iliac)"),
    ({"cortical_involvement": "1/3-2/3"}, "long-bone cortex involved between 1/3 and 2/3"),
    ({"vertebral_levels": "T12"}, "junctional spine T12-L1"),
    ({"vertebral_levels": "C6-C7"}, "junctional spine C7-T1"),
    ({"posterior_arch": True}, "posterior arch involved"),
])
def test_preventive_radiotherapy_high_risk_features(change, factor):
    f = finding(run({**PREVENTIVE, **change}), "case.preventive.high_risk")
    assert f.status == "WARN" and factor in f.details["decided_by"]
    assert "30 Gy in 10 fractions" in f.reason


def test_preventive_radiotherapy_low_risk_symptomatic_and_unknown():
    assert finding(run(PREVENTIVE), "case.preventive.high_risk").status == "PASS"
    assert not any(f.rule == "case.preventive.high_risk" for f in run(BASE).findings)
    f = finding(run(with_(symptomatic=None)), "case.preventive.high_risk")
    assert (f.status, f.missing) == ("NOT_EVALUATED", "symptomatic")


# ------------------------------------------------------------------ without a case file


def test_without_a_case_file_the_fact_rules_are_not_requested():
    result = run(None, indication="oligometastatic", site="spine")
    asked = set(case_findings(result))
    assert asked == {"case.sbrt.relative.tumour_cord_distance", "case.sbrt.indication.gtv_size"}
    skipped = {s.rule: s.code for s in result.skipped}
    assert skipped["case.sbrt.indication.karnofsky"] == "no_case_file"
    assert skipped["case.systemic_treatments"] == "no_case_file"


def test_a_case_adds_the_case_checks_when_no_protocol_has_them():
    plan = case_plan(27.0, 3, START.isoformat(), rois())
    result = check(plan, case=BASE, technique="sbrt")
    assert result.protocols == ["bone-metastases-2026", "bone-metastases-case-2026"]
    # the case checks are among the defaults: the contour measurements run on every plan
    assert check(plan, technique="sbrt", indication="oligometastatic").protocols == \
        ["bone-metastases-2026", "bone-metastases-case-2026"]
    assert check(plan, ["bone-metastases-2026"], technique="sbrt",
                 indication="oligometastatic").protocols == ["bone-metastases-2026"]
    assert check(plan, ["tg101"], case=with_(indication=None), technique="sbrt").protocols == \
        ["tg101", "bone-metastases-case-2026"]
    assert check(plan, [CASE_PROTOCOL, "bone-metastases-2026"], case=BASE,
                 technique="sbrt").protocols == ["bone-metastases-case-2026",
                                                 "bone-metastases-2026"]


def test_case_and_options_must_agree():
    with pytest.raises(InputError, match='indication: the case file says "oligometastatic"'):
        run(BASE, indication="pain")
    with pytest.raises(InputError, match="vertebral_levels"):
        run(BASE, vertebral_level="L2")
    assert set(case_findings(run(BASE, indication="oligometastatic",
                                 vertebral_level="T4")).values()) == {"PASS"}


def test_cortical_osteolysis_and_decompression_with_a_fact_missing():
    case = {**LONG_BONE, "mirels": 9, "cortical_osteolysis_axial_pct": 35}
    f = finding(run(case, rx=30.0, fractions=10, technique="conventional"),
                "case.mirels.cortical_osteolysis")
    assert (f.status, f.missing) == ("NOT_EVALUATED", "cortical_osteolysis_circumference_pct")
    # a condition known to be false decides (not all three present): PASS
    g = finding(run({**case, "mirels": 7}, rx=30.0, fractions=10, technique="conventional"),
                "case.mirels.cortical_osteolysis")
    assert g.status == "PASS"
    h = finding(run(with_(indication="cord-compression", surgery_kind="decompression"),
                    rx=30.0, fractions=10, technique="conventional"), "case.timing.decompression")
    assert (h.status, h.missing) == ("NOT_EVALUATED", "surgery_date")


# ------------------------------------------------- palliative: prefer 30 Gy/10 (line 953)

PALLIATIVE = with_(indication="pain", epiduritis=False, neuropathic_pain=False)


@pytest.mark.parametrize("rule, change", [
    ("case.palliative.prefer_30gy10.epiduritis", {"epiduritis": True}),
    ("case.palliative.prefer_30gy10.neuropathic_pain", {"neuropathic_pain": True}),
    ("case.palliative.prefer_30gy10.vertebrae", {"vertebral_levels": "T3-T6"}),
])
def test_prefer_30gy10(rule, change):
    case = {**PALLIATIVE, **change}
    ok = finding(run(case, rx=30.0, fractions=10, technique="conventional"), rule)
    assert ok.status == "PASS"
    f = finding(run(case, rx=20.0, fractions=5, technique="conventional"), rule)
    assert f.status == "WARN"
    assert f.details["decided_by"] == ["fractions == 10", "total dose 30 Gy"]
    g = finding(run(case, rx=24.0, fractions=10, technique="conventional"), rule)
    assert g.details["decided_by"] == ["total dose 30 Gy"]
    assert not any(x.rule == rule for x in run(PALLIATIVE, rx=20.0, fractions=5,
                                                technique="conventional").findings)


def test_prefer_30gy10_with_the_situation_unknown():
    f = finding(run(with_(indication="pain"), rx=20.0, fractions=5, technique="conventional"),
                "case.palliative.prefer_30gy10.epiduritis")
    assert (f.status, f.missing) == ("NOT_EVALUATED", "epiduritis")


# ------------------------------------------------------------------ issue 14 review


def after_start(n: int) -> str:
    return (START + dt.timedelta(days=n)).isoformat()


@pytest.mark.parametrize("rule, key", [
    ("case.sbrt.contraindication.radiotherapy_1_month", "previous_radiotherapy_dates"),
    ("case.sbrt.contraindication.metabolic_1_month", "metabolic_radiotherapy_dates")])
@pytest.mark.parametrize("days", [0, 11])
def test_a_date_on_or_after_the_start_is_a_concurrent_course(rule, key, days):
    # "une radiothérapie de moins de 1 mois" (line 807): a course still running is less than
    # a month ago; an older date beside it does not hide it
    f = finding(run(with_(**{key: ["2025-01-01", after_start(days)]})), rule)
    assert f.status == "FAIL" and "concurrent" in f.reason


def test_a_surgery_after_the_start_is_refused_naming_the_key():
    with pytest.raises(InputError, match="surgery_date: .* is after start_date"):
        run(with_(surgery_kind="stabilisation", surgery_date=after_start(3)))


@pytest.mark.parametrize("drug", ["Gemzar", "bléomycine", "Adriblastine", "Cyramza", "Ofev",
                                  "Vargatef", "Zaltrap", "Sutent", "Nexavar", "Avastin"])
@pytest.mark.parametrize("when", [{"ongoing": True}, {"last_dose": START.isoformat()},
                                  {"last_dose": after_start(5)}])
def test_a_stop_drug_given_during_the_course_fails_whatever_its_half_life(drug, when):
    f = finding(run(with_(systemic_treatments=[{"drug": drug, **when}])), "case.systemic_treatments")
    assert f.status == "FAIL", f.reason
    assert "no wash-out" in f.reason


@pytest.mark.parametrize("drug", ["Tagrisso", "Alecensa", "Lorviqua", "Libtayo"])
def test_newer_tkis_and_cemiplimab_are_under_precaution(drug):
    f = finding(run(with_(systemic_treatments=[{"drug": drug, "ongoing": True}])),
                "case.systemic_treatments")
    assert f.status == "WARN" and "precaution" in f.reason


def test_a_stop_drug_with_unknown_half_life_stopped_before_is_not_evaluated():
    f = finding(run(with_(systemic_treatments=[{"drug": "Cyramza", "last_dose": days_before(30)}])),
                "case.systemic_treatments")
    assert (f.status, f.missing) == ("NOT_EVALUATED", "drug_half_life")


def test_the_treated_lesion_size_counts_for_five_cm():
    rule = "case.sbrt.indication.oligometastatic"
    # only the treated lesion known, 5 cm or more: it decides (WARN) without the largest
    f = finding(run(with_(largest_metastasis_cm=None, lesion_size_cm=5.0)), rule)
    assert f.status == "WARN" and "lesion_size_cm" in f.reason
    # the treated lesion under 5 cm says nothing of the others
    f = finding(run(with_(largest_metastasis_cm=None, lesion_size_cm=4.0)), rule)
    assert (f.status, f.missing) == ("NOT_EVALUATED", "largest_metastasis_cm")
    assert finding(run(with_(lesion_size_cm=1.8)), rule).status == "PASS"
    with pytest.raises(InputError, match="lesion_size_cm: 6 cm is larger than largest_metastasis_cm 4 cm"):
        run(with_(largest_metastasis_cm=4.0, lesion_size_cm=6.0))


def test_interleaved_planes_distance_under_five_mm_warns():
    # GTV on even planes, cord on odd planes (2 mm apart): 4.97 mm in plane, slabs overlap
    zs_odd = planes(-29, 29, 2)
    structures = {"GTV": cylinder(0, 0, 5, planes(-10, 10, 2)),
                  "SpinalCord": cylinder(0, 5 + 4.97 + 5, 5, zs_odd)}
    f = finding(run(BASE, structures=structures), "case.sbrt.relative.tumour_cord_distance")
    assert f.status == "WARN"
    assert f.value == pytest.approx(4.97, abs=1e-6)
    assert "4.97 mm" in f.reason


def test_a_value_just_under_a_threshold_is_not_printed_as_the_threshold():
    from rtcheck.checker.evaluators.case import number_text

    assert number_text(4.999, (5.0,)) == "4.999"
    assert number_text(4.97, (5.0,)) == "4.97"
    assert number_text(5.0, (5.0,)) == "5.00"
    f = finding(run(with_(largest_metastasis_cm=4.999)), "case.sbrt.indication.oligometastatic")
    assert f.status == "PASS" and "largest_metastasis_cm = 4.999 cm" in f.reason


def test_life_expectancy_fail_and_warn_say_different_things():
    fail = finding(run(with_(life_expectancy_months=2.99)), "case.sbrt.contraindication.life_expectancy")
    assert fail.status == "FAIL" and "under 3 months" in fail.reason
    assert "2.99" in fail.reason
    warn = finding(run(with_(life_expectancy_months=3)), "case.sbrt.indication.life_expectancy")
    assert warn.status == "WARN" and "exactly 3 months" in warn.reason
    assert finding(run(with_(life_expectancy_months=3)),
                   "case.sbrt.contraindication.life_expectancy").status == "PASS"


def test_validation_names_the_key_path_without_a_python_repr():
    with pytest.raises(InputError) as err:
        run(with_(systemic_treatments=[{"drug": "Avastin", "last_dose": "2026-13-01"}]))
    assert 'systemic_treatments[0].last_dose: must be a date YYYY-MM-DD, got "2026-13-01"' \
        in str(err.value)
    with pytest.raises(InputError) as err:
        run(with_(previous_radiotherapy_dates=["2025-01-01", 7]))
    assert "previous_radiotherapy_dates[1]: must be a date YYYY-MM-DD, got 7" in str(err.value)


@pytest.mark.parametrize("rx, fractions, status", [
    (8.0, 1, "WARN"),     # an option only for a poor prognosis (line 787): review
    (20.0, 5, "PASS"),
    (30.0, 10, "PASS"),
    (30.0, 5, "WARN"),    # 6 Gy per fraction
    (40.0, 10, "WARN"),   # 40 Gy
])
def test_cord_compression_takes_20gy5_or_30gy10(rx, fractions, status):
    case = with_(cord_compression="inoperable", indication="cord-compression")
    result = run(case, rx=rx, fractions=fractions, technique="conventional")
    assert finding(result, "case.palliative.cord_compression_scheme").status == status
    # no compression: the rule does not apply
    none = run(with_(cord_compression="none", indication="cord-compression"), rx=rx,
               fractions=fractions, technique="conventional")
    assert "case.palliative.cord_compression_scheme" not in case_findings(none)


def test_a_cord_contoured_short_of_the_target_gives_no_distance_pass():
    # GTV sphere r 9 mm at the origin; the cord (r 5 at y = 17: 3 mm from the GTV in-plane)
    # contoured only from z = 20 mm up: the nearest cord point found is sqrt(11**2 + 3**2) ~
    # 11.4 mm away, but the cord passes 3 mm from the GTV where it is not contoured.
    short = rois(gtv=True, cord=False)
    short["SpinalCord"] = cylinder(0, 17.0, 5, planes(20, 30, 2))
    f = finding(run(BASE, structures=short), "case.sbrt.relative.tumour_cord_distance")
    assert f.status == "NOT_EVALUATED" and f.code == "structure_too_short"
    assert "may not be the smallest" in f.reason
    # contoured over the GTV's extent +- 5 mm: measured, 3 mm, WARN (exact for these polygons)
    full = finding(run(BASE, structures=rois(cord_y=17.0)),
                   "case.sbrt.relative.tumour_cord_distance")
    assert full.status == "WARN" and full.value == pytest.approx(3.0, abs=0.05)
    # a distance below 5 mm stands even when the cord is short: the true one is smaller still
    near = rois(gtv=True, cord=False)
    near["SpinalCord"] = cylinder(0, 16.0, 5, planes(-4, 30, 2))
    g = finding(run(BASE, structures=near), "case.sbrt.relative.tumour_cord_distance")
    assert g.status == "WARN" and g.value < 5.0
