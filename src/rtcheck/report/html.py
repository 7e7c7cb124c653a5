"""The HTML pages: the report of one plan check, and the index of a batch.

One report is one self-contained HTML file, meant to be read on screen, printed (also in
greyscale) and filed as a QA record:

* the plan's identity and the overall verdict at the top (PASS, REVIEW, NOT_EVALUATED, FAIL:
  :mod:`rtcheck.checker.findings`), in colour *and* in words and symbols with distinct borders
  (so it reads in greyscale print);
* the notes with their codes, the findings, failures first (FAIL, NOT_EVALUATED, WARN, PASS),
  each with the structure that decided, what it stood in for and every structure the rule
  read;
* the cumulative DVH of the structures the rules used, each limit drawn at its point, and for
  a re-irradiation the panel of each course's EQD2 or BED, drawn only from the re-irradiation
  findings that were evaluated, with their own limits (see :mod:`rtcheck.report.plots`);
* a QA-record footer: protocol ids, versions and file SHA-256, rtcheck version, input files and
  their SHA-256, time of the check.

Nothing in the page refers outside it: no network, no fonts, no external CSS, scripts or
images. Plots are inline SVG (or PNG as a ``data:`` URI); styles and the few lines of script of
the batch index are inline.

The markup lives in ``templates/`` (jinja2, autoescaping on: every text is escaped by the
engine). This module turns a result document into the typed view the templates read
(:class:`CheckReport`, :class:`BatchIndex`): what to show, in which order, never how to
escape it. jinja2 is imported when a page is first rendered, matplotlib when a plot is drawn.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from rtcheck.checker.findings import SKIP_HEADINGS
from rtcheck.report.deidentification import (
    Deidentifier,
    check_deidentifier,
    plan_identity_terms,
)
from rtcheck.report.identity import identifying_terms
from rtcheck.report.records import (
    STATUS_ORDER,
    input_records,
    plan_input_files,
    protocol_records,
    report_dvhs,
    sort_findings,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    import jinja2
    from matplotlib.figure import Figure

    from rtcheck.dvh import DVH

#: Batch verdicts in index order, worst first (the checker's levels, and ERROR).
BATCH_ORDER = ("ERROR", "FAIL", "NOT_EVALUATED", "REVIEW", "PASS")
#: Symbol of each finding status and verdict level (the word follows it everywhere).
SYMBOLS = {"PASS": "\u2714", "FAIL": "\u2716", "ERROR": "\u2716", "WARN": "!",
           "NOT_EVALUATED": "?", "REVIEW": "\u26a0"}
#: What each verdict level means, under the verdict word.
VERDICT_MEANING = {
    "PASS": "every applicable rule evaluated and within its limit",
    "REVIEW": "no FAIL and every applicable rule evaluated, but WARN finding(s) need clinical "
              "judgement",
    "NOT_EVALUATED": "no FAIL, but something that applies was not evaluated (or nothing "
                     "applied)",
    "FAIL": "a rule is beyond its limit",
    "ERROR": "the plan could not be read or checked",
}
#: Finding keys shown in the findings table's own columns.
FINDING_KEYS = ("rule", "structure", "role", "metric", "value", "limit", "unit", "alpha_beta",
                "model", "status", "reason", "source")
#: Finding keys shown in their own place rather than in the details under the reason.
SHOWN_ELSEWHERE = ("protocol", "kind", "operator", "cites", "code", "missing", "stands_for",
                   "evaluated")
#: How a limit's operator is written before the limit.
OPERATORS = {"<": "<", "<=": "\u2264", ">": ">", ">=": "\u2265", "==": "="}
DASH = "\u2014"
#: Widths (%) of the findings table's columns: rule, structure, metric, value, limit,
#: alpha/beta, status, reason, source. The status column holds "? NOT EVALUATED" on two lines.
FINDINGS_COLUMNS = (12, 12, 9, 7, 8, 7, 11, 21, 13)
#: Widths (%) of the re-irradiation table's columns.
REIRRADIATION_COLUMNS = (19, 14, 14, 24, 9, 9, 11)
#: A text limit (a list of schemes) longer than this shows its first clause, the rest folded.
LONG_TEXT = 90
#: Headings of the batch index's columns.
INDEX_HEADINGS = ("Verdict", "Plan", "Patient ID", "FAIL", "NOT EVAL.", "WARN", "PASS",
                  "Error, failing rules (WARN rules for a REVIEW)", "Seconds", "Report")
_EMPTY = (None, "", "none")
_TECHNIQUE_FACTS = ("technique", "technique_how", "technique_text")
_IDENTITY = (("patient_id", "Patient ID"), ("patient_name", "Patient name"),
             ("label", "Plan label"), ("uid", "Plan UID"), ("date", "Plan date"),
             ("prescription_gy", "Prescription"), ("fractions", "Fractions"))


# ======================================================================================
# Values as the templates show them (filters and tests of the template engine)
# ======================================================================================


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def num(value: Any, digits: int = 2) -> str:
    """A value as text; a float with ``digits`` decimals (one more below 1)."""
    if isinstance(value, float) and not isinstance(value, bool):
        if not math.isfinite(value):
            return "not finite"
        # a ratio such as 0.561 needs its third digit to be compared with 0.5
        return f"{value:.{digits + 1 if abs(value) < 1 else digits}f}"
    return str(value)


def status_label(status: Any) -> str:
    """A status or verdict with its symbol, in words: ``? NOT EVALUATED``."""
    s = str(status or "NOT_EVALUATED")
    return f"{SYMBOLS.get(s, '?')} {s.replace('_', ' ')}"


def css_class(status: Any) -> str:
    """The CSS class of a status or verdict (``UNKNOWN`` for one this version does not know)."""
    s = str(status or "")
    return s if s in SYMBOLS else "UNKNOWN"


def wbr_chunks(value: Any) -> list[str]:
    """The text of a scalar split after each ``.``, ``-`` and ``_``: where a long rule id may
    wrap (the template puts a ``<wbr>`` between the chunks)."""
    text = DASH if value in (None, "") else num(value)
    return re.split(r"(?<=[._-])(?=.)", text)


@dataclasses.dataclass(frozen=True)
class Folded:
    """A long text cut for display: ``head`` and ``more`` shown, ``rest`` folded away."""

    head: str
    more: str
    rest: str


def fold(value: Any) -> Folded | None:
    """A long text's first clause (up to ``;``) and the rest, so that a scheme list does not
    stretch its row; None for a text of at most :data:`LONG_TEXT` characters."""
    text = "" if value is None else str(value)
    if len(text) <= LONG_TEXT:
        return None
    head, sep, rest = text.partition("; ")
    if not sep or len(head) > LONG_TEXT:
        head = text[:LONG_TEXT].rsplit(" ", 1)[0]
        sep, rest = "", text[len(head):]
    return Folded(head, ";" if sep else " \u2026", rest.strip())


def _when(value: Any) -> str:
    if value is None:
        return "not recorded"
    if isinstance(value, _dt.datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _version() -> str:
    from rtcheck import __version__

    return __version__


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The template engine of the pages: templates of this package, autoescaping on, the
    filters and tests above. Built once."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rtcheck.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=num, status_label=status_label, css_class=css_class,
                       wbr_chunks=wbr_chunks, fold=fold)
    env.tests["numeric"] = is_number
    # the embedded result keeps its key order, and is ASCII like the rest of the record
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "ensure_ascii": True,
                                         "default": str}
    return env


def stylesheet() -> str:
    """The CSS of every page (``templates/report.css``), as inlined."""
    env = environment()
    assert env.loader is not None
    return env.loader.get_source(env, "report.css")[0]


def _render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(version=_version(), **context)


# ======================================================================================
# The plan report: its view
# ======================================================================================


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The verdict block: the level, what it means, the count of findings by status."""

    status: str
    meaning: str
    summary: str
    exit_code: int | float | None


