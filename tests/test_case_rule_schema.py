"""The case rule kinds in a protocol file: validated strictly, each problem naming the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtcheck.rules.protocols import ProtocolError, load_protocol

ROOT = Path(__file__).resolve().parents[1]
HEADER = """schema_version = 1
id = "x"
title = "t"
version = "1"
source = "s"
"""
RULE = """[[rules]]
id = "r"
kind = "case"
description = "d"
source = "s"
cites = ["c"]
alpha_beta = "none"
severity = "WARN"
message = "m"
"""


def load(tmp_path, body: str):
    path = tmp_path / "p.toml"
    path.write_text(HEADER + RULE + body)
    return load_protocol(path)


def test_a_good_case_rule(tmp_path):
    proto = load(tmp_path, 'require = [{ fact = "karnofsky", op = ">=", value = 70 }]\n'
                           'technique = "sbrt"\nsites = ["spine"]\n')
    (rule,) = proto.rules
    assert rule.summary() == "karnofsky >= 70"
    assert (rule.technique, rule.sites, rule.facts) == ("sbrt", ("spine",), ("karnofsky",))


@pytest.mark.parametrize("body, problem", [
    ('', "give exactly one of require, flag_if_any, flag_if_all (found none)"),
    ('require = [{ fact = "karnofsky", op = ">=", value = 70 }]\n'
     'flag_if_any = [{ fact = "karnofsky", op = "<", value = 70 }]\n', "found require, flag_if_any"),
    ('require = [{ fact = "kps", op = ">=", value = 70 }]\n', 'fact "kps" unknown'),
    ('require = [{ fact = "karnofsky", op = "in", value = 70 }]\n', 'op "in" not allowed for karnofsky'),
    ('require = [{ fact = "karnofsky", op = ">=", value = "70" }]\n', "compares with a number"),
    ('require = [{ fact = "bilsky", op = "in", value = ["1d"] }]\n', "in needs a list of bilsky values"),
    ('require = [{ fact = "primary_controlled", op = "==", value = 1 }]\n', "is true or false"),
    ('require = [{ fact = "vertebral_levels", op = "overlaps", value = ["L1", "T10"] }]\n',
     "the first vertebra is below the last"),
    ('require = [{ fact = "karnofsky", op = ">=" }]\n', "missing value"),
    ('require = [{ fact = "karnofsky", op = ">=", value = 70, colour = 1 }]\n', "unknown key(s) colour"),
    ('flag_if_any = [{ fact = "sins", op = ">=", value = 7, warn_band = [7, 12] }]\n',
     "warn_band is only allowed in require conditions"),
    ('require = [{ fact = "sins", op = "<", value = 7, warn_band = [12, 7] }]\n',
     "warn_band must be [lowest, highest]"),
    ('require = [{ fact = "karnofsky", op = ">=", value = 70 }]\nsites = ["lung"]\n',
     "sites must be a non-empty list of spine, sacrum, extraspinal"),
    ('require = [{ fact = "karnofsky", op = ">=", value = 70 }]\ntechnique = "SBRT"\n',
     'technique "SBRT"'),
    ('require = [{ fact = "karnofsky", op = ">=", value = 70 }]\nunit = "%"\n', "unknown key 'unit'"),
])
def test_bad_case_rules_name_the_rule_and_the_problem(tmp_path, body, problem):
    with pytest.raises(ProtocolError) as err:
        load(tmp_path, body)
    assert "rule 'r'" in str(err.value)
    assert problem in str(err.value)


def test_bad_systemic_treatment_rule(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(HEADER + RULE.replace('kind = "case"', 'kind = "systemic_treatments"')
                    .replace('message = "m"\n', '') + 'washout_half_lives = -1\n')
    with pytest.raises(ProtocolError, match="missing 'drug_table'"):
        load_protocol(path)


def test_every_shipped_case_rule_cites_its_line_of_the_referential():
    proto = load_protocol(ROOT / "constraints" / "bone-metastases-case-2026.toml")
    assert len(proto.rules) == 28
    for rule in proto.rules:
        assert rule.source.startswith("Référentiel 2026, "), rule.id
        assert "line" in rule.source, rule.id
        assert rule.cites, rule.id


def test_the_drug_table_is_not_a_protocol():
    from rtcheck.rules.protocols import shipped_protocols

    assert "drugs-2026" not in [p.id for p in shipped_protocols()]
    assert "bone-metastases-case-2026" in [p.id for p in shipped_protocols()]
