"""Linear-quadratic radiobiology: BED, EQD2, iso-effective doses and course accumulation.

Every function takes the model and alpha/beta explicitly; nothing is assumed.

Models
------
``"LQ"`` (the default), n fractions of d Gy, total D = n d::

    BED  = D (1 + d / (a/b))
    EQD2 = D (d + a/b) / (2 + a/b)

``"LQ-L"`` (linear-quadratic-linear) is LQ up to a transition dose per fraction ``dt`` that the
caller must give (there is no default: published values differ), and the tangent of LQ above
it, so BED and its slope are continuous at ``dt``::

    d <= dt:  BED = n d (1 + d / (a/b))
    d >  dt:  BED = n [d (1 + 2 dt / (a/b)) - dt^2 / (a/b)]

EQD2 is the total dose in 2 Gy fractions that gives the same BED *under the same model*:
``EQD2 = BED / (BED per Gy of 2 Gy fractions)``. That is ``BED / (1 + 2/(a/b))`` for LQ and for
LQ-L with ``dt >= 2`` Gy; for LQ-L with ``dt < 2`` Gy the 2 Gy reference fractions themselves are
in the linear region, and this definition keeps "EQD2 of 2 Gy fractions = their physical dose".

Point doses
-----------
The dose per fraction of a point (for instance the spinal-cord maximum) is that point's own
dose divided by the number of fractions, never the prescription's dose per fraction: pass the
point dose as ``total_dose``. A DVH bin or a dose-grid voxel is such a point, hence
:func:`eqd2_dvh` and :func:`eqd2_grid`. Which alpha/beta applies to a structure is the
caller's choice.

Validation
----------
``fractions`` must be a positive ``int`` (``numpy`` integers accepted; ``2.5``, ``10.0``,
``True`` are refused), doses finite and >= 0 Gy, ``alpha_beta`` finite and > 0 Gy, ``dt``
finite and > 0 Gy (only with ``"LQ-L"``). Anything else raises :class:`ValueError` naming the
parameter and the value.

Scalars in, ``float`` out; arrays in, ``numpy.ndarray`` out (element-wise). A plain Python
number is converted with :mod:`math` alone, so that ``rtcheck convert`` starts without
importing numpy (issue 11: under 0.15 s); numpy is imported when an array (or a numpy
scalar) is given.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import math
import numbers
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence, Union, overload

if TYPE_CHECKING:
    import numpy as np

DoseLike = Union[float, int, "np.ndarray", Sequence[float]]
#: A dose the model functions work on: a plain float, or a float array.
Doses = Union[float, "np.ndarray"]

#: Model names accepted by every function.
MODELS = ("LQ", "LQ-L")
#: Quantities a dose can be converted to.
QUANTITIES = ("BED", "EQD2")


# -- validation ------------------------------------------------------------------------------

def _is_numpy_bool(value: object) -> bool:
    # A numpy object can only exist once numpy is imported: no need to import it to ask.
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.bool_)


def _is_flag(value: object) -> bool:
    # bool is an int subclass in Python and numpy: a flag is never a dose or a count.
    return isinstance(value, bool) or _is_numpy_bool(value)


def _is_real_scalar(value: object) -> bool:
    return isinstance(value, numbers.Real) and not _is_flag(value)


def _is_plain_number(value: object) -> bool:
    """A Python int or float (not bool): converted with math, without numpy."""
    return type(value) in (int, float)


def check_fractions(fractions: object, name: str = "fractions") -> int:
    """Return ``fractions`` as an ``int`` if it is a positive integer, else raise ValueError."""
    # numbers.Integral covers numpy integers (registered with it) without importing numpy.
    if _is_flag(fractions) or not isinstance(fractions, numbers.Integral):
        raise ValueError(f"{name} must be a positive integer, got {fractions!r} "
                         f"({type(fractions).__name__})")
    if fractions < 1:
        raise ValueError(f"{name} must be a positive integer, got {fractions!r}")
    return int(fractions)


def _check_positive(value: object, name: str) -> float:
    """A finite scalar > 0 (alpha/beta, dt)."""
    if not isinstance(value, numbers.Real) or _is_flag(value) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0 Gy, got {value!r}")
    return float(value)


def _as_doses(value: object, name: str, allow_negative: bool = False) -> Doses:
    """A plain number as a float (checked with math), anything else as a float array."""
    if isinstance(value, (int, float)) and _is_plain_number(value):
        dose = float(value)
        if not math.isfinite(dose) or (dose < 0 and not allow_negative):
            need = "finite" if allow_negative else "finite and >= 0 Gy"
            raise ValueError(f"{name} must be {need}, got {value!r}")
        return dose
    return _as_dose_array(value, name, allow_negative)


def _as_dose_array(value: object, name: str, allow_negative: bool = False) -> np.ndarray:
    """Doses as a float array; finite and (unless ``allow_negative``) >= 0 everywhere."""
    import numpy as np

    if isinstance(value, (str, bytes)) or _is_flag(value):
        raise ValueError(f"{name} must be a dose in Gy (a number or an array), got {value!r}")
    try:
        arr = np.asarray(value)
        if arr.dtype == bool or arr.dtype.kind not in "iuf":
            raise TypeError
        arr = arr.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a dose in Gy (a number or an array), "
                         f"got {value!r}") from None
    bad = ~np.isfinite(arr) if allow_negative else ~(np.isfinite(arr) & (arr >= 0))
    if bad.any():
        need = "finite" if allow_negative else "finite and >= 0 Gy"
        if arr.ndim == 0:
            raise ValueError(f"{name} must be {need}, got {value!r}")
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        index = where[0] if len(where) == 1 else where
        raise ValueError(f"{name} must be {need} everywhere, got {arr[where]!r} "
                         f"at index {index}")
    return arr


def _check_model(model: object, dt: object) -> float | None:
    """Validate the model and its transition dose; return dt (None for LQ)."""
    if model not in MODELS:
        raise ValueError(f"model must be 'LQ' or 'LQ-L', got {model!r}")
    if model == "LQ":
        if dt is not None:
            raise ValueError(f"dt is only used by model 'LQ-L', got dt={dt!r} with model 'LQ'")
        return None
    if dt is None:
        raise ValueError("dt=None: model 'LQ-L' needs the transition dose per fraction dt "
                         "(Gy); there is no default")
    return _check_positive(dt, "dt")


def _check_quantity(quantity: object) -> str:
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be 'BED' or 'EQD2', got {quantity!r}")
    return str(quantity)


def _out(doses: Doses) -> Any:
    # Any: float for a plain number or a 0-d array, the array otherwise (callers' annotations
    # say float | ndarray).
    # numpy scalars (np.float64 is a float subclass) and 0-d arrays become a plain float.
    return float(doses) if getattr(doses, "ndim", 0) == 0 else doses


def _where(condition: Any, above: Doses, below: Doses) -> Doses:
    """``above`` where ``condition`` holds, else ``below``: element-wise for arrays."""
    if isinstance(condition, bool):
        return above if condition else below
    import numpy as np

    return np.where(condition, above, below)


def _sqrt(x: Doses) -> Doses:
    if isinstance(x, float):
        return math.sqrt(x)
    import numpy as np

    return np.sqrt(x)


# -- the model, per fraction -----------------------------------------------------------------

def _bed_per_fraction(d: Doses, ab: float, dt: float | None) -> Doses:
    quadratic = d * (1.0 + d / ab)
    if dt is None:
        return quadratic
    return _where(d > dt, d * (1.0 + 2.0 * dt / ab) - dt * dt / ab, quadratic)


def _dose_per_fraction_for_bed(b: Doses, ab: float, dt: float | None) -> Doses:
    """Invert :func:`_bed_per_fraction` (b = BED per fraction, >= 0)."""
    # Root of d^2/ab + d - b = 0 written as 2b / (1 + sqrt(1 + 4b/ab)): no cancellation
    # when b/ab is small (large alpha/beta or tiny doses).
    quadratic = 2.0 * b / (1.0 + _sqrt(1.0 + 4.0 * b / ab))
    if dt is None:
        return quadratic
    b_transition = dt * (1.0 + dt / ab)
    return _where(b > b_transition, (b + dt * dt / ab) / (1.0 + 2.0 * dt / ab), quadratic)


def _bed_per_gy_of_2gy_fractions(ab: float, dt: float | None) -> float:
    return float(_bed_per_fraction(2.0, ab, dt)) / 2.0


def _validated(total_dose, fractions, alpha_beta, model, dt, name="total_dose"):
    doses = _as_doses(total_dose, name)
    n = check_fractions(fractions)
    ab = _check_positive(alpha_beta, "alpha_beta")
    return doses, n, ab, _check_model(model, dt)


# -- forward conversion ----------------------------------------------------------------------

@overload
def bed(total_dose: float, fractions: int, alpha_beta: float, model: str = ...,
        dt: float | None = ...) -> float: ...


@overload
def bed(total_dose: np.ndarray | Sequence[float], fractions: int, alpha_beta: float, model: str = ...,
        dt: float | None = ...) -> np.ndarray: ...


def bed(total_dose: DoseLike, fractions: int, alpha_beta: float, model: str = "LQ",
        dt: float | None = None) -> float | np.ndarray:
    """Biologically effective dose (Gy) of ``total_dose`` Gy given in ``fractions`` fractions.

    Parameters
    ----------
    total_dose : float or array_like
        Physical dose (Gy) over the whole course, at a point (its own dose per fraction is
        ``total_dose / fractions``). Arrays are converted element-wise.
    fractions : int
        Number of fractions, a positive integer.
    alpha_beta : float
        alpha/beta (Gy) of the tissue.
    model : {"LQ", "LQ-L"}
    dt : float, optional
        Transition dose per fraction (Gy); required for "LQ-L", refused for "LQ".

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> bed(8.0, 1, 10.0)
    14.4
    """
    doses, n, ab, dt = _validated(total_dose, fractions, alpha_beta, model, dt)
    return _out(n * _bed_per_fraction(doses / n, ab, dt))


@overload
def eqd2(total_dose: float, fractions: int, alpha_beta: float, model: str = ...,
         dt: float | None = ...) -> float: ...


@overload
def eqd2(total_dose: np.ndarray | Sequence[float], fractions: int, alpha_beta: float, model: str = ...,
         dt: float | None = ...) -> np.ndarray: ...


def eqd2(total_dose: DoseLike, fractions: int, alpha_beta: float, model: str = "LQ",
         dt: float | None = None) -> float | np.ndarray:
    """Equivalent dose in 2 Gy fractions (Gy); parameters as :func:`bed`.

    Examples
    --------
    >>> eqd2(30.0, 10, 2.0)
    37.5
    """
    doses, n, ab, dt = _validated(total_dose, fractions, alpha_beta, model, dt)
    return _out(n * _bed_per_fraction(doses / n, ab, dt) / _bed_per_gy_of_2gy_fractions(ab, dt))


def eqd2_dvh(doses_gy: DoseLike, fractions: int, alpha_beta: float, model: str = "LQ",
             dt: float | None = None) -> np.ndarray:
    """EQD2 dose axis of a physical DVH of a ``fractions``-fraction plan, bin by bin.

    Each bin dose is treated as a point dose (dose per fraction = bin dose / fractions). The
    conversion is strictly increasing in dose, so the volumes of a cumulative DVH are unchanged:
    pair the result with the original volumes (``eqd2_dvh(dvh.doses, n, ab)`` with
    ``dvh.volumes``). Summary numbers do not convert this way: the EQD2 of the mean dose is not
    the mean EQD2. For a BED DVH call :func:`bed` on the bin doses. The alpha/beta is the
    structure's, chosen by the caller.
    """
    import numpy as np

    return np.atleast_1d(eqd2(_as_dose_array(doses_gy, "doses_gy"), fractions, alpha_beta,
                              model, dt))


def eqd2_grid(values: DoseLike, fractions: int, alpha_beta: float, model: str = "LQ",
              dt: float | None = None) -> np.ndarray:
    """Voxel-wise EQD2 of a physical dose grid (any shape; e.g. ``DoseGrid.values``).

    This is the point conversion of :func:`eqd2` applied to every voxel, each with its own dose
    per fraction (voxel dose / fractions). One alpha/beta for the whole grid: to use a different
    alpha/beta per structure, convert with each and pick voxels by structure.
    """
    import numpy as np

    return np.asarray(eqd2(_as_dose_array(values, "values"), fractions, alpha_beta, model, dt))


# -- inverses --------------------------------------------------------------------------------

@overload
def isoeffective_dose(target: float, fractions: int, alpha_beta: float,
                      quantity: str = ..., model: str = ...,
                      dt: float | None = ...) -> float: ...


@overload
def isoeffective_dose(target: np.ndarray | Sequence[float], fractions: int, alpha_beta: float,
                      quantity: str = ..., model: str = ...,
                      dt: float | None = ...) -> np.ndarray: ...


def isoeffective_dose(target: DoseLike, fractions: int, alpha_beta: float,
                      quantity: str = "EQD2", model: str = "LQ",
                      dt: float | None = None) -> float | np.ndarray:
    """Total physical dose (Gy) in ``fractions`` fractions whose BED or EQD2 equals ``target``.

    Closed form: the positive root of the LQ quadratic, or for LQ-L the linear branch when the
    target BED per fraction exceeds that of ``dt`` (``dt (1 + dt/(a/b))``).

    Examples
    --------
    >>> round(isoeffective_dose(bed(30.0, 10, 10.0), 5, 10.0, quantity="BED"), 4)
    25.7445
    """
    quantity = _check_quantity(quantity)
    targets, n, ab, dt = _validated(target, fractions, alpha_beta, model, dt, name="target")
    if quantity == "EQD2":
        targets = targets * _bed_per_gy_of_2gy_fractions(ab, dt)
    return _out(n * _dose_per_fraction_for_bed(targets / n, ab, dt))


@overload
def max_total_dose(remaining_eqd2: float, fractions: int, alpha_beta: float,
                   model: str = ..., dt: float | None = ...) -> float: ...


@overload
def max_total_dose(remaining_eqd2: np.ndarray | Sequence[float], fractions: int, alpha_beta: float,
                   model: str = ..., dt: float | None = ...) -> np.ndarray: ...


def max_total_dose(remaining_eqd2: DoseLike, fractions: int, alpha_beta: float,
                   model: str = "LQ", dt: float | None = None) -> float | np.ndarray:
    """Largest total dose (Gy) in ``fractions`` fractions whose EQD2 fits ``remaining_eqd2``.

    ``remaining_eqd2`` may be negative (a budget already exceeded): a budget <= 0 gives 0 Gy.
    The result's EQD2 equals the budget to floating-point rounding.

    Examples
    --------
    >>> round(max_total_dose(25.0, 1, 2.0), 3)   # sqrt(101) - 1
    9.05
    """
    budget = _as_doses(remaining_eqd2, "remaining_eqd2", allow_negative=True)
    clipped = max(budget, 0.0) if isinstance(budget, float) else budget.clip(min=0.0)
    return isoeffective_dose(clipped, fractions, alpha_beta, "EQD2", model, dt)


@overload
def max_dose_per_fraction(remaining_eqd2: float, fractions: int, alpha_beta: float,
                          model: str = ..., dt: float | None = ...) -> float: ...


@overload
def max_dose_per_fraction(remaining_eqd2: np.ndarray | Sequence[float], fractions: int, alpha_beta: float,
                          model: str = ..., dt: float | None = ...) -> np.ndarray: ...


def max_dose_per_fraction(remaining_eqd2: DoseLike, fractions: int, alpha_beta: float,
                          model: str = "LQ", dt: float | None = None) -> float | np.ndarray:
    """Largest dose per fraction (Gy) over ``fractions`` fractions fitting ``remaining_eqd2``.

    :func:`max_total_dose` divided by ``fractions``; a budget <= 0 gives 0 Gy.
    """
    return max_total_dose(remaining_eqd2, fractions, alpha_beta, model, dt) / fractions


# -- results that carry their model ----------------------------------------------------------

@dataclass(frozen=True)
class Conversion:
    """A BED or EQD2 with everything it was computed from.

    Attributes
    ----------
    quantity : {"BED", "EQD2"}
    value : float
        The BED or EQD2, Gy.
    total_dose : float
        Physical dose (Gy) converted.
    fractions : int
    dose_per_fraction : float
        ``total_dose / fractions`` (Gy): the dose per fraction the model used.
    alpha_beta : float
        Gy.
    model : {"LQ", "LQ-L"}
    dt : float or None
        LQ-L transition dose per fraction (Gy); None for LQ.
    """

    quantity: str
    value: float
    total_dose: float
    fractions: int
    dose_per_fraction: float
    alpha_beta: float
    model: str
    dt: float | None = None

    @property
    def linear_region(self) -> bool | None:
        """LQ-L only: True when the dose per fraction is above ``dt`` (the linear branch)."""
        return None if self.dt is None else self.dose_per_fraction > self.dt

    def __str__(self) -> str:
        return (f"{self.quantity} {self.value:.2f} Gy ({self.total_dose:g} Gy in "
                f"{self.fractions} fx, {self.dose_per_fraction:.3g} Gy/fx, {model_label(self.model, self.dt)}, "
                f"a/b {self.alpha_beta:g} Gy)")

    def as_dict(self) -> dict:
        return {"quantity": self.quantity, "value_gy": self.value,
                "total_dose_gy": self.total_dose, "fractions": self.fractions,
                "dose_per_fraction_gy": self.dose_per_fraction,
                "alpha_beta_gy": self.alpha_beta, "model": self.model, "dt_gy": self.dt}


def model_label(model: str, dt: float | None) -> str:
    """``"LQ"`` or ``"LQ-L dT=6 Gy"``: how the model is printed in reports."""
    return model if dt is None else f"{model} dT={dt:g} Gy"


def convert(total_dose: float, fractions: int, alpha_beta: float, quantity: str = "EQD2",
            model: str = "LQ", dt: float | None = None) -> Conversion:
    """BED or EQD2 of one scheme or point dose, as a :class:`Conversion` record.

    Examples
    --------
    >>> convert(30.0, 10, 2.0).value
    37.5
    """
    quantity = _check_quantity(quantity)
    if not _is_real_scalar(total_dose):
        raise ValueError(f"total_dose must be one dose in Gy, got {total_dose!r}")
    func = bed if quantity == "BED" else eqd2
    value = func(total_dose, fractions, alpha_beta, model, dt)
    return Conversion(quantity, float(value), float(total_dose), int(fractions),
                      float(total_dose) / int(fractions), float(alpha_beta), model,
                      None if dt is None else float(dt))


@dataclass(frozen=True)
class Sensitivity:
    """One quantity evaluated at several alpha/beta values, with its range.

    Attributes
    ----------
    quantity : str
        What was evaluated (``"EQD2"``, ``"BED"``, ``"cumulative EQD2"``...).
    alpha_betas : tuple of float
        The alpha/beta values (Gy), in the order given.
    values : tuple of float
        The quantity at each alpha/beta (Gy).
    model : str
    dt : float or None
    subject : str
        What the quantity is of (e.g. ``"30 Gy/10"``).
    """

    quantity: str
    alpha_betas: tuple[float, ...]
    values: tuple[float, ...]
    model: str = "LQ"
    dt: float | None = None
    subject: str = ""

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    @property
    def spread(self) -> float:
        """``max - min`` (Gy): how much the number depends on the alpha/beta chosen."""
        return self.max - self.min

    def by_alpha_beta(self) -> dict[float, float]:
        return dict(zip(self.alpha_betas, self.values))

    def __str__(self) -> str:
        abs_ = ", ".join(f"{a:g}" for a in self.alpha_betas)
        return (f"{self.quantity}{' of ' + self.subject if self.subject else ''}: "
                f"{self.min:.2f} to {self.max:.2f} Gy over a/b = {abs_} Gy "
                f"({model_label(self.model, self.dt)})")

    def as_dict(self) -> dict:
        return {"quantity": self.quantity, "subject": self.subject, "model": self.model,
                "dt_gy": self.dt,
                "values": [{"alpha_beta_gy": a, "value_gy": v}
                           for a, v in zip(self.alpha_betas, self.values)],
                "min_gy": self.min, "max_gy": self.max, "spread_gy": self.spread}


def alpha_beta_sensitivity(total_dose: float, fractions: int, alpha_betas: Iterable[float],
                           quantity: str = "EQD2", model: str = "LQ",
                           dt: float | None = None) -> Sensitivity:
    """BED or EQD2 of one scheme or point dose at several alpha/beta values, and the range.

    Examples
    --------
    >>> s = alpha_beta_sensitivity(20.3, 3, [0.87, 2.0, 3.0])   # Sahgal 3-fraction cord limit
    >>> round(s.min, 2), round(s.max, 2)
    (39.65, 54.02)
    """
    if _is_real_scalar(alpha_betas) or isinstance(alpha_betas, str):
        raise ValueError(f"alpha_betas must be a list of alpha/beta values, got {alpha_betas!r}")
    abs_ = tuple(alpha_betas)
    if not abs_:
        raise ValueError("alpha_betas must hold at least one alpha/beta value, got none")
    values = tuple(convert(total_dose, fractions, ab, quantity, model, dt).value for ab in abs_)
    return Sensitivity(quantity, tuple(float(a) for a in abs_), values, model,
                       None if dt is None else float(dt), f"{total_dose:g} Gy/{fractions}")


# -- fractionation schemes as text -----------------------------------------------------------

_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_FX = r"(?:\s*(?:fractions?|fx|fr))?"
_SCHEME_FORMS = (
    # 30Gy/10, 30 Gy / 10 fx
    ("total", re.compile(rf"{_NUM}\s*gy\s*/\s*(\d+){_FX}", re.I)),
    # 30 Gy in 10, 30 Gy in 10 fractions
    ("total", re.compile(rf"{_NUM}\s*gy\s+in\s+(\d+){_FX}", re.I)),
    # 10x3Gy, 10 x 3 Gy, 10 × 3 Gy: number of fractions first
    ("n_x_d", re.compile(rf"(\d+)\s*[x×*]\s*{_NUM}\s*gy", re.I)),
    # 3Gy x 10, 3 Gy × 10 fx: the unit marks which number is the dose
    ("d_x_n", re.compile(rf"{_NUM}\s*gy\s*[x×*]\s*(\d+){_FX}", re.I)),
)
SCHEME_SYNTAX = ("TOTALGy/N (30Gy/10, 30 Gy/10 fx), TOTAL Gy in N (30 Gy in 10), "
                 "N x DOSE Gy (10x3Gy, 10 x 3 Gy) or DOSE Gy x N (3Gy x 10)")


@dataclass(frozen=True)
class Scheme:
    """A fractionation scheme: ``total_gy`` Gy in ``fractions`` fractions."""

    total_gy: float
    fractions: int

    def __post_init__(self) -> None:
        if not _is_real_scalar(self.total_gy):
            raise ValueError(f"total_gy must be one dose in Gy, got {self.total_gy!r}")
        _as_doses(self.total_gy, "total_gy")
        check_fractions(self.fractions)

    @property
    def dose_per_fraction(self) -> float:
        return self.total_gy / self.fractions

    def __str__(self) -> str:
        return f"{self.total_gy:g} Gy/{self.fractions}"

    def as_dict(self) -> dict:
        return {"total_gy": self.total_gy, "fractions": self.fractions,
                "dose_per_fraction_gy": self.dose_per_fraction}


def split_scheme(text: str) -> tuple[Scheme, str]:
    """Read a scheme at the start of ``text``; return it and the rest of the text.

    For strings that carry more after the scheme, e.g.
    ``"30Gy/10 cord_dmax=31Gy date=2025-03-01"`` gives ``(Scheme(30.0, 10), "cord_dmax=31Gy
    date=2025-03-01")``. Accepted forms: see :func:`parse_scheme`.
    """
    if not isinstance(text, str):
        raise ValueError(f"fractionation scheme must be text, got {text!r}")
    stripped = text.strip()
    for kind, pattern in _SCHEME_FORMS:
        match = pattern.match(stripped)
        if match is None:
            continue
        rest = stripped[match.end():]
        if rest and not rest[0].isspace():
            continue  # "30Gy/10.5" or "30Gy/10abc": not a scheme followed by other text
        first, second = match.group(1), match.group(2)
        if kind == "total":
            total, n = float(first), int(second)
        elif kind == "n_x_d":
            n, total = int(first), int(first) * float(second)
        else:
            n, total = int(second), int(second) * float(first)
        if n < 1:
            raise ValueError(f"fractionation scheme {text!r}: the number of fractions must be "
                             "a positive integer")
        return Scheme(total, n), rest.strip()
    raise ValueError(f"cannot read fractionation scheme {text!r}: expected {SCHEME_SYNTAX}")


def parse_scheme(text: str) -> Scheme:
    """Read a fractionation scheme written as text.

    Accepted (case-insensitive, spaces optional around numbers, ``/``, ``x``):

    - ``TOTALGy/N``: ``30Gy/10``, ``30 Gy / 10``, ``30Gy/10fx``, ``30 Gy/10 fractions``;
    - ``TOTAL Gy in N``: ``30 Gy in 10``, ``30 Gy in 10 fractions``;
    - ``N x DOSE Gy`` (number of fractions first, European usage): ``10x3Gy``, ``10 x 3 Gy``,
      ``10 × 3 Gy``;
    - ``DOSE Gy x N`` (the unit marks the dose): ``3Gy x 10``, ``3 Gy x 10 fx``.

    The unit ``Gy`` is required (``30/10`` and ``3000cGy/10`` are refused), N is a positive
    integer, doses use a decimal point (``20.3Gy/3``). Anything else, including text after the
    scheme, raises ValueError naming the string.

    Examples
    --------
    >>> parse_scheme("10 x 3 Gy")
    Scheme(total_gy=30.0, fractions=10)
    """
    scheme, rest = split_scheme(text)
    if rest:
        raise ValueError(f"cannot read fractionation scheme {text!r}: unexpected {rest!r} "
                         f"after {scheme}; expected {SCHEME_SYNTAX}")
    return scheme


def parse_dose(text: str) -> float:
    """Read one dose written with its unit: ``"31Gy"``, ``"31 Gy"``, ``"12.4 gy"`` -> Gy."""
    match = re.fullmatch(rf"\s*{_NUM}\s*gy\s*", text, re.I) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"cannot read dose {text!r}: expected a number followed by Gy "
                         "(e.g. 31Gy)")
    return float(match.group(1))


# -- courses ---------------------------------------------------------------------------------

def _as_date(value: object, name: str) -> _dt.date | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{name} must be a date (datetime.date or 'YYYY-MM-DD'), got {value!r}")


@dataclass(frozen=True)
class Course:
    """One course of treatment as seen at one point (or one DVH metric).

    Attributes
    ----------
    dose_gy : float
        Physical dose (Gy) of the whole course *at the point* (e.g. the cord Dmax of that
        course's plan), not the prescription.
    fractions : int
    date : datetime.date, optional
        Use one convention (first or last fraction) for every course. An ISO string
        ``"2025-03-01"`` is accepted and stored as a date.
    label : str, optional
    """

    dose_gy: float
    fractions: int
    date: _dt.date | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if not _is_real_scalar(self.dose_gy):
            raise ValueError(f"dose_gy must be one dose in Gy, got {self.dose_gy!r}")
        _as_doses(self.dose_gy, "dose_gy")
        check_fractions(self.fractions)
        object.__setattr__(self, "date", _as_date(self.date, "date"))

    def __str__(self) -> str:
        when = f"@{self.date.isoformat()}" if self.date else ""
        return f"{self.dose_gy:g}Gy/{self.fractions}{when}"


def parse_course(text: str) -> Course:
    """Read ``SCHEME[@YYYY-MM-DD]``, e.g. ``"31Gy/10@2025-03-01"`` (dose at the point)."""
    if not isinstance(text, str):
        raise ValueError(f"course must be text, got {text!r}")
    scheme_text, _, date_text = text.partition("@")
    scheme = parse_scheme(scheme_text)
    date = None
    if date_text:
        try:
            date = _dt.date.fromisoformat(date_text.strip())
        except ValueError:
            raise ValueError(f"course {text!r}: date {date_text!r} is not YYYY-MM-DD") from None
    return Course(scheme.total_gy, scheme.fractions, date, label=text.strip())


def _add_months(start: _dt.date, months: int) -> _dt.date:
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return _dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def add_months(start: _dt.date, months: int) -> _dt.date:
    """``start`` moved by whole calendar months, clamped to the end of a shorter month
    (2025-08-31 + 6 months = 2026-02-28)."""
    return _add_months(start, months)


def months_between(start: _dt.date, end: _dt.date) -> float:
    """Calendar months from ``start`` to ``end``: the whole months completed, plus the share of
    the next month elapsed (days / that month's length).

    This is rtcheck's one definition of a month between courses: the re-irradiation interval
    rules and :func:`accumulate_courses` both use it. It agrees with a calendar: 2025-03-01 to
    2025-08-01 is exactly 5.0 months, to 2025-07-31 is 4.97.
    """
    whole = completed_months(start, end)
    if whole < 0:
        return -months_between(end, start)
    lo, hi = _add_months(start, whole), _add_months(start, whole + 1)
    return whole + (end - lo).days / (hi - lo).days


def completed_months(start: _dt.date, end: _dt.date) -> int:
    """Whole calendar months from ``start`` to ``end`` (negative if ``end`` is earlier).

    2025-03-01 to 2026-03-01 is 12; to 2026-02-28 is 11; 2025-08-31 to 2026-02-28 is 6
    (a day past the end of a shorter month is clamped to its last day).
    """
    months = (end.year - start.year) * 12 + end.month - start.month
    while _add_months(start, months) > end:
        months -= 1
    while _add_months(start, months + 1) <= end:
        months += 1
    return months


@dataclass(frozen=True)
class RecoveryModel:
    """A named, explicit discount of an earlier course's EQD2 by the time elapsed since it.

    Attributes
    ----------
    name : str
    steps : tuple of (int, float)
        ``(months, discount)`` pairs: an earlier course whose date is at least ``months``
        whole calendar months before the last course's date counts for
        ``(1 - discount)`` of its EQD2. The largest applicable step wins.
    source : str
        Where the numbers come from, printed with every result that uses them.
    """

    name: str
    steps: tuple[tuple[int, float], ...]
    source: str = ""

    def __post_init__(self) -> None:
        last = (-1, -1.0)
        for months, discount in self.steps:
            if isinstance(months, bool) or not isinstance(months, int) or months < 0:
                raise ValueError(f"recovery step months must be an integer >= 0, got {months!r}")
            if not _is_real_scalar(discount) or not 0.0 <= discount <= 1.0:
                raise ValueError(f"recovery discount must be in [0, 1], got {discount!r}")
            if months <= last[0] or discount < last[1]:
                raise ValueError(f"recovery steps must have increasing months and non-decreasing "
                                 f"discounts, got {self.steps!r}")
            last = (months, discount)

    @classmethod
    def nieder_2006(cls) -> "RecoveryModel":
        """25 % discount after >= 6 months, 50 % after >= 12 months (an assumption, not a
        consensus), as cited with Nieder et al., IJROBP 2006;66:1446-9."""
        return cls("Nieder 2006: -25 % after >= 6 months, -50 % after >= 12 months",
                   ((6, 0.25), (12, 0.50)),
                   "recovery assumption cited with Nieder C et al., Int J Radiat Oncol Biol "
                   "Phys 2006;66:1446-9 (an assumption, not a consensus)")

    def discount(self, months: int) -> float:
        """Fraction (0 to 1) of an earlier course's EQD2 discounted after ``months`` months."""
        return max((d for m, d in self.steps if months >= m), default=0.0)

    def as_dict(self) -> dict:
        return {"name": self.name, "source": self.source,
                "steps": [{"min_months": m, "discount": d} for m, d in self.steps]}


@dataclass(frozen=True)
class CourseEQD2:
    """One course's part of an :class:`Accumulation`.

    Attributes
    ----------
    course : Course
    eqd2 : float
        Its EQD2 at the point (Gy).
    share : float
        ``eqd2 / total EQD2`` (nan when the total is 0).
    interval_days : int or None
        Days since the previous course (None for the first, or without both dates).
    interval_months : float or None
        Calendar months (:func:`months_between`), the same definition as the checker's
        re-irradiation interval.
    months_before_last : int or None
        Whole calendar months from this course to the last course (what a recovery model uses).
    discount : float or None
        Fraction of ``eqd2`` discounted by the recovery model (None without one).
    discounted_eqd2 : float or None
        ``eqd2 * (1 - discount)`` (None without a recovery model).
    """

    course: Course
    eqd2: float
    share: float
    interval_days: int | None
    interval_months: float | None
    months_before_last: int | None
    discount: float | None = None
    discounted_eqd2: float | None = None


@dataclass(frozen=True)
class Accumulation:
    """Courses summed in EQD2 at one point, one alpha/beta and one model.

    ``total_discounted_eqd2`` is None unless a recovery model was given.
    """

    courses: tuple[CourseEQD2, ...]
    total_eqd2: float
    alpha_beta: float
    model: str
    dt: float | None = None
    recovery: RecoveryModel | None = None
    total_discounted_eqd2: float | None = None

    @property
    def intervals_days(self) -> list[int | None]:
        """Days between consecutive courses."""
        return [c.interval_days for c in self.courses[1:]]

    def as_dict(self) -> dict:
        def clean(x: float | None) -> float | None:
            return None if x is None or math.isnan(x) else x

        return {
            "alpha_beta_gy": self.alpha_beta, "model": self.model, "dt_gy": self.dt,
            "recovery": None if self.recovery is None else self.recovery.as_dict(),
            "total_eqd2_gy": self.total_eqd2,
            "total_discounted_eqd2_gy": self.total_discounted_eqd2,
            "courses": [{
                "label": c.course.label, "dose_gy": c.course.dose_gy,
                "fractions": c.course.fractions,
                "dose_per_fraction_gy": c.course.dose_gy / c.course.fractions,
                "date": c.course.date.isoformat() if c.course.date else None,
                "eqd2_gy": c.eqd2, "share": clean(c.share),
                "interval_days": c.interval_days, "interval_months": c.interval_months,
                "months_before_last": c.months_before_last,
                "discount": c.discount, "discounted_eqd2_gy": c.discounted_eqd2,
            } for c in self.courses],
        }


def _check_chronology(courses: Sequence[Course]) -> None:
    for i in range(1, len(courses)):
        a, b = courses[i - 1].date, courses[i].date
        if a is not None and b is not None and b < a:
            raise ValueError(f"courses must be in chronological order: course {i + 1} "
                             f"({b.isoformat()}) is before course {i} ({a.isoformat()})")


def accumulate_courses(courses: Iterable[Course], alpha_beta: float, model: str = "LQ",
                       dt: float | None = None,
                       recovery: RecoveryModel | None = None) -> Accumulation:
    """Sum courses in EQD2 at one point, with each course's share and the intervals.

    Parameters
    ----------
    courses : iterable of Course
        In chronological order (an error otherwise, when dates are given). Each course's EQD2
        uses its own point dose per fraction.
    alpha_beta : float
        One alpha/beta (Gy) for every course: EQD2 only adds at the same alpha/beta.
    model, dt
        As :func:`eqd2`.
    recovery : RecoveryModel, optional
        Off by default. When given, every course but the last is discounted by the whole
        calendar months between its date and the last course's date (every course then needs
        a date); the undiscounted values are kept alongside.

    Examples
    --------
    >>> acc = accumulate_courses([Course(31.0, 10, "2025-03-01"), Course(12.0, 3, "2026-03-01")],
    ...                          2.0)
    >>> round(acc.total_eqd2, 3), [round(c.share, 3) for c in acc.courses]
    (57.525, [0.687, 0.313])
    """
    courses = tuple(courses)
    if not courses:
        raise ValueError("courses must hold at least one Course, got none")
    for i, c in enumerate(courses):
        if not isinstance(c, Course):
            raise ValueError(f"courses[{i}] must be a Course, got {c!r}")
    _check_chronology(courses)
    if recovery is not None and any(c.date is None for c in courses):
        missing = [i + 1 for i, c in enumerate(courses) if c.date is None]
        raise ValueError(f"recovery model {recovery.name!r} needs every course's date; "
                         f"course(s) {missing} have none")
    values = [float(eqd2(c.dose_gy, c.fractions, alpha_beta, model, dt)) for c in courses]
    total = math.fsum(values)
    last = courses[-1].date
    parts = []
    for i, (c, value) in enumerate(zip(courses, values)):
        prev = courses[i - 1].date if i else None
        days = (c.date - prev).days if prev is not None and c.date is not None else None
        months = completed_months(c.date, last) if c.date and last else None
        discount = None
        if recovery is not None:
            # The last course is the one being judged: it is never discounted. Every course
            # has a date here (checked above), so months is known.
            assert months is not None
            discount = 0.0 if i == len(courses) - 1 else recovery.discount(months)
        parts.append(CourseEQD2(
            c, value, value / total if total > 0 else math.nan, days,
            months_between(prev, c.date) if prev is not None and c.date is not None else None,
            months, discount,
            None if discount is None else value * (1.0 - discount)))
    discounted = (None if recovery is None
                  else math.fsum(p.discounted_eqd2 or 0.0 for p in parts))
    return Accumulation(tuple(parts), total, float(alpha_beta), model,
                        None if dt is None else float(dt), recovery, discounted)
