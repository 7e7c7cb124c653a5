"""Hostile input, structures: a contour skipped on reading makes its structure incomplete.

The class of issue 10: a contour that cannot be used (a coordinate count that is not a
multiple of 3, numbers that are not numbers, OPEN_PLANAR where a closed contour is expected,
NaN or infinite coordinates, z = NaN, points off the contour's plane, fewer than 3 points,
coordinates kilometres away) is skipped, and the structure records why in
``Structure.problems``: it keeps its other contours, but what is left is not the structure,
so the checker does not turn its dose into a verdict. Also: the structure set's common plane
spacing (``StructureSet.plane_spacing_mm``).
"""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from support import synthetic as syn

from rtcheck.cli import main
from rtcheck.dicom import load_plan, read_structure_set
from rtcheck.model import Contour, Structure, StructureSet

FRAME = syn.make_uid("hostile-structures", "frame")
ZS = syn.planes(-6, 6, 3)  # 5 planes, 3 mm apart


@pytest.fixture(scope="module")
def objects():
    rs = syn.structure_set_dataset({"PTV": syn.sphere(0, 0, 0, 5, ZS),
                                    "Cord": syn.cylinder(0, 8, 2, ZS)},
                                   types={"PTV": "PTV", "Cord": "ORGAN"}, frame_uid=FRAME)
    rp = syn.plan_dataset("STRUCT", 3, 27.0, structure_set_uid=rs.SOPInstanceUID,
                          frame_uid=FRAME)
    rd = syn.dose_dataset_from_function(lambda x, y, z: 28.0 - 0.05 * (x * x + y * y),
                                        (-10, -10, -9), (10, 10, 9), (2, 2, 3),
                                        plan_uid=rp.SOPInstanceUID, frame_uid=FRAME)
    return {"RP": rp, "RS": rs, "RD": rd}


def set_raw(ds, keyword: str, text: str, vr: str) -> None:
    tag = Tag(keyword)
    data = text.encode("latin-1")
    if len(data) % 2:
        data += b" "
    ds[tag] = RawDataElement(tag, vr, len(data), data, 0, False, True)


def _cord_contour(rs, k: int = 2):
    return rs.ROIContourSequence[1].ContourSequence[k]


def _points(item) -> np.ndarray:
    return np.array([float(v) for v in item.ContourData]).reshape(-1, 3)


def _write_points(item, xyz) -> None:
    set_raw(item, "ContourData", "\\".join(
        v if isinstance(v, str) else f"{v:.4f}" for v in np.ravel(np.asarray(xyz, dtype=object))),
        "DS")


def _mutate_points(change):
    def mutate(rs):
        item = _cord_contour(rs)
        xyz = _points(item).astype(object)
        change(xyz)
        _write_points(item, xyz)
    return mutate


def _odd_count(rs):
    item = _cord_contour(rs)
    flat = [f"{v:.4f}" for v in _points(item).ravel()][:-1]  # one value short
    set_raw(item, "ContourData", "\\".join(flat), "DS")


def _geometric_type(kind: str):
    def mutate(rs):
        _cord_contour(rs).ContourGeometricType = kind
    return mutate


def _set(index, value):
    def change(xyz):
        xyz[index] = value
    return change


INCOMPLETE = {
    "coordinate count not a multiple of 3": (_odd_count, "unreadable ContourData", True),
    "coordinates that are not numbers": (lambda rs: set_raw(_cord_contour(rs), "ContourData",
                                                            "a\\b\\c", "DS"),
                                         "unreadable ContourData", True),
    "OPEN_PLANAR": (_geometric_type("OPEN_PLANAR"), "OPEN_PLANAR", True),
    "OPEN_NONPLANAR": (_geometric_type("OPEN_NONPLANAR"), "OPEN_NONPLANAR", True),
    "no geometric type": (_geometric_type(""), "untyped", True),
    "x = NaN": (_mutate_points(_set((3, 0), "NaN")), "non-finite", True),
    "y = inf": (_mutate_points(_set((0, 1), "inf")), "non-finite", True),
    "z = NaN on every point": (_mutate_points(_set((slice(None), 2), "NaN")), "non-finite",
                               True),
    "fewer than 3 points": (lambda rs: _write_points(_cord_contour(rs),
                                                     _points(_cord_contour(rs))[:2]),
                            "fewer than 3 points", True),
    "a point off the contour's plane": (_mutate_points(_set((5, 2), 0.5)),
                                        "not on an axial plane", False),
    "coordinates 1000 km away": (_mutate_points(_set((1, 0), "1e9")), "from the origin", True),
}