@dataclasses.dataclass(frozen=True)
class IdentityRow:
    """One line of the plan's identity (``unit`` for a dose, ``removed`` when de-identified)."""

    label: str
    value: Any
    unit: str | None = None
    per_fraction: float | None = None
    removed: bool = False


@dataclasses.dataclass(frozen=True)
class NoteRow:
    """A note (code, structure, message), or a plain warning (code and structure None)."""

    code: Any
    structure: Any
    message: Any


@dataclasses.dataclass(frozen=True)
class OtherStructure:
    """A structure the rule read besides the one that decided."""

    structure: Any
    role: Any
    stands_for: Any
    status: Any
    value: Any


@dataclasses.dataclass(frozen=True)
class FindingRow:
    """One row of the findings table."""

    rule: Any
    protocol: Any
    structure: Any
    role: Any
    stands_for: Any
    others: list[OtherStructure]
    metric: Any
    value: Any
    limit: Any
    unit: Any
    operator: str
    no_model: bool
    physical: bool
    alpha_beta: Any
    model: Any
    status: str
    reason: Any
    show_code: bool
    code: Any
    missing: Any
    details: dict[str, Any]
    source: Any
    cites: Any


@dataclasses.dataclass(frozen=True)
class Technique:
    """The technique (SBRT or conventional), how it was decided (``unknown`` when the facts
    do not say) and the sentence that explains it, if any."""

    technique: str
    how: str
    text: str | None = None


