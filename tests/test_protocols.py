"""Protocol files: the shipped rules carry the referential's and TG-101's numbers, with their
sources; the schema validator rejects malformed files naming the file, the rule and the problem.

Expected numbers are typed here from the sources (referential Tableau 5, sections 2.2.2, 2.2.4
and 4; TG-101 Table III), not read back from the TOML files.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.protocols import TG101  # TG-101 Table III, shared with test_checker

from rtcheck.cli import main
from rtcheck.errors import InputError
from rtcheck.rules.protocols import (
    Limit,
    ProtocolError,
    Scheme,
    load_protocol,
    parse_vertebral_level,
    shipped_protocols,
)


@pytest.fixture(scope="module")
def bone():
    return load_protocol("bone-metastases-2026")


@pytest.fixture(scope="module")
def tg101():
    return load_protocol("tg101")


# ---------------------------------------------------------------------------- shipped files


def test_shipped_protocols_are_the_referential_its_case_checks_and_tg101():
    assert [p.id for p in shipped_protocols()] == ["bone-metastases-2026",
                                                   "bone-metastases-case-2026", "tg101"]
    assert all(p.shipped for p in shipped_protocols())


@pytest.mark.parametrize("pid", ["bone-metastases-2026", "bone-metastases-case-2026", "tg101"])
def test_every_shipped_rule_is_sourced_and_states_its_radiobiology(pid):
    proto = load_protocol(pid)
    assert proto.source and proto.title and proto.version
    for rule in proto.rules:
        assert rule.source.strip(), rule.id
        assert rule.cites and all(c.strip() for c in rule.cites), rule.id
        assert rule.description.strip(), rule.id
        assert rule.severity in ("FAIL", "WARN"), rule.id
        converts = (rule.kind == "reirradiation" and rule.quantity != "interval_months") or \
            (rule.kind == "fractionation" and rule.biological_equivalent) or \
            (rule.kind == "dose_limit" and rule.convert is not None)
        if converts:
            assert rule.alpha_beta is not None and rule.alpha_beta > 0 and rule.model == "LQ", rule.id
        else:
            assert rule.alpha_beta is None and rule.model is None, rule.id
        if rule.kind in ("dose_limit", "warning") or (rule.kind == "reirradiation" and converts):
            assert rule.role, rule.id


def test_referential_source_and_licence(bone):
    assert "Confavreux C" in bone.source and "2026" in bone.source
    assert "CC BY-NC-ND 4.0" in bone.licence


def _pairs(entries):
    """(dose, fractions) of a scheme, (dose_min, dose_max, fractions_min, fractions_max) of a range."""
    return [(s.dose, s.fractions) if isinstance(s, Scheme)
            else (s.dose_min, s.dose_max, s.fractions_min, s.fractions_max) for s in entries]


def test_tableau5_schemes(bone):
    # (recommended, other, exceptional) as (dose Gy, fractions), from Tableau 5; exceptional also
    # from section 2.1 and Tableau 7 for cord compression (8 Gy/1 and the 8-10 Gy/1 range).
    expected = {
        "pain": ([(30, 10), (20, 5), (8, 1)], [(6, 1)], []),
        "pain-fracture-risk": ([(30, 10)], [(20, 5)], [(8, 1)]),
        "post-operative": ([(20, 5), (30, 10)], [(8, 1)], []),
        "cord-compression": ([(30, 10)], [(20, 5)], [(8, 1), (8, 10, 1, 1)]),
        "reirradiation": ([(35, 5), (27, 3)], [(20, 5)], [(8, 1)]),
        "oligometastatic": ([(35, 7), (27, 3)], [], []),
    }
    rules = {r.indication: r for r in bone.rules_of_kind("fractionation")}
    assert set(rules) == set(expected)
    for ind, (rec, oth, exc) in expected.items():
        r = rules[ind]
        assert r.id == f"fractionation.{ind}"
        assert _pairs(r.recommended) == rec, ind
        assert _pairs(r.other) == oth, ind
        assert _pairs(r.exceptional) == exc, ind
        assert r.unit == "Gy" and r.severity == "FAIL"
        assert r.schemes_source == "Tableau 5"


def test_cord_compression_exceptional_cites_section_2_1_and_tableau_7(bone):
    first, second = bone.rule("fractionation.cord-compression").exceptional
    assert first.source == "section 2.1" and "mauvais pronostic" in first.quote
    assert second.source == "Tableau 7" and "exceptionnellement 8-10Gy" in second.quote


def test_biological_equivalent_only_where_the_table_says_so(bone):
    with_equivalent = {r.indication for r in bone.rules_of_kind("fractionation")
                       if r.biological_equivalent}
    assert with_equivalent == {"reirradiation", "oligometastatic"}


def test_biological_equivalent_rows_match_the_referential_text(referential):
    """The rows of Tableau 5 whose text says "équivalent biologique" are exactly those two."""
    text = referential.read_text(encoding="utf-8")
    table = text[text.index("Indication\tFractionnement recommandé"):text.index("Tableau 5 –")]
    rows = [line for line in table.splitlines()[1:] if line.strip()]
    marked = [row.split("\t")[0] for row in rows if "équivalent biologique" in row.lower()]
    assert marked == ["Ré-irradiation", "Cancer oligométastatique (objectif ablatif)"]
    assert "35 Gy en 7 fractions" in table  # the value kept (see the discrepancy note)


def test_bed10_spans_of_the_biological_equivalent(bone):
    # BED10 = D (1 + d/10): 27/3 -> 27 x 1.9 = 51.3; 35/5 -> 35 x 1.7 = 59.5; 35/7 -> 35 x 1.5 = 52.5
    r = bone.rule("fractionation.reirradiation")
    assert r.alpha_beta == 10 and r.model == "LQ"
    assert r.bed_span() == pytest.approx((51.3, 59.5))
    o = bone.rule("fractionation.oligometastatic")
    assert o.bed_span() == pytest.approx((51.3, 52.5))
    assert bone.rule("fractionation.pain").bed_span() is None


def test_oligometastatic_discrepancy_is_flagged_not_fixed(bone):
    r = bone.rule("fractionation.oligometastatic")
    assert (35.0, 7) in [(s.dose, s.fractions) for s in r.recommended]
    assert "DISCREPANCY" in r.notes and "2.2.2" in r.notes
    raw = Path(bone.path).read_text(encoding="utf-8")
    assert "DISCREPANCY" in raw.split('id = "fractionation.oligometastatic"')[1].split("[[rules]]")[0]


def test_sbrt_ranges_section_2_2_2(bone):
    expected = {
        "spine": [(18, 24, 1, 2), (27, 30, 3, 3), (30, 35, 5, 5)],
        "sacrum": [(24, 40, 3, 5)],
        "extraspinal": [(15, 25, 1, 1), (24, 50, 3, 5)],
    }
    rules = {r.site: r for r in bone.rules_of_kind("sbrt_prescription_range")}
    assert set(rules) == set(expected)
    for site, ranges in expected.items():
        got = [(d.dose_min, d.dose_max, d.fractions_min, d.fractions_max) for d in rules[site].ranges]
        assert got == ranges, site
        assert rules[site].alpha_beta is None
    assert rules["spine"].warn_fractions == (1,) and "2.2.2" in rules["spine"].warn_reason


def test_first_course_cord_dmax_section_2_2_4(bone):
    r = bone.rule("sbrt-cord-dmax")
    # Sahgal 2013 set these on the thecal sac point maximum: the sac is the rule's structure,
    # the cord (and a cord PRV) are read as well, the sac / cauda equina below the conus.
    assert (r.role, r.metric, r.unit, r.severity) == ("thecal_sac", "Dmax", "Gy", "FAIL")
    assert r.also_roles == ("spinal_cord", "spinal_cord_prv")
    assert r.below_conus_roles == ("thecal_sac", "cauda_equina")
    assert (r.technique, r.course, r.extent_margin_mm) == ("sbrt", "first", 5.0)
    assert set(r.show) == {"D0.035cc", "D0.03cc"}
    assert [(lim.fractions, lim.limit, lim.operator) for lim in r.limits] == [
        (1, 12.4, "<="), (2, 17.0, "<="), (3, 20.3, "<="), (4, 23.0, "<="), (5, 25.3, "<=")]
    assert r.limit_for(1).warn_up_to == 14.0
    assert all(lim.warn_up_to is None for lim in r.limits[1:])
    assert r.fraction_span == (1, 5)
    assert any("Sahgal" in c and "2019" in c for c in r.cites)


def test_cord_limits_are_iso_effective_at_about_44_6_gy_eqd2(bone):
    """Independent check of the transcription: Sahgal 2013's limits are ~44.6 Gy EQD2 (a/b 2)."""
    for lim in bone.rule("sbrt-cord-dmax").limits:
        d = lim.limit / lim.fractions
        eqd2 = lim.limit * (d + 2.0) / 4.0
        assert eqd2 == pytest.approx(44.6, abs=0.2), lim


