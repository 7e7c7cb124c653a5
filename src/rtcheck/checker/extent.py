"""Does a cord contour cover the region where the cord's maximum can be?

A cord (or thecal sac) contour that stops short of the target, or that skips planes across it,
can miss the hottest part of the cord: its Dmax would then read low, a false PASS. TG-101
asks the cord to be contoured at least 5-6 mm beyond the target's cranio-caudal extent; rtcheck
also asks for contours on every plane over that span (no gap larger than 1.5 plane spacings).

The target is the PTV (else CTV, else GTV) by the role table, else by RTROIInterpretedType.
Without any target the coverage cannot be checked, which the caller reports as NOT_EVALUATED.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from rtcheck.model import Structure, distinct, median
from rtcheck.rules.roles import RoleMap

#: Roles whose contours give the target's cranio-caudal extent, in order of preference.
TARGET_ROLES = ("ptv", "ctv", "gtv")
#: Contour plane positions are rounded in exports (mm).
Z_TOLERANCE_MM = 0.05
#: A gap between contour planes larger than this many plane spacings is a missing plane.
MAX_GAP_SPACINGS = 1.5


def targets(structures: list[Structure], table: RoleMap,
            explicit: Mapping[str, str] | None = None) -> list[Structure]:
    """The target structures (PTV, else CTV, else GTV) with contours, by role then by type."""
    names = [s.name for s in structures]
    usable = {r: n for r, n in (explicit or {}).items() if n in names}
    matches = table.match(names, explicit=usable, roles=[r for r in TARGET_ROLES if r in table])
    # Names and types first: an ROI's contours may be read on first use.
    for role in TARGET_ROLES:
        found = [s for s in structures if role in matches
                 and s.name in matches[role].candidates and s.contours]
        if found:
            return found
    for kind in ("PTV", "CTV", "GTV"):
        found = [s for s in structures if (s.roi_type or "").upper() == kind and s.contours]
        if found:
            return found
    return []


def coverage_problem(cord: Iterable[Structure], target_structures: list[Structure],
                     margin_mm: float, plane_spacing_mm: float | None = None) -> str | None:
    """Why ``cord`` (one structure, or the parts of one organ) does not cover the target's
    cranio-caudal extent plus ``margin_mm``, or None when it does.

    ``plane_spacing_mm`` is the structure set's common plane spacing: a structure reduced to
    a few far-apart planes has a large spacing of its own, and would hide its gaps."""
    parts = list(cord)
    label = " + ".join(repr(s.name) for s in parts)
    if not target_structures:
        return (f"no target (PTV/CTV/GTV) contoured: whether {label} covers the region of the "
                "cord's maximum cannot be checked")
    tz = [c.z for s in target_structures for c in s.contours]
    t_lo, t_hi = min(tz), max(tz)
    zs = distinct(np.round([c.z for s in parts for c in s.contours], 3))
    if zs.size == 0:
        return None
    names = ", ".join(s.name for s in target_structures)
    lo, hi = float(zs[0]), float(zs[-1])
    if lo > t_lo - margin_mm + Z_TOLERANCE_MM or hi < t_hi + margin_mm - Z_TOLERANCE_MM:
        return (f"{label} spans z {lo:.1f} to {hi:.1f} mm, not {margin_mm:g} mm beyond the "
                f"target ({names}: z {t_lo:.1f} to {t_hi:.1f} mm): its maximum may lie outside "
                "the contour; extend it (TG-101)")
    steps = np.diff(zs)
    spacing = median(steps) if steps.size else 0.0
    if plane_spacing_mm:
        spacing = min(spacing, float(plane_spacing_mm)) if spacing else float(plane_spacing_mm)
    # a gap between consecutive planes that reaches into the target's extent +- margin
    w_lo, w_hi = t_lo - margin_mm, t_hi + margin_mm
    gaps = [(float(a), float(b)) for a, b in zip(zs[:-1], zs[1:])
            if b - a > MAX_GAP_SPACINGS * spacing + Z_TOLERANCE_MM and b > w_lo and a < w_hi]
    if spacing > 0 and gaps:
        a, b = max(gaps, key=lambda g: g[1] - g[0])
        return (f"{label} has no contour between z {a:.1f} and {b:.1f} mm "
                f"(planes every {spacing:g} mm elsewhere), within the target's extent "
                f"({names}, +- {margin_mm:g} mm): its maximum may lie in the gap")
    return None
