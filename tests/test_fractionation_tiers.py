"""Fractionation in tiers (issue 9): assess_scheme on the shipped referential rules.

Expected statuses, tiers and sources are typed here from the referential (Tableau 5, section 2.1,
section 2.2.2, Tableau 7 and the recommendation boxes), not read back from the TOML file.
BED at alpha/beta 10 Gy computed by hand: BED10 = D (1 + d/10), d = D/n.
"""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap

import pytest

from rtcheck.rules.fractionation_tiers import (
    SchemeAssessment,
    assess_scheme,
    matching_scheme_technique,
)
from rtcheck.rules.protocols import (
    FRACTIONATION_TIERS,
    ProtocolError,
    Scheme,
    SchemeRange,
    load_protocol,
)


@pytest.fixture(scope="module")
def bone():
    return load_protocol("bone-metastases-2026")


def assess(bone, indication, dose, fractions, site=None, technique=None) -> SchemeAssessment:
    return assess_scheme(bone.rule(f"fractionation.{indication}"), dose, fractions, site=site,
                         technique=technique)


# ============================================================================ one scheme per tier

# indication, (dose, fractions), site, expected (status, tier, source)
TIERS = [
    # --- pain: Tableau 5 30/10, 20/5, 8/1 | 6/1; section 2.1 list; Tableau 7 20-30 Gy/4-10 fr
    ("pain", (30, 10), None, ("PASS", "recommended", "Tableau 5")),
    ("pain", (20, 5), "extraspinal", ("PASS", "recommended", "Tableau 5")),
    ("pain", (8, 1), "extraspinal", ("PASS", "recommended", "Tableau 5")),
    ("pain", (8, 1), "spine", ("WARN", "recommended", "Tableau 5")),  # prefer fractionated
    ("pain", (6, 1), None, ("WARN", "other", "Tableau 5")),
    ("pain", (24, 6), None, ("WARN", "allowed_elsewhere", "section 2.1")),
    ("pain", (25, 5), None, ("WARN", "allowed_elsewhere", "Tableau 7")),  # 20-30 Gy, 4-10 fr
    ("pain", (45, 15), None, ("FAIL", None, None)),
    # --- pain with fracture risk: 30/10 | 20/5 (exceptionnellement 8/1)
    ("pain-fracture-risk", (30, 10), None, ("PASS", "recommended", "Tableau 5")),
    ("pain-fracture-risk", (20, 5), None, ("WARN", "other", "Tableau 5")),
    ("pain-fracture-risk", (8, 1), None, ("WARN", "exceptional", "Tableau 5")),
    ("pain-fracture-risk", (24, 6), None, ("WARN", "allowed_elsewhere", "section 2.1")),
    ("pain-fracture-risk", (20, 4), None, ("WARN", "allowed_elsewhere", "Tableau 7")),
    ("pain-fracture-risk", (6, 1), None, ("FAIL", None, None)),  # 6/1 is the pain row's only
    # --- post-operative: 20/5 or 30/10 | 8/1; Tableau 7 'après chirurgie' 30/10, 20/5
    ("post-operative", (30, 10), None, ("PASS", "recommended", "Tableau 5")),
    ("post-operative", (20, 5), None, ("WARN", "recommended", "Tableau 5")),  # box: 30/10
    ("post-operative", (8, 1), None, ("WARN", "other", "Tableau 5")),
    ("post-operative", (24, 6), None, ("WARN", "allowed_elsewhere", "section 2.1")),
    ("post-operative", (20, 4), None, ("FAIL", None, None)),  # no Tableau 7 range after surgery
    # --- cord compression: 30/10 | 20/5; 8/1 (2.1), 8-10 Gy/1 (Tableau 7); Tableau 7 'Rachis'
    ("cord-compression", (30, 10), None, ("PASS", "recommended", "Tableau 5")),
    ("cord-compression", (20, 5), None, ("WARN", "other", "Tableau 5")),
    ("cord-compression", (8, 1), None, ("WARN", "exceptional", "section 2.1")),
    ("cord-compression", (10, 1), None, ("WARN", "exceptional", "Tableau 7")),
    ("cord-compression", (20, 4), None, ("WARN", "allowed_elsewhere", "Tableau 7")),
    ("cord-compression", (24, 6), None, ("WARN", "allowed_elsewhere", "section 2.1")),
    ("cord-compression", (12, 1), None, ("FAIL", None, None)),  # above 8-10 Gy/1
    # --- re-irradiation: SBRT 35/5, 27/3 or equivalent | 20/5 (exceptionnellement 8/1); 2.2.2
    ("reirradiation", (35, 5), None, ("PASS", "recommended", "Tableau 5")),
    ("reirradiation", (27, 3), None, ("PASS", "recommended", "Tableau 5")),
    ("reirradiation", (27, 3), "spine", ("PASS", "recommended", "Tableau 5")),
    ("reirradiation", (20, 5), None, ("WARN", "other", "Tableau 5")),
    ("reirradiation", (8, 1), None, ("WARN", "exceptional", "Tableau 5")),
    ("reirradiation", (24, 2), "spine", ("WARN", "allowed_elsewhere", "section 2.2.2")),
    ("reirradiation", (40, 5), "sacrum", ("WARN", "allowed_elsewhere", "section 2.2.2")),
    ("reirradiation", (20, 1), "extraspinal", ("WARN", "allowed_elsewhere", "section 2.2.2")),
    # 30/4 spine: no 4-fraction range; BED10 = 30 (1 + 7.5/10) = 52.5 in [34.2, 81.6], 4 in 1-5
    ("reirradiation", (30, 4), "spine", ("WARN", "biological_equivalent", "Tableau 5")),
    ("reirradiation", (30, 10), "spine", ("FAIL", None, None)),  # 10 fractions outside 1-5
    # 45/3 spine: BED10 = 45 (1 + 15/10) = 112.5 > 81.6
    ("reirradiation", (45, 3), "spine", ("FAIL", None, None)),
    # --- oligometastatic: SBRT 35/7 (sic) or 27/3 or equivalent; 2.2.2 by site
    ("oligometastatic", (27, 3), None, ("PASS", "recommended", "Tableau 5")),
    ("oligometastatic", (35, 7), None, ("PASS", "recommended", "Tableau 5")),
    ("oligometastatic", (35, 5), "spine", ("WARN", "allowed_elsewhere", "section 2.2.2")),
    ("oligometastatic", (24, 2), "spine", ("WARN", "allowed_elsewhere", "section 2.2.2")),
    ("oligometastatic", (40, 5), "sacrum", ("WARN", "allowed_elsewhere", "section 2.2.2")),
    ("oligometastatic", (50, 5), "extraspinal", ("WARN", "allowed_elsewhere", "section 2.2.2")),
    ("oligometastatic", (30, 4), "spine", ("WARN", "biological_equivalent", "Tableau 5")),
    # 42/6 extraspinal: BED10 = 42 (1 + 7/10) = 71.4 in [35.5, 133.3], 6 in 1-7 (35 Gy/7)
    ("oligometastatic", (42, 6), "extraspinal", ("WARN", "biological_equivalent", "Tableau 5")),
    ("oligometastatic", (50, 25), None, ("FAIL", None, None)),
    ("oligometastatic", (50, 25), "spine", ("FAIL", None, None)),
    ("oligometastatic", (45, 3), "spine", ("FAIL", None, None)),  # BED10 112.5 > 81.6
]


