"""rtcheck.radiobiology against closed forms, published numbers and LQ/LQ-L properties.

Expected values are written out by hand (arithmetic in the comments), never taken from the
code under test.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rtcheck
from rtcheck.radiobiology import (
    Course,
    RecoveryModel,
    Scheme,
    accumulate_courses,
    alpha_beta_sensitivity,
    bed,
    completed_months,
    convert,
    eqd2,
    eqd2_dvh,
    eqd2_grid,
    isoeffective_dose,
    max_dose_per_fraction,
    max_total_dose,
    months_between,
    parse_course,
    parse_dose,
    parse_scheme,
    split_scheme,
)

# -- printed numbers and closed forms ------------------------------------------------------


def test_issue_closed_forms():
    # 30 Gy/10, a/b 2: d = 3, EQD2 = 30 (3 + 2) / (2 + 2) = 37.5; BED = 30 (1 + 3/2) = 75
    assert eqd2(30.0, 10, 2.0) == pytest.approx(37.5, abs=1e-12)
    assert bed(30.0, 10, 2.0) == pytest.approx(75.0, abs=1e-12)
    # 20 Gy/5, a/b 2: d = 4, EQD2 = 20 (4 + 2) / 4 = 30
    assert eqd2(20.0, 5, 2.0) == pytest.approx(30.0, abs=1e-12)
    # 8 Gy/1, a/b 10: BED = 8 (1 + 8/10) = 14.4; EQD2 = 14.4 / 1.2 = 12
    assert bed(8.0, 1, 10.0) == pytest.approx(14.4, abs=1e-12)
    assert eqd2(8.0, 1, 10.0) == pytest.approx(12.0, abs=1e-12)


# Sahgal 2013 (IJROBP 85:341), thecal-sac point max, <= 5 % myelopathy, a/b 2. EQD2 = D (d+2)/4:
#   12.4 Gy/1: d = 12.4,   12.4 x 14.4   / 4 = 44.64
#   17.0 Gy/2: d = 8.5,    17.0 x 10.5   / 4 = 44.625
#   20.3 Gy/3: d = 6.7667, 20.3 x 8.7667 / 4 = 44.4908
#   23.0 Gy/4: d = 5.75,   23.0 x 7.75   / 4 = 44.5625
#   25.3 Gy/5: d = 5.06,   25.3 x 7.06   / 4 = 44.6545
SAHGAL_2013 = [(12.4, 1, 44.64), (17.0, 2, 44.625), (20.3, 3, 44.490833), (23.0, 4, 44.5625),
               (25.3, 5, 44.6545)]


@pytest.mark.parametrize("dose, n, hand", SAHGAL_2013)
def test_sahgal_2013_cord_limits_are_about_44_6_gy_eqd2(dose, n, hand):
    value = eqd2(dose, n, 2.0)
    assert value == pytest.approx(hand, abs=1e-5)
    assert abs(value - 44.6) < 1.0


def test_sahgal_2012_reirradiation_cells_fit_a_25_gy_eqd2_budget():
    # Budget 25 Gy EQD2 at a/b 2 = BED 50 Gy: n (d + d^2/2) = 50, d = -1 + sqrt(1 + 100/n).
    # n=1: d = sqrt(101) - 1 = 9.0499; n=5: d = sqrt(21) - 1 = 3.5826, total 17.913.
    # The commonly quoted cells 9 / 12.2 / 14.5 / 16.2 / 18 Gy (DOMAIN.md 8) lie within 0.3 Gy.
    for n, cell in zip(range(1, 6), (9.0, 12.2, 14.5, 16.2, 18.0)):
        hand = n * (math.sqrt(1 + 100 / n) - 1)
        assert max_total_dose(25.0, n, 2.0) == pytest.approx(hand, rel=1e-12)
        assert max_dose_per_fraction(25.0, n, 2.0) == pytest.approx(hand / n, rel=1e-12)
        assert abs(max_total_dose(25.0, n, 2.0) - cell) < 0.3


def test_budget_exhausted_gives_zero_dose():
    assert max_total_dose(0.0, 5, 2.0) == 0.0
    assert max_total_dose(-5.0, 5, 2.0) == 0.0
    assert max_dose_per_fraction(-0.1, 3, 2.0) == 0.0
    np.testing.assert_array_equal(max_total_dose(np.array([-1.0, 0.0]), 3, 2.0), [0.0, 0.0])
    with pytest.raises(ValueError, match="remaining_eqd2"):
        max_total_dose(math.nan, 5, 2.0)


def test_isoeffective_30gy_10_in_5_fractions_at_ab_10():
    # BED 30 Gy/10 at a/b 10 = 30 x 1.3 = 39; 5 (d + d^2/10) = 39 -> d^2 + 10 d - 78 = 0,
    # d = (-10 + sqrt(412)) / 2 = 5.148892, total 25.74446 Gy.
    total = isoeffective_dose(39.0, 5, 10.0, quantity="BED")
    assert total == pytest.approx(25.744458, abs=1e-6)
    d = total / 5
    assert 5 * (d + d * d / 10) == pytest.approx(39.0, rel=1e-12)
    # Same answer through EQD2 (same BED means same EQD2 at the same a/b): 39 / 1.2 = 32.5.
    assert isoeffective_dose(32.5, 5, 10.0) == pytest.approx(total, rel=1e-12)


def test_lq_l_closed_form_above_dt():
    # 24 Gy/1, a/b 3, dT 6: BED = 1 x [24 (1 + 12/3) - 36/3] = 120 - 12 = 108 (LQ: 24 x 9 = 216)
    # EQD2 = 108 / (1 + 2/3) = 64.8 (dT >= 2: the 2 Gy reference fractions are quadratic).
    assert bed(24.0, 1, 3.0, model="LQ-L", dt=6.0) == pytest.approx(108.0, abs=1e-12)
    assert eqd2(24.0, 1, 3.0, model="LQ-L", dt=6.0) == pytest.approx(64.8, abs=1e-12)
    assert bed(24.0, 1, 3.0) == pytest.approx(216.0, abs=1e-12)
    # Inverse on the linear branch: BED 108 in 2 fractions: 2 [d (1 + 4) - 12] = 108, d = 13.2.
    assert isoeffective_dose(108.0, 2, 3.0, quantity="BED", model="LQ-L", dt=6.0) == \
        pytest.approx(26.4, abs=1e-12)


def test_lq_l_eqd2_of_2_gy_fractions_is_their_dose_even_when_dt_below_2():
    # dT = 1 Gy < 2 Gy: the reference fractions are on the linear branch too; EQD2 stays
    # "the dose in 2 Gy fractions with the same BED", so 20 Gy in 2 Gy fractions -> 20 Gy.
    assert eqd2(20.0, 10, 3.0, model="LQ-L", dt=1.0) == pytest.approx(20.0, rel=1e-12)
    # and 30 Gy/10 (d = 3) at a/b 3, dT 1: BED/fx = 3 (1 + 2/3) - 1/3 = 14/3 per fraction,
    # reference 2 Gy: 2 (1 + 2/3) - 1/3 = 3 per fraction (1.5 per Gy): EQD2 = 10 x 14/3 / 1.5
    assert eqd2(30.0, 10, 3.0, model="LQ-L", dt=1.0) == pytest.approx(140 / 4.5, rel=1e-12)


def test_point_dose_uses_its_own_dose_per_fraction():
    # Cord max 31 Gy in a 30 Gy/10 plan: d = 3.1 (not 3): EQD2 = 31 x 5.1 / 4 = 39.525
    assert eqd2(31.0, 10, 2.0) == pytest.approx(39.525, abs=1e-12)


def test_conversion_record_carries_model_and_parameters():
    c = convert(30.0, 10, 2.0)
    assert (c.quantity, c.value, c.total_dose, c.fractions, c.dose_per_fraction, c.alpha_beta,
            c.model, c.dt) == ("EQD2", pytest.approx(37.5), 30.0, 10, 3.0, 2.0, "LQ", None)
    assert c.linear_region is None
    c = convert(24.0, 1, 3.0, "BED", model="LQ-L", dt=6.0)
    assert (c.value, c.model, c.dt, c.linear_region) == (pytest.approx(108.0), "LQ-L", 6.0, True)
    assert "LQ-L dT=6 Gy" in str(c) and "a/b 3 Gy" in str(c)
    assert c.as_dict()["dt_gy"] == 6.0
    with pytest.raises(ValueError, match="total_dose"):
        convert(np.array([1.0, 2.0]), 1, 3.0)


# -- DVH, grid, vectorisation ----------------------------------------------------------------


def test_dvh_bins_are_point_doses():
    # 5-fraction plan; bins at 0, 10, 25.3 Gy, a/b 2: EQD2 = D (D/5 + 2)/4
    #   10 Gy: 10 x 4 / 4 = 10;  25.3 Gy: 44.6545
    out = eqd2_dvh([0.0, 10.0, 25.3], 5, 2.0)
    np.testing.assert_allclose(out, [0.0, 10.0, 44.6545], atol=1e-9)
    assert isinstance(out, np.ndarray)
    with pytest.raises(ValueError, match=r"doses_gy .* at index 1"):
        eqd2_dvh([0.0, -1.0], 5, 2.0)


def test_grid_is_voxel_wise_not_prescription_based():
    grid = np.array([[[0.0, 15.0], [30.0, 45.0]]])        # shape (1, 2, 2), 10 fractions
    out = eqd2_grid(grid, 10, 2.0)
    # 15 Gy: d 1.5 -> 15 x 3.5/4 = 13.125; 30: 37.5; 45: d 4.5 -> 45 x 6.5/4 = 73.125
    np.testing.assert_allclose(out, [[[0.0, 13.125], [37.5, 73.125]]], atol=1e-12)
    assert out.shape == grid.shape
    with pytest.raises(ValueError, match=r"values .* at index \(0, 1, 0\)"):
        eqd2_grid(np.array([[[0.0, 1.0], [math.nan, 1.0]]]), 10, 2.0)


def test_arrays_in_arrays_out_scalars_in_floats_out():
    assert type(eqd2(30.0, 10, 2.0)) is float
    assert type(eqd2(np.float32(30.0), np.int64(10), 2.0)) is float
    out = bed([8.0, 30.0], 1, 10.0)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [14.4, 30 * 4.0])


# -- sensitivity -----------------------------------------------------------------------------


def test_alpha_beta_sensitivity_range():
    # 20.3 Gy/3 (d = 20.3/3): EQD2 = 20.3 (d + ab)/(2 + ab)
    s = alpha_beta_sensitivity(20.3, 3, [0.87, 2.0, 3.0])
    d = 20.3 / 3
    hand = [20.3 * (d + ab) / (2 + ab) for ab in (0.87, 2.0, 3.0)]
    np.testing.assert_allclose(s.values, hand, rtol=1e-12)
    assert s.min == pytest.approx(hand[2]) and s.max == pytest.approx(hand[0])
    assert s.spread == pytest.approx(hand[0] - hand[2])
    assert s.by_alpha_beta()[2.0] == pytest.approx(hand[1])
    assert (s.quantity, s.model, s.alpha_betas) == ("EQD2", "LQ", (0.87, 2.0, 3.0))
    with pytest.raises(ValueError, match="alpha_betas"):
        alpha_beta_sensitivity(20.3, 3, [])
    with pytest.raises(ValueError, match="alpha_betas"):
        alpha_beta_sensitivity(20.3, 3, 2.0)
    with pytest.raises(ValueError, match="alpha_beta"):
        alpha_beta_sensitivity(20.3, 3, [2.0, -1.0])


# -- courses ---------------------------------------------------------------------------------


def test_issue_course_example():
    # 31 Gy/10: 31 x 5.1 / 4 = 39.525; 12 Gy/3: d 4 -> 12 x 6 / 4 = 18; total 57.525
    acc = accumulate_courses([Course(31.0, 10, dt.date(2025, 3, 1)),
                              Course(12.0, 3, dt.date(2026, 3, 1))], 2.0)
    assert acc.total_eqd2 == pytest.approx(57.525, abs=1e-12)
    first, second = acc.courses
    assert first.eqd2 == pytest.approx(39.525) and second.eqd2 == pytest.approx(18.0)
    assert first.share == pytest.approx(39.525 / 57.525)
    assert second.share == pytest.approx(18.0 / 57.525)
    assert first.interval_days is None and second.interval_days == 365
    assert second.interval_months == pytest.approx(12.0)  # 2025-03-01 to 2026-03-01: calendar months
    assert acc.intervals_days == [365]
    assert acc.recovery is None and acc.total_discounted_eqd2 is None
    assert first.discount is None and first.discounted_eqd2 is None
    assert (acc.alpha_beta, acc.model, acc.dt) == (2.0, "LQ", None)


def test_nieder_recovery_is_explicit_and_by_calendar_months():
    rec = RecoveryModel.nieder_2006()
    assert "Nieder" in rec.name and "1446" in rec.source
    assert rec.steps == ((6, 0.25), (12, 0.5))
    cases = [("2025-08-31", 0.0), ("2025-09-01", 0.25), ("2026-02-28", 0.25),
             ("2026-03-01", 0.5)]
    for last, discount in cases:
        acc = accumulate_courses([Course(31.0, 10, "2025-03-01"), Course(12.0, 3, last)], 2.0,
                                 recovery=rec)
        first, second = acc.courses
        assert first.discount == discount, last
        assert second.discount == 0.0  # the course being judged is never discounted
        assert first.discounted_eqd2 == pytest.approx(39.525 * (1 - discount))
        assert acc.total_discounted_eqd2 == pytest.approx(39.525 * (1 - discount) + 18.0)
        assert acc.total_eqd2 == pytest.approx(57.525)  # undiscounted kept
        assert acc.as_dict()["recovery"]["name"] == rec.name


def test_three_courses_are_discounted_to_the_last_one():
    acc = accumulate_courses([Course(20.0, 5, "2024-01-15"), Course(8.0, 1, "2024-09-15"),
                              Course(9.0, 1, "2025-02-15")], 2.0,
                             recovery=RecoveryModel.nieder_2006())
    assert [c.months_before_last for c in acc.courses] == [13, 5, 0]
    assert [c.discount for c in acc.courses] == [0.5, 0.0, 0.0]
    # 20/5: 30; 8/1: 8 x 10/4 = 20; 9/1: 9 x 11/4 = 24.75
    assert acc.total_eqd2 == pytest.approx(74.75)
    assert acc.total_discounted_eqd2 == pytest.approx(15.0 + 20.0 + 24.75)
    assert acc.intervals_days == [244, 153]


def test_courses_validation():
    with pytest.raises(ValueError, match="chronological"):
        accumulate_courses([Course(30.0, 10, "2026-01-01"), Course(8.0, 1, "2025-01-01")], 2.0)
    with pytest.raises(ValueError, match="needs every course's date"):
        accumulate_courses([Course(30.0, 10), Course(8.0, 1, "2025-01-01")], 2.0,
                           recovery=RecoveryModel.nieder_2006())
    with pytest.raises(ValueError, match="at least one"):
        accumulate_courses([], 2.0)
    with pytest.raises(ValueError, match=r"courses\[0\]"):
        accumulate_courses([(30.0, 10)], 2.0)
    with pytest.raises(ValueError, match="date"):
        Course(30.0, 10, "01/03/2025")
    with pytest.raises(ValueError, match="dose_gy"):
        Course(-1.0, 10)
    with pytest.raises(ValueError, match="fractions"):
        Course(30.0, 2.5)
    # undated courses sum without intervals
    acc = accumulate_courses([Course(30.0, 10), Course(8.0, 1)], 2.0)
    assert acc.intervals_days == [None] and acc.courses[0].months_before_last is None
    # zero total: shares are undefined (nan), never a fake 0 or 1
    acc = accumulate_courses([Course(0.0, 1)], 2.0)
    assert math.isnan(acc.courses[0].share) and acc.as_dict()["courses"][0]["share"] is None


def test_recovery_model_validation():
    with pytest.raises(ValueError, match="discount"):
        RecoveryModel("bad", ((6, 1.5),))
    with pytest.raises(ValueError, match="increasing"):
        RecoveryModel("bad", ((12, 0.5), (6, 0.25)))
    with pytest.raises(ValueError, match="months"):
        RecoveryModel("bad", ((6.5, 0.25),))
    assert RecoveryModel("none", ()).discount(100) == 0.0


def test_completed_months():
    d = dt.date
    assert completed_months(d(2025, 3, 1), d(2026, 3, 1)) == 12
    assert completed_months(d(2025, 3, 1), d(2026, 2, 28)) == 11
    assert completed_months(d(2025, 8, 31), d(2026, 2, 28)) == 6
    assert completed_months(d(2025, 8, 31), d(2026, 2, 27)) == 5
    assert completed_months(d(2025, 1, 31), d(2025, 1, 31)) == 0


def test_months_between_is_calendar_months():
    d = dt.date
    assert months_between(d(2025, 3, 1), d(2025, 8, 1)) == 5.0  # exactly five months
    assert months_between(d(2025, 3, 1), d(2025, 7, 31)) == pytest.approx(4 + 30 / 31)
    assert months_between(d(2025, 3, 1), d(2026, 3, 1)) == 12.0
    assert months_between(d(2025, 8, 31), d(2026, 1, 31)) == 5.0
    assert months_between(d(2025, 8, 1), d(2025, 3, 1)) == -5.0


# -- text: schemes, doses, courses -----------------------------------------------------------


@pytest.mark.parametrize("text, total, n", [
    ("30Gy/10", 30.0, 10), ("30 Gy/10", 30.0, 10), ("30 gy / 10 fx", 30.0, 10),
    ("30Gy/10fractions", 30.0, 10), ("20.3Gy/3", 20.3, 3), (" 8 GY/1 ", 8.0, 1),
    ("30 Gy in 10", 30.0, 10), ("30 Gy in 10 fractions", 30.0, 10),
    ("10x3Gy", 30.0, 10), ("10 x 3 Gy", 30.0, 10), ("5 × 7 Gy", 35.0, 5), ("3x9Gy", 27.0, 3),
    ("3Gy x 10", 30.0, 10), ("7 Gy x 5 fx", 35.0, 5), ("0Gy/1", 0.0, 1),
])
def test_parse_scheme_accepts(text, total, n):
    scheme = parse_scheme(text)
    assert scheme.total_gy == pytest.approx(total, abs=1e-12) and scheme.fractions == n
    assert scheme.dose_per_fraction == pytest.approx(total / n)


@pytest.mark.parametrize("text", [
    "30/10", "30Gy/2.5", "30Gy/0", "3000cGy/10", "", "Gy/10", "30Gy/10 extra", "-30Gy/10",
    "thirty Gy/10", "30,5Gy/10", "30Gy10", "10 x 3", "30 Gy in", "30Gy/10.0",
])
def test_parse_scheme_rejects_naming_the_string(text):
    with pytest.raises(ValueError) as err:
        parse_scheme(text)
    assert repr(text) in str(err.value)


def test_split_scheme_for_prior_summaries():
    scheme, rest = split_scheme("30Gy/10 cord_dmax=31Gy date=2025-03-01")
    assert scheme == Scheme(30.0, 10) and rest == "cord_dmax=31Gy date=2025-03-01"
    scheme, rest = split_scheme("30 Gy in 10 fractions cord_dmax=31Gy")
    assert scheme == Scheme(30.0, 10) and rest == "cord_dmax=31Gy"
    assert parse_dose("31Gy") == 31.0 and parse_dose(" 12.4 gy") == 12.4
    with pytest.raises(ValueError, match="'31'"):
        parse_dose("31")


def test_scheme_text_round_trip_and_course_text():
    assert parse_scheme(str(Scheme(20.3, 3))) == Scheme(20.3, 3)
    c = parse_course("31Gy/10@2025-03-01")
    assert (c.dose_gy, c.fractions, c.date) == (31.0, 10, dt.date(2025, 3, 1))
    assert parse_course("12Gy/3").date is None
    with pytest.raises(ValueError, match="2025-02-30"):
        parse_course("31Gy/10@2025-02-30")
    with pytest.raises(ValueError, match="total_gy"):
        Scheme(-1.0, 3)


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("fractions", [2.5, 10.0, True, False, 0, -3, np.float64(3.0), "10",
                                       None, np.bool_(True)])
def test_fractions_must_be_a_positive_integer(fractions):
    with pytest.raises(ValueError, match="fractions must be a positive integer") as err:
        eqd2(30.0, fractions, 2.0)
    assert repr(fractions) in str(err.value)


def test_numpy_integer_fractions_accepted():
    assert eqd2(30.0, np.int64(10), 2.0) == pytest.approx(37.5)


@pytest.mark.parametrize("dose", [-1.0, math.nan, math.inf, "30", True, None, [1.0, -0.5],
                                  1j])
def test_doses_must_be_finite_and_non_negative(dose):
    with pytest.raises(ValueError, match="total_dose"):
        eqd2(dose, 10, 2.0)


@pytest.mark.parametrize("ab", [0.0, -2.0, math.nan, math.inf, True, "2", None, [2.0]])
def test_alpha_beta_must_be_finite_and_positive(ab):
    with pytest.raises(ValueError, match="alpha_beta") as err:
        bed(30.0, 10, ab)
    assert repr(ab) in str(err.value)


def test_model_and_dt_are_explicit():
    with pytest.raises(ValueError, match="dt=None"):
        eqd2(30.0, 10, 2.0, model="LQ-L")
    with pytest.raises(ValueError, match="dt=6"):
        eqd2(30.0, 10, 2.0, model="LQ", dt=6.0)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="dt must be"):
            eqd2(30.0, 10, 2.0, model="LQ-L", dt=bad)
    with pytest.raises(ValueError, match="model must be 'LQ' or 'LQ-L', got 'lq'"):
        eqd2(30.0, 10, 2.0, model="lq")
    with pytest.raises(ValueError, match="quantity"):
        isoeffective_dose(30.0, 10, 2.0, quantity="eqd2")
    with pytest.raises(ValueError, match="target"):
        isoeffective_dose(-1.0, 10, 2.0)


def test_package_reexports():
    for name in ("bed", "eqd2", "isoeffective_dose", "max_total_dose", "max_dose_per_fraction",
                 "eqd2_dvh", "eqd2_grid", "Scheme", "parse_scheme", "Course",
                 "accumulate_courses", "RecoveryModel", "alpha_beta_sensitivity"):
        assert name in rtcheck.__all__ and hasattr(rtcheck, name), name


# -- properties (hypothesis) ----------------------------------------------------------------

doses = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
fractions_ = st.integers(min_value=1, max_value=40)
alpha_betas = st.floats(min_value=0.5, max_value=20.0)
dts = st.floats(min_value=0.5, max_value=20.0)
models = st.sampled_from([("LQ", None), ("LQ-L", 1.0), ("LQ-L", 3.0), ("LQ-L", 8.0)])


@settings(max_examples=200, deadline=None)
@given(doses, st.floats(min_value=1e-3, max_value=50.0), fractions_, alpha_betas, models)
def test_monotonic_in_dose(dose, step, n, ab, model):
    name, t = model
    for func in (bed, eqd2):
        assert func(dose + step, n, ab, name, t) > func(dose, n, ab, name, t)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0.0, max_value=1.0), fractions_, alpha_betas, dts)
def test_lq_l_equals_lq_up_to_dt(frac, n, ab, t):
    total = n * t * frac            # dose per fraction d = frac x dT <= dT
    assert bed(total, n, ab, "LQ-L", t) == pytest.approx(bed(total, n, ab), rel=1e-12,
                                                          abs=1e-12)
    if t >= 2.0:                    # same reference fractions, so the same EQD2 too
        assert eqd2(total, n, ab, "LQ-L", t) == pytest.approx(eqd2(total, n, ab), rel=1e-12,
                                                               abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(fractions_, alpha_betas, dts)
def test_lq_l_continuous_with_continuous_slope_at_dt(n, ab, t):
    h = 1e-6 * t
    at = bed(n * t, n, ab, "LQ-L", t)
    below, above = bed(n * (t - h), n, ab, "LQ-L", t), bed(n * (t + h), n, ab, "LQ-L", t)
    # value: n dT (1 + dT/ab) from both sides
    assert at == pytest.approx(n * t * (1 + t / ab), rel=1e-12)
    # slope per Gy of dose per fraction: n (1 + 2 dT/ab) on both sides (tangent continuation)
    slope = n * (1 + 2 * t / ab)
    assert (above - at) / h == pytest.approx(slope, rel=1e-5)
    assert (at - below) / h == pytest.approx(slope, rel=1e-5)


@settings(max_examples=300, deadline=None)
@given(doses, fractions_, alpha_betas, models, st.sampled_from(["BED", "EQD2"]))
def test_round_trips(dose, n, ab, model, quantity):
    name, t = model
    func = bed if quantity == "BED" else eqd2
    back = isoeffective_dose(func(dose, n, ab, name, t), n, ab, quantity, name, t)
    assert back == pytest.approx(dose, rel=1e-9, abs=1e-12)
    # and the other way: a target -> a dose -> the same target
    target = dose
    assert func(isoeffective_dose(target, n, ab, quantity, name, t), n, ab, name, t) == \
        pytest.approx(target, rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(doses, min_size=1, max_size=8), fractions_, alpha_betas, models)
def test_vectorised_equals_pointwise(values, n, ab, model):
    name, t = model
    np.testing.assert_allclose(eqd2(np.array(values), n, ab, name, t),
                               [eqd2(v, n, ab, name, t) for v in values], rtol=1e-15)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(doses, fractions_), min_size=1, max_size=5), alpha_betas)
def test_accumulation_adds_and_shares_sum_to_one(items, ab):
    acc = accumulate_courses([Course(d, n) for d, n in items], ab)
    assert acc.total_eqd2 == pytest.approx(sum(eqd2(d, n, ab) for d, n in items), rel=1e-12)
    if acc.total_eqd2 > 0:
        assert math.fsum(c.share for c in acc.courses) == pytest.approx(1.0, rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0.0, max_value=60.0), st.integers(min_value=1, max_value=99),
       fractions_)
def test_scheme_parse_round_trip(total, n, _):
    total = round(total, 2)
    assert parse_scheme(f"{total}Gy/{n}") == Scheme(total, n)
    assert parse_scheme(f"{total} Gy in {n} fractions") == Scheme(total, n)
