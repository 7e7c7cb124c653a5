"""The one DVH metric grammar: :func:`parse_metric` and :class:`Metric` evaluation.

``Max[Gy]``/``Dmax``, ``Min[Gy]``/``Dmin``, ``Mean[Gy]``/``Dmean``, ``D0.03cc[Gy]``,
``D95%[Gy]``, ``V20Gy[cc]``, ``V20Gy[%]``, ``DC2%[Gy]``, ``CV20Gy[cc]``, with ``cGy`` wherever
``Gy`` stands. Rules, evaluators, plotting and the command line parse metric names here, so
the module stays light: it leans on :mod:`re` and :mod:`rtcheck.errors` only, and reads a
:class:`~rtcheck.dvh.histogram.DVH` through its public methods (imported for typing only).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rtcheck.errors import MetricError

if TYPE_CHECKING:  # a DVH evaluates its metrics through this module: no import cycle at run time
    from rtcheck.dvh.histogram import DVH


@dataclass(frozen=True)
class Metric:
    """A parsed DVH metric (see :func:`parse_metric`)."""

    text: str
    kind: str  # "max", "min", "mean", "D", "DC", "V", "CV"
    value: float | None = None  # the x of Dx / Vx, in the input unit
    input_unit: str | None = None  # "%", "cc", "Gy", "cGy"
    output_unit: str = "Gy"  # "Gy", "cGy", "cc", "%"

    def evaluate(self, dvh: DVH) -> float:
        """The metric's value on ``dvh``, in :attr:`output_unit`; ``nan`` when it does not
        exist (a Dx of a volume larger than the structure, a % of an empty curve)."""
        if self.kind in ("max", "min", "mean"):
            gy = {"max": dvh.dmax, "min": dvh.dmin, "mean": dvh.dmean}[self.kind]
            return _from_gy(gy, self.output_unit)
        if self.kind in ("D", "DC"):
            x = self.x
            vol = dvh.covered_volume_cc * x / 100.0 if self.input_unit == "%" else x
            if self.kind == "DC":  # coldest x: the dose at the complement volume
                if vol > dvh.covered_volume_cc * (1 + 1e-9):
                    return math.nan
                vol = max(dvh.covered_volume_cc - vol, 0.0)
            return _from_gy(dvh.dose_at_volume(vol), self.output_unit)
        # V and CV
        gy = self.x / (100.0 if self.input_unit == "cGy" else 1.0)
        vol = dvh.volume_at_dose(gy)
        if self.kind == "CV":
            vol = dvh.covered_volume_cc - vol
        if self.output_unit == "%":
            total = dvh.covered_volume_cc
            return 100.0 * vol / total if total > 0 else math.nan
        return vol

    @property
    def x(self) -> float:
        """The x of a Dx / Vx metric, in :attr:`input_unit` (max, min and mean have none)."""
        if self.value is None:
            raise MetricError(f"metric {self.text!r} ({self.kind}) has no x")
        return float(self.value)


def _from_gy(value: float, unit: str) -> float:
    """A dose in Gy, in ``unit`` (Gy or cGy)."""
    return value * 100.0 if unit == "cGy" else value


_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_PLAIN = {"dmax": "max", "dmin": "min", "dmean": "mean", "max": "max", "min": "min", "mean": "mean"}
_RE_STAT = re.compile(r"^(?P<stat>D?(?:max|min|mean))(?:\[(?P<out>c?Gy)\])?$", re.IGNORECASE)
_RE_DOSE = re.compile(rf"^(?P<kind>DC|D){_NUM}(?P<in>%|cc)(?:\[(?P<out>c?Gy)\])?$", re.IGNORECASE)
_RE_VOL = re.compile(rf"^(?P<kind>CV|V){_NUM}(?P<in>c?Gy)(?:\[(?P<out>cc|%)\])?$", re.IGNORECASE)


def parse_metric(text: str) -> Metric:
    """Parse a DVH metric name.

    Parameters
    ----------
    text : str
        ``Max[Gy]``, ``Dmax``, ``Min[Gy]``, ``Dmin``, ``Mean[Gy]``, ``Dmean``,
        ``D<x>cc[Gy]``, ``D<x>%[Gy]``, ``DC<x>%[Gy]``, ``V<x>Gy[cc]``, ``V<x>Gy[%]``,
        ``CV<x>Gy[cc]``; ``cGy`` wherever ``Gy`` stands. The ``[Gy]`` of a dose metric may be
        left out; a volume metric must say ``[cc]`` or ``[%]``.

    Raises
    ------
    MetricError
        When the text is not one of these forms.
    """
    s = text.strip().replace(" ", "")
    m = _RE_STAT.match(s)
    if m:
        stat = _PLAIN[m["stat"].lower()]
        return Metric(text, stat, output_unit=_unit(m["out"] or "Gy"))
    m = _RE_DOSE.match(s)
    if m:
        return Metric(text, m["kind"].upper(), float(m[2]), m["in"].lower(),
                      _unit(m["out"] or "Gy"))
    m = _RE_VOL.match(s)
    if m:
        if not m["out"]:
            raise MetricError(
                f"metric {text!r}: say which volume unit, e.g. {s}[cc] or {s}[%]")
        return Metric(text, m["kind"].upper(), float(m[2]), _unit(m["in"]), m["out"].lower())
    raise MetricError(
        f"cannot read metric {text!r}; examples: Dmax, Mean[Gy], D95%[Gy], D0.03cc[Gy], "
        "V20Gy[cc], V20Gy[%], DC2%[Gy], CV20Gy[cc]")


def _unit(u: str) -> str:
    """A dose unit as typed (any case), in its canonical spelling (Gy, cGy)."""
    return {"gy": "Gy", "cgy": "cGy"}.get(u.lower(), u)