@pytest.mark.parametrize("indication,scheme,site,expected", TIERS)
def test_one_scheme_per_tier(bone, indication, scheme, site, expected):
    got = assess(bone, indication, *scheme, site=site)
    assert (got.status, got.tier, got.source) == expected, got.reason
    assert got.missing is None
    assert f"{scheme[0]:g} Gy/{scheme[1]}" in got.reason
    if got.status == "FAIL":
        assert "outside every tier" in got.reason and "nearest listed" in got.reason
        assert got.technique is None
    else:
        assert got.tier in FRACTIONATION_TIERS + ("biological_equivalent",)


def test_every_indication_has_its_tiers_covered():
    covered = {(ind, exp[1]) for ind, _, _, exp in TIERS}
    indications = {ind for ind, _, _, _ in TIERS}
    assert len(indications) == 6
    for ind in indications:
        assert (ind, "recommended") in covered and (ind, None) in covered, ind
        assert (ind, "allowed_elsewhere") in covered, ind


# ============================================================================ the issue's examples


def test_issue_9_schemes_the_referential_allows_no_longer_fail(bone):
    for indication, scheme, site, source in [
        ("oligometastatic", (35, 5), "spine", "section 2.2.2"),  # 30-35 Gy in 5 fractions
        ("oligometastatic", (24, 2), "spine", "section 2.2.2"),  # 18-24 Gy in 1 or 2 fractions
        ("pain", (24, 6), None, "section 2.1"),                  # "à 24 Gy en 6 fractions"
        ("cord-compression", (20, 4), None, "Tableau 7"),        # "20 à 30 Gy/4 à 10 fr"
        ("cord-compression", (10, 1), None, "Tableau 7"),        # "exceptionnellement 8-10Gy"
    ]:
        got = assess(bone, indication, *scheme, site=site)
        assert got.status == "WARN" and got.source == source, (indication, scheme, got.reason)