@dataclasses.dataclass(frozen=True)
class SkipGroup:
    """The rules not applied for one reason (skip ``code``); ``needs`` maps each missing fact
    to the rules waiting for it."""

    code: str
    heading: str
    items: list[Mapping[str, Any]]
    needs: dict[str, list[str]]


@dataclasses.dataclass(frozen=True)
class Context:
    """What the check assumed: technique, facts, structure roles, rules not applied."""

    technique: Technique | None
    facts: dict[str, Any]
    roles: Mapping[str, Any]
    skipped: list[SkipGroup]


@dataclasses.dataclass(frozen=True)
class Plot:
    """An inline plot: ``svg`` (the element after ``<svg ``, markup drawn by matplotlib) or
    ``png`` (a data URI), and its text alternative."""

    alt: str
    svg: Any = None
    png: str | None = None


@dataclasses.dataclass(frozen=True)
class CourseDose:
    """One course's converted dose in the re-irradiation table."""

    course: Any
    value_gy: float
    quantity: str
    dose_gy: float | None
    fractions: Any


@dataclasses.dataclass(frozen=True)
class ReirradiationRow:
    """One evaluated re-irradiation finding: where it was read, each course, its limit."""

    rule: Any
    metric: Any
    structure: Any
    role: Any
    stands_for: Any
    courses: list[CourseDose]
    value: Any
    unit: Any
    limit: Any
    status: str
    #: The voxel-wise sum and envelope beside the sum of maxima, in words (None: not computed).
    voxel: str | None = None


@dataclasses.dataclass(frozen=True)
class Reirradiation:
    """The re-irradiation panel: plot, evaluated rows, rules that were not evaluated."""

    words: str
    structures: str
    plot: Plot | None
    rows: list[ReirradiationRow]
    not_evaluated: list[Mapping[str, Any]]
    columns: tuple[int, ...] = REIRRADIATION_COLUMNS


@dataclasses.dataclass(frozen=True)
class Footer:
    """The QA record: protocols, input files, times."""

    protocols: list[dict]
    inputs: list[dict]
    checked_at: str
    written_at: str


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """Everything ``check_report.html`` shows, in order."""

    title: str
    deidentified: bool
    verdict: Verdict
    identity: list[IdentityRow]
    notes: list[NoteRow]
    findings: list[FindingRow]
    context: Context
    dvh_plot: Plot | None
    reirradiation: Reirradiation | None
    footer: Footer
    result: dict
    findings_columns: tuple[int, ...] = FINDINGS_COLUMNS


def _verdict(res: Mapping[str, Any]) -> Verdict:
    verdict = str(res.get("verdict") or "NOT_EVALUATED")
    counts = Counter(str(f.get("status")) for f in res.get("findings") or [])
    summary = ", ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in STATUS_ORDER if counts[s])
    code = res.get("exit_code")
    return Verdict(verdict, VERDICT_MEANING.get(verdict, "verdict not known to this version "
                                                         "of rtcheck"),
                   summary, code if is_number(code) else None)


def _identity(plan: Mapping[str, Any], deidentified: bool) -> list[IdentityRow]:
    rows = []
    for key, label in _IDENTITY:
        value = plan.get(key)
        if key == "prescription_gy":
            n = plan.get("fractions")
            per = (value / n if isinstance(value, (int, float)) and not isinstance(value, bool)
                   and isinstance(n, int) and not isinstance(n, bool) and n > 0 else None)
            rows.append(IdentityRow(label, value, unit="Gy", per_fraction=per))
        elif value is None and deidentified and key in ("patient_id", "patient_name", "uid"):
            rows.append(IdentityRow(label, None, removed=True))
        elif not (value is None and key == "patient_name"):
            rows.append(IdentityRow(label, value))
    known = {k for k, _ in _IDENTITY}
    rows += [IdentityRow(str(k).replace("_", " "), v) for k, v in plan.items()
             if k not in known and v not in (None, "", [], {})]
    return rows


