"""rtcheck.dicom.tps_dvh: the planning system's DVHs read from an RTDOSE DVHSequence.

Synthetic DVHs are built from closed-form dose distributions (dose uniformly spread between
2 and 8 Gy over 60 cc: mean 5 Gy, min 2 Gy, max 8 Gy); the breast export is checked against
facts stated in the file itself and in its README.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from rtcheck.dicom.tps_dvh import read_tps_dvhs
from rtcheck.errors import InputError

VOLUME, D_LO, D_HI = 60.0, 2.0, 8.0  # uniform dose between D_LO and D_HI over VOLUME cc


def _true_cumulative(d: np.ndarray) -> np.ndarray:
    return VOLUME * np.clip((D_HI - d) / (D_HI - D_LO), 0.0, 1.0)


def _item(roi: int, widths, volumes, dvh_type="CUMULATIVE", units="GY", scaling=1.0,
          volume_units="CM3") -> Dataset:
    item = Dataset()
    ref = Dataset()
    ref.ReferencedROINumber = roi
    item.DVHReferencedROISequence = Sequence([ref])
    item.DVHType = dvh_type
    item.DoseUnits = units
    item.DoseType = "PHYSICAL"
    item.DVHDoseScaling = scaling
    item.DVHVolumeUnits = volume_units
    item.DVHNumberOfBins = len(widths)
    item.DVHData = [float(x) for pair in zip(widths, volumes) for x in pair]
    return item


def _dose(*items: Dataset) -> Dataset:
    ds = Dataset()
    ds.Modality = "RTDOSE"
    ds.DVHSequence = Sequence(list(items))
    return ds


def _cumulative_item(roi: int = 1, width: float = 0.1, **kw) -> Dataset:
    n = int(round(10.0 / width))
    centres = (np.arange(n) + 0.5) * width
    return _item(roi, [width] * n, _true_cumulative(centres), **kw)


def test_cumulative_closed_form():
    dvh = read_tps_dvhs(_dose(_cumulative_item()))[1]
    assert dvh.volume == pytest.approx(VOLUME)
    assert dvh.volume_units == "CM3"
    # Linear between bin centres: exact but for the two kinks at 2 and 8 Gy.
    assert dvh.mean_gy() == pytest.approx((D_LO + D_HI) / 2, abs=1e-3)
    assert abs(dvh.max_gy() - D_HI) <= 0.1
    assert abs(dvh.min_gy() - D_LO) <= 0.1
    doses, volumes = dvh  # unpacks as the (doses_gy, volumes) pair
    assert np.allclose(volumes, _true_cumulative(doses))


def test_differential_becomes_cumulative():
    width = 0.5
    lower = np.arange(0.0, 10.0, width)
    diff = np.where((lower >= D_LO) & (lower < D_HI), VOLUME * width / (D_HI - D_LO), 0.0)
    dvh = read_tps_dvhs(_dose(_item(2, [width] * lower.size, diff, "DIFFERENTIAL")))[2]
    assert dvh.stored_type == "DIFFERENTIAL"
    assert dvh.volume == pytest.approx(VOLUME)
    assert np.allclose(dvh.volumes, _true_cumulative(dvh.doses_gy))
    assert dvh.mean_gy() == pytest.approx((D_LO + D_HI) / 2, abs=1e-9)


def test_cgy_and_dose_scaling():
    # Widths of 20 units x 0.5 cGy per unit = 0.1 Gy bins.
    item = _cumulative_item(width=0.1)
    item.DVHData = [x * 200 if i % 2 == 0 else x for i, x in enumerate(item.DVHData)]
    item.DoseUnits, item.DVHDoseScaling = "CGY", 0.5
    dvh = read_tps_dvhs(_dose(item))[1]
    assert dvh.mean_gy() == pytest.approx(5.0, abs=1e-3)


def test_relative_dose_is_refused():
    with pytest.raises(InputError, match="RELATIVE"):
        read_tps_dvhs(_dose(_cumulative_item(units="RELATIVE")))


def test_odd_data_is_refused():
    item = _cumulative_item()
    item.DVHData = item.DVHData[:-1]
    with pytest.raises(InputError, match="pairs"):
        read_tps_dvhs(_dose(item))


def test_no_dvh_sequence():
    ds = Dataset()
    ds.Modality = "RTDOSE"
    assert read_tps_dvhs(ds) == {}


def test_breast_export_facts(breast):
    dvhs = read_tps_dvhs(breast / "rtdose.dcm")
    # README: 9 ROIs; the structure set's ROI 2 (Areola) is empty and has none.
    assert sorted(dvhs) == [1, 3, 4, 5, 6, 7, 8, 9, 10]
    assert all(d.volume > 0 and d.volume_units == "CM3" for d in dvhs.values())
    # The planning system's own mean doses are written in percent of the plan's target
    # prescription (14 Gy); the curve-derived means must agree with them. BODY (ROI 1) is
    # left out: the planning system's mean differs by 0.03 Gy there.
    plan = pydicom.dcmread(breast / "rtplan.dcm", stop_before_pixels=True)
    rx = max(float(r.TargetPrescriptionDose) for r in plan.DoseReferenceSequence
             if "TargetPrescriptionDose" in r)
    assert rx == 14.0
    for roi, dvh in dvhs.items():
        stored = dvh.stored_summary
        if roi != 1:
            assert dvh.mean_gy() == pytest.approx(stored["DVHMeanDose"] * rx / 100, abs=1e-3)
        assert abs(dvh.max_gy() - stored["DVHMaximumDose"] * rx / 100) <= 0.01
