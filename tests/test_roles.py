"""Structure roles: names from real centres (TG-263, French, accents) reach the right role,
ambiguity is reported instead of guessed, and users extend or override the table."""

from __future__ import annotations

import pytest

from rtcheck.errors import InputError
from rtcheck.rules.roles import RoleMap, match_roles, normalise_name, parse_map_options


@pytest.mark.parametrize("name,normal", [
    ("Moëlle", "moelle"), ("MOELLE", "moelle"), ("Moelle épinière", "moelleepiniere"),
    ("Spinal_Cord", "spinalcord"), ("spinal-cord", "spinalcord"), ("Œsophage", "oesophage"),
    ("Canal médullaire", "canalmedullaire"), ("SpinalCord_PRV05", "spinalcordprv05"),
])
def test_normalise_name(name, normal):
    assert normalise_name(name) == normal


@pytest.mark.parametrize("name,role", [
    ("SpinalCord", "spinal_cord"), ("Spinal Cord", "spinal_cord"), ("Spinal_Cord", "spinal_cord"),
    ("Cord", "spinal_cord"), ("Moelle", "spinal_cord"), ("MOELLE", "spinal_cord"),
    ("Moëlle", "spinal_cord"), ("moelle_epiniere", "spinal_cord"),
    ("SpinalCord_PRV05", "spinal_cord_prv"), ("Moelle+3mm", "spinal_cord_prv"),
    ("PRV_Moelle", "spinal_cord_prv"), ("ThecalSac", "thecal_sac"), ("Sac dural", "thecal_sac"),
    ("Canal medullaire", "spinal_canal"), ("Canal médullaire", "spinal_canal"),
    ("SpinalCanal", "spinal_canal"), ("CaudaEquina", "cauda_equina"),
    ("Queue de cheval", "cauda_equina"), ("SacralPlex_L", "sacral_plexus"),
    ("Esophagus", "esophagus"), ("Oesophage", "esophagus"), ("Œsophage", "esophagus"),
    ("OESOPHAGE", "esophagus"), ("BrachialPlex_R", "brachial_plexus"),
    ("Plexus brachial G", "brachial_plexus"), ("Skin", "skin"), ("Peau", "skin"),
    ("Heart", "heart"), ("Coeur", "heart"), ("Cœur", "heart"), ("Trachea", "trachea"),
    ("Trachée", "trachea"), ("Rib01_L", "ribs"), ("Cotes", "ribs"), ("Stomach", "stomach"),
    ("Estomac", "stomach"), ("Duodenum", "duodenum"), ("Bowel_Small", "small_bowel"),
    ("Intestin grêle", "small_bowel"), ("Bowel", "bowel"), ("Colon", "colon"),
    ("Bowel_Large", "colon"), ("Rectum", "rectum"), ("PTV_35", "ptv"), ("GTV", "gtv"),
    ("CTV_20", "ctv"), ("BODY", "body"), ("External", "body"), ("Contour externe", "body"),
])
def test_names_reach_their_role(name, role):
    table = RoleMap.shipped()
    assert [r for r, _ in table.roles_of(name)] == [role]


@pytest.mark.parametrize("name", ["Cord_Old", "Moelle2", "Lung_L", "Liver", "Esophagus_PRV",
                                  "Cordon", "PRV"])
def test_other_names_reach_no_role(name):
    assert RoleMap.shipped().roles_of(name) == []


def test_shipped_table_has_the_roles_rules_need():
    from rtcheck.rules.protocols import shipped_protocols

    table = RoleMap.shipped()
    needed = {r.role for p in shipped_protocols() for r in p.rules if r.role}
    assert needed <= set(table.roles)
    for role in ("spinal_cord", "spinal_cord_prv", "thecal_sac", "cauda_equina", "sacral_plexus",
                 "esophagus", "brachial_plexus", "skin", "heart", "trachea", "ribs", "stomach",
                 "duodenum", "bowel", "colon", "rectum", "ptv", "gtv", "body"):
        assert role in table


def test_match_reports_which_name_matched_which_role():
    m = match_roles(["MOELLE", "PTV_30", "Œsophage", "BODY"])
    cord = m["spinal_cord"]
    assert (cord.status, cord.name, cord.names) == ("matched", "MOELLE", ("MOELLE",))
    assert cord.how == "'MOELLE' (synonym)"
    assert m["esophagus"].name == "Œsophage"
    assert m["ptv"].names == ("PTV_30",) and "pattern" in m["ptv"].how
    assert m["thecal_sac"].status == "missing" and m["thecal_sac"].names == ()
    assert m["spinal_cord"].as_dict()["structures"] == ["MOELLE"]


