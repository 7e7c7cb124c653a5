"""Every sample plan with its case file (sample_plans/**/*.case.toml): the case checks'
outcomes, asserted, and printed as a table by ``python tests/test_case_samples.py``.

A case file sits beside its plan: ``NAME.case.toml`` for the folder ``NAME``, or
``FOLDER.LABEL.case.toml`` for the plan ``LABEL`` of a folder holding several.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans"
PRIORS = {"reirradiation/course2-sbrt-27Gy3": "reirradiation/course1-30Gy10"}

#: The case findings that are not PASS, by sample (everything else PASSes or does not apply),
#: and the case-check verdict (over the case findings alone).
EXPECTED = {
    "spine-30Gy10": {"case.sins.surgical_opinion": "WARN"},
    "spine-sbrt-27Gy3": {"case.sbrt.fracture_risk": "WARN", "case.systemic_treatments": "WARN"},
    "single-8Gy1": {"case.systemic_treatments": "FAIL"},
    "reirradiation/course1-30Gy10": {"case.sins.surgical_opinion": "WARN"},
    "reirradiation/course2-sbrt-27Gy3": {"case.sbrt.relative.canal_narrowing": "WARN",
                                          "case.sbrt.fracture_risk": "WARN"},
    "two-plans.PLAN_A_20GY5": {},
    "two-plans.PLAN_B_8GY1": {"case.timing.post_operative": "WARN",
                              "case.palliative.prefer_30gy10.neuropathic_pain": "WARN"},
}


def case_files() -> list[Path]:
    return sorted(SAMPLES.rglob("*.case.toml"))


def sample_name(path: Path) -> str:
    return str(path.relative_to(SAMPLES)).removesuffix(".case.toml")


def outcome(path: Path):
    """The check of the sample with its case file (default protocols plus the case checks)."""
    import rtcheck

    name = sample_name(path)
    folder, _, label = name.partition(".")
    data = rtcheck.load_plan(SAMPLES / folder, plan=label or None)
    priors = [rtcheck.load_plan(SAMPLES / PRIORS[name])] if name in PRIORS else None
    return rtcheck.check(data, case=path, priors=priors)


def test_every_sample_plan_has_a_case_file():
    assert sorted(sample_name(p) for p in case_files()) == sorted(EXPECTED)


@pytest.mark.parametrize("path", case_files(), ids=sample_name)
def test_sample_outcomes(path):
    result = outcome(path)
    case = {f.rule: f.status for f in result.findings if f.kind in ("case", "systemic_treatments")}
    assert {r: s for r, s in case.items() if s != "PASS"} == EXPECTED[sample_name(path)]
    assert result.facts["measurements"]["tumour_cord_distance_mm"]["value"] is not None


def table() -> str:
    """Sample, plan verdict, case findings by status, the non-PASS ones, the measurements."""
    rows = [("sample", "verdict", "case PASS/WARN/FAIL/NE", "not PASS", "GTV-cord mm",
             "GTV cm")]
    for path in case_files():
        r = outcome(path)
        case = [f for f in r.findings if f.kind in ("case", "systemic_treatments")]
        counts = "/".join(str(sum(f.status == s for f in case))
                          for s in ("PASS", "WARN", "FAIL", "NOT_EVALUATED"))
        bad = ", ".join(f"{f.rule.removeprefix('case.')} {f.status}" for f in case
                        if f.status != "PASS") or "-"
        m = r.facts["measurements"]
        rows.append((sample_name(path), r.verdict, counts, bad,
                     f"{m['tumour_cord_distance_mm']['value']:.1f}",
                     f"{m['gtv_diameter_cm']['value']:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"
                     for row in rows)


if __name__ == "__main__":  # python tests/test_case_samples.py
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(table())