def _notes(notes: list, warnings: list) -> list[NoteRow]:
    """The notes with their codes; warnings (plain strings, e.g. a batch record's discovery
    notes) that no note already says come after them."""
    typed = [n for n in notes if isinstance(n, Mapping)]
    said = {(f"{n.get('structure')}: {n.get('message')}" if n.get("structure")
             else str(n.get("message"))) for n in typed}
    rows = [NoteRow(n.get("code"), n.get("structure"), n.get("message")) for n in typed]
    return rows + [NoteRow(None, None, w) for w in warnings if str(w) not in said]


def _finding_row(f: Mapping[str, Any]) -> FindingRow:
    unit = f.get("unit")
    ab, model = f.get("alpha_beta"), f.get("model")
    no_model = ab in _EMPTY and model in _EMPTY
    shown = {k: v for k, v in f.items() if k not in FINDING_KEYS and k not in SHOWN_ELSEWHERE
             and v not in (None, "", [], {})}
    details = f.get("details")
    if isinstance(details, Mapping):
        # details and citations fold away: the reason already says the numbers, and the
        # embedded JSON keeps everything
        shown = {**{k: v for k, v in shown.items() if k != "details"}, **details}
    code = f.get("code")
    others = [OtherStructure(v.get("structure"), v.get("role"), v.get("stands_for"),
                             v.get("status"), v.get("value"))
              for v in f.get("evaluated") or []
              if isinstance(v, Mapping) and v.get("structure") != f.get("structure")]
    return FindingRow(
        rule=f.get("rule"), protocol=f.get("protocol"), structure=f.get("structure"),
        role=f.get("role"), stands_for=f.get("stands_for"), others=others,
        metric=f.get("metric"), value=f.get("value"), limit=f.get("limit"), unit=unit,
        operator=OPERATORS.get(str(f.get("operator")), ""), no_model=no_model,
        physical=unit in ("Gy", "cGy"), alpha_beta=None if ab in _EMPTY else ab, model=model,
        status=str(f.get("status") or "NOT_EVALUATED"), reason=f.get("reason"),
        show_code=bool((code and code != "evaluated") or f.get("missing")), code=code,
        missing=f.get("missing"), details=shown, source=f.get("source"), cites=f.get("cites"))


def _context(res: Mapping[str, Any]) -> Context:
    facts = res.get("facts") or {}
    if not isinstance(facts, Mapping):
        facts = {}
    technique = None
    if "technique" in facts:
        technique = Technique(str(facts.get("technique") or "unknown"),
                              str(facts.get("technique_how") or "unknown"),
                              str(facts["technique_text"]) if facts.get("technique_text")
                              else None)
    shown = {str(k): v for k, v in facts.items()
             if v not in (None, "", [], {}) and k not in _TECHNIQUE_FACTS}
    skipped = [s for s in res.get("skipped") or [] if isinstance(s, Mapping)]
    return Context(technique, shown, res.get("roles") or {}, _skip_groups(skipped))


