"""Case facts as columns of the batch facts file (``--indication-from``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from rtcheck.batch.facts import check_arguments
from rtcheck.cli import main
from rtcheck.errors import InputError

SAMPLE = Path(__file__).resolve().parents[1] / "sample_plans" / "single-8Gy1"


def test_case_columns_become_the_case():
    args = check_arguments({"indication": "pain", "karnofsky": "40", "epiduritis": "no",
                            "previous_radiotherapy_dates": "none",
                            "systemic_treatments": "Avastin@2026-02-10; Keytruda@ongoing"})
    assert args["indication"] == "pain"
    case = args["case"]
    assert case.get("karnofsky") == 40 and case.get("epiduritis") is False
    assert case.get("previous_radiotherapy_dates") == ()
    assert [(t.drug, t.ongoing) for t in case.get("systemic_treatments")] == [
        ("Avastin", False), ("Keytruda", True)]
    assert "case" not in check_arguments({"indication": "pain"})


def test_a_bad_case_column_names_the_column():
    with pytest.raises(InputError, match="mri_contraindicated: must be true or false, got \"maybe\""):
        check_arguments({"mri_contraindicated": "maybe"})


def test_batch_with_case_columns(tmp_path):
    archive = tmp_path / "archive"
    shutil.copytree(SAMPLE, archive / "p1")
    facts = tmp_path / "facts.csv"
    facts.write_text("patient_id,indication,site,vertebral_level,start_date,epiduritis,"
                     "neuropathic_pain,systemic_treatments\n"
                     "RTCHECK-SAMPLE-03,pain,spine,T8,2026-03-12,false,false,"
                     "Avastin@2026-02-10\n")
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(main, ["batch", str(archive), "--indication-from", str(facts),
                                    "--jobs", "1", "--output", str(out), "--quiet"])
    assert res.exit_code in (1, 3), res.output
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    drugs = [f for f in record["findings"] if f["rule"] == "case.systemic_treatments"]
    assert [(f["metric"], f["status"]) for f in drugs] == [("Avastin", "FAIL")]
    assert record["verdict"] == "FAIL"
