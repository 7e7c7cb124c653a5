"""Cheap checks of the benchmark harness's bookkeeping (benchmarks/common.py).

The benchmarks themselves are scripts, not tests; this only checks that the Nelms table is
paired with the right files, in the right units, against facts stated in the data set's
README, and that the tolerance is the one the benchmarks claim, and runs a few benchmark
scripts at a tiny scale.

This is the one test module that loads benchmark code: it smoke-tests the benchmarks
themselves. Every other test module imports neither benchmarks/ nor another test module
(issue 11): shared builders live in support.synthetic or tests/support, shared fixtures in
tests/conftest.py (checked by test_tests_import_neither_benchmarks_nor_each_other).
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

# Loaded under its own name: "common" is too generic to put on sys.path for the test suite.
_spec = importlib.util.spec_from_file_location(
    "rtcheck_benchmarks_common", Path(__file__).resolve().parents[1] / "benchmarks" / "common.py")
common = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = common  # dataclasses look their module up there
_spec.loader.exec_module(common)


@pytest.fixture
def nelms_dir(nelms, monkeypatch):
    """The Nelms data set from conftest (fails in CI, skips elsewhere when absent), where the
    harness reads it."""
    monkeypatch.setattr(common, "NELMS_DIR", nelms)
    return nelms


def test_nelms_rows_pair_existing_files(nelms_dir):
    rows, skipped = common.nelms_rows()
    # 100 table rows; the 0.4x0.2x0.4 mm grids (10 rows) are not shipped.
    assert len(rows) + len(skipped) == 100
    assert len(skipped) == 10 and all("0.4x0.2x0.4" in s for s in skipped)
    assert all(r.rtss.exists() and r.rtdose.exists() for r in rows)
    by_id = {r.id: r for r in rows}
    assert len(by_id) == len(rows)
    cone = by_id["Cone__02_0 1mm Y(SI)"]
    assert cone.rtss.name == "Cone_02_0.dcm"
    assert cone.rtdose.name == "Linear_SupInf_1mm_Aligned.dcm"
    assert by_id["Sphere_10_0 1mm Z(AP)"].rtdose.name == "Linear_AntPost_1mm_Aligned.dcm"


def test_nelms_expected_in_gy_and_cc(nelms_dir):
    rows, _ = common.nelms_rows("Sphere_10_0 1mm Z(AP)")
    (row,) = rows
    # expected.csv: 400 and 2800 cGy, 7.238 cc.
    assert row.expected["dmin"] == pytest.approx(4.0)
    assert row.expected["dmax"] == pytest.approx(28.0)
    assert row.expected["volume_cc"] == pytest.approx(7.2383, abs=1e-4)


def test_each_structure_file_has_one_shape_roi(nelms_dir):
    rows, _ = common.nelms_rows()
    names = {r.rtss.name: common.nelms_roi(r).name for r in rows}
    assert "POI_1" not in names.values()
    assert names["Cone_20_0.dcm"] == "Cone20_0"  # README: the ROI name may differ


def test_tolerance():
    assert common.tolerance("dmax", 28.0) == pytest.approx(0.28)
    assert common.tolerance("dmin", 4.0) == pytest.approx(0.1)
    assert common.tolerance("volume_cc", 7.0) == pytest.approx(0.07)
    assert common.within("dmin", 4.0, 4.1) and not common.within("dmin", 4.0, 4.11)
    assert common.within("D99", 5.0, None) is None


# --------------------------------------------------------------------------------------
# benchmarks/large_plan.py (issue 10), at a tiny scale (no shared data needed).
# --------------------------------------------------------------------------------------


def test_large_plan_benchmark_runs_at_tiny_scale(tmp_path):
    """The whole script on a 10k-voxel phantom, without dicompyler-core: it writes the plan,
    runs both rtcheck commands and prints the table with a row for each (exit 0)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "large_plan.py"
    csv_path = tmp_path / "large_plan.csv"
    out = subprocess.run(
        [sys.executable, str(script), "--scale", "0.1", "--no-dicompyler",
         "--keep", str(tmp_path / "plan"), "--csv", str(csv_path), "--timeout", "120"],
        check=False, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    lines = out.stdout.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["tool", "what"])
    table = lines[header + 2:]
    dvh = [ln for ln in table if ln.startswith("rtcheck") and "dvh PLAN --format json" in ln]
    check = [ln for ln in table if ln.startswith("rtcheck") and "check PLAN --indication" in ln]
    assert len(dvh) == 1 and len(check) == 1, out.stdout
    assert "exit 0," in dvh[0] and "FAILED" not in dvh[0] + check[0]
    assert not any(ln.startswith("dicompyler-core") for ln in table)
    assert {"RP.dcm", "RS.dcm", "RD.dcm"} <= {p.name for p in (tmp_path / "plan").iterdir()}
    assert csv_path.read_text().count("\n") == 1 + len(table)  # header + one line per row


# --------------------------------------------------------------------------------------
# benchmarks/batch.py, at a tiny scale (its archive builders live in support.synthetic).
# --------------------------------------------------------------------------------------


def test_batch_benchmark_runs_at_tiny_scale():
    """Two plans, one worker: the known verdicts (one PASS, one FAIL) are found."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "batch.py"
    out = subprocess.run([sys.executable, str(script), "--n", "2", "--jobs", "1"],
                         check=False, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "expected verdicts: {'PASS': 1, 'FAIL': 1}" in out.stdout
    (row,) = [ln for ln in out.stdout.splitlines() if ln.split()[:2] == ["1", "2"]]
    assert "{'PASS': 1, 'FAIL': 1} exit 1" in row and "UNEXPECTED" not in row, out.stdout


# --------------------------------------------------------------------------------------
# Issue 11: tests import neither the benchmarks nor each other
# --------------------------------------------------------------------------------------


def _loads_other_code(path: Path) -> list[str]:
    """The imports of ``path`` that reach a test module, conftest or benchmarks/, and any
    load of a Python file by path (importlib's spec_from_file_location, runpy)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [n for n in names
                  if n.split(".")[0] in ("conftest", "benchmarks", "runpy")
                  or n.split(".")[0].startswith("test_")]
        if isinstance(node, ast.Attribute) and node.attr in ("spec_from_file_location",
                                                             "run_path"):
            found.append(node.attr)
    return found


def test_tests_import_neither_benchmarks_nor_each_other():
    tests = Path(__file__).resolve().parent
    offenders = {str(p.relative_to(tests)): bad for p in sorted(tests.rglob("*.py"))
                 if p != Path(__file__).resolve() and (bad := _loads_other_code(p))}
    assert not offenders, offenders
