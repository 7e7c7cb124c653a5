"""``rtcheck convert``: the issue's examples, JSON output, and one-line errors (exit 2)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rtcheck.cli import main


def run(*args: str):
    return CliRunner().invoke(main, ["convert", *args])


def run_json(*args: str) -> dict:
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_scheme_prints_bed_and_eqd2_with_model_and_parameters():
    result = run("30Gy/10", "--alpha-beta", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # 30 Gy/10 at a/b 2: BED 30 x 2.5 = 75, EQD2 37.5; each row names model, a/b, n, d
    bed_row = next(line for line in lines if line.startswith("BED"))
    eqd2_row = next(line for line in lines if line.startswith("EQD2"))
    assert bed_row.split() == ["BED", "75.00", "LQ", "2", "10", "3.000"]
    assert eqd2_row.split() == ["EQD2", "37.50", "LQ", "2", "10", "3.000"]
    assert "model" in result.stdout and "a/b (Gy)" in result.stdout


def test_to_selects_one_quantity():
    doc = run_json("8Gy/1", "--alpha-beta", "10", "--to", "bed")
    assert [r["quantity"] for r in doc["results"]] == ["BED"]
    assert doc["results"][0]["value_gy"] == pytest.approx(14.4)  # 8 x 1.8


def test_json_records_everything():
    doc = run_json("30 Gy in 10", "--alpha-beta", "2")
    assert doc["command"] == "convert" and doc["mode"] == "scheme"
    assert doc["scheme"] == {"total_gy": 30.0, "fractions": 10, "dose_per_fraction_gy": 3.0}
    eqd2 = next(r for r in doc["results"] if r["quantity"] == "EQD2")
    assert eqd2 == {"quantity": "EQD2", "value_gy": pytest.approx(37.5), "total_dose_gy": 30.0,
                    "fractions": 10, "dose_per_fraction_gy": 3.0, "alpha_beta_gy": 2.0,
                    "model": "LQ", "dt_gy": None}


def test_isoeffective_dose_in_other_fractions():
    # BED 30 Gy/10 at a/b 10 = 39; 5 (d + d^2/10) = 39 -> d = (-10 + sqrt(412))/2 = 5.1489
    result = run("30Gy/10", "--alpha-beta", "10", "--fractions", "5")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("total dose"))
    assert row.split()[-5:] == ["25.74", "LQ", "10", "5", "5.149"]
    doc = run_json("30Gy/10", "--alpha-beta", "10", "--fractions", "5")
    assert doc["mode"] == "isoeffective"
    iso = doc["results"][0]["isoeffective"]
    assert iso["total_dose_gy"] == pytest.approx(25.744458, abs=1e-6)
    assert iso["fractions"] == 5


def test_courses_cumulative_share_and_interval():
    args = ("--course", "31Gy/10@2025-03-01", "--course", "12Gy/3@2026-03-01",
            "--alpha-beta", "2")
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "recovery: none" in result.stdout
    assert "365 d (12.0 mo)" in result.stdout
    doc = run_json(*args)
    acc = doc["accumulations"][0]
    # 31 Gy/10: 31 x 5.1/4 = 39.525; 12 Gy/3: 18; total 57.525; shares 0.687 / 0.313
    assert acc["total_eqd2_gy"] == pytest.approx(57.525)
    assert [c["share"] for c in acc["courses"]] == [pytest.approx(39.525 / 57.525),
                                                    pytest.approx(18 / 57.525)]
    assert acc["courses"][1]["interval_days"] == 365
    assert acc["recovery"] is None and acc["total_discounted_eqd2_gy"] is None


def test_recovery_is_printed_when_used():
    args = ("--course", "31Gy/10@2025-03-01", "--course", "12Gy/3@2026-03-01",
            "--alpha-beta", "2", "--recovery", "nieder2006")
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "Nieder 2006" in result.stdout and "1446-9" in result.stdout
    doc = run_json(*args)
    # 12 calendar months: the first course counts 50 %: 19.7625 + 18 = 37.7625
    assert doc["accumulations"][0]["total_discounted_eqd2_gy"] == pytest.approx(37.7625)
    assert doc["recovery"]["steps"] == [{"min_months": 6, "discount": 0.25},
                                        {"min_months": 12, "discount": 0.5}]


def test_alpha_beta_sensitivity_range():
    args = ("20.3Gy/3", "--alpha-beta", "0.87", "--alpha-beta", "2", "--alpha-beta", "3",
            "--to", "eqd2")
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "sensitivity" in result.stdout
    doc = run_json(*args)
    sens = doc["sensitivity"][0]
    d = 20.3 / 3
    # EQD2 = 20.3 (d + ab)/(2 + ab): largest at the smallest a/b
    assert sens["min_gy"] == pytest.approx(20.3 * (d + 3) / 5)
    assert sens["max_gy"] == pytest.approx(20.3 * (d + 0.87) / 2.87)


def test_lq_l_model():
    doc = run_json("24Gy/1", "--alpha-beta", "3", "--model", "lql", "--dt", "6")
    bed = next(r for r in doc["results"] if r["quantity"] == "BED")
    # 24 (1 + 12/3) - 36/3 = 108
    assert (bed["value_gy"], bed["model"], bed["dt_gy"]) == (pytest.approx(108.0), "LQ-L", 6.0)
    assert "LQ-L dT=6 Gy" in run("24Gy/1", "--alpha-beta", "3", "--model", "lql",
                                 "--dt", "6").stdout


def test_help_teaches_syntax_and_examples():
    result = run("--help")
    assert result.exit_code == 0
    for text in ("30Gy/10", "30 Gy in 10", "10x3Gy", "--fractions 5", "--course 31Gy/10@2025",
                 "--model lql --dt 6", "--alpha-beta 0.87 --alpha-beta 2", "nieder2006"):
        assert text in result.output, text


@pytest.mark.parametrize("args, needle", [
    (["30Gy/2.5", "--alpha-beta", "2"], "'30Gy/2.5'"),
    (["30Gy/10"], "--alpha-beta is required"),
    (["30Gy/10", "--alpha-beta", "0"], "alpha_beta must be a finite number > 0 Gy, got 0.0"),
    (["30Gy/10", "--alpha-beta", "nan"], "alpha_beta"),
    (["30Gy/10", "--alpha-beta", "abc"], "--alpha-beta"),
    (["30Gy/10", "--alpha-beta", "2", "--model", "lql"], "--dt"),
    (["30Gy/10", "--alpha-beta", "2", "--dt", "6"], "--dt is only used"),
    (["30Gy/10", "--alpha-beta", "2", "--model", "lql", "--dt", "0"], "dt must be"),
    (["30Gy/10", "--alpha-beta", "2", "--fractions", "0"], "--fractions"),
    (["30Gy/10", "--alpha-beta", "2", "--fractions", "2.5"], "--fractions"),
    (["30Gy/10", "--alpha-beta", "2", "--recovery", "nieder2006"], "--recovery"),
    (["--alpha-beta", "2"], "give a SCHEME"),
    (["30Gy/10", "--course", "8Gy/1", "--alpha-beta", "2"], "not both"),
    (["--course", "8Gy/1", "--alpha-beta", "2", "--to", "bed"], "--to bed"),
    (["--course", "31Gy/10@2025-13-01", "--alpha-beta", "2"], "2025-13-01"),
    (["--course", "8Gy/1@2026-01-01", "--course", "8Gy/1@2025-01-01", "--alpha-beta", "2"],
     "chronological"),
    (["--course", "8Gy/1", "--course", "8Gy/1", "--alpha-beta", "2", "--recovery",
      "nieder2006"], "needs every course's date"),
    (["30Gy/10", "--alpha-beta", "2", "--bogus"], "--bogus"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rtcheck: error: "), result.stderr
    assert needle in err[0]
    assert "Traceback" not in result.output