def test_allowed_elsewhere_says_why_and_where(bone):
    got = assess(bone, "pain", 24, 6)
    assert got.technique == "conventional"
    assert "not listed in Tableau 5" in got.reason and "« à 24 Gy en 6 fractions »" in got.reason
    assert got.details["matched"] == "24 Gy/6"
    assert {"scheme": "20-30 Gy in 4-10 fx", "tier": "allowed_elsewhere", "source": "Tableau 7",
            "where": "rows 'Rachis' and 'Os longs'", "technique": None,
            "sites": []} in got.details["also_listed"]
    got = assess(bone, "oligometastatic", 35, 5, site="spine")
    assert got.technique == "sbrt" and got.details["sites"] == ["spine"]
    assert "SBRT 30-35 Gy in 5 fx at the spine" in got.reason
    assert "« 30 à 35 Gy en 5 fractions »" in got.reason


def test_other_and_exceptional_quote_the_table(bone):
    got = assess(bone, "pain", 6, 1, site="extraspinal")
    assert "an other possible scheme" in got.reason
    assert "column 'Autres fractionnements possibles': « 6 Gy en une séance »" in got.reason
    got = assess(bone, "pain-fracture-risk", 8, 1)
    assert "allowed only exceptionally" in got.reason
    assert "« exceptionnellement 8 Gy en une séance »" in got.reason
    got = assess(bone, "cord-compression", 9, 1)
    assert (got.tier, got.source, got.details["matched"]) == ("exceptional", "Tableau 7",
                                                              "8-10 Gy in 1 fx")


def test_35_gy_in_7_fractions_is_kept_with_its_note(bone):
    got = assess(bone, "oligometastatic", 35, 7, site="spine")
    assert got.status == "PASS" and "section 2.2.2 gives 30-35 Gy in 5 fractions" in got.reason


# ============================================================================ site unknown


def test_35_gy_5_oligometastatic_site_unknown_is_allowed_at_every_site(bone):
    # Decision: 35 Gy/5 lies in the section 2.2.2 range of every site (spine 30-35/5, sacrum
    # 24-40/3-5, extraspinal 24-50/3-5): the site is not needed, WARN allowed elsewhere.
    got = assess(bone, "oligometastatic", 35, 5)
    assert (got.status, got.tier, got.source, got.missing) == (
        "WARN", "allowed_elsewhere", "section 2.2.2", None)
    assert set(got.details["by_site"]) == {"spine", "sacrum", "extraspinal"}
    assert {v["tier"] for v in got.details["by_site"].values()} == {"allowed_elsewhere"}
    assert "site not given" in got.reason and "at every site" in got.reason