@pytest.mark.parametrize("case", list(INCOMPLETE))
def test_a_skipped_contour_makes_the_structure_incomplete(tmp_path, objects, case):
    mutate, reason, keeps_others = INCOMPLETE[case]
    objs = copy.deepcopy(objects)
    mutate(objs["RS"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        syn.write_plan(tmp_path, objs)
    data = load_plan(tmp_path)
    ss = data.structure_set
    cord, ptv = ss.get("Cord"), ss.get("PTV")
    assert len(cord.problems) == 1 and reason in cord.problems[0], cord.problems
    intact = read_structure_set(copy.deepcopy(objects["RS"]))
    assert ptv.problems == [] and len(ptv.contours) == len(intact.get("PTV").contours)
    if keeps_others:  # the structure keeps its other contours, all finite
        assert len(cord.contours) == len(intact.get("Cord").contours) - 1 == len(ZS) - 1
        assert all(np.isfinite(c.z) and np.all(np.isfinite(c.xy)) for c in cord.contours)
    else:  # a ROI with a non-axial contour is dropped whole (no DVH rather than a wrong one)
        assert cord.contours == []
    assert any("'Cord' (2)" in w and reason in w for w in data.warnings)
    # the command line still runs (the dvh table is not a verdict) and says it
    result = CliRunner().invoke(main, ["dvh", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert any(reason in w for w in json.loads(result.stdout)["warnings"])
    # read when used (as a check reads): the same structure, and the warning once it is read
    lazy = load_plan(tmp_path, contours="when_used")
    assert not any("'Cord' (2)" in w for w in lazy.warnings)  # not read yet
    lazy_cord = lazy.structure_set.get("Cord")
    assert lazy_cord.problems == cord.problems
    assert [c.z for c in lazy_cord.contours] == [c.z for c in cord.contours]
    assert any("'Cord' (2)" in w and reason in w for w in lazy.structure_set.warnings)
    # rtcheck check reads the cord for its rule, is not fooled, and says why
    result = CliRunner().invoke(main, ["check", str(tmp_path), "--indication", "pain",
                                       "--site", "spine", "--vertebral-level", "T8",
                                       "--format", "json"])
    doc = json.loads(result.stdout)
    assert doc["verdict"] != "PASS"
    notes = [n["message"] for n in doc["notes"]]
    assert any("'Cord' (2)" in n and reason in n for n in notes), notes


def test_complete_structures_have_no_problems(objects):
    ss = read_structure_set(copy.deepcopy(objects["RS"]))
    assert [s.problems for s in ss.structures] == [[], []]


def test_a_point_roi_with_a_nan_point_is_incomplete(objects):
    rs = syn.structure_set_dataset({"PTV": syn.sphere(0, 0, 0, 5, ZS)}, frame_uid=FRAME)
    rs2 = syn.structure_set_dataset([syn.point_roi("ISO", (0.0, 0.0, 0.0))], frame_uid=FRAME)
    item = copy.deepcopy(rs2.ROIContourSequence[0])
    set_raw(item.ContourSequence[0], "ContourData", "0\\NaN\\0", "DS")
    item.ReferencedROINumber = 2
    roi = copy.deepcopy(rs2.StructureSetROISequence[0])
    roi.ROINumber = 2
    rs.StructureSetROISequence.append(roi)
    rs.ROIContourSequence.append(item)
    iso = read_structure_set(rs).get("ISO")
    assert iso.is_empty and "non-finite" in iso.problems[0]


# --------------------------------------------------------------------------------------
# The structure set's common plane spacing
# --------------------------------------------------------------------------------------

def test_plane_spacing_ignores_rois_on_isolated_planes():
    # Ordinary ROIs every 3 mm; a helper ROI on 3 isolated planes 20 mm apart; a lesion on
    # one plane. The common spacing is 3 mm.
    rois = {"Body": syn.cylinder(0, 0, 50, syn.planes(-30, 30, 3)),
            "Cord": syn.cylinder(0, 20, 5, syn.planes(-24, 24, 3)),
            "Helper": syn.cylinder(10, 0, 5, [-20.0, 0.0, 20.0]),
            "Lesion": syn.cylinder(-10, 0, 4, [1.5])}
    ss = read_structure_set(syn.structure_set_dataset(rois, frame_uid=FRAME))
    assert ss.plane_spacing_mm == pytest.approx(3.0)
    helper = ss.get("Helper")
    assert sorted({c.z for c in helper.contours}) == [-20.0, 0.0, 20.0]


def test_plane_spacing_of_hand_built_and_degenerate_sets():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    one = Structure(1, "A", [Contour(0.0, square), Contour(2.5, square), Contour(5.0, square)])
    assert StructureSet([one]).plane_spacing_mm == pytest.approx(2.5)
    single = Structure(2, "B", [Contour(0.0, square), Contour(0.0, square * 0.5)])
    assert StructureSet([single]).plane_spacing_mm is None
    assert StructureSet([]).plane_spacing_mm is None
    assert StructureSet([one], plane_spacing_mm=1.0).plane_spacing_mm == 1.0


def test_plane_spacing_of_a_sample_like_plan(tmp_path):
    case = syn.spine_case("sbrt", seed="plane-spacing")
    syn.write_plan(tmp_path, case.datasets())
    data = load_plan(tmp_path)
    assert data.structure_set.plane_spacing_mm == pytest.approx(case.contour_step)
