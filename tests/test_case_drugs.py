"""Systemic treatments: the drug table (names, categories, half-lives with sources) and the
wash-out check (5 half-lives, referential section 3.1)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support.phantoms import case_plan

from rtcheck.case import load_drug_table, normalise_name
from rtcheck.checker import check
from rtcheck.errors import InputError

CASE_PROTOCOL = str(Path(__file__).resolve().parents[1] / "constraints"
                    / "bone-metastases-case-2026.toml")
START = dt.date(2026, 3, 2)


@pytest.fixture(scope="module")
def table():
    return load_drug_table()


@pytest.mark.parametrize("name, generic", [
    ("gemcitabine", "gemcitabine"), ("GEMZAR", "gemcitabine"),
    ("Adriamycine", "doxorubicin"), ("adriamycin", "doxorubicin"), ("Doxorubicine", "doxorubicin"),
    ("Bléomycine", "bleomycin"), ("BLEOMYCINE", "bleomycin"), ("bevacizumab ", "bevacizumab"),
    ("Avastin", "bevacizumab"), ("Cisplatine", "cisplatin"), ("Navelbine", "vinorelbine"),
    ("Alimta", "pemetrexed"), ("docétaxel", "docetaxel"), ("Taxotère", "docetaxel"),
    ("Tarceva", "erlotinib"), ("Keytruda", "pembrolizumab"), ("Hycamtin", "topotecan"),
    ("Hycantin", "topotecan"), ("Campto", "irinotecan"), ("Cérubidine", "daunorubicin"),
])
def test_brand_and_generic_names_match_case_and_accent_insensitively(table, name, generic):
    assert table.find(name).generic == generic


def test_unknown_name_is_none(table):
    assert table.find("aspirin") is None
    assert normalise_name("  Bévacizumab-awwb ") == "bevacizumabawwb"


def test_categories_are_the_referentials_lists(table):
    # section 3.1, lines 902-904
    by = {d.generic: d.category for d in table.drugs}
    assert {g for g, c in by.items() if c == "stop"} >= {"gemcitabine", "doxorubicin",
                                                         "bleomycin", "bevacizumab"}
    assert {g for g, c in by.items() if c == "compatible"} == {
        "cisplatin", "vinorelbine", "paclitaxel", "carboplatin", "pemetrexed", "docetaxel"}
    assert {"erlotinib", "gefitinib", "crizotinib"} <= {g for g, c in by.items()
                                                        if c == "precaution"}


def test_half_lives_of_the_referentials_excerpt_and_their_sources(table):
    # Radiosync excerpt (lines 887-890): 14 h, 5 h, 24 h, 36 to 72 h
    expected = {"irinotecan": (14, 14), "topotecan": (5, 5), "daunorubicin": (24, 24),
                "doxorubicin": (36, 72)}
    for generic, half in expected.items():
        drug = table.find(generic)
        assert drug.half_life_h == half
        assert "Radiosync" in drug.half_life_source
    assert table.find("doxorubicin").washout_days(5) == (7.5, 15.0)
    for drug in table.drugs:
        assert (drug.half_life_h is None) == (drug.half_life_source is None)
    assert table.find("gemcitabine").half_life_h is None  # no source read: unknown


def test_a_half_life_without_source_is_refused(tmp_path):
    path = tmp_path / "drugs.toml"
    path.write_text('schema_version = 1\nid = "x"\nsource = "y"\n[[drugs]]\ngeneric = "a"\n'
                    'category = "stop"\ncategory_source = "s"\nhalf_life_h = 3\n')
    with pytest.raises(InputError, match="half_life_h needs half_life_source"):
        load_drug_table(path)


def run(treatments, technique="sbrt", rx=27.0, fractions=3):
    case = {"systemic_treatments": treatments, "start_date": START.isoformat()}
    plan = case_plan(rx, fractions, START.isoformat(), {})
    result = check(plan, protocols=["bone-metastases-2026", CASE_PROTOCOL], technique=technique,
                   case=case)
    return [f for f in result.findings if f.rule == "case.systemic_treatments"]


def before(days: int) -> str:
    return (START - dt.timedelta(days=days)).isoformat()


@pytest.mark.parametrize("drug, days, status", [
    ("Avastin", 10, "FAIL"),        # wash-out 5 x 19-20 d = 95-100 days
    ("Avastin", 97, "WARN"),
    ("Avastin", 100, "PASS"),
    ("Adriamycine", 5, "FAIL"),     # 5 x 36-72 h = 7.5-15 days
    ("Adriamycine", 10, "WARN"),
    ("adriamycin", 15, "PASS"),
    ("Campto", 2, "FAIL"),          # 5 x 14 h = 2.9 days
    ("Campto", 3, "PASS"),
    ("Keytruda", 30, "WARN"),       # precaution, half-life unknown
    ("Tarceva", 400, "WARN"),
])
def test_washout(drug, days, status):
    (f,) = run([{"drug": drug, "last_dose": before(days)}])
    assert f.status == status, f.reason
    assert f.value == days


def test_stop_drug_with_unknown_half_life_is_not_evaluated():
    (f,) = run([{"drug": "Gemzar", "last_dose": before(3)}])
    assert (f.status, f.missing) == ("NOT_EVALUATED", "drug_half_life")
    assert "half-life unknown" in f.reason


def test_compatible_drug_passes_conventional_and_warns_sbrt():
    (conv,) = run([{"drug": "Cisplatine", "ongoing": True}], technique="conventional",
                  rx=30.0, fractions=10)
    assert conv.status == "PASS"
    (sbrt,) = run([{"drug": "Cisplatine", "ongoing": True}])
    assert sbrt.status == "WARN" and "section 3.2" in sbrt.reason


def test_missing_facts():
    (unknown,) = run([{"drug": "Aspirin", "last_dose": before(3)}])
    assert (unknown.status, unknown.missing) == ("NOT_EVALUATED", "drug_category")
    (no_date,) = run([{"drug": "Avastin"}])
    assert (no_date.status, no_date.missing) == ("NOT_EVALUATED",
                                                 "systemic_treatments.last_dose")
    (none,) = run([])
    assert none.status == "PASS"


def test_one_finding_per_drug():
    found = run([{"drug": "Avastin", "last_dose": before(10)},
                 {"drug": "Navelbine", "last_dose": before(1)}], technique="conventional",
                rx=30.0, fractions=10)
    assert [(f.metric, f.status) for f in found] == [("Avastin", "FAIL"), ("Navelbine", "PASS")]