def test_site_needed_when_the_outcome_depends_on_it(bone):
    # 24 Gy/2 re-irradiation: spine 18-24 Gy/1-2 (allowed); sacrum: 2 fractions outside 3-5
    # (FAIL); extraspinal: no 2-fraction range, BED10 = 24 x 2.2 = 52.8 in [35.5, 133.3] and 2 in
    # 1-5 (biological equivalent).
    got = assess(bone, "reirradiation", 24, 2)
    assert (got.status, got.tier, got.source, got.missing) == ("NOT_EVALUATED", None, None, "site")
    by_site = got.details["by_site"]
    assert (by_site["spine"]["status"], by_site["spine"]["tier"]) == ("WARN", "allowed_elsewhere")
    assert (by_site["sacrum"]["status"], by_site["sacrum"]["tier"]) == ("FAIL", None)
    assert by_site["extraspinal"]["tier"] == "biological_equivalent"
    assert "give the site" in got.reason


def test_site_unknown_never_blocks_a_tableau5_scheme(bone):
    for indication, scheme in [("reirradiation", (27, 3)), ("reirradiation", (20, 5)),
                               ("reirradiation", (8, 1)), ("oligometastatic", (35, 7))]:
        got = assess(bone, indication, *scheme)
        assert got.missing is None and got.source == "Tableau 5" and "by_site" not in got.details


def test_fail_at_every_site_is_a_fail(bone):
    got = assess(bone, "oligometastatic", 50, 25)
    assert got.status == "FAIL" and got.missing is None
    assert {v["status"] for v in got.details["by_site"].values()} == {"FAIL"}
    assert "25 fractions outside 1-7" in got.reason  # the SBRT schemes' fraction span


# ============================================================================ biological equivalent


def test_biological_equivalent_definition_and_numbers(bone):
    got = assess(bone, "reirradiation", 30, 4, site="spine")
    assert got.status == "WARN" and got.technique == "sbrt"
    assert got.details["bed_gy"] == pytest.approx(52.5)
    # spine span: 18 Gy/2 -> 18 x 1.9 = 34.2; 24 Gy/1 -> 24 x 3.4 = 81.6
    assert got.details["bed_span_gy"] == pytest.approx([34.2, 81.6])
    assert got.details["fraction_span"] == [1, 5]
    assert "rtcheck's reading" in got.reason and "BED10 = 52.5 Gy, span [34.2, 81.6] Gy" in got.reason
    assert "not the referential's" in bone.rule("fractionation.reirradiation") \
        .biological_equivalent_definition


@pytest.mark.parametrize("indication,site,span,fx", [
    # sacrum: 24 Gy/5 -> 24 x 1.48 = 35.52; 40 Gy/3 -> 40 (1 + 13.33/10) = 93.33
    ("reirradiation", "sacrum", (35.52, 93.333), (3, 5)),
    # extraspinal: 24 Gy/5 -> 35.52; 50 Gy/3 -> 50 (1 + 16.67/10) = 133.33
    ("reirradiation", "extraspinal", (35.52, 133.333), (1, 5)),
    ("oligometastatic", "spine", (34.2, 81.6), (1, 7)),  # 35 Gy/7 (52.5) widens fractions only
    ("oligometastatic", "sacrum", (35.52, 93.333), (3, 7)),
    # no site: Tableau 5's schemes alone (27/3 -> 51.3; 35/5 -> 59.5; 35/7 -> 52.5)
    ("reirradiation", None, (51.3, 59.5), (3, 5)),
    ("oligometastatic", None, (51.3, 52.5), (3, 7)),
])
def test_equivalent_spans_by_site(bone, indication, site, span, fx):
    rule = bone.rule(f"fractionation.{indication}")
    assert rule.bed_span(site) == pytest.approx(span, abs=1e-3)
    assert rule.equivalent_fraction_span(site) == fx