def test_two_candidates_are_ambiguous_with_both_names():
    m = match_roles(["SpinalCord", "Moelle"])["spinal_cord"]
    assert m.status == "ambiguous" and m.name is None and m.names == ()
    assert set(m.candidates) == {"SpinalCord", "Moelle"}
    assert "SpinalCord" in m.how and "Moelle" in m.how and "--map spinal_cord=" in m.how


def test_two_structures_with_the_same_name_are_ambiguous():
    m = match_roles(["Moelle", "Moelle"])["spinal_cord"]
    assert m.status == "ambiguous" and "same name" in m.how


def test_explicit_map_resolves_ambiguity():
    m = match_roles(["SpinalCord", "Moelle", "MOELLE_PRV"],
                    explicit={"spinal_cord": "MOELLE_PRV"})["spinal_cord"]
    assert (m.status, m.name) == ("matched", "MOELLE_PRV")
    assert m.how == "--map spinal_cord=MOELLE_PRV"


def test_explicit_map_ignoring_case_and_accents():
    m = match_roles(["Moëlle PRV"], explicit={"spinal_cord": "moelle_prv"})["spinal_cord"]
    assert m.name == "Moëlle PRV" and "ignoring case" in m.how


def test_explicit_map_to_an_absent_structure_is_missing_with_reason():
    m = match_roles(["Moelle"], explicit={"spinal_cord": "Cord_X"})["spinal_cord"]
    assert m.status == "missing" and "no structure of this plan has that name" in m.how


def test_explicit_map_to_unknown_role_is_an_input_error():
    with pytest.raises(InputError, match="unknown role"):
        match_roles(["Moelle"], explicit={"spinalcord": "Moelle"})


def test_missing_cord_names_possible_stand_ins_but_does_not_choose():
    m = match_roles(["ThecalSac", "SpinalCord_PRV03", "PTV"])["spinal_cord"]
    assert m.status == "missing" and m.names == ()
    assert "'ThecalSac' (thecal_sac)" in m.how and "'SpinalCord_PRV03' (spinal_cord_prv)" in m.how
    assert "--map spinal_cord=NAME" in m.how


def test_multiple_role_evaluates_each_side():
    m = match_roles(["BrachialPlex_L", "BrachialPlex_R"])["brachial_plexus"]
    assert m.status == "matched" and m.names == ("BrachialPlex_L", "BrachialPlex_R")
    assert m.name is None


def test_extra_synonyms_mapping():
    m = match_roles(["ME"], extra_synonyms={"spinal_cord": ["ME"]})["spinal_cord"]
    assert m.name == "ME"


def test_user_file_extends_and_moves_a_synonym(tmp_path):
    path = tmp_path / "roles.toml"
    path.write_text('schema_version = 1\n[roles.spinal_cord]\nsynonyms = ["Canal medullaire"]\n'
                    '[roles.cord_surrogate]\ndescription = "x"\nsynonyms = ["CS"]\n'
                    'related = ["spinal_cord"]\n', encoding="utf-8")
    table = RoleMap.shipped().extended(path)
    assert [r for r, _ in table.roles_of("Canal médullaire")] == ["spinal_cord"]
    assert "cord_surrogate" in table and table.roles["spinal_cord"].synonyms[0] == "SpinalCord"
    assert any("moved from role spinal_canal to role spinal_cord" in n for n in table.notes)
    m = match_roles(["Canal médullaire"], extra_synonyms=path)["spinal_cord"]
    assert m.name == "Canal médullaire"


@pytest.mark.parametrize("body,message", [
    ('schema_version = 1\n[roles.spinal_cord]\nsynonym = ["X"]\n', "unknown key 'synonym'"),
    ('schema_version = 2\n[roles.x]\nsynonyms = ["X"]\n', "schema_version must be 1"),
    ('schema_version = 1\n[roles.x]\npatterns = ["(ab"]\n', "not a valid regular expression"),
    ('schema_version = 1\n[roles.x]\nsynonyms = ["A"]\n[roles.y]\nsynonyms = ["a"]\n',
     "also a synonym of role 'x'"),
    ('schema_version = 1\n[roles.x]\ndescription = "no names"\n', "at least one synonym"),
    ('schema_version = 1\n[roles.Bad]\nsynonyms = ["A"]\n', "role ids are lower case"),
])
def test_bad_roles_file(tmp_path, body, message):
    path = tmp_path / "roles.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        RoleMap.shipped().extended(path)
    assert str(path) in str(info.value)


