"""The planning system's own DVHs, as stored in an RTDOSE's DVHSequence.

Many planning systems export their DVHs with the dose (RTDOSE DVHSequence). They are a free,
independent cross-check of rtcheck's DVHs on real contours.

How the stored data are read
----------------------------
``DVHData`` is a flat list of pairs ``(bin width, volume)``; dose = width x ``DVHDoseScaling``
in ``DoseUnits`` (GY; CGY is converted; RELATIVE cannot be expressed in Gy and is refused).
Bin ``i`` runs from the sum of the widths before it to that sum plus its own width. Volumes
are in ``DVHVolumeUnits`` (``CM3`` or ``PERCENT``) and returned as stored.

Where inside its bin a cumulative volume applies is not fixed by the standard. rtcheck places
a stored ``CUMULATIVE`` volume at its bin's centre (:data:`CUMULATIVE_VOLUME_AT`): one planning
system's own minimum, maximum and mean (its summary attributes) match that reading for all
nine ROIs of its export and contradict the lower and upper edges (see
benchmarks/tps_agreement.py). A ``DIFFERENTIAL`` DVH is summed from the top into a cumulative
one, whose volumes then apply at the bins' lower edges exactly. The ambiguity is at most one
bin (0.01 Gy for the usual bins).

The summary attributes ``DVHMinimumDose``, ``DVHMaximumDose`` and ``DVHMeanDose`` are kept as
stored (:attr:`TPSDVH.stored_summary`) and never used for a metric: their units are not fixed
in practice (one planning system writes them in percent of the prescription while the curve
is in Gy).

Leans on pydicom, numpy and :mod:`rtcheck.errors` only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pydicom

from rtcheck.errors import InputError

#: Volumes at or below this (cc or %) are rounding noise in the tail of a stored curve
#: (planning systems write values such as 7e-8 cc or -3e-13 cc there).
TAIL_NOISE = 1e-6
#: Where in its bin a stored cumulative volume applies (0 = lower edge, 0.5 = centre).
CUMULATIVE_VOLUME_AT = 0.5


@dataclass
class TPSDVH:
    """One DVH from a DVHSequence, as a cumulative curve.

    Unpacks as ``doses_gy, volumes = tps_dvh``.

    Attributes
    ----------
    roi_number : int
        ReferencedROINumber (of the structure set the plan uses).
    doses_gy : ndarray
        Dose (Gy) at which each volume applies, increasing (see the module docstring).
    volumes : ndarray
        Volume receiving at least ``doses_gy``, in :attr:`volume_units`.
    bin_widths_gy : ndarray
        Width of each stored bin (Gy).
    volume_units : str
        ``"CM3"`` or ``"PERCENT"`` as stored.
    stored_type : str
        ``"CUMULATIVE"`` or ``"DIFFERENTIAL"``: what the file held (``volumes`` is cumulative).
    stored_summary : dict
        DVHMinimumDose, DVHMaximumDose and DVHMeanDose as stored (units not guaranteed).
    """

    roi_number: int
    doses_gy: np.ndarray
    volumes: np.ndarray
    bin_widths_gy: np.ndarray
    volume_units: str
    stored_type: str = "CUMULATIVE"
    stored_summary: dict[str, float] = field(default_factory=dict)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.doses_gy, self.volumes))

    @property
    def volume(self) -> float:
        """Total volume: the curve's first value (in :attr:`volume_units`)."""
        return float(self.volumes[0]) if self.volumes.size else 0.0

    def mean_gy(self) -> float:
        """Mean dose: the integral of the cumulative curve over dose, divided by the volume.

        The volume lost between two points of the curve is given the dose half way between
        them (the curve taken as linear there), the volume left at the last point the dose
        half a bin beyond it. Negative tail noise counts as zero.
        """
        if self.volume <= 0:
            return float("nan")
        v = np.clip(self.volumes, 0.0, None)
        lost = v - np.append(v[1:], 0.0)
        at = self.doses_gy + self.bin_widths_gy / 2.0
        return float(np.dot(lost, at) / self.volume)

    def max_gy(self) -> float:
        """Maximum dose: the last point of the curve with a volume above :data:`TAIL_NOISE`."""
        above = np.nonzero(self.volumes > TAIL_NOISE)[0]
        return float(self.doses_gy[above[-1]]) if above.size else float("nan")

    def min_gy(self) -> float:
        """Minimum dose: the first point where the curve falls below its total volume."""
        drop = np.nonzero(self.volumes < self.volume - TAIL_NOISE)[0]
        return float(self.doses_gy[drop[0]]) if drop.size else float("nan")