def test_equivalent_is_not_narrower_than_the_tables_schemes(bone):
    for ind in ("reirradiation", "oligometastatic"):
        rule = bone.rule(f"fractionation.{ind}")
        own = [s.bed(10) for s in rule.recommended]
        for site in ("spine", "sacrum", "extraspinal"):
            lo, hi = rule.bed_span(site)
            assert lo <= min(own) and hi >= max(own)


def test_equivalent_uses_the_rule_alpha_beta(bone):
    rule = dataclasses.replace(bone.rule("fractionation.reirradiation"), alpha_beta=3.0)
    got = assess_scheme(rule, 30, 4, site="spine", technique=None)
    # BED3 = 30 (1 + 7.5/3) = 105; span at a/b 3: 18/2 -> 18 (1 + 3) = 72, 24/1 -> 24 x 9 = 216
    assert got.details["bed_gy"] == pytest.approx(105.0)
    assert got.details["bed_span_gy"] == pytest.approx([72.0, 216.0])
    assert "BED3 = 105.0 Gy" in got.reason


# ============================================================================ technique


def test_sbrt_scheme_does_not_match_a_conventional_course(bone):
    got = assess(bone, "reirradiation", 27, 3, site="spine", technique="conventional")
    assert got.status == "FAIL"
    assert "listed only for SBRT" in got.reason and "the course is conventional" in got.reason
    assert {e["scheme"] for e in got.details["technique_mismatch"]} == {
        "SBRT 27 Gy/3", "SBRT 27-30 Gy in 3 fx"}
    assert assess(bone, "reirradiation", 27, 3, technique="sbrt").status == "PASS"


def test_conventional_scheme_matches_an_sbrt_course_and_says_so(bone):
    got = assess(bone, "pain", 30, 10, technique="sbrt")
    assert (got.status, got.tier, got.technique) == ("PASS", "recommended", "conventional")
    assert "listed for conventional radiotherapy, the course is SBRT" in got.reason
    # Tableau 7's range names no technique (3D, IMRT and stereotaxy): no remark
    got = assess(bone, "pain", 25, 5, technique="sbrt")
    assert got.technique is None and "listed for conventional" not in got.reason


@pytest.mark.parametrize("indication,scheme,site,expected", [
    ("pain", (30, 10), None, "conventional"),
    ("pain", (25, 5), None, None),            # only Tableau 7's range: no technique named
    ("reirradiation", (27, 3), None, "sbrt"),
    ("reirradiation", (20, 5), None, "conventional"),
    ("oligometastatic", (35, 5), None, "sbrt"),   # a 2.2.2 range of some site
    ("oligometastatic", (35, 5), "spine", "sbrt"),
    ("oligometastatic", (24, 2), "sacrum", None),  # the spine range does not count there
    ("reirradiation", (30, 4), "spine", None),    # not listed (biological equivalent only)
    ("cord-compression", (10, 1), None, "conventional"),
])
def test_matching_scheme_technique(bone, indication, scheme, site, expected):
    got = matching_scheme_technique(bone.rule(f"fractionation.{indication}"), *scheme, site)
    if expected is None:
        assert got is None
    else:
        assert got[0] == expected and indication in got[1], got


# ============================================================================ preferences


def test_single_fraction_at_the_spine_prefers_fractionated(bone):
    got = assess(bone, "pain", 8, 1, site="spine")
    assert (got.status, got.tier) == ("WARN", "recommended")
    assert "preference: a fractionated scheme is preferred at the spine" in got.reason
    assert "Préférer les schémas fractionnés pour les irradiations rachidiennes" in got.reason
    applied = [p for p in got.details["preferences"] if p["applied"]]
    assert [p["source"] for p in applied] == ["Tableau 5, column 'Remarques'"]