def test_reirradiation_rules_section_4(bone):
    rules = {r.quantity: r for r in bone.rules_of_kind("reirradiation")
             if r.technique == "sbrt"}
    cum = rules["cumulative_eqd2_max"]
    assert (cum.alpha_beta, cum.role, cum.metric) == (2.0, "thecal_sac", "Dmax")
    for r in rules.values():  # SBRT after one conventional course (Sahgal 2012, HyTEC)
        assert (r.technique, r.prior_technique, r.max_prior_courses) == ("sbrt", "conventional", 1)
    assert (cum.limits[0].limit, cum.limits[0].operator, cum.limits[0].warn_up_to) == (70.0, "<", 75.0)
    course = rules["course_eqd2_max"]
    assert (course.alpha_beta, course.limits[0].limit, course.limits[0].operator) == (2.0, 25.0, "<")
    share = rules["course_share"]
    assert (share.unit, share.limits[0].limit, share.limits[0].operator) == ("ratio", 0.5, "<=")
    interval = rules["interval_months"]
    assert (interval.unit, interval.limits[0].limit, interval.limits[0].operator) == ("months", 5.0, ">=")
    assert interval.alpha_beta is None and interval.role is None
    for r in rules.values():
        assert "section 4" in r.source
        assert any("2012" in c for c in r.cites)


