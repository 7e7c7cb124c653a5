"""Which alpha/beta each voxel takes: by structure, in an explicit order, with a default.

A voxel (grid node) inside several structures takes the alpha/beta of the FIRST of them in
the map's order: list the structure that must win first (``SpinalCord=2`` before ``PTV=10``
gives the cord's nodes 2 Gy even inside the PTV). Every node in none of them takes the
default, which must be given: rtcheck has no default alpha/beta (it belongs to the tissue and
to the source of a limit, see :mod:`rtcheck.radiobiology`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rtcheck.accumulation.geometry import Slabs, grid_mask
from rtcheck.errors import InputError
from rtcheck.model import Structure


@dataclass(frozen=True)
class AlphaBetaMap:
    """alpha/beta (Gy) by structure name, in order of precedence, and for every other voxel.

    Attributes
    ----------
    default : float
        alpha/beta of the nodes inside none of the structures.
    structures : tuple of (name, alpha/beta)
        The first structure that holds a node gives its alpha/beta.
    """

    default: float
    structures: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        for name, value in (("default", self.default), *self.structures):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value <= 0:
                raise InputError(f"alpha/beta of {name}: {value!r} must be a number > 0 (Gy)")
        names = [n for n, _ in self.structures]
        if len(set(names)) < len(names):
            raise InputError(f"alpha/beta map names a structure twice: {', '.join(names)}")

    @classmethod
    def parse(cls, items: Sequence[tuple[str, float]], default: float | None) -> AlphaBetaMap:
        """From ``(name, value)`` pairs in precedence order, with the default stated."""
        if default is None:
            raise InputError("a default alpha/beta for the voxels outside the mapped structures "
                             "must be given (rtcheck has none)")
        return cls(float(default), tuple((n, float(v)) for n, v in items))

    def describe(self) -> str:
        """``SpinalCord 2 Gy > PTV 10 Gy; elsewhere 3 Gy``."""
        order = " > ".join(f"{n} {v:g} Gy" for n, v in self.structures)
        return (order + "; " if order else "") + f"elsewhere {self.default:g} Gy"

    def volume(self, structures: Mapping[str, Structure], x: np.ndarray, y: np.ndarray,
               z: np.ndarray, spacing_mm: float | None) -> np.ndarray:
        """alpha/beta at every node of the axes (nz, ny, nx).

        Raises
        ------
        InputError
            A mapped structure that the structure set does not hold.
        """
        missing = [n for n, _ in self.structures if n not in structures]
        if missing:
            raise InputError(f"alpha/beta map: no structure named {', '.join(missing)} "
                             f"(structures: {', '.join(sorted(structures))})")
        out = np.full((len(z), len(y), len(x)), self.default, dtype=float)
        # the last written wins: write in reverse order so that the first listed wins
        for name, value in reversed(self.structures):
            s = structures[name]
            if s.contours:
                out[grid_mask([Slabs.of(s, spacing_mm)], x, y, z)] = value
        return out
