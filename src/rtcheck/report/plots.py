"""Plots for the reports: the cumulative DVH with the limits drawn at their points, and the
re-irradiation panel (EQD2 or BED of each course against the limits of the rules that ran).

matplotlib is imported inside the functions, never at module level, so that importing rtcheck
(and starting the CLI) stays fast. Figures are built with the object API
(:class:`matplotlib.figure.Figure`, Agg canvas): no pyplot, no global backend switch, nothing
left open between calls.

Reading a plot in greyscale print
---------------------------------
Curves differ by line style as well as colour; limit markers differ by shape and fill
(FAIL: filled cross, WARN: triangle, NOT_EVALUATED: open square, PASS: open circle), and every
marker has a black edge. The EQD2 bars carry hatch patterns.

Where a limit is drawn
----------------------
The y axis is the share of the structure's volume (%), so a small spinal cord and a large
body read on one scale. A finding's limit becomes a point on the (dose, volume) plane:

======================  ===================================================
metric                  point
======================  ===================================================
``Dmax``                (limit, 0 %): the point maximum sits at volume ~0
``D<x>cc``              (limit, x / structure volume)
``D<x>%``               (limit, x %)
``V<x>Gy[cc]``          (x, limit / structure volume)
``V<x>Gy[%]``           (x, limit %)
``Dmean``               a vertical dotted line at the limit (a mean is not a point of the curve)
======================  ===================================================

Only physical-dose findings are drawn on the DVH. A finding whose value was converted (a model
such as LQ with an alpha/beta, e.g. re-irradiation EQD2) belongs to the re-irradiation panel.

The re-irradiation panel
------------------------
Drawn only from the findings of kind ``reirradiation`` that were evaluated (status other than
NOT_EVALUATED), each with its own limit, operator and ``details`` (``quantity``, ``courses``
with each course's ``value_gy``, ``cumulative_eqd2_gy``, ``warn_up_to``): no limit lives in
this module, and a rule that did not run draws nothing. See :func:`reirradiation_items`.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rtcheck.dvh import parse_metric
from rtcheck.errors import MetricError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

    from rtcheck.dvh import DVH

#: At most this many points per drawn curve (the DVH engine's 0.01 Gy bins give thousands).
MAX_CURVE_POINTS = 600
LINE_STYLES = ("-", "--", "-.", ":")
#: Marker (shape, face colour, edge colour, size) by finding status.
STATUS_MARKERS = {
    "FAIL": ("X", "#c62828", "black", 11),
    "WARN": ("^", "#f9a825", "black", 10),
    "NOT_EVALUATED": ("s", "white", "black", 8),
    "PASS": ("o", "white", "#1b5e20", 8),
}
_NO_MODEL = (None, "", "none", "physical")


@dataclass(frozen=True)
class LimitMarker:
    """Where one finding's limit sits on the DVH plot.

    Attributes
    ----------
    structure : str
        Name of the DVH the limit belongs to.
    label : str
        Legend text (structure, metric, limit and status).
    status : str
        PASS, FAIL, WARN or NOT_EVALUATED.
    dose_gy : float
        Dose coordinate of the limit.
    volume_pct : float or None
        Volume coordinate (% of the structure); None for a mean-dose limit (vertical line).
    value_dose_gy : float or None
        Dose coordinate of the plan's value at the same volume (for a D metric), to draw the
        margin between value and limit; None otherwise.
    """

    structure: str
    label: str
    status: str
    dose_gy: float
    volume_pct: float | None
    value_dose_gy: float | None = None


# --------------------------------------------------------------------------------------
# Findings -> limit markers
# --------------------------------------------------------------------------------------


def _number(x: Any) -> float | None:
    """A finite float, or None for anything else (strings, None, NaN, booleans)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _to_gy(value: float, unit: str | None) -> float:
    return value / 100.0 if unit == "cGy" else value


def limit_markers(findings: list[dict], dvhs: list[DVH]) -> list[LimitMarker]:
    """The limit points of the physical-dose findings whose structure has a DVH.

    Findings without a numeric limit, of a converted quantity (EQD2...), of a structure not in
    ``dvhs`` or of a metric that has no point on a cumulative DVH (Dmin, DC, CV) are left out.
    """
    by_name = {d.name: d for d in dvhs}
    out = []
    for f in findings:
        dvh = by_name.get(f.get("structure") or "")
        limit = _number(f.get("limit"))
        if dvh is None or limit is None or f.get("model") not in _NO_MODEL:
            continue
        try:
            m = parse_metric(str(f.get("metric")))
        except MetricError:
            continue
        point = _limit_point(m, limit, dvh.volume_cc)
        if point is None:
            continue
        dose, volume = point
        value = _number(f.get("value"))
        value_dose = (_to_gy(value, m.output_unit)
                      if value is not None and m.kind in ("max", "D") else None)
        status = str(f.get("status") or "NOT_EVALUATED")
        unit = f.get("unit") or m.output_unit
        label = f"{dvh.name} {f.get('metric')} limit {limit:g} {unit}: {status}"
        out.append(LimitMarker(dvh.name, label, status, dose, volume, value_dose))
    return out