def test_conventional_reirradiation_rules_nieder_2006(bone):
    rules = {r.quantity: r for r in bone.rules_of_kind("reirradiation")
             if r.technique == "conventional"}
    assert rules["cumulative_bed_max"].limits[0].limit == 135.5  # Gy2, = 67.75 Gy EQD2
    assert rules["each_course_bed_max"].limits[0].limit == 98.0  # Gy2, = 49 Gy EQD2
    assert rules["interval_months"].limits[0].limit == 6.0
    assert 135.5 / 2 == 67.75 and 98 / 2 == 49  # BED at a/b 2 -> EQD2 = BED / (1 + 2/2)
    for r in rules.values():
        assert any("Nieder" in c and "2006" in c for c in r.cites)


def test_conventional_cord_rule_quantec(bone):
    r = bone.rule("conventional-cord-dmax")
    assert (r.role, r.metric, r.convert, r.alpha_beta, r.model) == (
        "spinal_cord", "Dmax", "EQD2", 0.87, "LQ")
    lim = r.limit_for(10)
    assert (lim.limit, lim.operator, lim.warn_up_to, lim.fractions) == (50.0, "<=", 54.0, None)
    assert r.limit_for(1) is lim and r.limit_for(37) is lim
    assert (r.defer_to, r.course) == ("sbrt-cord-dmax", "first")
    assert any("Kirkpatrick" in c for c in r.cites) and any("Schultheiss" in c for c in r.cites)
    assert bone.conus_lowest_level == "L3" and "Saifuddin" in bone.conus_source


def test_esophagus_warning(bone):
    r = bone.rule("esophagus-c5-t10")
    assert (r.kind, r.role, r.vertebral_levels, r.severity) == ("warning", "esophagus", ("C5", "T10"), "WARN")


@pytest.mark.parametrize("role,volume,one,three,five", TG101)
def test_tg101_table(tg101, role, volume, one, three, five):
    by_metric = {r.metric: r for r in tg101.rules if r.role == role}
    vol_rule = by_metric[f"D{volume:g}cc"]
    max_rule = by_metric["Dmax"]
    assert [(lim.fractions, lim.limit) for lim in vol_rule.limits] == [
        (1, one[0]), (3, three[0]), (5, five[0])]
    assert [(lim.fractions, lim.limit) for lim in max_rule.limits] == [
        (1, one[1]), (3, three[1]), (5, five[1])]
    assert all(lim.operator == "<" for lim in vol_rule.limits)
    assert all(lim.operator == "<=" for lim in max_rule.limits)
    assert set(max_rule.show) == {"D0.035cc", "D0.03cc"}
    assert "max point" in max_rule.source.lower()


def test_tg101_cord_1_2cc_and_errata(tg101):
    r = tg101.rule("tg101.spinal-cord.d1.2cc")
    assert [(lim.fractions, lim.limit) for lim in r.limits] == [(1, 7.0), (3, 12.3), (5, 14.5)]
    assert "4078" in tg101.source and "errata" in tg101.notes.lower()
    assert "2012;39(1):563" in tg101.notes


