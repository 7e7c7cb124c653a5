"""The DVH engine on the bundled SBRT sample: a cord 4 mm behind the PTV, in a steep fall-off.

Truth: ``sample_plans/README.md``, "interpolated grid" column, computed by the sample generator
(support.synthetic) from a 0.1 mm lattice over the contour polygons and the trilinear
interpolation of the stored grid: a calculation that shares no code with rtcheck.dvh.
This is the near-maximum that decides an SBRT cord verdict.
"""

from pathlib import Path

import pytest

from rtcheck.dicom import load_plan
from rtcheck.dvh import compute_dvhs

SBRT = Path(__file__).resolve().parents[1] / "sample_plans" / "spine-sbrt-27Gy3"

# (structure, metric, interpolated-grid truth in Gy) from sample_plans/README.md
TRUTH = [
    ("SpinalCord", "Dmax", 17.11), ("SpinalCord", "D0.03cc", 16.37),
    ("SpinalCord", "D0.035cc", 16.30), ("SpinalCord", "D0.35cc", 13.91),
    ("SpinalCord", "D1.2cc", 10.85), ("ThecalSac", "Dmax", 24.05),
    ("Esophagus", "Dmax", 14.38), ("Esophagus", "D5cc", 5.02),
]


@pytest.fixture(scope="module")
def dvhs():
    data = load_plan(SBRT)
    return {d.name: d for d in compute_dvhs(data.structure_set.structures, data.dose)}


@pytest.mark.parametrize("name,metric,truth", TRUTH)
def test_sbrt_sample_metrics_match_dense_sampling(dvhs, name, metric, truth):
    # The README prints two decimals: allow its rounding on top of 0.5 %.
    assert dvhs[name].metric(metric) == pytest.approx(truth, abs=0.005 * truth + 0.005)


def test_sbrt_sample_cord_volume(dvhs):
    assert dvhs["SpinalCord"].volume_cc == pytest.approx(6.21, abs=0.01)
    assert dvhs["SpinalCord"].fully_covered
