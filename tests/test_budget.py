"""The remaining dose of a re-irradiation (``rtcheck budget``, :func:`rtcheck.remaining_dose`).

Every expected number is a hand value: the EQD2 of a point maximum D in n fractions at
alpha/beta 2 Gy is D (D/n + 2) / 4, so the largest D for an EQD2 budget E is the positive
root of D^2/n + 2D - 4E = 0 (:func:`dose_for_eqd2`); the first-course table is Sahgal 2013's
(12.4 / 17 / 20.3 / 23 / 25.3 Gy, DOMAIN.md section 8).
"""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from support.phantoms import spine_case, write_plan

import rtcheck
from rtcheck.checker.budget import EXHAUSTED, PRIOR_UNKNOWN, remaining_dose, reported
from rtcheck.cli import main
from rtcheck.cli.check import render_table

PRIOR = "30Gy/10 cord_dmax=31Gy end=2025-03-14"
COURSE_RULE = "reirradiation.course-cord-eqd2"
CUMULATIVE_RULE = "reirradiation.cumulative-cord-eqd2"
SHARE_RULE = "reirradiation.course-share"


def dose_for_eqd2(e: float, n: int, ab: float = 2.0) -> float:
    """Hand inverse of EQD2 = D (D/n + ab) / (2 + ab): D^2/n + ab D - (2 + ab) e = 0."""
    return n * (-ab + math.sqrt(ab * ab + 4 * (2 + ab) * e / n)) / 2


def floor2(x: float) -> float:
    return math.floor(x * 100) / 100


# ------------------------------------------------------------------ the issue's hand value


def test_issue_hand_value_course_rule_binds_in_three_fractions():
    organ = remaining_dose(PRIOR, [3]).organ("spinal_cord", 3)
    # prior EQD2 31 (3.1 + 2) / 4 = 39.525 Gy: cumulative leaves 30.475, share 39.525, the
    # course's own 25 Gy is the smallest: D (D/3 + 2) / 4 = 25
    assert organ.binding_rule == COURSE_RULE
    assert organ.exact_gy == pytest.approx(14.578, abs=5e-4)
    assert organ.exact_gy * (organ.exact_gy / 3 + 2) / 4 == pytest.approx(25.0)
    assert organ.max_gy == 14.57
    bounds = {b.rule: b for b in organ.bounds}
    assert bounds[CUMULATIVE_RULE].prior_gy == pytest.approx(39.525)
    assert bounds[CUMULATIVE_RULE].max_gy == pytest.approx(dose_for_eqd2(70 - 39.525, 3))
    assert bounds[SHARE_RULE].max_gy == pytest.approx(dose_for_eqd2(39.525, 3))
    assert organ.stands_for == "thecal_sac"  # the summary gives the cord only


def test_one_to_five_fractions_match_the_closed_form():
    budget = remaining_dose(PRIOR)
    for n, hand in zip(range(1, 6), (9.04, 12.28, 14.57, 16.39, 17.91)):
        organ = budget.organ("spinal_cord", n)
        assert organ.max_gy == hand == floor2(dose_for_eqd2(25.0, n))
    # 1 fraction: D (D + 2) / 4 = 25 -> D = sqrt(101) - 1
    assert budget.organ("spinal_cord", 1).exact_gy == pytest.approx(math.sqrt(101) - 1)


def test_cumulative_rule_binds_and_its_warn_band_is_reported_apart():
    # prior cord 40 Gy in 10: EQD2 40 (4 + 2) / 4 = 60 Gy; < 70 leaves 10 Gy, the 70-75 band 15
    organ = remaining_dose("30Gy/10 cord_dmax=40Gy", [1]).organ("spinal_cord", 1)
    assert organ.binding_rule == CUMULATIVE_RULE
    assert organ.exact_gy == pytest.approx(math.sqrt(41) - 1)    # D (D + 2) / 4 = 10
    assert organ.max_gy == 5.40
    assert organ.review_binding_rule == CUMULATIVE_RULE
    assert organ.review_max_gy == floor2(math.sqrt(61) - 1)     # D (D + 2) / 4 = 15 -> 6.81


def test_share_rule_binds_after_a_light_first_course():
    # prior cord 10 Gy in 5: EQD2 10 (2 + 2) / 4 = 10 Gy; share <= 0.5 -> this course <= 10 Gy
    organ = remaining_dose("20Gy/5 cord_dmax=10Gy", [1]).organ("spinal_cord", 1)
    assert organ.binding_rule == SHARE_RULE
    assert organ.exact_gy == pytest.approx(math.sqrt(41) - 1)
    assert organ.max_gy == 5.40


def test_conventional_reirradiation_uses_nieder_bed():
    # BED of 31 Gy in 10 at a/b 2: 31 (1 + 3.1/2) = 79.05; 135.5 - 79.05 = 56.45 Gy2 left;
    # 5 fractions: D + D^2/10 = 56.45 -> D = 5 (-1 + sqrt(1 + 22.58))
    organ = remaining_dose(PRIOR, [5], technique="conventional").organ("spinal_cord", 5)
    assert organ.binding_rule == "reirradiation.conventional-cumulative-bed"
    assert organ.exact_gy == pytest.approx(5 * (-1 + math.sqrt(1 + 4 * 56.45 / 10)))
    assert organ.max_gy == 19.27