# ---------------------------------------------------------------------------- limits


@pytest.mark.parametrize("value,status", [
    (12.4, "PASS"), (12.41, "WARN"), (14.0, "WARN"), (14.01, "FAIL")])
def test_one_fraction_cord_band(bone, value, status):
    assert bone.rule("sbrt-cord-dmax").limit_for(1).status(value, "FAIL") == status


@pytest.mark.parametrize("value,status", [
    (69.99, "PASS"), (70.0, "WARN"), (75.0, "WARN"), (75.01, "FAIL")])
def test_cumulative_no_consensus_band(bone, value, status):
    rule = bone.rule("reirradiation.cumulative-cord-eqd2")
    assert rule.limit_for().status(value, rule.severity) == status


def test_lower_bound_limit():
    lim = Limit(5.0, ">=")
    assert lim.status(5.0, "FAIL") == "PASS" and lim.status(4.99, "FAIL") == "FAIL"
    with pytest.raises(ValueError):
        lim.status(float("nan"), "FAIL")


# ---------------------------------------------------------------------------- vertebrae


@pytest.mark.parametrize("text,index", [
    ("C1", 1), ("C5", 5), ("C7", 7), ("T1", 8), ("T10", 17), ("D10", 17), ("Th10", 17),
    ("t12", 19), ("L1", 20), ("L5", 24), ("S1", 25), ("S5", 29)])
def test_vertebral_levels(text, index):
    assert parse_vertebral_level(text) == index


@pytest.mark.parametrize("text", ["C8", "T13", "L6", "X2", "T", "10"])
def test_bad_vertebral_levels(text):
    with pytest.raises(ValueError):
        parse_vertebral_level(text)


# ---------------------------------------------------------------------------- loading


def test_load_by_id_stem_and_path(bone):
    assert load_protocol("bone-metastases-2026").id == bone.id
    assert load_protocol(Path(bone.path)).id == bone.id
    assert load_protocol(bone.path).rules == bone.rules


def test_unknown_protocol_names_the_shipped_ones():
    with pytest.raises(InputError, match="shipped protocols: bone-metastases-2026, bone-metastases-case-2026, tg101"):
        load_protocol("nope")


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_protocol(tmp_path / "absent.toml")


# ---------------------------------------------------------------------------- validation

GOOD = """\
schema_version = 1
id = "mine"
title = "My centre"
version = "1"
source = "Local protocol 2026"

[[rules]]
id = "cord"
kind = "dose_limit"
role = "spinal_cord"
metric = "Dmax"
description = "cord"
source = "local table 1"
alpha_beta = "none"
unit = "Gy"
severity = "FAIL"
operator = "<="
limits = [{ fractions = 5, limit = 25.3 }]

[[rules]]
id = "reirr"
kind = "reirradiation"
quantity = "cumulative_eqd2_max"
role = "spinal_cord"
metric = "Dmax"
description = "cumulative"
source = "local table 2"
alpha_beta = 2.0
model = "LQ"
unit = "Gy"
severity = "FAIL"
operator = "<"
limit = 70.0
"""


def _write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _problems(tmp_path: Path, text: str) -> tuple[str, list[str]]:
    path = _write(tmp_path, text)
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    assert str(path) in str(info.value)  # the file is named
    return str(info.value), info.value.problems


def test_good_user_protocol_loads(tmp_path):
    proto = load_protocol(_write(tmp_path, GOOD))
    assert proto.id == "mine" and not proto.shipped
    assert [r.id for r in proto.rules] == ["cord", "reirr"]
    assert proto.rule("reirr").alpha_beta == 2.0 and proto.rule("cord").alpha_beta is None


