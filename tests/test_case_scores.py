"""SINS (Tableau 10) and Mirels (Tableau 3) scored from their items, against the tables."""

from __future__ import annotations

import pytest

from rtcheck.case import MIRELS_ITEMS, SINS_ITEMS, case_from_mapping, score_from_items
from rtcheck.case.scores import score_range
from rtcheck.errors import InputError

# Tableau 10, read from the referential (lines 1317-1340): points of each cell.
SINS_TABLE = {
    "location": {"junctional": 3, "mobile": 2, "semi-rigid": 1, "rigid": 0},
    "pain": {"mechanical": 3, "non-mechanical": 1, "none": 0},
    "bone_lesion": {"lytic": 2, "mixed": 1, "condensing": 0},
    "alignment": {"subluxation": 4, "deformity": 2, "normal": 0},
    "collapse": {"over-50": 3, "under-50": 2, "osteolysis-over-50-no-collapse": 1, "none": 0},
    "posterior_elements": {"bilateral": 3, "unilateral": 1, "none": 0},
}
# Tableau 3 (lines 696-700): score 1, 2, 3 by column.
MIRELS_TABLE = {
    "location": {"upper-limb": 1, "lower-limb": 2, "trochanteric": 3},
    "size": {"under-1/3": 1, "1/3-2/3": 2, "over-2/3": 3},
    "lesion": {"condensing": 1, "mixed": 2, "lytic": 3},
    "pain": {"mild": 1, "moderate": 2, "functional": 3},
}


def test_tables_transcribe_the_referential():
    assert {i: {c: p for c, (p, _) in cs.items()} for i, cs in SINS_ITEMS.items()} == SINS_TABLE
    assert {i: {c: p for c, (p, _) in cs.items()} for i, cs in MIRELS_ITEMS.items()} == \
        MIRELS_TABLE


def test_score_ranges():
    assert score_range("sins") == (0, 18)   # "TOTAL / 18 pts"
    assert score_range("mirels") == (4, 12)  # 4 items of 1-3 (the text's "3 à 12" is a slip)


def test_sins_sum_is_shown_with_its_terms():
    s = score_from_items("sins", {"location": "junctional", "pain": "mechanical",
                                  "bone_lesion": "lytic", "alignment": "deformity",
                                  "collapse": "under-50", "posterior_elements": "unilateral"})
    assert s.total == 3 + 3 + 2 + 2 + 2 + 1 == 13
    assert s.band == "unstable"
    assert s.sum_text == ("13 = location 3 + pain 3 + bone_lesion 2 + alignment 2 + "
                          "collapse 2 + posterior_elements 1")


@pytest.mark.parametrize("total, band", [(0, "stable"), (6, "stable"), (7, "potentially unstable"),
                                         (12, "potentially unstable"), (13, "unstable"),
                                         (18, "unstable")])
def test_sins_bands(total, band):
    assert case_from_mapping({"sins": total}).get("sins").band == band


@pytest.mark.parametrize("total, band", [(4, "observation, radiotherapy"),
                                         (7, "observation, radiotherapy"),
                                         (8, "multidisciplinary (RCP) decision"),
                                         (9, "prophylactic fixation"),
                                         (12, "prophylactic fixation")])
def test_mirels_bands(total, band):
    assert case_from_mapping({"mirels": total}).get("mirels").band == band


def test_mirels_from_items():
    s = case_from_mapping({"mirels": {"location": "trochanteric", "size": "over-2/3",
                                      "lesion": "lytic", "pain": "moderate"}}).get("mirels")
    assert (s.total, s.band) == (11, "prophylactic fixation")


def test_a_total_that_disagrees_with_its_items_is_bad_input():
    items = {"location": "upper-limb", "size": "under-1/3", "lesion": "mixed", "pain": "mild"}
    assert case_from_mapping({"mirels": {**items, "total": 5}}).get("mirels").total == 5
    with pytest.raises(InputError, match=r"mirels: total 6 disagrees with its items: 5 = "):
        case_from_mapping({"mirels": {**items, "total": 6}}, "case.toml")


@pytest.mark.parametrize("value, message", [
    (19, "a SINS total is 0-18"),
    ({"location": "junctional"}, "pain missing"),
    ({**{k: next(iter(v)) for k, v in SINS_TABLE.items()}, "pain": "severe"},
     'pain "severe" is not one of mechanical, non-mechanical, none'),
    ({**{k: next(iter(v)) for k, v in SINS_TABLE.items()}, "colour": 1}, 'unknown item "colour"'),
    ("9", "must be a total"),
])
def test_bad_sins(value, message):
    with pytest.raises(InputError, match="sins: .*" + message):
        case_from_mapping({"sins": value}, "case.toml")