def _float(item: pydicom.Dataset, keyword: str) -> float | None:
    """A stored number (None when absent); a value that is not one raises."""
    value = item.get(keyword)
    return None if value is None or value == "" else float(value)


def _parse_item(item: pydicom.Dataset, path: str | None) -> TPSDVH:
    """One DVHSequence item as a cumulative curve in Gy (InputError when it cannot be)."""
    refs = item.get("DVHReferencedROISequence") or []
    if not refs or "ReferencedROINumber" not in refs[0]:
        raise InputError("a DVHSequence item references no ROI", path)
    roi = int(refs[0].ReferencedROINumber)
    units = str(item.get("DoseUnits", "")).upper()
    if units not in ("GY", "CGY"):
        raise InputError(f"DVH of ROI {roi}: dose units {units or 'missing'} cannot be "
                         "expressed in Gy", path)
    data = np.asarray(item.get("DVHData") or [], dtype=float)
    if data.size < 2 or data.size % 2:
        raise InputError(f"DVH of ROI {roi}: DVHData must hold (width, volume) pairs, "
                         f"found {data.size} values", path)
    scale = float(item.get("DVHDoseScaling", 1.0) or 1.0) * (0.01 if units == "CGY" else 1.0)
    widths = data[0::2] * scale
    volumes = data[1::2]
    stored_type = str(item.get("DVHType", "CUMULATIVE")).upper()
    if stored_type == "DIFFERENTIAL":
        volumes, at = np.cumsum(volumes[::-1])[::-1], 0.0
    elif stored_type == "CUMULATIVE":
        at = CUMULATIVE_VOLUME_AT
    else:
        raise InputError(f"DVH of ROI {roi}: unknown DVHType {stored_type!r}", path)
    summary = {k: v for k in ("DVHMinimumDose", "DVHMaximumDose", "DVHMeanDose")
               if (v := _float(item, k)) is not None}
    doses = np.cumsum(widths) - widths * (1.0 - at)
    return TPSDVH(roi, doses, volumes, widths,
                  str(item.get("DVHVolumeUnits", "")).upper(), stored_type, summary)


def read_tps_dvhs(source: str | os.PathLike | pydicom.Dataset) -> dict[int, TPSDVH]:
    """The DVHs stored in an RTDOSE, keyed by ROI number.

    Parameters
    ----------
    source : path or pydicom Dataset
        An RTDOSE file (its pixel data are not read) or dataset.

    Returns
    -------
    dict of int to TPSDVH
        Empty when the RTDOSE carries no DVHSequence. Each value unpacks as
        ``(doses_gy, volumes)``.

    Raises
    ------
    InputError
        When the file cannot be read or a DVH cannot be expressed in Gy.
    """
    if isinstance(source, pydicom.Dataset):
        ds, path = source, getattr(source, "filename", None)
    else:
        path = os.fspath(source)
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:
            raise InputError(f"cannot read as DICOM: {exc}", path) from exc
    out: dict[int, TPSDVH] = {}
    for item in ds.get("DVHSequence") or []:
        dvh = _parse_item(item, path)
        if dvh.roi_number in out:
            raise InputError(f"two DVHs for ROI {dvh.roi_number}", path)
        out[dvh.roi_number] = dvh
    return out