@pytest.mark.parametrize("old,new,expected", [
    ('severity = "FAIL"\noperator = "<="', 'severity = "FAIL"\nlimt = 3\noperator = "<="',
     r"rule 'cord': unknown key 'limt'"),
    ('unit = "Gy"\nseverity = "FAIL"\noperator = "<="',
     'unit = "cGy"\nseverity = "FAIL"\noperator = "<="',
     r"rule 'cord': unit 'cGy' not allowed here \(expected 'Gy'\)"),
    ('source = "local table 1"\n', '', r"rule 'cord': missing 'source'"),
    ('alpha_beta = 2.0\nmodel = "LQ"\n', '',
     r"rule 'reirr': missing alpha_beta: this rule converts doses"),
    ('alpha_beta = 2.0\nmodel = "LQ"\n', 'alpha_beta = "none"\n',
     r"rule 'reirr': missing alpha_beta"),
    ('alpha_beta = 2.0\nmodel = "LQ"\n', 'alpha_beta = 2.0\n', r"rule 'reirr': missing 'model'"),
    ('alpha_beta = "none"\nunit = "Gy"\nseverity = "FAIL"\noperator = "<="',
     'unit = "Gy"\nseverity = "FAIL"\noperator = "<="',
     r"rule 'cord': missing alpha_beta: write alpha_beta = \"none\""),
    ('model = "LQ"', 'model = "LQL"', r"rule 'reirr': model 'LQL' not allowed"),
    ('alpha_beta = "none"\nunit = "Gy"\nseverity = "FAIL"\noperator = "<="',
     'alpha_beta = 2.0\nunit = "Gy"\nseverity = "FAIL"\noperator = "<="',
     r"rule 'cord': alpha_beta = 2.0 but this rule never converts doses"),
    ('role = "spinal_cord"\nmetric = "Dmax"\ndescription = "cord"',
     'role = "spinalcord"\nmetric = "Dmax"\ndescription = "cord"',
     r"rule 'cord': role 'spinalcord' is not in the structure-role table"),
    ('metric = "Dmax"\ndescription = "cord"', 'metric = "D95"\ndescription = "cord"',
     r"rule 'cord': metric: cannot read metric 'D95'"),
    ('metric = "Dmax"\ndescription = "cord"', 'metric = "V20Gy[cc]"\ndescription = "cord"',
     r"rule 'cord': metric 'V20Gy\[cc\]': a limit needs a dose metric in Gy"),
    ('limits = [{ fractions = 5, limit = 25.3 }]',
     'limits = [{ fractions = 5, limit = 25.3, warn_up_to = 20.0 }]',
     r"rule 'cord', limits\[0\]: warn_up_to \(20\) must be above the limit \(25.3\)"),
    ('limits = [{ fractions = 5, limit = 25.3 }]',
     'limits = [{ fractions = 5, limit = 25.3 }, { fractions = 5, limit = 20 }]',
     r"a second limit for 5 fractions"),
    ('limits = [{ fractions = 5, limit = 25.3 }]', 'limits = [{ fractions = 0, limit = 25.3 }]',
     r"fractions must be a whole number >= 1"),
    ('severity = "FAIL"\noperator = "<"', 'severity = "ERROR"\noperator = "<"',
     r"rule 'reirr': severity 'ERROR' not allowed"),
    ('quantity = "cumulative_eqd2_max"', 'quantity = "cumulative"',
     r"rule 'reirr': quantity 'cumulative' not allowed"),
    ('id = "reirr"', 'id = "cord"', r"rule 'cord': duplicate rule id"),
    ('kind = "reirradiation"', 'kind = "limit"', r"rule 'reirr': kind 'limit' not allowed"),
    ('source = "Local protocol 2026"\n', '', r"top level: missing 'source'"),
    ('schema_version = 1', 'schema_version = 2', r"schema_version must be 1"),
    ('title = "My centre"', 'title = "My centre"\nauthor = "me"', r"top level: unknown key 'author'"),
])
def test_schema_errors_name_the_rule_and_the_problem(tmp_path, old, new, expected):
    assert old in GOOD, old
    message, problems = _problems(tmp_path, GOOD.replace(old, new, 1))
    assert re.search(expected, message), message


def test_every_problem_is_listed(tmp_path):
    text = GOOD.replace('unit = "Gy"\nseverity = "FAIL"\noperator = "<="',
                        'unit = "cGy"\nseverity = "FAIL"\noperator = "<="')
    text = text.replace('alpha_beta = 2.0\nmodel = "LQ"\n', '')
    message, problems = _problems(tmp_path, text)
    assert len(problems) == 2 and message.startswith(f"{tmp_path / 'mine.toml'}: 2 problems")


def test_invalid_toml(tmp_path):
    message, _ = _problems(tmp_path, GOOD + "\n[[rules]\n")
    assert "not valid TOML" in message


FRACTIONATION = GOOD + """
[[rules]]
id = "frac"
kind = "fractionation"
indication = "pain"
description = "pain"
source = "local table 3"
alpha_beta = "none"
unit = "Gy"
severity = "FAIL"
recommended = [{ dose = 30.0, fractions = 10 }]
"""


