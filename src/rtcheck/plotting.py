"""Plots for reports: the cumulative DVH with the limits drawn at their points, and the
re-irradiation EQD2 panel.

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
such as LQ with an alpha/beta, e.g. re-irradiation EQD2) belongs to the EQD2 panel.
"""

from __future__ import annotations

import base64
import io
import math
import re
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
#: Re-irradiation limits of the referential (section 4, Sahgal 2012), used when the caller
#: does not give its own.
DEFAULT_COURSE_LIMIT_GY = 25.0
DEFAULT_CUMULATIVE_LIMIT_GY = 70.0
DEFAULT_SHARE_LIMIT = 0.5
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
    colours = {}
    for i, d in enumerate(dvhs):
        total = d.volume_cc if d.volume_cc > 0 else 1.0
        x, y = _thin(np.asarray(d.doses, float), 100.0 * np.asarray(d.volumes, float) / total)
        label = f"{d.name} ({d.volume_cc:.2f} cc)"
        if not d.fully_covered:
            label += f", only {100 * d.covered_fraction:.0f} % inside the dose grid"
        # 10 colours x 4 line styles: 20 curves stay distinct, in colour or in greyscale.
        (line,) = ax.plot(x, y, LINE_STYLES[i % len(LINE_STYLES)], lw=1.6, label=label,
                          color=f"C{i % 10}")
        colours.setdefault(d.name, line.get_color())
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


def reirradiation_values(reirr: dict) -> dict:
    """The numbers of the EQD2 panel, with the referential's limits as defaults.

    ``reirr`` keys (all optional except the EQD2 values one wants drawn): ``prior_eqd2_gy``
    (float) or ``prior_courses`` (list of ``{"label", "eqd2_gy"}``), ``new_eqd2_gy``,
    ``cumulative_eqd2_gy`` (default: prior + new), ``course_limit_gy`` (25),
    ``cumulative_limit_gy`` (70), ``share_limit`` (0.5), ``alpha_beta``, ``structure``,
    ``metric``, ``interval_months``, ``interval_limit_months``.
    """
    courses = [dict(c) for c in reirr.get("prior_courses") or []]
    prior = _number(reirr.get("prior_eqd2_gy"))
    if prior is None and courses and all(_number(c.get("eqd2_gy")) is not None for c in courses):
        prior = sum(float(c["eqd2_gy"]) for c in courses)
    new = _number(reirr.get("new_eqd2_gy"))
    cumulative = _number(reirr.get("cumulative_eqd2_gy"))
    if cumulative is None and prior is not None and new is not None:
        cumulative = prior + new
    share = new / cumulative if new is not None and cumulative else None
    return {
        "structure": reirr.get("structure"), "metric": reirr.get("metric") or "Dmax",
        "alpha_beta": reirr.get("alpha_beta"), "prior_courses": courses,
        "prior_eqd2_gy": prior, "new_eqd2_gy": new, "cumulative_eqd2_gy": cumulative,
        "share": share,
        "course_limit_gy": _number(reirr.get("course_limit_gy")) or DEFAULT_COURSE_LIMIT_GY,
        "cumulative_limit_gy": (_number(reirr.get("cumulative_limit_gy"))
                                or DEFAULT_CUMULATIVE_LIMIT_GY),
        "share_limit": _number(reirr.get("share_limit")) or DEFAULT_SHARE_LIMIT,
        "interval_months": _number(reirr.get("interval_months")),
        "interval_limit_months": _number(reirr.get("interval_limit_months")),
    }


def eqd2_figure(reirr: dict) -> Figure:
    """Bars of prior, new-course and cumulative cord EQD2 against the re-irradiation limits.

    The new-course bar carries two limits: the course limit (25 Gy) and half the cumulative
    EQD2 (the 0.5 share); the cumulative bar, stacked prior + new, carries the 70 Gy limit.
    A value that is not known is written on the axis instead of a bar.
    """
    v = reirradiation_values(reirr)
    fig = _new_figure(9.0, 3.8)
    ax = fig.add_subplot()
    prior, new, cum = v["prior_eqd2_gy"], v["new_eqd2_gy"], v["cumulative_eqd2_gy"]
    bars = [("prior course(s)", prior), ("new course", new), ("cumulative", cum)]
    style = {"width": 0.6, "edgecolor": "black", "linewidth": 1.0}
    prior_style = dict(color="#90a4ae", hatch="//", **style)
    new_style = dict(color="#64b5f6", hatch="\\\\", **style)
    if prior is not None:
        ax.bar(0, prior, **prior_style)
    if new is not None:
        ax.bar(1, new, **new_style)
    if cum is not None:
        if prior is not None and new is not None:  # stacked: shows what the sum is made of
            ax.bar(2, prior, **prior_style)
            ax.bar(2, new, bottom=prior, **new_style)
        else:
            ax.bar(2, cum, color="#b0bec5", **style)
    # Limits differ by line style and are named in the legend, so no label crosses a bar.
    _limit_line(ax, 1, v["course_limit_gy"], f"new course < {v['course_limit_gy']:g} Gy", "--")
    if cum is not None:
        half = v["share_limit"] * cum
        _limit_line(ax, 1, half, f"new course <= {v['share_limit']:g} x cumulative "
                    f"= {half:.1f} Gy", ":")
    _limit_line(ax, 2, v["cumulative_limit_gy"],
                f"cumulative < {v['cumulative_limit_gy']:g} Gy", "-.")
    # Values under the bar names: never hidden by a limit line.
    ax.set_xticks(range(3), [f"{name}\n{'not known' if x is None else f'{x:.1f} Gy'}"
                             for name, x in bars])
    top = max([x for _, x in bars if x is not None] + [v["cumulative_limit_gy"]])
    ax.set_xlim(-0.6, 2.6)
    ax.set_ylim(0, top * 1.1)
    ab = v["alpha_beta"]
    who = " ".join(str(x) for x in (v["structure"], v["metric"]) if x)
    ax.set_ylabel(f"EQD2 (Gy{'' if ab is None else f', a/b = {ab:g} Gy'})")
    ax.set_title(f"Re-irradiation: {who} EQD2" if who else "Re-irradiation EQD2", fontsize=11)
    ax.grid(True, axis="y", color="#cccccc", lw=0.5)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False,
              title="limits", title_fontsize=8, alignment="left", handlelength=4)
    fig.subplots_adjust(left=0.08, right=0.66, top=0.9, bottom=0.17)
    return fig


def _limit_line(ax: Any, x: float, y: float, label: str, ls: str) -> None:
    ax.plot([x - 0.42, x + 0.42], [y, y], color="black", lw=2.2, ls=ls, label=label)


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
        fig.savefig(buf, format="svg", metadata={"Date": None})
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
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def save_dvh_plot(dvhs: list[DVH], path: str, title: str | None = None, dpi: int = 120) -> None:
    """Write a cumulative DVH plot of ``dvhs`` to ``path`` (format from its suffix: png, svg,
    pdf...). Raises ValueError for a suffix matplotlib cannot write."""
    fig = dvh_figure(dvhs, title=title)
    fig.savefig(path, dpi=dpi)