def _limit_point(m: Any, limit: float, volume_cc: float) -> tuple[float, float | None] | None:
    """(dose Gy, volume %) of a limit on metric ``m``; volume None for a mean-dose line."""
    if m.kind == "max":
        return _to_gy(limit, m.output_unit), 0.0
    if m.kind == "mean":
        return _to_gy(limit, m.output_unit), None
    if m.kind == "D":
        x = float(m.value)
        pct = x if m.input_unit == "%" else 100.0 * x / volume_cc if volume_cc > 0 else None
        return None if pct is None else (_to_gy(limit, m.output_unit), pct)
    if m.kind == "V":
        dose = _to_gy(float(m.value), m.input_unit)
        if m.output_unit == "%":
            return dose, limit
        return (dose, 100.0 * limit / volume_cc) if volume_cc > 0 else None
    return None


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


def _new_figure(width_in: float, height_in: float) -> Figure:
    from matplotlib.figure import Figure

    # Figure + Agg canvas (the default of a bare Figure): no pyplot state, no GUI backend.
    return Figure(figsize=(width_in, height_in), dpi=100)


def _thin(x: np.ndarray, y: np.ndarray, n: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n`` points of a curve, keeping its first and last points (Dmin, Dmax ends)."""
    if x.size <= n:
        return x, y
    idx = np.unique(np.linspace(0, x.size - 1, n).round().astype(int))
    return x[idx], y[idx]


def dvh_figure(dvhs: list[DVH], markers: list[LimitMarker] | None = None,
               title: str | None = None) -> Figure:
    """Cumulative DVHs (volume in % of each structure) with limit markers.

    Parameters
    ----------
    dvhs : list of DVH
        Curves to draw.
    markers : list of LimitMarker, optional
        Limits to draw (see :func:`limit_markers`).
    title : str, optional
    """
    fig = _new_figure(9.0, 5.6)
    ax = fig.add_subplot()
    colours: dict[str, str] = {}
    for i, d in enumerate(dvhs):
        total = d.volume_cc if d.volume_cc > 0 else 1.0
        x, y = _thin(np.asarray(d.doses, float), 100.0 * np.asarray(d.volumes, float) / total)
        label = f"{d.name} ({d.volume_cc:.2f} cc)"
        if not d.fully_covered:
            label += f", only {100 * d.covered_fraction:.0f} % inside the dose grid"
        # 10 colours x 4 line styles: 20 curves stay distinct, in colour or in greyscale.
        colour = f"C{i % 10}"
        ax.plot(x, y, LINE_STYLES[i % len(LINE_STYLES)], lw=1.6, label=label, color=colour)
        colours.setdefault(d.name, colour)  # its limits are drawn in its colour
    for mk in markers or []:
        _draw_marker(ax, mk, colours.get(mk.structure, "black"))
    ax.set_xlabel("Dose (Gy)")
    ax.set_ylabel("Volume (% of structure)")
    ax.set_ylim(-3, 103)
    ax.set_xlim(left=0)
    ax.grid(True, color="#cccccc", lw=0.5)
    if title:
        ax.set_title(title, fontsize=11)
    # The legend goes below the axes (the plot keeps the page's width); the figure grows by
    # one legend row per two entries so that a long legend never covers the axes.
    rows = math.ceil(len(ax.get_legend_handles_labels()[1]) / 2)
    axes_in, legend_in, top_in = 4.0, 0.75 + 0.2 * rows, 0.35 if title else 0.15
    height = axes_in + legend_in + top_in
    fig.set_size_inches(9.0, height)
    if rows:
        ax.legend(fontsize=8, loc="upper center", ncol=2, frameon=False,
                  bbox_to_anchor=(0.5, -0.55 / axes_in))
    fig.subplots_adjust(left=0.08, right=0.97, top=1 - top_in / height,
                        bottom=legend_in / height)
    return fig


def _draw_marker(ax: Any, mk: LimitMarker, colour: str) -> None:
    shape, face, edge, size = STATUS_MARKERS.get(mk.status, STATUS_MARKERS["NOT_EVALUATED"])
    if mk.volume_pct is None:  # mean-dose limit: a vertical line in the curve's colour
        ax.axvline(mk.dose_gy, color=colour, ls=":", lw=1.4, label=mk.label)
        return
    if mk.value_dose_gy is not None:  # the margin between the plan's value and the limit
        ax.plot([mk.value_dose_gy, mk.dose_gy], [mk.volume_pct] * 2, color=colour, lw=1.0,
                ls=":", zorder=3)
    ax.plot([mk.dose_gy], [mk.volume_pct], ls="none", marker=shape, ms=size,
            markerfacecolor=face, markeredgecolor=edge, markeredgewidth=1.3, zorder=4,
            label=mk.label, clip_on=False)


#: Re-irradiation quantities drawn as bars (``details.quantity`` of the findings), and the
#: converted dose they are expressed in. ``interval_months`` is not a dose: table only.
DOSE_QUANTITIES = {"cumulative_eqd2_max": "EQD2", "course_eqd2_max": "EQD2",
                   "course_share": "EQD2", "cumulative_bed_max": "BED",
                   "each_course_bed_max": "BED"}
#: Bar styles: this course, then the prior courses in turn (colour and hatch: greyscale too).
THIS_COURSE_STYLE = {"color": "#64b5f6", "hatch": "\\\\"}
PRIOR_COURSE_STYLES = ({"color": "#90a4ae", "hatch": "//"}, {"color": "#cfd8dc", "hatch": "xx"},
                       {"color": "#b0bec5", "hatch": ".."}, {"color": "#eceff1", "hatch": "--"})
_OPERATOR_TEXT = {"<": "<", "<=": "\u2264", ">": ">", ">=": "\u2265"}
THIS_COURSE = "this plan"


@dataclass(frozen=True)
class ReirradiationItem:
    """One evaluated re-irradiation finding, as the panel draws it.

    Attributes
    ----------
    rule, quantity, word : str
        Rule id, ``details.quantity`` and the converted dose (``EQD2`` or ``BED``).
    status : str
        The finding's status (PASS, WARN, FAIL): the panel never judges by itself.
    structure, role, stands_for : str or None
        The structure the dose was read on, its role, and the source's role it stood in for.
    metric : str or None
    value : float or None
        The finding's value (Gy, or the ratio of ``course_share``).
    limit, operator, unit, warn_up_to
        The rule's own limit as the finding carries it.
    alpha_beta : float or None
    courses : tuple of (label, Gy)
        Each course's converted dose on that structure, this course first.
    cumulative_gy : float or None
        ``details.cumulative_eqd2_gy`` (or ``cumulative_bed_gy``).
    """

    rule: str
    quantity: str
    word: str
    status: str
    structure: str | None
    role: str | None
    stands_for: str | None
    metric: str | None
    value: float | None
    limit: float
    operator: str
    unit: str | None
    warn_up_to: float | None
    alpha_beta: float | None
    courses: tuple[tuple[str, float], ...]
    cumulative_gy: float | None

    @property
    def where(self) -> str:
        """``ThecalSac (thecal_sac)``, ``SpinalCord (spinal_cord, for the thecal_sac)``."""
        role = self.role or ""
        if self.stands_for:
            role += f"{', ' if role else ''}for the {self.stands_for}"
        return f"{self.structure or '?'}" + (f" ({role})" if role else "")

    @property
    def limit_gy(self) -> float:
        """The limit on this course's bar in Gy (``course_share``: the ratio x cumulative)."""
        if self.quantity == "course_share":
            return self.limit * (self.cumulative_gy or 0.0)
        return self.limit

    def limit_text(self) -> str:
        op = _OPERATOR_TEXT.get(self.operator, self.operator)
        if self.quantity == "course_share":
            return (f"this course {op} {self.limit:g} x cumulative = {self.limit_gy:.1f} Gy")
        return f"{op} {self.limit:g} Gy"


def reirradiation_items(findings: list[dict]) -> list[ReirradiationItem]:
    """The re-irradiation findings the panel draws: kind ``reirradiation``, evaluated (status
    PASS, WARN or FAIL; a NOT_EVALUATED rule is not drawn), a dose quantity
    (:data:`DOSE_QUANTITIES`), a numeric limit and the converted dose of each course."""
    out = []
    for f in findings:
        given = f.get("details")
        details: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        quantity = details.get("quantity")
        limit = _number(f.get("limit"))
        if f.get("kind") != "reirradiation" or f.get("status") in (None, "NOT_EVALUATED") \
                or quantity not in DOSE_QUANTITIES or limit is None:
            continue
        courses = tuple((str(c.get("course") or "?"), float(c["value_gy"]))
                        for c in details.get("courses") or []
                        if isinstance(c, dict) and _number(c.get("value_gy")) is not None)
        if not courses:
            continue
        cumulative = _number(details.get("cumulative_eqd2_gy"))
        if cumulative is None:
            cumulative = _number(details.get("cumulative_bed_gy"))
        if quantity == "course_share" and cumulative is None:
            continue
        ab = _number(f.get("alpha_beta"))
        out.append(ReirradiationItem(
            rule=str(f.get("rule")), quantity=quantity, word=DOSE_QUANTITIES[quantity],
            status=str(f.get("status")), structure=f.get("structure"), role=f.get("role"),
            stands_for=f.get("stands_for"), metric=f.get("metric"),
            value=_number(f.get("value")), limit=limit, operator=str(f.get("operator") or ""),
            unit=f.get("unit"), warn_up_to=_number(details.get("warn_up_to")), alpha_beta=ab,
            courses=courses, cumulative_gy=cumulative))
    return out


_GROUP_TITLES = {"cumulative_eqd2_max": "cumulative", "cumulative_bed_max": "cumulative",
                 "course_eqd2_max": "this course", "course_share": "this course / cumulative",
                 "each_course_bed_max": "each course"}
_LIMIT_STYLES = ("--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)))


def _short(label: str, n: int = 48) -> str:
    return label if len(label) <= n else "\u2026" + label[-(n - 1):]


def reirradiation_figure(items: list[ReirradiationItem]) -> Figure:
    """Bars of each course's converted dose against the limits of the rules that ran.

    One row of axes per converted dose (EQD2, BED), one group of bars per finding:
    ``cumulative_*``: the courses stacked (what the sum is made of); ``course_eqd2_max``:
    this course; ``course_share``: this course against the ratio x the cumulative dose;
    ``each_course_bed_max``: each course side by side. Each group carries its rule's limit
    (and the upper end of its WARN band, when the rule has one), named in the legend; the tick
    label names the structure the dose was read on and the finding's status. The legend sits
    below the axes and the figure grows with it, so it is always inside the saved image.
    """
    words = [w for w in ("EQD2", "BED") if any(i.word == w for i in items)]
    per_word = {w: [i for i in items if i.word == w] for w in words}
    labels = [c for i in items for c, _ in i.courses]
    priors = list(dict.fromkeys(c for c in labels if c != THIS_COURSE))
    style_of = {THIS_COURSE: THIS_COURSE_STYLE}
    style_of.update({c: PRIOR_COURSE_STYLES[k % len(PRIOR_COURSE_STYLES)]
                     for k, c in enumerate(priors)})
    # Legend rows: one per course, one per limit line (all axes share the legend).
    n_entries = len(style_of) + sum(1 + (i.warn_up_to is not None) for i in items)
    axes_in, tick_in = 3.0, 0.6
    legend_in = 0.3 + 0.19 * math.ceil(n_entries / 2)
    height = len(words) * (axes_in + tick_in + 0.35) + legend_in
    fig = _new_figure(9.0, height)
    handles: dict[str, Any] = {}
    from matplotlib.patches import Patch

    for course, st in style_of.items():
        name = "this course" if course == THIS_COURSE else f"prior: {_short(course)}"
        handles[name] = Patch(facecolor=st["color"], hatch=st["hatch"], edgecolor="black",
                              label=name)
    for row, word in enumerate(words):
        group = per_word[word]
        ax = fig.add_subplot(len(words), 1, row + 1)
        ticks, tops = [], []
        for x, it in enumerate(group):
            tops += _draw_group(ax, x, it, style_of)
            ls = _LIMIT_STYLES[x % len(_LIMIT_STYLES)]
            name = f"{it.rule}: {it.limit_text()}"
            (line,) = ax.plot([x - 0.42, x + 0.42], [it.limit_gy] * 2, color="black", lw=2.2,
                              ls=ls, label=name)
            handles[name] = line
            tops.append(it.limit_gy)
            if it.warn_up_to is not None and it.quantity != "course_share":
                wname = f"{it.rule}: WARN band {it.limit:g}-{it.warn_up_to:g} Gy"
                (wl,) = ax.plot([x - 0.42, x + 0.42], [it.warn_up_to] * 2, color="#8d6e00",
                                lw=1.4, ls=":", label=wname)
                handles[wname] = wl
                tops.append(it.warn_up_to)
            value = ("?" if it.value is None else f"{it.value:.3f}" if it.unit == "ratio"
                     else f"{it.value:.1f} Gy")
            ticks.append(f"{_GROUP_TITLES.get(it.quantity, it.quantity)}: {value} {it.status}"
                         f"\non {_short(it.where, 40)}")
        ax.set_xticks(range(len(group)), ticks, fontsize=8)
        ax.set_xlim(-0.6, len(group) - 0.4)
        ax.set_ylim(0, max(tops) * 1.12 if tops else 1.0)
        abs_ = sorted({i.alpha_beta for i in group if i.alpha_beta is not None})
        ab = (f", \u03b1/\u03b2 = {abs_[0]:g} Gy" if len(abs_) == 1 else
              ", \u03b1/\u03b2 per rule" if abs_ else "")
        ax.set_ylabel(f"{word} (Gy{ab})")
        ax.grid(True, axis="y", color="#cccccc", lw=0.5)
        ax.set_title(f"Re-irradiation: {word} of each course against the limits of the rules "
                     "that ran", fontsize=10)
    fig.legend(handles=list(handles.values()), fontsize=8, loc="lower center", ncol=2,
               frameon=False, bbox_to_anchor=(0.5, 0.0), handlelength=3.5)
    fig.subplots_adjust(left=0.09, right=0.98, top=1 - 0.3 / height,
                        bottom=(legend_in + tick_in) / height, hspace=(tick_in + 0.35) / axes_in)
    return fig


def _draw_group(ax: Any, x: float, it: ReirradiationItem, style_of: dict) -> list[float]:
    """The bars of one finding at ``x``; returns their tops (for the y range)."""
    edge = {"edgecolor": "black", "linewidth": 1.0}
    courses = dict(it.courses)
    this = courses.get(THIS_COURSE)
    if it.quantity in ("cumulative_eqd2_max", "cumulative_bed_max"):
        bottom = 0.0
        order = [c for c in courses if c != THIS_COURSE] + (
            [THIS_COURSE] if this is not None else [])
        for c in order:  # prior courses below, this course on top
            ax.bar(x, courses[c], bottom=bottom, width=0.6, **style_of[c], **edge)
            bottom += courses[c]
        return [bottom]
    if it.quantity == "each_course_bed_max":
        names = list(courses)
        w = 0.7 / len(names)
        for k, c in enumerate(names):
            ax.bar(x - 0.35 + w * (k + 0.5), courses[c], width=w * 0.9, **style_of[c], **edge)
        return list(courses.values())
    if this is None:
        return []
    ax.bar(x, this, width=0.6, **style_of[THIS_COURSE], **edge)
    return [this]


# --------------------------------------------------------------------------------------
# Embedding and files
# --------------------------------------------------------------------------------------

_SVG_ID = re.compile(r'\bid="([^"]+)"')


def figure_svg(fig: Figure, id_prefix: str = "fig") -> str:
    """The figure as an ``<svg>`` element to inline in HTML.

    Text stays text (``svg.fonttype = none``: the browser's sans-serif, no embedded or web
    font). The XML prolog, DOCTYPE and RDF metadata (which names external URIs) are dropped,
    and every id is prefixed with ``id_prefix`` so that two figures in one page do not clash.
    """
    from matplotlib import rc_context

    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "rtcheck"}):
        # bbox "tight": whatever lies outside the axes (legend, tick labels) is inside the
        # saved image, never cut at the figure's edge.
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight",
                    pad_inches=0.08)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    ids = set(_SVG_ID.findall(svg))
    svg = _SVG_ID.sub(lambda m: f'id="{id_prefix}-{m.group(1)}"', svg)
    svg = re.sub(r'(href="#|url\(#)([^")]+)',
                 lambda m: m.group(1) + (f"{id_prefix}-{m.group(2)}" if m.group(2) in ids
                                         else m.group(2)), svg)
    return svg.strip()


def figure_png_data_uri(fig: Figure, dpi: int = 110) -> str:
    """The figure as a ``data:image/png;base64,...`` URI (for an ``<img src=...>``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight",
                pad_inches=0.08)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def save_dvh_plot(dvhs: list[DVH], path: str, title: str | None = None, dpi: int = 120) -> None:
    """Write a cumulative DVH plot of ``dvhs`` to ``path`` (format from its suffix: png, svg,
    pdf...). Raises ValueError for a suffix matplotlib cannot write."""
    fig = dvh_figure(dvhs, title=title)
    fig.savefig(path, dpi=dpi)