def test_preference_on_an_unknown_fact_is_a_remark(bone):
    got = assess(bone, "pain", 8, 1)  # site unknown
    assert got.status == "PASS"
    assert "remark: if site spine: « Préférer les schémas fractionnés" in got.reason
    assert "if douleur neuropathique, ou métastases vertébrales avec > 3 vertèbres ou épidurite" \
        in got.reason
    assert not any(p["applied"] for p in got.details["preferences"])
    got = assess(bone, "pain", 20, 5, site="spine")
    assert got.status == "PASS" and "> 3 vertèbres" in got.reason  # remark only
    got = assess(bone, "pain", 30, 10, site="spine")
    assert got.status == "PASS" and "remark" not in got.reason and "preference" not in got.reason


def test_box_preferences_for_30_gy_in_10(bone):
    got = assess(bone, "post-operative", 20, 5)
    assert "enclouage, ostéosynthèse, décompression" in got.reason and got.status == "WARN"
    got = assess(bone, "cord-compression", 20, 5)
    assert "30 Gy en 10 fractions reste le standard" in got.reason
    got = assess(bone, "pain-fracture-risk", 20, 5)
    assert "meilleure ré-ossification" in got.reason and "radiothérapie préventive" in got.reason
    for ind in ("post-operative", "cord-compression", "pain-fracture-risk"):
        assert assess(bone, ind, 30, 10).status == "PASS"


def test_sbrt_single_fraction_preference(bone):
    got = assess(bone, "reirradiation", 20, 1, site="extraspinal")
    assert "notamment recommandé en cas de récurrence en territoire irradié" in got.reason
    got = assess(bone, "oligometastatic", 18, 1, site="spine")
    assert got.status == "WARN" and "cas particuliers" in got.reason


# ============================================================================ tolerance, input


@pytest.mark.parametrize("indication,scheme,site,tier", [
    ("pain", (29.9, 10), None, "recommended"),  # within 0.5 % of 30 Gy (0.15 Gy)
    ("pain", (30.2, 10), None, None),           # beyond 0.5 % of the Tableau 7 bound (30.15)
    ("oligometastatic", (35.15, 5), "spine", "allowed_elsewhere"),  # <= 35 x 1.005 = 35.175
    # 35.2/5: above the range; BED10 = 35.2 (1 + 7.04/10) = 59.98 in [34.2, 81.6]
    ("oligometastatic", (35.2, 5), "spine", "biological_equivalent"),
    ("cord-compression", (10.04, 1), None, "exceptional"),
    ("cord-compression", (10.1, 1), None, None),
])
def test_dose_tolerance(bone, indication, scheme, site, tier):
    assert bone.rule(f"fractionation.{indication}").dose_tolerance_pct == 0.5
    assert assess(bone, indication, *scheme, site=site).tier == tier


@pytest.mark.parametrize("kwargs,match", [
    (dict(total_gy=30, fractions=0), "fractions"),
    (dict(total_gy=30, fractions=2.0), "fractions"),
    (dict(total_gy=-1, fractions=10), "total dose"),
    (dict(total_gy=float("nan"), fractions=10), "total dose"),
    (dict(total_gy=30, fractions=10, site="femur"), "site"),
    (dict(total_gy=30, fractions=10, technique="SBRT"), "technique"),
])
def test_bad_input(bone, kwargs, match):
    args = dict(site=None, technique=None) | kwargs
    with pytest.raises(ValueError, match=match):
        assess_scheme(bone.rule("fractionation.pain"), **args)


def test_not_a_fractionation_rule(bone):
    with pytest.raises(ValueError, match="not a fractionation rule"):
        assess_scheme(bone.rule("sbrt-range.spine"), 30, 5, site="spine", technique=None)


# ============================================================================ the data


