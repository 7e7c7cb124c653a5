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
    # the prior gives the sac's maximum too: the rules are evaluated on the sac itself (with
    # the cord's maximum only, the cord would merely stand in and never pass for the sac)
    prior = PRIOR.replace("cord_dmax=31Gy", "cord_dmax=31Gy sac_dmax=31Gy")
    budget = remaining_dose(prior, [3]).organ("spinal_cord", 3).max_gy
    data = _uniform_plan(tmp_path, budget + above)
    result = rtcheck.check(data, priors=[prior], technique="sbrt", site="spine")
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


def test_a_cord_only_prior_leaves_the_sac_unknown_never_the_cords_number():
    # 45 Gy/15 on the cord (EQD2 56.25 Gy): the cumulative rule (70 Gy) binds the cord in 3
    # fractions at D with D (D/3 + 2)/4 = 13.75, D = -3 + sqrt(174) = 10.191 Gy. The sac
    # contains the cord, so its prior maximum is at least 45 Gy but not known: no number for
    # it (the course rule alone would give 14.57 Gy, too high).
    b = remaining_dose("45Gy/15 cord_dmax=45Gy end=2025-01-01", [3])
    cord = b.organ("spinal_cord", 3)
    assert cord.code == "evaluated"
    assert cord.exact_gy == pytest.approx(-3 + 174 ** 0.5, abs=1e-9)
    assert cord.max_gy == 10.19
    for role in ("thecal_sac", "spinal_cord_prv"):
        organ = b.organ(role, 3)
        assert organ.code == "prior_unknown" and organ.max_gy is None, role


# ------------------------------------------------------------------ what check says about scope

SECOND = "20Gy/5 cord_dmax=20.5Gy end=2024-01-01"  # EQD2 20.5 (4.1 + 2) / 4 = 31.2625 Gy


def test_a_prior_dated_after_the_course_is_never_summed():
    later = "20Gy/5 cord_dmax=20.5Gy end=2025-09-01"
    b = remaining_dose([PRIOR, later], [1], date=dt.date(2025, 8, 20))
    cord = b.organ("spinal_cord", 1)
    # only the first prior counts: cumulative 70 - 39.525 leaves room, the course rule binds
    # at D (D + 2) / 4 = 25 (with the later one summed, 70.79 Gy, nothing would be left)
    assert cord.max_gy == 9.04 and cord.binding_rule == COURSE_RULE
    bounds = {x.rule: x for x in cord.bounds}
    assert bounds[CUMULATIVE_RULE].prior_gy == pytest.approx(39.525)
    assert [p["label"] for p in b.priors_not_summed] == [f"summary '{later}'"]
    assert any("dated after this course" in n and "never summed" in n for n in b.notes)
    (interval,) = b.intervals  # from the first prior's end only
    assert interval.prior_end == dt.date(2025, 3, 14) and interval.status == "PASS"


def test_only_priors_dated_after_give_no_number_and_no_negative_interval():
    later = "30Gy/10 cord_dmax=31Gy end=2025-09-01"
    b = remaining_dose(later, [3], date="2025-08-01")
    assert b.organs and all(o.max_gy is None and o.review_max_gy is None and not o.bounds
                            and o.code == "prior_mismatch" for o in b.organs)
    assert b.intervals == []
    out = CliRunner().invoke(main, ["budget", "--prior-summary", later, "--fractions", "3",
                                    "--date", "2025-08-01"])
    assert out.exit_code == 0 and "never summed" in out.output
    assert "NOT satisfied" not in out.output and "-1.00 months" not in out.output


def test_an_estimated_end_after_the_date_is_not_a_negative_interval():
    # plan date 2025-08-15 (Friday) + 10 weekday fractions: last fraction 2025-08-28, after the
    # date; check still sums it (an estimate), and leaves the interval NOT_EVALUATED
    prior = "30Gy/10 cord_dmax=31Gy date=2025-08-15"
    b = remaining_dose(prior, [3], date="2025-08-20")
    (interval,) = b.intervals
    assert interval.prior_end == dt.date(2025, 8, 28)
    assert interval.status == "NOT_EVALUATED" and interval.months is None
    assert interval.satisfied is None
    assert b.organ("spinal_cord", 3).max_gy == 14.57
    out = CliRunner().invoke(main, ["budget", "--prior-summary", prior, "--fractions", "3",
                                    "--date", "2025-08-20"])
    assert "NOT_EVALUATED: the prior course ends 2025-08-28" in out.output
    assert "NOT satisfied" not in out.output


@pytest.mark.parametrize("date, months, status", [
    ("2025-08-20", 5 + 6 / 31, "WARN"),   # estimated end 2025-03-14: within 1 month of 5
    ("2025-09-14", 6.0, "PASS"),          # the margin reached
    ("2025-08-01", 4 + 18 / 31, "FAIL"),
])
def test_interval_from_an_estimated_end_warns_within_a_month(date, months, status):
    # plan date 2025-03-01 (Saturday): first fraction Monday 03-03, 10th fraction 03-14
    b = remaining_dose("30Gy/10 cord_dmax=31Gy date=2025-03-01", [3], date=date)
    (interval,) = b.intervals
    assert interval.prior_end == dt.date(2025, 3, 14) and interval.prior_end_how == "estimate"
    assert interval.months == pytest.approx(months)
    assert interval.status == status
    assert interval.earliest == dt.date(2025, 8, 14)
    assert interval.earliest_pass == dt.date(2025, 9, 14)