def _skip_groups(skipped: list[Mapping[str, Any]]) -> list[SkipGroup]:
    """The skipped rules grouped by their code (known codes first); those waiting for a fact
    grouped again by the fact they need."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for s in skipped:
        groups.setdefault(str(s.get("code") or "other"), []).append(s)
    out = []
    for code in [*SKIP_HEADINGS, *sorted(set(groups) - set(SKIP_HEADINGS))]:
        items = groups.get(code)
        if not items:
            continue
        needs: dict[str, list[str]] = {}
        for s in items:
            needs.setdefault(str(s.get("needs") or "?"), []).append(str(s.get("rule")))
        out.append(SkipGroup(code, SKIP_HEADINGS.get(code, code), items, needs))
    return out


def _plot(fig: Figure, fmt: str, prefix: str, alt: str) -> Plot:
    from markupsafe import Markup

    from rtcheck.report import plots

    if fmt == "png":
        return Plot(alt, png=plots.figure_png_data_uri(fig))
    svg = plots.figure_svg(fig, id_prefix=prefix)
    # the template writes the opening "<svg" with the escaped alternative text; the rest is
    # matplotlib's own markup (it escapes the texts it draws)
    return Plot(alt, svg=Markup(svg.removeprefix("<svg ")))


def _dvh_plot(findings: list[dict], dvhs: list[DVH], fmt: str) -> Plot | None:
    if not dvhs:
        return None
    from rtcheck.report import plots

    fig = plots.dvh_figure(dvhs, plots.limit_markers(findings, dvhs))
    return _plot(fig, fmt, "dvh", "Cumulative DVH of the structures the rules used, with the "
                 "limits marked")


def _course_doses(details: Mapping[str, Any]) -> list[CourseDose]:
    return [CourseDose(c.get("course"), c["value_gy"], str(c.get("quantity") or ""),
                       c["dose_gy"] if is_number(c.get("dose_gy")) else None, c.get("fractions"))
            for c in details.get("courses") or []
            if isinstance(c, Mapping) and is_number(c.get("value_gy"))]


def _reirradiation_row(f: Mapping[str, Any]) -> ReirradiationRow:
    details = f.get("details")
    d: Mapping[str, Any] = details if isinstance(details, Mapping) else {}
    limit = d.get("requirement") or (
        f"{f.get('operator') or ''} {num(f.get('limit'))} {f.get('unit') or ''}"
        if is_number(f.get("limit")) else f.get("limit"))
    return ReirradiationRow(
        rule=f.get("rule"), metric=f.get("metric"), structure=f.get("structure"),
        role=f.get("role"), stands_for=f.get("stands_for"), courses=_course_doses(d),
        value=f.get("value"), unit=None if f.get("unit") == "ratio" else f.get("unit"),
        limit=limit, status=str(f.get("status")), voxel=_voxelwise(d))


def _voxelwise(details: Mapping[str, Any]) -> str | None:
    """The finding's voxel-wise cumulative dose and envelope, in the checker's own words."""
    if not details.get("voxel_code"):
        return None
    from rtcheck.checker.evaluators.reirradiation import voxelwise_text

    return voxelwise_text(dict(details))


def _reirradiation(findings: list[dict], fmt: str) -> Reirradiation | None:
    """Each course's EQD2 (or BED) against the limits of the re-irradiation rules that were
    evaluated, the same numbers with each finding's own status, and the re-irradiation rules
    that were not evaluated (whose limits are not drawn). None when no re-irradiation rule
    was evaluated."""
    reirr = [f for f in findings if f.get("kind") == "reirradiation"]
    ran = [f for f in reirr if f.get("status") not in (None, "NOT_EVALUATED")]
    if not ran:
        return None
    from rtcheck.report import plots

    items = plots.reirradiation_items(ran)
    words = " and ".join(dict.fromkeys(i.word for i in items)) or "interval"
    structures = "; ".join(dict.fromkeys(i.where for i in items))
    drawn = None
    if items:
        drawn = _plot(plots.reirradiation_figure(items), fmt, "reirr",
                      f"Re-irradiation: {words} of each course on {structures}, against the "
                      "limits of the rules that were evaluated")
    return Reirradiation(words, structures, drawn, [_reirradiation_row(f) for f in ran],
                         [f for f in reirr if f not in ran])


# ======================================================================================
# The plan report
# ======================================================================================


def render_html(result: dict, *, dvhs: list[DVH] | None = None,
                protocols: Iterable[Any] | None = None,
                inputs: Iterable[Any] | None = None, checked_at: Any = None,
                deidentify: bool = False, extra_terms: Iterable[str] = (),
                plot_format: str = "svg", deidentifier: Deidentifier | None = None) -> str:
    """The HTML report of one plan check.

    Parameters
    ----------
    result : dict
        The check result document (:meth:`rtcheck.checker.findings.CheckResult.to_dict`:
        ``plan``, ``verdict``, ``findings``, ``notes``, ``skipped``, ``facts``...; a batch
        record works too). The re-irradiation panel is drawn from its findings of kind
        ``reirradiation`` that were evaluated, with their own limits
        (:func:`rtcheck.report.plots.reirradiation_items`).
    dvhs : list of DVH, optional
        Curves to plot: pass those the rules used (:func:`~rtcheck.report.records.used_dvhs`).
        The limits of the physical-dose findings of these structures are drawn at their points.
    protocols : iterable, optional
        Protocol objects, dicts (``id``, ``version``, ``title``, ``path``, ``sha256``) or ids.
    inputs : iterable, optional
        Input files: paths (hashed here) or dicts ``{"path", "sha256"}``.
    checked_at : datetime or str, optional
        Time of the check (default: ``result["checked_at"]`` when present).
    deidentify : bool
        Remove patient names, IDs, birth dates, UIDs and paths everywhere
        (:mod:`rtcheck.report.deidentification`); input files are then named by their kind
        (``RTPLAN file``) when ``deidentifier`` knows them, else by a pseudonym, with their
        SHA-256.
    extra_terms : iterable of str
        With ``deidentify``, further texts to remove wherever they appear (e.g. the patient
        name of the DICOM files, which the result does not carry).
    plot_format : {"svg", "png"}
        How plots are embedded: inline SVG (default, vector, prints sharply) or PNG data URI.
    deidentifier : Deidentifier, optional
        With ``deidentify``: the run's (:func:`check_deidentifier`: files by kind, input
        folders, identity read from the files); the result's own identifiers are added.

    Returns
    -------
    str
        A self-contained HTML document.
    """
    given = list(inputs or [])
    files = ([dict(i) for i in given if isinstance(i, Mapping)]
             + input_records(i for i in given if not isinstance(i, Mapping)))
    if protocols is None:
        protocols = result.get("protocols") or []
    res: dict = result
    records = protocol_records(protocols)
    when = _when(checked_at if checked_at is not None else result.get("checked_at"))
    curves = list(dvhs or [])
    if deidentify:
        res, records, files, curves = _deidentified(
            res, records, files, curves, deidentifier or Deidentifier(), extra_terms)
    findings = res.get("findings") or []
    plan = res.get("plan") or {}
    view = CheckReport(
        title=f"rtcheck: {plan.get('label') or 'plan'}: {res.get('verdict') or 'NOT_EVALUATED'}",
        deidentified=deidentify, verdict=_verdict(res), identity=_identity(plan, deidentify),
        notes=_notes(res.get("notes") or [], res.get("warnings") or []),
        findings=[_finding_row(f) for f in sort_findings(findings)], context=_context(res),
        dvh_plot=_dvh_plot(findings, curves, plot_format),
        reirradiation=_reirradiation(findings, plot_format),
        footer=Footer(records, files, when, _now()), result=res)
    return _render("check_report.html", title=view.title, r=view)


def _deidentified(res: dict, protocols: list[dict], files: list[dict], curves: list[DVH],
                  deid: Deidentifier, extra_terms: Iterable[str]
                  ) -> tuple[dict, list[dict], list[dict], list[DVH]]:
    """The report's documents and curves by the de-identification rule: the identifiers of
    all of them and ``extra_terms`` removed, input files named by kind or pseudonym."""
    bundle = {"result": res, "protocols": protocols, "inputs": files}
    deid.add_terms(identifying_terms(bundle) | {t for t in extra_terms if t})
    for rec in files:
        rec["path"] = deid.input_name(str(rec.get("path") or rec.get("name") or ""))
    out = deid.doc(bundle)
    renamed = [dataclasses.replace(d, name=deid.text(d.name))
               if deid.text(d.name) != d.name else d for d in curves]
    return out["result"], out["protocols"], out["inputs"], renamed


def render_check_report(result: dict, data: Any, *, protocols: Iterable[Any] | None = None,
                        extra_inputs: Iterable[str] = (), checked_at: Any = None,
                        deidentify: bool = False, extra_terms: Iterable[str] = (),
                        dvhs: list[DVH] | None = None, plot_format: str = "svg",
                        deidentifier: Deidentifier | None = None) -> str:
    """The HTML report of a check of a loaded plan: what ``rtcheck check --format html`` writes.

    Computes the DVHs of the structures the findings name (unless ``dvhs`` are given), hashes
    the plan's files (plus ``extra_inputs``, e.g. prior plans) and calls :func:`render_html`.
    With ``deidentify``, the plan's identity (read from its files too, and ``extra_terms``) is
    removed wherever it appears, also where the result itself does not name it as such; its
    files are named by their kind (``deidentifier``, default :func:`check_deidentifier` of
    ``data``).
    """
    inputs = plan_input_files(data) + [str(p) for p in extra_inputs]
    when = checked_at if checked_at is not None else _dt.datetime.now().astimezone()
    if dvhs is None:
        dvhs = report_dvhs(result, data)
    terms = plan_identity_terms(data) + [t for t in extra_terms if t]
    if deidentify and deidentifier is None:
        deidentifier = check_deidentifier(data)
    return render_html(result, dvhs=dvhs, protocols=protocols, inputs=inputs, checked_at=when,
                       deidentify=deidentify, extra_terms=terms, plot_format=plot_format,
                       deidentifier=deidentifier)


# ======================================================================================
# The batch index
# ======================================================================================


@dataclasses.dataclass(frozen=True)
class IndexRow:
    """One plan of the batch index."""

    verdict: str
    rank: int
    label: Any
    patient: Any
    counts: list[int]
    note: Any
    seconds: Any
    link: str | None


@dataclasses.dataclass(frozen=True)
class BatchIndex:
    """Everything ``batch_index.html`` shows."""

    title: str
    summary: str
    written_at: str
    rows: list[IndexRow]
    headings: tuple[str, ...] = INDEX_HEADINGS


def _batch_rank(verdict: Any) -> int:
    v = str(verdict)
    return BATCH_ORDER.index(v) if v in BATCH_ORDER else 1


def _record_link(i: int, rec: Mapping[str, Any], report_links: Mapping[Any, str]) -> str | None:
    for key in (rec.get("key"), i, rec.get("path"), rec.get("plan_uid")):
        if key is not None and key in report_links:
            return str(report_links[key])
    return None


def _index_row(i: int, rec: Mapping[str, Any], report_links: Mapping[Any, str]) -> IndexRow:
    verdict = str(rec.get("verdict") or "NOT_EVALUATED")
    findings = rec.get("findings") or []
    counts = Counter(str(f.get("status")) for f in findings)
    flagged = ("FAIL", "NOT_EVALUATED", "WARN") if verdict == "REVIEW" else (
        "FAIL", "NOT_EVALUATED")
    failing = [f.get("rule") for f in sort_findings(findings) if f.get("status") in flagged]
    plan = rec.get("plan") or {}
    seconds = rec.get("seconds")
    return IndexRow(
        verdict=verdict, rank=_batch_rank(verdict),
        label=rec.get("plan_label") or plan.get("label"),
        patient=rec.get("patient_id") or plan.get("patient_id"),
        counts=[counts[s] for s in STATUS_ORDER],
        note=rec.get("error") or ", ".join(str(r) for r in failing if r),
        seconds=f"{seconds:.1f}" if is_number(seconds) else seconds,
        link=_record_link(i, rec, report_links))


def render_batch_index(records: list[dict], report_links: Mapping[Any, str], *,
                       title: str = "rtcheck batch summary", generated_at: Any = None) -> str:
    """The ``index.html`` of a batch: one row per plan, ERROR and FAIL first.

    Parameters
    ----------
    records : list of dict
        Batch records (``key``, ``plan_label``, ``patient_id``, ``verdict``, ``error``,
        ``findings``, ``seconds``...). De-identify them before, if wanted.
    report_links : mapping
        Link (relative file name, e.g. ``"0003-plan.html"``) of each plan's report, keyed by
        the record's ``key`` (or its position in ``records``). Plans without a report get none.
    title : str
    generated_at : datetime or str, optional

    The rows are written sorted by verdict (ERROR, FAIL, NOT_EVALUATED, REVIEW, PASS), so the
    page reads right without JavaScript; a few lines of inline script sort by any column on a
    click of its header. The note of a row names its failing and not-evaluated rules, and for
    a REVIEW its WARN rules.
    """
    order = sorted(range(len(records)), key=lambda i: _batch_rank(records[i].get("verdict")))
    totals = Counter(str(r.get("verdict")) for r in records)
    view = BatchIndex(
        title=title,
        summary=", ".join(f"{totals[v]} {v.replace('_', ' ')}" for v in BATCH_ORDER
                          if totals[v]),
        written_at=_when(generated_at if generated_at is not None
                         else _dt.datetime.now().astimezone()),
        rows=[_index_row(i, records[i], report_links) for i in order])
    return _render("batch_index.html", title=title, b=view)
