"""Case files: one schema, TOML or JSON, validated strictly; errors name the file and the key."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rtcheck.case import CASE_KEYS, load_case
from rtcheck.cli import main
from rtcheck.errors import InputError

ROOT = Path(__file__).resolve().parents[1]

TOML = """
indication = "oligometastatic"
site = "spine"
vertebral_levels = "T11-L1"
start_date = 2026-03-09
karnofsky = 80
life_expectancy_months = 12.5
bilsky = 0
primary_controlled = true
previous_radiotherapy_dates = [2025-03-14, 2024-01-02]
[sins]
location = "junctional"
pain = "mechanical"
bone_lesion = "lytic"
alignment = "normal"
collapse = "none"
posterior_elements = "none"
[[systemic_treatments]]
drug = "Avastin"
last_dose = 2026-02-01
"""


def test_toml_and_json_give_the_same_facts(tmp_path):
    t = tmp_path / "case.toml"
    t.write_text(TOML)
    from_toml = load_case(t)
    doc = from_toml.as_dict()
    j = tmp_path / "case.json"
    j.write_text(json.dumps({**doc, "sins": {k: v["choice"] for k, v in doc["sins"]["items"].items()}}))
    from_json = load_case(j)
    assert from_json.as_dict() == doc
    assert from_toml.get("vertebral_levels")[:2] == (18, 20)  # C1 = 1 ... T1 = 8, T11 = 18, L1 = 20
    assert from_toml.get("previous_radiotherapy_dates") == (dt.date(2024, 1, 2), dt.date(2025, 3, 14))
    assert from_toml.get("bilsky") == "0"
    assert from_toml.get("sins").total == 8
    assert from_toml.get("systemic_treatments")[0].drug == "Avastin"


@pytest.mark.parametrize("text, key, problem", [
    ('karnofsky = 170', "karnofsky", "must be between 0 and 100 (%), got 170"),
    ('karnofsky = 75.5', "karnofsky", "must be a whole number"),
    ('karnofsky = "80"', "karnofsky", "must be a whole number"),
    ('primary_controlled = "yes"', "primary_controlled", "must be true or false"),
    ('bilsky = "1d"', "bilsky", '"1d" is not one of 0, 1a, 1b, 1c, 2, 3'),
    ('vertebral_levels = "T13"', "vertebral_levels", "not a vertebral level"),
    ('start_date = "09/03/2026"', "start_date", "must be a date YYYY-MM-DD"),
    ('previous_radiotherapy_dates = "2025-01-01"', "previous_radiotherapy_dates", "must be a list"),
    ('colour = "red"', "colour", "unknown key"),
    ('systemic_treatments = [{ drug = "Avastin", dose = 5 }]', "systemic_treatments",
     "unknown key(s) dose"),
    ('systemic_treatments = [{ last_dose = 2026-01-01 }]', "systemic_treatments",
     "drug: must be the drug's name"),
    ('indication = "palliative"', "indication", "is not one of pain"),
])
def test_a_bad_key_is_named_with_its_problem(tmp_path, text, key, problem):
    path = tmp_path / "case.toml"
    path.write_text(text + "\n")
    with pytest.raises(InputError) as err:
        load_case(path)
    assert str(err.value).startswith(f"{path}: {key}")
    assert problem in str(err.value)


def test_every_problem_is_listed(tmp_path):
    path = tmp_path / "case.toml"
    path.write_text('karnofsky = -1\nmetastases = 0\n')
    with pytest.raises(InputError, match=r"2 problems:\n  karnofsky: .*\n  metastases: "):
        load_case(path)


@pytest.mark.parametrize("name, content, problem", [
    ("case.json", '{"karnofsky": NaN}', "not valid JSON"),
    ("case.json", '[1, 2]', "a table of facts at its top level"),
    ("case.toml", 'karnofsky = ', "not valid TOML"),
    ("case.yaml", 'karnofsky: 80', "must be .toml or .json"),
])
def test_bad_files(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=problem):
        load_case(path)


def test_cli_bad_case_file_is_one_line_exit_2(tmp_path):
    path = tmp_path / "case.toml"
    path.write_text("karnofsky = 170\n")
    res = CliRunner().invoke(main, ["check", str(ROOT / "sample_plans" / "spine-sbrt-27Gy3"),
                                    "--case", str(path)])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert f"{path}: karnofsky: must be between 0 and 100" in res.output


def test_every_key_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Case files"):]
    for spec in CASE_KEYS:
        assert f"`{spec.key}`" in section, spec.key


def test_cli_case_file_toml_and_json(tmp_path):
    plan = str(ROOT / "sample_plans" / "single-8Gy1")
    case = ROOT / "sample_plans" / "single-8Gy1.case.toml"
    res = CliRunner().invoke(main, ["check", plan, "--case", str(case), "--format", "json"])
    doc = json.loads(res.output)
    assert res.exit_code == 1 and doc["verdict"] == "FAIL"
    assert doc["protocols"] == ["bone-metastases-2026", "bone-metastases-case-2026"]
    drugs = [f for f in doc["findings"] if f["rule"] == "case.systemic_treatments"]
    assert [(f["metric"], f["status"]) for f in drugs] == [("Avastin", "FAIL")]
    assert doc["facts"]["indication"] == "pain"  # from the case file
    as_json = tmp_path / "case.json"
    from rtcheck.tomlfile import parse_toml  # tomllib or tomli (Python 3.10)

    as_json.write_text(json.dumps(parse_toml(case.read_bytes(), str(case)), default=str))
    again = json.loads(CliRunner().invoke(main, ["check", plan, "--case", str(as_json),
                                                 "--format", "json"]).output)
    assert [f["status"] for f in again["findings"]] == [f["status"] for f in doc["findings"]]
    table = CliRunner().invoke(main, ["check", plan, "--case", str(case)]).output
    assert "Measured on the contours: tumour-cord distance 9.5 mm (GTV (gtv) to" in table


SINS_ITEMS_TEXT = ('[sins]\nlocation = "{}"\npain = "mechanical"\nbone_lesion = "lytic"\n'
                   'alignment = "normal"\ncollapse = "none"\nposterior_elements = "none"\n')


@pytest.mark.parametrize("levels, location, ok", [
    ("L1", "junctional", True),  # T11-L1 (Tableau 10)
    ("L1", "semi-rigid", False),  # 1 point where the table gives 3: a SINS 2 points short
    ("T12", "mobile", False),
    ("T8", "semi-rigid", True),  # T3-T10
    ("T1", "junctional", True),  # C7-T2
    ("L3", "mobile", True),  # L2-L4
    ("S3", "rigid", True),  # S2-S5
    ("S1", "rigid", False),  # L5-S1 is junctional
    ("T10-T11", "semi-rigid", True),  # a span: either row it covers
    ("T10-T11", "junctional", True),
    ("T10-T11", "mobile", False),
])
def test_the_sins_location_must_be_the_lesions(tmp_path, levels, location, ok):
    path = tmp_path / "case.toml"
    path.write_text(f'vertebral_levels = "{levels}"\n' + SINS_ITEMS_TEXT.format(location))
    if ok:
        assert load_case(path).get("sins").total == \
            {"junctional": 3, "mobile": 2, "semi-rigid": 1, "rigid": 0}[location] + 5
        return
    with pytest.raises(InputError) as err:
        load_case(path)
    assert str(err.value).startswith(f"{path}: sins.location: '{location}' is not the "
                                     f"location of vertebral level(s) {levels}")


def test_the_sins_location_must_agree_with_the_level_given_as_an_option(tmp_path):
    path = tmp_path / "case.toml"
    path.write_text(SINS_ITEMS_TEXT.format("semi-rigid"))  # no level in the file
    plan = ROOT / "sample_plans" / "spine-sbrt-27Gy3"
    res = CliRunner().invoke(main, ["check", str(plan), "--case", str(path),
                                    "--vertebral-level", "L1"])
    assert res.exit_code == 2, res.output
    assert f"{path}: sins.location: 'semi-rigid' is not the location of vertebral level(s) " \
           "L1" in res.output and "--vertebral-level" in res.output
    res = CliRunner().invoke(main, ["check", str(plan), "--case", str(path),
                                    "--vertebral-level", "T8", "--format", "json"])
    assert res.exit_code in (1, 3, 5), res.output


@pytest.mark.parametrize("case_text", [SINS_ITEMS_TEXT.format("semi-rigid"), "sins = 5\n",
                                       'vertebral_levels = "T8"\n'])
def test_a_bad_vertebral_level_option_with_a_case_is_one_input_error(tmp_path, case_text):
    """Not a ValueError: the batch and the node read it as bad input too (review)."""
    from rtcheck.case.facts import merge_case

    path = tmp_path / "case.toml"
    path.write_text(case_text)
    with pytest.raises(InputError, match="--vertebral-level: .*T13.* is not a vertebral level"):
        merge_case(load_case(path), None, None, "T13")
