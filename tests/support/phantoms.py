"""Analytic contour shapes for the case and geometry tests: the ONE import of
:mod:`support.synthetic` for them.

Each shape returns ``[(z, polygon N x 2), ...]``; :func:`structure` turns it into a
:class:`rtcheck.model.Structure`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from rtcheck.model import Contour, Structure
from support.synthetic import (  # noqa: F401  (re-exported)
    circle,
    cylinder,
    ellipse,
    elliptic_cylinder,
    extrude,
    rectangle,
    sphere,
    spine_case,
    write_plan,
)
from support.synthetic import planes as _planes


def planes(z0: float, z1: float, step: float) -> list[float]:
    """Contour plane positions from ``z0`` to ``z1`` inclusive, every ``step`` mm."""
    return [float(z) for z in _planes(z0, z1, step)]


def structure(name: str, contours: Iterable[tuple[float, np.ndarray]], number: int = 1
              ) -> Structure:
    """A Structure named ``name`` from ``(z, polygon)`` pairs."""
    return Structure(number=number, name=name,
                     contours=[Contour(float(z), np.asarray(xy, dtype=float))
                               for z, xy in contours])


def case_plan(rx: float = 27.0, fractions: int = 3, date: str = "2026-03-02",
              rois: dict[str, Iterable[tuple[float, np.ndarray]]] | None = None):
    """A PlanData without dose: a plan of ``rx`` Gy in ``fractions`` dated ``date`` and a
    structure set of the ``rois`` (name -> contours). Enough for the case checks, which read
    the plan's numbers and the contours, never the dose."""
    import datetime as dt

    from rtcheck.model import FractionGroup, Plan, PlanData, StructureSet

    plan = Plan(uid="1.2.3.4", label="CASE", fraction_groups=[FractionGroup(1, fractions)],
                prescription_gy=rx, date=dt.date.fromisoformat(date))
    structures = [structure(name, contours, number=i + 1)
                  for i, (name, contours) in enumerate((rois or {}).items())]
    return PlanData(plan=plan, dose=None, structure_set=StructureSet(structures))