def test_related_role_must_exist(tmp_path):
    path = tmp_path / "roles.toml"
    path.write_text('schema_version = 1\n[roles.x]\nsynonyms = ["A"]\nrelated = ["nope"]\n',
                    encoding="utf-8")
    with pytest.raises(InputError, match="related role 'nope' is not defined"):
        RoleMap.shipped().extended(path)


def test_parse_map_options():
    assert parse_map_options(["spinal_cord=MOELLE PRV", " esophagus = Oeso "]) == {
        "spinal_cord": "MOELLE PRV", "esophagus": "Oeso"}
    with pytest.raises(InputError, match="expected ROLE=STRUCTURE_NAME"):
        parse_map_options(["spinal_cord"])
    with pytest.raises(InputError, match="twice"):
        parse_map_options(["spinal_cord=A", "spinal_cord=B"])


# -------------------------------------------------------------------- union roles


@pytest.mark.parametrize("role,names", [
    ("small_bowel", ["Jejunum", "Ileum"]), ("small_bowel", ["Jejunum", "Ileum", "Bowel_Small"]),
    ("colon", ["Colon", "Sigmoid"]), ("heart", ["Heart", "Pericardium"]),
])
def test_organ_in_parts_is_one_union_role(role, names):
    table = RoleMap.shipped()
    assert table.roles[role].union and not table.roles[role].multiple
    m = match_roles(names + ["PTV"])[role]
    assert (m.status, m.union, m.multiple, m.name) == ("matched", True, False, None)
    assert m.names == tuple(names) and "union of" in m.how
    d = m.as_dict()
    assert d["union"] is True and d["structures"] == names and d["status"] == "matched"


def test_paired_organs_stay_multiple_not_union():
    table = RoleMap.shipped()
    for role in ("brachial_plexus", "sacral_plexus", "ribs"):
        assert table.roles[role].multiple and not table.roles[role].union
    m = match_roles(["BrachialPlex_L", "BrachialPlex_R"])["brachial_plexus"]
    assert m.as_dict()["union"] is False and m.union is False
    assert match_roles(["MOELLE"])["spinal_cord"].as_dict()["union"] is False


def test_union_role_with_one_structure_or_a_map():
    m = match_roles(["Heart"])["heart"]
    assert (m.status, m.name, m.names, m.union) == ("matched", "Heart", ("Heart",), True)
    m = match_roles(["Heart", "Pericardium"], explicit={"heart": "Heart"})["heart"]
    assert (m.status, m.names, m.union) == ("matched", ("Heart",), True)


def test_union_role_with_two_structures_of_the_same_name_is_ambiguous():
    m = match_roles(["Jejunum", "Jejunum", "Ileum"])["small_bowel"]
    assert m.status == "ambiguous" and m.names == () and "same name" in m.how


def test_union_and_multiple_together_is_an_error(tmp_path):
    path = tmp_path / "roles.toml"
    path.write_text('schema_version = 1\n[roles.x]\nsynonyms = ["A"]\nmultiple = true\n'
                    'union = true\n', encoding="utf-8")
    with pytest.raises(InputError, match="multiple and union exclude each other"):
        RoleMap.from_file(path)
    path.write_text('schema_version = 1\n[roles.x]\nsynonyms = ["A"]\nunion = "yes"\n',
                    encoding="utf-8")
    with pytest.raises(InputError, match="union must be true or false"):
        RoleMap.from_file(path)


def test_user_file_switches_between_union_and_multiple(tmp_path):
    path = tmp_path / "roles.toml"
    path.write_text('schema_version = 1\n[roles.heart]\nsynonyms = ["Coeur_total"]\nmultiple = true\n'
                    '[roles.ribs]\nsynonyms = ["Grill"]\nunion = true\n', encoding="utf-8")
    table = RoleMap.shipped().extended(path)
    assert table.roles["heart"].multiple and not table.roles["heart"].union
    assert table.roles["ribs"].union and not table.roles["ribs"].multiple
    # A file that names the role without a mode keeps the shipped one.
    path.write_text('schema_version = 1\n[roles.colon]\nsynonyms = ["Sigma"]\n', encoding="utf-8")
    assert RoleMap.shipped().extended(path).roles["colon"].union