def test_fractionation_rule_validation(tmp_path):
    assert load_protocol(_write(tmp_path, FRACTIONATION)).rule("frac").bed_span() is None
    message, _ = _problems(tmp_path, FRACTIONATION.replace(
        'recommended = [{ dose = 30.0, fractions = 10 }]',
        'recommended = [{ dose = 30.0, fractions = 10 }]\nbiological_equivalent = true'))
    assert "rule 'frac': missing alpha_beta" in message
    message, _ = _problems(tmp_path, FRACTIONATION.replace(
        '{ dose = 30.0, fractions = 10 }', '{ dose = 30.0, fractions = 10, gy = 1 }'))
    assert "rule 'frac', recommended[0]: unknown key 'gy'" in message
    message, _ = _problems(tmp_path, FRACTIONATION.replace(
        '{ dose = 30.0, fractions = 10 }', '{ dose = -3, fractions = 10 }'))
    assert "dose must be > 0" in message


def test_warning_rule_validation(tmp_path):
    text = GOOD + """
[[rules]]
id = "oeso"
kind = "warning"
role = "esophagus"
vertebral_levels = ["T10", "C5"]
message = "careful"
description = "oesophagus"
source = "local"
alpha_beta = "none"
severity = "WARN"
"""
    message, _ = _problems(tmp_path, text)
    assert "rule 'oeso': vertebral_levels" in message and "below the last" in message


def test_custom_role_needs_a_roles_table(tmp_path):
    from rtcheck.rules.roles import RoleMap

    path = _write(tmp_path, GOOD.replace('role = "spinal_cord"\nmetric = "Dmax"\ndescription = "cord"',
                                         'role = "cord_surrogate"\nmetric = "Dmax"\ndescription = "cord"'))
    with pytest.raises(ProtocolError, match="cord_surrogate"):
        load_protocol(path)
    roles = RoleMap.shipped().extended({"cord_surrogate": ["CORD_SURR"]})
    assert load_protocol(path, roles=roles).rule("cord").role == "cord_surrogate"


# ---------------------------------------------------------------------------- CLI


def test_cli_lists_shipped_protocols_and_rules():
    result = CliRunner().invoke(main, ["protocols"])
    assert result.exit_code == 0, result.output
    for text in ("bone-metastases-2026", "tg101", "sbrt-cord-dmax", "reirradiation.interval",
                 "a/b=2", "tg101.spinal-cord.dmax"):
        assert text in result.output


def test_cli_list_json():
    result = CliRunner().invoke(main, ["protocols", "--format", "json"])
    data = json.loads(result.output)
    ids = [p["id"] for p in data["protocols"]]
    assert ids == ["bone-metastases-2026", "bone-metastases-case-2026", "tg101"]
    rule = {r["id"]: r for r in data["protocols"][0]["rules"]}["reirradiation.course-cord-eqd2"]
    assert rule["alpha_beta"] == 2.0 and rule["model"] == "LQ" and rule["role"] == "thecal_sac"


def test_cli_show_table_and_json():
    result = CliRunner().invoke(main, ["protocols", "show", "bone-metastases-2026"])
    assert result.exit_code == 0
    assert "DISCREPANCY" in result.output and "alpha/beta: 2 Gy, model LQ" in result.output
    result = CliRunner().invoke(main, ["protocols", "show", "tg101", "--format", "json"])
    data = json.loads(result.output)
    assert data["id"] == "tg101" and len(data["rules"]) == 29
    assert all(r["alpha_beta"] == "none" for r in data["rules"])


def test_cli_show_bad_file_exits_2_naming_file_and_rule(tmp_path):
    path = _write(tmp_path, GOOD.replace('unit = "Gy"\nseverity = "FAIL"\noperator = "<="',
                                         'unit = "cGy"\nseverity = "FAIL"\noperator = "<="'))
    result = CliRunner().invoke(main, ["protocols", "show", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"rtcheck: error: {path}: rule 'cord': unit 'cGy'" in result.output


def test_the_shipped_tables_read_the_same_with_the_standard_library():
    """rtcheck reads TOML with tomli (the standard tomllib, compiled: faster); every shipped
    table must be the same document for the standard library's own reader."""
    import sys
    from importlib import resources

    from rtcheck.tomlfile import parse_toml

    if sys.version_info < (3, 11):
        pytest.skip("tomllib is in the standard library from Python 3.11")
    import tomllib

    root = resources.files("rtcheck.constraints")
    files = [r for r in root.iterdir() if r.name.endswith(".toml")]
    assert len(files) >= 5
    for res in files:
        raw = res.read_bytes()
        assert parse_toml(raw, res.name) == tomllib.loads(raw.decode("utf-8")), res.name