def test_section_2_2_2_ranges_agree_with_the_sbrt_range_rules(bone):
    for ind in ("reirradiation", "oligometastatic"):
        rule = bone.rule(f"fractionation.{ind}")
        for site in ("spine", "sacrum", "extraspinal"):
            mine = [(r.dose_min, r.dose_max, r.fractions_min, r.fractions_max)
                    for r in rule.allowed_elsewhere if site in r.sites]
            theirs = [(r.dose_min, r.dose_max, r.fractions_min, r.fractions_max)
                      for r in bone.rule(f"sbrt-range.{site}").ranges]
            assert mine == theirs, (ind, site)
            assert all(r.technique == "SBRT" and r.source == "section 2.2.2"
                       for r in rule.allowed_elsewhere if site in r.sites)


def test_section_2_1_list_on_the_palliative_rows_only(bone):
    palliative = {(30, 10), (24, 6), (20, 5), (8, 1)}  # "30 Gy en 10 ... 24 Gy en 6 ... 20 Gy en 5 ... 8 Gy"
    for ind in ("pain", "pain-fracture-risk", "post-operative", "cord-compression"):
        rule = bone.rule(f"fractionation.{ind}")
        listed = {(s.dose, s.fractions) for s in rule.listed
                  if isinstance(s, Scheme) and s.source == "section 2.1"}
        assert (24.0, 6) in listed and listed <= palliative, ind
    for ind in ("reirradiation", "oligometastatic"):
        assert not [s for s in bone.rule(f"fractionation.{ind}").listed if s.source == "section 2.1"]


def test_every_listed_entry_and_preference_has_a_source(bone):
    for rule in bone.rules_of_kind("fractionation"):
        for e in rule.listed:
            assert (e.source or rule.schemes_source), (rule.id, e.label)
            if e.tier != "recommended":
                assert e.quote or e.note, (rule.id, e.label)
        for p in rule.preferences:
            assert p.source and p.quote


def test_quotes_are_the_referentials_words(bone, referential):
    """Every quote (fragments around ' ... ') is found in the referential text."""
    text = re.sub(r"\s+", " ", referential.read_text(encoding="utf-8"))
    for rule in bone.rules_of_kind("fractionation"):
        quotes = [e.quote for e in rule.listed if e.quote] + [p.quote for p in rule.preferences]
        for quote in quotes:
            for fragment in quote.split(" ... "):
                assert fragment in text, (rule.id, fragment)


def test_summary_and_json(bone):
    rule = bone.rule("fractionation.reirradiation")
    text = rule.summary()
    assert "recommended SBRT 35 Gy/5, SBRT 27 Gy/3" in text
    assert "spine: SBRT 30-35 Gy in 5 fx (section 2.2.2)" in text
    assert "BED10 within spine [34.2, 81.6]" in text
    assert "24 Gy/6 (section 2.1)" in bone.rule("fractionation.pain").summary()
    data = json.loads(json.dumps(rule.as_dict()))
    assert data["allowed_elsewhere"][0]["sites"] == ["spine"]
    assert data["preferences"][0]["prefer"] == "fractionated"
    assert bone.rule("fractionation.pain").prefer_fractionated_sites == ("spine",)
    assert rule.schemes == rule.recommended + rule.other + rule.exceptional
    assert all(isinstance(s, Scheme) for s in bone.rule("fractionation.cord-compression").schemes)


# ============================================================================ schema validation

BASE = textwrap.dedent('''\
    schema_version = 1
    id = "mine"
    title = "mine"
    version = "1"
    source = "local"

    [[rules]]
    id = "frac"
    kind = "fractionation"
    indication = "reirradiation"
    description = "re-irradiation"
    source = "local table"
    alpha_beta = 10.0
    model = "LQ"
    unit = "Gy"
    severity = "FAIL"
    recommended = [{ dose = 27.0, fractions = 3, technique = "SBRT" }]
    allowed_elsewhere = [{ dose_min = 24.0, dose_max = 40.0, fractions_min = 3, fractions_max = 5, technique = "SBRT", sites = ["sacrum"], source = "section 9", quote = "24 à 40 Gy" }]
    biological_equivalent = true
    biological_equivalent_technique = "SBRT"
    biological_equivalent_definition = "BED10 within the span"
    preferences = [{ prefer = "fractionated", source = "here", quote = "fractionné" }]
    ''')