def test_no_prior_gives_the_first_course_table():
    budget = remaining_dose(None, [1, 2, 3, 4, 5])
    for n, sahgal in zip(range(1, 6), (12.4, 17.0, 20.3, 23.0, 25.3)):
        for role in ("thecal_sac", "spinal_cord"):
            organ = budget.organ(role, n)
            assert organ.first_course and organ.binding_rule == "sbrt-cord-dmax"
            assert organ.max_gy == sahgal  # <= limit: the limit itself is allowed
    assert budget.organ("thecal_sac", 1).review_max_gy == 14.0  # HyTEC's 12.4-14 Gy band


def test_unknown_prior_maximum_is_never_a_number():
    budget = remaining_dose("30Gy/10", [3])  # no cord_dmax: the cumulative rule is blind
    assert budget.organs
    for organ in budget.organs:
        assert organ.max_gy is None and organ.code == PRIOR_UNKNOWN


def test_exhausted_budget():
    # prior 70 Gy in 35 with the cord at 70 Gy: EQD2 70, and the cumulative limit is < 70
    organ = remaining_dose("70Gy/35 cord_dmax=70Gy", [3]).organ("spinal_cord", 3)
    assert organ.max_gy is None and organ.code == EXHAUSTED
    assert organ.binding_rule == CUMULATIVE_RULE


def test_below_conus_reads_the_cauda_equina():
    budget = remaining_dose("30Gy/10 cauda_dmax=31Gy", [3], below_conus=True)
    assert budget.organ("cauda_equina", 3).max_gy == 14.57
    assert budget.organ("spinal_cord", 3) is None


def test_alpha_beta_override_changes_the_bound():
    # a/b 3: course EQD2 D (D/3 + 3) / 5 < 25 -> D^2/3 + 3D - 125 = 0
    organ = remaining_dose(PRIOR, [3], alpha_beta={"spinal_cord": 3.0}).organ("spinal_cord", 3)
    assert organ.exact_gy == pytest.approx(dose_for_eqd2(25.0, 3, ab=3.0))


def test_interval_rule_gives_the_earliest_date():
    budget = remaining_dose(PRIOR, [3], date=dt.date(2025, 8, 1))
    (interval,) = budget.intervals
    assert interval.earliest == dt.date(2025, 8, 14)  # 5 calendar months after 2025-03-14
    assert interval.satisfied is False


@pytest.mark.parametrize("exact, strict, expected", [
    (25.0, True, 24.99), (25.0, False, 25.0), (20.3, False, 20.3), (14.5784, True, 14.57),
    (14.5784, False, 14.57),
])
def test_reported_rounds_down_and_strict_stays_strict(exact, strict, expected):
    assert reported(exact, strict) == expected


def test_public_name():
    assert rtcheck.remaining_dose is remaining_dose


# ------------------------------------------------------------------ the checker agrees


def _uniform_plan(folder, dose_gy: float):
    """A synthetic spine plan, 14 Gy in 3 fractions, whose dose is ``dose_gy`` everywhere:
    every structure's point maximum is exactly that dose."""
    case = spine_case("sbrt", prescription_gy=14.0, fractions=3, seed="budget")
    case.dose = lambda x, y, z: np.full(np.broadcast(x, y, z).shape, dose_gy)
    write_plan(folder, case.datasets())
    return rtcheck.load_plan(str(folder))


@pytest.mark.parametrize("above, status", [(0.0, "PASS"), (0.01, "FAIL")])
def test_plan_at_the_budget_passes_and_just_above_fails(tmp_path, above, status):
    budget = remaining_dose(PRIOR, [3]).organ("spinal_cord", 3).max_gy
    data = _uniform_plan(tmp_path, budget + above)
    result = rtcheck.check(data, priors=[PRIOR], technique="sbrt", site="spine")
    course = next(f for f in result.findings if f.rule == COURSE_RULE)
    assert course.status == status
    assert course.value == pytest.approx(eqd2_hand(budget + above, 3), abs=1e-6)
    shown = course.details["remaining_dose"]
    assert shown["max_gy"] == budget and shown["binding_rule"] == COURSE_RULE
    for f in result.findings:  # every dose rule of the re-irradiation holds at the budget
        if f.kind == "reirradiation" and f.rule != "reirradiation.interval" and not above:
            assert f.status == "PASS", f.reason
    line = f"remaining dose: point maximum <= {budget:.2f} Gy in 3 fraction(s)"
    assert line in render_table(result)


def eqd2_hand(d: float, n: int) -> float:
    return d * (d / n + 2) / 4


# ------------------------------------------------------------------ the command


def test_cli_table_and_json():
    runner = CliRunner()
    table = runner.invoke(main, ["budget", "--prior-summary", PRIOR, "--fractions", "3"])
    assert table.exit_code == 0, table.output
    assert "14.57 Gy" in table.output and COURSE_RULE in table.output
    assert "earliest start 2025-08-14" in table.output
    out = runner.invoke(main, ["budget", "--prior-summary", PRIOR, "--fractions", "1,3",
                               "--format", "json"])
    doc = json.loads(out.output)
    cord = [o for o in doc["organs"] if o["role"] == "spinal_cord"]
    assert [o["max_gy"] for o in cord] == [9.04, 14.57]


@pytest.mark.parametrize("args, needle", [
    (["--fractions", "0"], "--fractions '0'"),
    (["--fractions", "a..b"], "--fractions 'a..b'"),
    (["--prior-summary", "30Gy/10 foo=1"], "unknown item"),
])
def test_cli_bad_input_is_one_line_exit_2(args, needle):
    result = CliRunner().invoke(main, ["budget", *args])
    assert result.exit_code == 2
    assert needle in result.output and "Traceback" not in result.output
