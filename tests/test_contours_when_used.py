"""A check reads only the ROIs its rules use (``load_plan(contours="when_used")``): the
verdicts, findings and skipped rules must be those of a check on the whole structure set.

Run on every sample plan with its case file (and its prior course), and on the breast
export (its BODY and lungs, 80 % of its points, are never read by a bone-metastasis check).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rtcheck

SAMPLES = Path(__file__).resolve().parents[1] / "sample_plans"
PRIORS = {"reirradiation/course2-sbrt-27Gy3": "reirradiation/course1-30Gy10"}
CASES = sorted(SAMPLES.rglob("*.case.toml"))


def _both(load, **facts) -> tuple[dict, dict, rtcheck.PlanData]:
    """The check's result on the whole structure set and on ROIs read when used."""
    results = []
    for mode in ("all", "when_used"):
        data, priors = load(mode)
        results.append(rtcheck.check(data, priors=priors, **facts).to_dict())
    return results[0], results[1], data


def _same_verdicts(eager: dict, lazy: dict) -> None:
    assert lazy["verdict"] == eager["verdict"]
    assert json.dumps(lazy["findings"], sort_keys=True) == \
        json.dumps(eager["findings"], sort_keys=True)
    assert lazy["skipped"] == eager["skipped"]


@pytest.mark.parametrize("case", CASES, ids=lambda p: str(p.relative_to(SAMPLES)))
def test_sample_plans_check_the_same_either_way(case):
    name = str(case.relative_to(SAMPLES)).removesuffix(".case.toml")
    folder, _, label = name.partition(".")

    def load(mode):
        data = rtcheck.load_plan(SAMPLES / folder, plan=label or None, contours=mode)
        priors = ([rtcheck.load_plan(SAMPLES / PRIORS[name], contours=mode)]
                  if name in PRIORS else None)
        return data, priors

    eager, lazy, _ = _both(load, case=case)
    _same_verdicts(eager, lazy)
    assert lazy["findings"]  # something was checked


def test_the_breast_export_checks_the_same_reading_a_few_rois(breast):
    eager, lazy, data = _both(lambda mode: (rtcheck.load_plan(breast, contours=mode), None),
                              indication="pain", site="extraspinal")
    _same_verdicts(eager, lazy)
    read = {s.name for s in data.structure_set.structures if not s.__dict__.get("_pending")}
    # the plausibility check reads the targets; nothing reads the BODY, lungs or heart
    assert read == {"Borders", "Breast", "Tumor Bed", "Tumor Bed Block"}
    # an empty ROI no rule used is not reported by the check; the whole read reports it
    assert any("'Areola'" in n["message"] for n in eager["notes"])
    assert not any("'Areola'" in n["message"] for n in lazy["notes"])


def test_a_set_read_when_used_is_the_same_set_copied_pickled_or_replaced():
    """Copies, pickles (batch workers) and dataclasses.replace (de-identification) read what
    was not read yet: the contours, their problems and the plane spacing are those of a
    whole read."""
    import copy
    import dataclasses
    import pickle

    import numpy as np

    path = SAMPLES / "spine-sbrt-27Gy3" / "RS.dcm"
    whole = rtcheck.read_structure_set(path)

    def same(ss) -> bool:
        return ss.plane_spacing_mm == whole.plane_spacing_mm and all(
            (a.name, a.roi_type, a.problems) == (b.name, b.roi_type, b.problems)
            and [c.z for c in a.contours] == [c.z for c in b.contours]
            and all(np.array_equal(c.xy, d.xy) for c, d in zip(a.contours, b.contours))
            for a, b in zip(ss.structures, whole.structures))

    def fresh():
        return rtcheck.read_structure_set(path, contours="when_used")

    assert same(fresh())
    assert same(copy.deepcopy(fresh()))
    assert same(pickle.loads(pickle.dumps(fresh())))
    replaced = dataclasses.replace(fresh(), label="renamed")
    assert same(replaced) and replaced.label == "renamed"
    with pytest.raises(ValueError, match="contours='some'"):
        rtcheck.read_structure_set(path, contours="some")


def test_an_roi_that_fails_when_read_later_is_bad_input_naming_the_file(monkeypatch):
    """Read on first use, an ROI keeps the reader's guard: whatever goes wrong deep in its
    data is an InputError naming the RTSTRUCT, never a traceback from the checker."""
    from rtcheck.dicom import rtstruct
    from rtcheck.errors import InputError

    path = SAMPLES / "spine-sbrt-27Gy3" / "RS.dcm"
    ss = rtcheck.read_structure_set(path, contours="when_used")

    def corrupted(*_args, **_kwargs):
        raise RuntimeError("a corrupted byte pydicom did not foresee")

    monkeypatch.setattr(rtstruct, "_add_contours", corrupted)
    with pytest.raises(InputError, match="unreadable RTSTRUCT .*corrupted byte") as exc:
        _ = ss.structures[0].contours
    assert str(path) in str(exc.value)
    # and it stays an error: never the part of the ROI read before it
    monkeypatch.undo()
    for _ in range(2):
        with pytest.raises(InputError, match="corrupted byte"):
            _ = ss.structures[0].problems


def test_threads_reading_one_roi_all_get_all_of_it():
    """A structure set shared by threads (a script's thread pool): the first reads the ROI,
    the others wait for all of it, never a part."""
    from concurrent.futures import ThreadPoolExecutor

    path = SAMPLES / "spine-sbrt-27Gy3" / "RS.dcm"
    whole = rtcheck.read_structure_set(path)
    expected = {s.name: len(s.contours) for s in whole.structures}
    for _ in range(5):
        ss = rtcheck.read_structure_set(path, contours="when_used")
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda k: (ss.structures[k % len(ss.structures)].name,
                                           len(ss.structures[k % len(ss.structures)].contours),
                                           ss.plane_spacing_mm), range(64)))
        assert all(n == expected[name] and spacing == whole.plane_spacing_mm
                   for name, n, spacing in got)