def test_an_sbrt_prior_carries_checks_caveat_on_every_organ():
    # prior cord 15 Gy in 3: EQD2 15 (5 + 2) / 4 = 26.25 Gy; the course rule still binds
    b = remaining_dose("24Gy/3 cord_dmax=15Gy end=2025-01-01", [3])
    assert b.organ("spinal_cord", 3).max_gy == 14.57
    for organ in b.organs:
        assert any("was SBRT: the rule was derived for re-irradiation after a conventional "
                   "course" in c for c in organ.outside_derivation), organ.role
    given = remaining_dose("30Gy/10 cord_dmax=31Gy technique=sbrt", [3])
    assert all(o.outside_derivation for o in given.organs)
    assert not any(o.outside_derivation for o in remaining_dose(PRIOR, [3]).organs)


def test_two_priors_carry_the_iterative_caveat_and_the_warn_band_is_given():
    # 39.525 + 31.2625 = 70.7875 Gy: < 70 is exhausted, the 70-75 band leaves 4.2125 Gy;
    # 3 fractions: D (D/3 + 2) / 4 = 4.2125 -> D = 4.7169 Gy; 1 fraction: sqrt(17.85) - 1
    b = remaining_dose([PRIOR, SECOND], [1, 3])
    cord = b.organ("spinal_cord", 3)
    assert cord.code == EXHAUSTED and cord.max_gy is None
    assert cord.review_binding_rule == CUMULATIVE_RULE
    assert cord.review_max_gy == 4.71 == floor2(dose_for_eqd2(75 - 70.7875, 3))
    assert b.organ("spinal_cord", 1).review_max_gy == floor2(math.sqrt(17.85) - 1) == 3.22
    assert any("3 courses (iterative re-irradiation)" in c for c in cord.outside_derivation)
    table = CliRunner().invoke(main, ["budget", "--prior-summary", PRIOR, "--prior-summary",
                                      SECOND, "--fractions", "3"]).output
    row = next(line for line in table.splitlines() if line.startswith("spinal_cord "))
    assert "- (exhausted)" in row and "4.71 Gy" in row and "WARN [1]" in row
    assert "[1] 3 courses (iterative re-irradiation)" in table


def test_six_fractions_say_the_bound_is_outside_the_derivation():
    # the course and share rules are stated for 1-5 fractions; the cumulative one alone:
    # D (D/6 + 2) / 4 = 70 - 39.525 = 30.475: D^2/6 + 2 D - 121.9 = 0,
    # D = 3 (-2 + sqrt(4 + 4 * 121.9 / 6)) = 21.702 Gy
    b = remaining_dose(PRIOR, [5, 6])
    six = b.organ("spinal_cord", 6)
    assert six.binding_rule == CUMULATIVE_RULE
    assert six.exact_gy == pytest.approx(3 * (-2 + math.sqrt(4 + 4 * 121.9 / 6)))
    assert six.max_gy == 21.70
    for rule in (COURSE_RULE, SHARE_RULE):
        assert any(c.startswith(f"{rule} not applied (stated for 1-5 fractions")
                   and "outside their derivation" in c for c in six.outside_derivation)
    assert not b.organ("spinal_cord", 5).outside_derivation
    doc = json.loads(CliRunner().invoke(main, ["budget", "--prior-summary", PRIOR,
                                               "--fractions", "6", "--format", "json"]).output)
    assert all(len(o["outside_derivation"]) == 2 for o in doc["organs"])


def test_the_caveat_is_the_one_check_gives(tmp_path):
    prior = "24Gy/3 cord_dmax=15Gy sac_dmax=15Gy end=2025-01-01"
    organ = remaining_dose(prior, [3]).organ("thecal_sac", 3)
    data = _uniform_plan(tmp_path, organ.max_gy)
    result = rtcheck.check(data, priors=[prior], technique="sbrt", site="spine")
    course = next(f for f in result.findings if f.rule == COURSE_RULE)
    assert course.status == "WARN"
    assert tuple(course.details["outside_derivation"]) == organ.outside_derivation


def test_alpha_beta_naming_nothing_is_refused():
    with pytest.raises(rtcheck.InputError, match="'heart'"):
        remaining_dose(PRIOR, [3], alpha_beta={"heart": 3.0})
    result = CliRunner().invoke(main, ["budget", "--prior-summary", PRIOR,
                                       "--alpha-beta", "spinalcord=3"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "'spinalcord'" in result.output
    # a rule id is a name too: a/b 3 on the course rule, D (D/3 + 3) / 5 < 25
    organ = remaining_dose(PRIOR, [3], alpha_beta={COURSE_RULE: 3.0}).organ("spinal_cord", 3)
    assert organ.exact_gy == pytest.approx(dose_for_eqd2(25.0, 3, ab=3.0))