def _load(tmp_path, text):
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    return load_protocol(path)


def _problem(tmp_path, old, new):
    assert old in BASE
    with pytest.raises(ProtocolError) as info:
        _load(tmp_path, BASE.replace(old, new))
    return str(info.value)


def test_custom_file_loads_and_assesses(tmp_path):
    rule = _load(tmp_path, BASE).rule("frac")
    assert isinstance(rule.allowed_elsewhere[0], SchemeRange)
    got = assess_scheme(rule, 30, 5, site="sacrum", technique=None)
    assert (got.status, got.tier, got.source) == ("WARN", "allowed_elsewhere", "section 9")
    # no schemes_source: the rule's source stands for the row's own tiers
    assert assess_scheme(rule, 27, 3, site=None, technique=None).source == "local table"


@pytest.mark.parametrize("old,new,message", [
    ('quote = "24 à 40 Gy" }', 'quote = "24 à 40 Gy", dose = 30.0 }',
     "allowed_elsewhere[0]: give either dose and fractions (a scheme) or dose_min"),
    ('quote = "24 à 40 Gy" }', 'quote = "24 à 40 Gy", gy = 30.0 }', "unknown key 'gy'"),
    ('recommended = [{ dose = 27.0, fractions = 3, technique = "SBRT" }]',
     'recommended = [{ dose = 27.0, technique = "SBRT" }]', "recommended[0]: missing 'fractions'"),
    ('sites = ["sacrum"]', 'sites = ["femur"]', "sites: 'femur' is not a site"),
    ('sites = ["sacrum"]', 'sites = []', "sites must list at least one site"),
    ('technique = "SBRT", sites', 'technique = "sbrt", sites', "technique 'sbrt' not allowed"),
    ('source = "section 9", ', '', "allowed_elsewhere SBRT 24-40 Gy in 3-5 fx: needs a source"),
    ('dose_min = 24.0, dose_max = 40.0', 'dose_min = 44.0, dose_max = 40.0',
     "allowed_elsewhere[0]: a minimum is above its maximum"),
    ('biological_equivalent_definition = "BED10 within the span"\n', '',
     "needs biological_equivalent_definition"),
    ('biological_equivalent = true', 'biological_equivalent = false',
     "biological_equivalent_definition is only allowed with biological_equivalent = true"),
    ('biological_equivalent_technique = "SBRT"', 'biological_equivalent_technique = "conventional"',
     "no listed scheme of that technique"),
    ('prefer = "fractionated"', 'prefer = "hypofractionated"', "prefer 'hypofractionated' not allowed"),
    ('prefer = "fractionated"', 'prefer = "scheme"', 'prefer = "scheme" needs dose and fractions'),
    ('prefer = "fractionated",', 'prefer = "fractionated", dose = 30.0,',
     'dose and fractions are only allowed with prefer = "scheme"'),
    ('quote = "fractionné" }', 'quote = "fractionné", when = "x" }', "unknown key 'when'"),
    ('source = "here", ', '', "preferences[0]: missing 'source'"),
    ('recommended = [{ dose = 27.0, fractions = 3, technique = "SBRT" }]',
     'recommended = [{ dose = 27.0, fractions = 3 }, { dose = 35.0, fractions = 5, tech = "SBRT" }]',
     "recommended[1]: unknown key 'tech'"),
    ('recommended = [{ dose = 27.0, fractions = 3, technique = "SBRT" }]',
     'recommended = { dose = 27.0, fractions = 3 }', "recommended must be an array"),
    ('preferences = [', 'prefer_fractionated_sites = ["spine"]\npreferences = [',
     "unknown key 'prefer_fractionated_sites'"),
])
def test_strict_validation_names_rule_and_key(tmp_path, old, new, message):
    text = _problem(tmp_path, old, new)
    assert "rule 'frac'" in text and message in text, text
