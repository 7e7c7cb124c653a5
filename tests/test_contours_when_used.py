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


def test_a_thread_waits_for_the_whole_roi_another_is_reading(monkeypatch):
    """A structure set shared by threads (a script's thread pool): while one thread reads an
    ROI (slowed down here), another asking for it waits for all of it and its problems."""
    import threading
    import time

    from rtcheck.dicom import rtstruct

    path = SAMPLES / "spine-sbrt-27Gy3" / "RS.dcm"
    whole = rtcheck.read_structure_set(path).get("ThecalSac")
    ss = rtcheck.read_structure_set(path, contours="when_used")
    roi = ss.get("ThecalSac")
    original = rtstruct._contour_points

    def slow(item):
        time.sleep(0.002)
        return original(item)

    monkeypatch.setattr(rtstruct, "_contour_points", slow)
    reader = threading.Thread(target=lambda: roi.contours)
    reader.start()
    time.sleep(0.01)  # the reader is half way through the ROI's 40 contours
    seen = len(roi.contours)
    reader.join()
    assert seen == len(whole.contours) == len(roi.contours)
    assert ss.plane_spacing_mm == rtcheck.read_structure_set(path).plane_spacing_mm


def test_an_roi_no_rule_uses_weighs_on_the_plane_spacing_as_in_a_whole_read(tmp_path):
    """The plane spacing pools every ROI's usable planes. An ROI no rule uses, whose contours
    are all dropped (not axial), must not set it: read when used, its raw planes (10 mm
    apart) made a cord contoured every 8 mm look complete, and the tumour-cord distance
    PASSed where the whole read says NOT_EVALUATED (independent review)."""
    import copy
    import shutil

    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    folder = tmp_path / "plan"
    shutil.copytree(SAMPLES / "spine-sbrt-27Gy3", folder)
    rs = pydicom.dcmread(folder / "RS.dcm")
    names = {int(r.ROINumber): r.ROIName for r in rs.StructureSetROISequence}
    for rc in rs.ROIContourSequence:  # cord and sac kept on every 4th plane
        if names[int(rc.ReferencedROINumber)] in ("SpinalCord", "ThecalSac"):
            zs = sorted({round(float(c.ContourData[2]), 2) for c in rc.ContourSequence})
            rc.ContourSequence = Sequence([c for c in rc.ContourSequence
                                           if round(float(c.ContourData[2]), 2) in zs[::4]])
    number = max(names) + 1
    roi = copy.deepcopy(rs.StructureSetROISequence[0])
    roi.ROINumber, roi.ROIName = number, "JUNK"
    rs.StructureSetROISequence.append(roi)
    contours = []
    for k in range(200):  # tilted squares, 10 mm apart: not axial, all dropped
        z = -800 + 10 * k
        c = Dataset()
        c.ContourGeometricType, c.NumberOfContourPoints = "CLOSED_PLANAR", 4
        c.ContourData = [str(v) for v in (0, 0, z, 0, 10, z + 5, 0, 10, z + 10, 0, 0, z + 5)]
        contours.append(c)
    item = Dataset()
    item.ReferencedROINumber, item.ContourSequence = number, Sequence(contours)
    rs.ROIContourSequence.append(item)
    rs.save_as(folder / "RS.dcm")
    case = SAMPLES / "spine-sbrt-27Gy3.case.toml"

    def load(mode):
        return rtcheck.load_plan(folder, contours=mode), None

    eager, lazy, data = _both(load, case=case)
    _same_verdicts(eager, lazy)
    distance = {f["rule"]: f for f in lazy["findings"]}["case.sbrt.relative.tumour_cord_distance"]
    assert distance["status"] == "NOT_EVALUATED"
    assert data.structure_set.plane_spacing_mm == 2.0
