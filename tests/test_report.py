"""The HTML report, the batch index, the plots and de-identification.

Truth here is independent of the renderer: DVHs are built by hand from closed forms (a dose
uniformly spread over [a, b] gives a straight cumulative DVH), limit points are worked out
by hand from the metric's definition, and "self-contained" is checked on every attribute the
HTML parser sees.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from rtcheck.dvh import DVH
from rtcheck.report import (
    deidentify,
    render_batch_index,
    render_html,
    sort_findings,
    used_dvhs,
)

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
#: Attributes that load or link a resource.
URL_ATTRS = {"src", "href", "xlink:href", "action", "formaction", "poster", "data",
             "background", "srcset", "manifest", "cite", "longdesc", "usemap", "ping"}
EXTERNAL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:|//)", re.I)  # any scheme or protocol-relative
PATIENT_NAME = "ZYXWAB^QUUXLEY"
PATIENT_ID = "PID-7734219"
BIRTH_DATE = "19470312"
PLAN_UID = "1.2.826.0.1.3680043.8.498.777"


class StrictParser(HTMLParser):
    """Collects elements, attributes and texts; fails on mis-nested or unclosed elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.errors: list[str] = []
        self.texts: list[tuple[str, str]] = []  # (enclosing tag, text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if data.strip():
            self.texts.append((self.stack[-1] if self.stack else "", data))


def parse(doc: str) -> StrictParser:
    p = StrictParser()
    p.feed(doc.replace("<wbr>", ""))  # line-break hints inside rule ids split their text
    p.close()
    assert not p.errors, p.errors[:5]
    assert not p.stack, f"unclosed: {p.stack}"
    return p


def uniform_dvh(name: str, volume_cc: float, a: float, b: float) -> DVH:
    """Dose uniformly distributed on [a, b] Gy: V(d) = V for d <= a, V (b - d)/(b - a) on [a, b]."""
    doses = np.arange(0.0, b + 0.01, 0.01)
    volumes = volume_cc * np.clip((b - doses) / (b - a), 0.0, 1.0)
    return DVH(name=name, volume_cc=volume_cc, covered_fraction=1.0, dmin=a, dmax=b,
               dmean=(a + b) / 2, doses=doses, volumes=volumes, bin_width_gy=0.01, step_mm=0.5)


def finding(rule, status, structure=None, metric=None, value=None, limit=None, unit="Gy",
            alpha_beta="none", model=None, reason="", role=None, source="Référentiel 2026"):
    return {"rule": rule, "structure": structure, "role": role, "metric": metric,
            "value": value, "limit": limit, "unit": unit, "alpha_beta": alpha_beta,
            "model": model, "status": status, "reason": reason, "source": source}


@pytest.fixture
def result() -> dict:
    # Order on purpose not the report order: the renderer must sort.
    findings = [
        finding("fractionation.pain", "PASS", reason="27 Gy/3 is recommended"),
        finding("esophagus-c5-t10", "WARN", "Esophagus", "Dmax", 18.0, None, role="esophagus",
                reason="lesion between C5 and T10"),
        finding("sbrt-cord-dmax", "FAIL", "SpinalCord", "Dmax", 22.0, 20.3, role="spinal_cord",
                reason="Dmax 22.00 Gy > 20.3 Gy (3 fractions)"),
        finding("reirradiation.cumulative", "NOT_EVALUATED", "SpinalCord", "Dmax", None, 70.0,
                alpha_beta=2.0, model="LQ", role="spinal_cord",
                reason="no prior course given (--prior)"),
        finding("tg101.esophagus-5cc", "PASS", "Esophagus", "D5cc", 12.0, 17.7,
                role="esophagus", reason="<script>alert('x')</script> & co"),
    ]
    return {
        "plan": {"label": "SPINE T6", "uid": PLAN_UID, "patient_id": PATIENT_ID,
                 "patient_name": PATIENT_NAME, "patient_birth_date": BIRTH_DATE,
                 "date": "2026-03-02", "fractions": 3, "prescription_gy": 27.0},
        "verdict": "FAIL",
        "findings": findings,
        "warnings": [f"/archive/{PATIENT_ID}/RD.dcm: dose grid 2.5 mm",
                     "QUUXLEY: structure set label reused"],
    }


@pytest.fixture
def dvhs() -> list[DVH]:
    return [uniform_dvh("SpinalCord", 12.0, 2.0, 22.0), uniform_dvh("Esophagus", 20.0, 1.0, 18.0),
            uniform_dvh("PTV", 30.0, 26.0, 31.0)]


def render(result, dvhs, **kw) -> str:
    kw.setdefault("protocols", [{"id": "bone-metastases-2026", "version": "2026 (12th edition)",
                                 "title": "Bone metastases", "sha256": "ab" * 32}])
    kw.setdefault("checked_at", "2026-03-03T10:00:00+01:00")
    return render_html(result, dvhs=used_dvhs(result, dvhs), **kw)


def assert_self_contained(doc: str, p: StrictParser) -> None:
    for tag, attrs in p.tags:
        assert tag not in ("link", "iframe", "object", "embed", "base", "frame"), tag
        for name, value in attrs.items():
            if name.startswith("xmlns") or value is None:  # namespace names are not fetched
                continue
            if name in URL_ATTRS:
                assert value.startswith("#") or value.startswith("data:"), (tag, name, value)
            else:
                assert not re.search(r"(?:https?|ftp|file)://", value, re.I), (tag, name, value)
            assert re.search(r"url\(\s*['\"]?(?!#|data:)", value) is None, (tag, name, value)
    styles = re.findall(r"<style[^>]*>(.*?)</style>", doc, re.S)
    for css in styles:
        assert "@import" not in css and "@font-face" not in css
        assert re.search(r"url\(\s*['\"]?(?!#|data:)", css) is None


# --------------------------------------------------------------------------------------


def test_report_parses_holds_findings_and_plots(result, dvhs):
    doc = render(result, dvhs)
    p = parse(doc)
    assert doc.startswith("<!DOCTYPE html>")
    # every finding's rule is in the findings table
    rules = [t for tag, t in p.texts if tag == "code"]
    for f in result["findings"]:
        assert f["rule"] in rules
    # the verdict, in words, near the top
    assert doc.index("\u2716 FAIL") < doc.index("<h2>Findings</h2>")
    # one inline SVG plot (the DVH) with the cord's limit marker in its legend; the only
    # re-irradiation rule was not evaluated: no re-irradiation panel, its limit not drawn
    assert len(re.findall(r"<svg\b", doc)) == 1
    assert "SpinalCord Dmax limit 20.3 Gy: FAIL" in doc
    assert "<h2>Re-irradiation" not in doc
    # QA footer
    assert "ab" * 32 in doc and "2026 (12th edition)" in doc and "2026-03-03T10:00:00" in doc
    from rtcheck import __version__
    assert f"rtcheck version <b>{__version__}</b>" in doc


def test_report_references_nothing_outside_itself(result, dvhs):
    for fmt in ("svg", "png"):
        doc = render(result, dvhs, plot_format=fmt)
        assert_self_contained(doc, parse(doc))


def test_png_embedding_is_a_png(result, dvhs):
    p = parse(render(result, dvhs, plot_format="png"))
    srcs = [a["src"] for tag, a in p.tags if tag == "img"]
    assert len(srcs) == 1
    for s in srcs:
        assert s.startswith("data:image/png;base64,")
        assert base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_svg_ids_are_unique_across_plots(result, dvhs):
    result["findings"] += reirradiation_findings()
    doc = render(result, dvhs)
    assert len(re.findall(r"<svg\b", doc)) == 2
    ids = re.findall(r'\bid="([^"]+)"', doc)
    assert len(ids) == len(set(ids))
    # every internal reference points at an id of the page
    for ref in re.findall(r'href="#([^"]+)"|url\(#([^)]+)\)', doc):
        assert (ref[0] or ref[1]) in ids


def test_failures_come_first(result, dvhs):
    p = parse(render(result, dvhs))
    statuses = [t.split()[-1] for tag, t in p.texts
                if tag == "td" and re.fullmatch(r"\S (FAIL|NOT EVALUATED|WARN|PASS)", t)]
    statuses = [{"EVALUATED": "NOT_EVALUATED"}.get(s, s) for s in statuses]
    assert statuses == ["FAIL", "NOT_EVALUATED", "WARN", "PASS", "PASS"]
    assert [f["status"] for f in sort_findings(result["findings"])] == statuses


def test_text_is_escaped(result, dvhs):
    doc = render(result, dvhs)
    assert "<script>alert" not in doc
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in doc
    scripts = re.findall(r"<script\b[^>]*>", doc)
    assert scripts == ['<script type="application/json" id="rtcheck-result">']
    embedded = re.search(r'id="rtcheck-result">(.*?)</script>', doc, re.S).group(1)
    assert json.loads(embedded)["verdict"] == "FAIL"


def test_deidentified_report_holds_no_name_or_id(result, dvhs, tmp_path):
    f = tmp_path / f"RP_{PATIENT_ID}.dcm"
    f.write_bytes(b"plan")
    doc = render(result, dvhs, deidentify=True, inputs=[str(f)])
    parse(doc)
    for secret in ("ZYXWAB", "QUUXLEY", PATIENT_ID, BIRTH_DATE, PLAN_UID, str(tmp_path)):
        assert secret.lower() not in doc.lower(), secret
    assert "DE-IDENTIFIED" in doc and "[removed]" in doc
    # the findings and the plot survive
    assert "sbrt-cord-dmax" in doc and "<svg" in doc
    # the file is still identified by its hash
    import hashlib
    assert hashlib.sha256(b"plan").hexdigest() in doc


def test_identified_report_shows_identity(result, dvhs):
    doc = render(result, dvhs)
    assert PATIENT_ID in doc and "ZYXWAB^QUUXLEY" in doc and "SPINE T6" in doc
    assert "27.00 Gy (9.00&nbsp;Gy per fraction)" in doc


def test_deidentify_any_document():
    doc = {
        "plan": {"label": "P1", "uid": "1.2.3.4", "patient_id": "ABC123",
                 "patient_name": "ROE^JANE", "PatientBirthDate": "19600101"},
        "records": [{"PatientID": "ABC123", "files": ["/data/ABC123/RD.dcm"],
                     "SOPInstanceUIDs": ["1.2.3.5"], "note": "Jane Roe, plan of roe^jane"}],
        "structures": [{"name": "SpinalCord", "metrics": {"Dmax": 12.0}}],
        "Patient": {"Name": "X"},
        "count": 3,
    }
    out = deidentify(doc)
    text = json.dumps(out)
    for secret in ("ABC123", "ROE", "JANE", "19600101", "1.2.3.4", "1.2.3.5"):
        assert secret.lower() not in text.lower(), secret
    assert out["plan"] == {"label": "P1"}
    assert out["records"][0]["files"] == ["/data/[removed]/RD.dcm"]
    assert out["structures"] == doc["structures"] and out["count"] == 3
    assert "Patient" not in out
    assert doc["plan"]["patient_id"] == "ABC123"  # the input is not modified
    # extra terms (e.g. a name known only to the caller) are removed too
    assert deidentify({"path": "/x/Smith_J/RP.dcm"}, ["Smith_J"]) == {"path": "/x/[removed]/RP.dcm"}


def test_limit_markers_at_their_points():
    from rtcheck.report.plots import limit_markers

    cord = uniform_dvh("Cord", 10.0, 0.0, 20.0)
    fs = [
        finding("a", "FAIL", "Cord", "Dmax", 20.0, 18.0),          # (18 Gy, 0 %)
        finding("b", "PASS", "Cord", "D2cc", 16.0, 17.0),          # (17 Gy, 2/10 = 20 %)
        finding("c", "WARN", "Cord", "D50%", 10.0, 12.0),          # (12 Gy, 50 %)
        finding("d", "PASS", "Cord", "V15Gy[cc]", 2.5, 3.0, unit="cc"),  # (15 Gy, 30 %)
        finding("e", "PASS", "Cord", "V15Gy[%]", 25.0, 40.0, unit="%"),  # (15 Gy, 40 %)
        finding("f", "PASS", "Cord", "Dmean", 10.0, 11.0),         # vertical line at 11 Gy
        finding("g", "FAIL", "Cord", "Dmax", 30.0, 25.0, alpha_beta=2.0, model="LQ"),  # EQD2
        finding("h", "FAIL", "Other", "Dmax", 30.0, 25.0),         # no DVH
        finding("i", "PASS", "Cord", "Dmax", 20.0, None),          # no numeric limit
    ]
    got = [(m.status, m.dose_gy, m.volume_pct, m.value_dose_gy)
           for m in limit_markers(fs, [cord])]
    assert got == [("FAIL", 18.0, 0.0, 20.0), ("PASS", 17.0, pytest.approx(20.0), 16.0),
                   ("WARN", 12.0, 50.0, 10.0), ("PASS", 15.0, pytest.approx(30.0), None),
                   ("PASS", 15.0, 40.0, None), ("PASS", 11.0, None, None)]


def test_reirradiation_items_only_from_evaluated_findings():
    from rtcheck.report.plots import reirradiation_items

    fs = reirradiation_findings()
    items = {i.rule: i for i in reirradiation_items(fs)}
    # the interval is not a dose, the NOT_EVALUATED rule did not run: neither is drawn
    assert set(items) == {"reirradiation.cumulative-cord-eqd2", "reirradiation.course-cord-eqd2",
                          "reirradiation.course-share"}
    cum = items["reirradiation.cumulative-cord-eqd2"]
    assert (cum.limit, cum.operator, cum.warn_up_to) == (63.0, "<", 68.0)  # the finding's own
    assert cum.courses == (("this plan", 50.5), ("prior 30Gy/10", 39.5))
    assert cum.structure == "SpinalCord" and cum.stands_for == "thecal_sac"
    assert "for the thecal_sac" in cum.where
    share = items["reirradiation.course-share"]
    assert share.limit_gy == pytest.approx(0.4 * 90.0)  # ratio x cumulative EQD2
    assert items["reirradiation.course-cord-eqd2"].limit_gy == 22.0


def test_report_without_dvh_or_reirradiation(result):
    doc = render_html(result)
    p = parse(doc)
    assert "<svg" not in doc and "No DVH was given" in doc
    assert_self_contained(doc, p)


def test_batch_index_sorted_by_verdict_and_links_local():
    records = [
        {"key": "k1", "plan_label": "A", "patient_id": "P1", "verdict": "PASS", "findings": [],
         "seconds": 1.2},
        {"key": "k2", "plan_label": "B", "patient_id": "P2", "verdict": "ERROR",
         "error": "RD.dcm: <bad> file", "findings": []},
        {"key": "k3", "plan_label": "C", "patient_id": "P3", "verdict": "FAIL",
         "findings": [finding("sbrt-cord-dmax", "FAIL")]},
        {"key": "k4", "plan_label": "D", "patient_id": "P4", "verdict": "NOT_EVALUATED",
         "findings": [finding("reirr", "NOT_EVALUATED")]},
        {"key": "k5", "plan_label": "E", "patient_id": "P5", "verdict": "REVIEW",
         "findings": [finding("esophagus-c5-t10", "WARN"), finding("cord", "PASS")]},
    ]
    links = {"k1": "0001-A.html", "k3": "0003-C.html", "k4": "0004-D.html", "k5": "0005-E.html"}
    doc = render_batch_index(records, links)
    p = parse(doc)
    labels = [t for tag, t in p.texts if tag == "td" and t in "ABCDE" and len(t) == 1]
    # ERROR, FAIL, NOT_EVALUATED, REVIEW, PASS without JS
    assert labels == ["B", "C", "D", "E", "A"]
    hrefs = [a["href"] for tag, a in p.tags if tag == "a"]
    assert hrefs == ["0003-C.html", "0004-D.html", "0005-E.html", "0001-A.html"]
    assert all(not EXTERNAL.match(h) and not h.startswith("/") for h in hrefs)
    assert "&lt;bad&gt;" in doc and "sbrt-cord-dmax" in doc
    assert "addEventListener('click'" in doc  # sortable with script
    assert "1 ERROR, 1 FAIL, 1 NOT EVALUATED, 1 REVIEW, 1 PASS" in doc
    review = next(r for r in doc.split("<tr")[1:] if "0005-E.html" in r)
    assert 'class="REVIEW"' in review and "\u26a0 REVIEW" in review
    assert "esophagus-c5-t10" in review  # a REVIEW names its WARN rules


def test_save_dvh_plot_png(tmp_path, dvhs):
    from rtcheck.report.plots import save_dvh_plot

    out = tmp_path / "dvh.png"
    save_dvh_plot(dvhs, str(out), title="test")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_importing_report_does_not_import_matplotlib():
    code = ("import sys, rtcheck.report, rtcheck.report.plots, rtcheck.cli; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_dvh_plot(tmp_path, nelms):
    from click.testing import CliRunner

    from rtcheck.cli.dvh import dvh

    out = tmp_path / "dvh.png"
    res = CliRunner().invoke(dvh, ["--structures", str(nelms / "structures" / "Cone_10_0.dcm"),
                                   "--dose", str(nelms / "dose" / "Linear_SupInf_2mm_Aligned.dcm"),
                                   "--plot", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = CliRunner().invoke(dvh, ["--structures", str(nelms / "structures" / "Cone_10_0.dcm"),
                                   "--dose", str(nelms / "dose" / "Linear_SupInf_2mm_Aligned.dcm"),
                                   "--plot", str(tmp_path / "dvh.xyz")])
    assert bad.exit_code == 2 and "rtcheck: error:" in bad.output


def reirradiation_findings() -> list[dict]:
    """Typed re-irradiation findings as the checker writes them, with limits that are on
    purpose not the referential's (a panel that drew its own constants would show 70/25/0.5),
    and the cord standing in for the thecal sac."""
    courses = [{"course": "this plan", "structure": "SpinalCord", "role": "spinal_cord",
                "dose_gy": 21.8, "fractions": 3, "value_gy": 50.5, "quantity": "EQD2"},
               {"course": "prior 30Gy/10", "structure": "SpinalCord", "role": "spinal_cord",
                "dose_gy": 31.0, "fractions": 10, "value_gy": 39.5, "quantity": "EQD2"}]

    def reirr(rule, status, metric, value, limit, operator, quantity, unit="Gy", **details):
        f = finding(rule, status, "SpinalCord", metric, value, limit, unit=unit,
                    alpha_beta=2.0, model="LQ", role="spinal_cord")
        f.update(kind="reirradiation", operator=operator, stands_for="thecal_sac",
                 code="evaluated", missing=None,
                 evaluated=[{"structure": "SpinalCord", "role": "spinal_cord",
                             "stands_for": "thecal_sac", "value": value, "status": status,
                             "code": "evaluated"}],
                 details={"quantity": quantity, **details})
        return f

    return [
        reirr("reirradiation.cumulative-cord-eqd2", "FAIL", "cumulative EQD2 of Dmax", 90.0,
              63.0, "<", "cumulative_eqd2_max", courses=courses, cumulative_eqd2_gy=90.0,
              warn_up_to=68.0),
        reirr("reirradiation.course-cord-eqd2", "FAIL", "EQD2 of Dmax, this course", 50.5,
              22.0, "<", "course_eqd2_max", courses=courses[:1]),
        reirr("reirradiation.course-share", "FAIL", "this course / cumulative", 0.561, 0.4,
              "<=", "course_share", unit="ratio", courses=courses, cumulative_eqd2_gy=90.0),
        {**finding("reirradiation.interval", "PASS", None, "interval", 12.0, 5.0,
                   unit="months"), "kind": "reirradiation", "operator": ">=",
         "details": {"quantity": "interval_months"}},
        # a rule that did not run: its limit (98 Gy) must appear nowhere in the panel
        {**finding("reirradiation.conventional-course-bed", "NOT_EVALUATED", None,
                   "largest single-course BED of Dmax", None, 98.0),
         "kind": "reirradiation", "operator": "<=", "code": "fractions_unknown",
         "details": {}},
    ]


def test_reirradiation_panel_read_from_findings():
    result = {"verdict": "FAIL", "findings": reirradiation_findings()}
    doc = render_html(result)
    p = parse(doc)
    section = doc[doc.index("<h2>Re-irradiation"):doc.index("<footer")].replace("<wbr>", "")
    assert "<h2>Re-irradiation: EQD2 over the courses</h2>" in section
    # drawn with each finding's own limit, never a constant of the renderer
    assert "&lt; 63 Gy" in section and "&lt; 22 Gy" in section and "0.4 x cumulative" in section
    assert "WARN band 63-68 Gy" in section
    for constant in ("70 Gy", "25 Gy", "0.5 x"):
        assert constant not in section, constant
    # the rule that did not run: listed as not evaluated, its limit neither drawn nor judged
    assert "reirradiation.conventional-course-bed" in section
    assert not re.search(r"98(\.0)? Gy|\b98\b(?!\.\d)", re.sub(r"<svg.*?</svg>", "", section,
                                                                flags=re.S))
    assert "98 Gy" not in section
    assert "BEYOND" not in doc
    # the structure the EQD2 was read on, and what it stood in for
    assert "SpinalCord (spinal_cord, for the thecal_sac)" in section
    assert "stands for thecal_sac" in section
    # the statuses in the panel's table are the findings' own
    statuses = [t for tag, t in p.texts if tag == "td" and t.endswith(("FAIL", "PASS",
                                                                      "EVALUATED"))]
    assert statuses.count("\u2716 FAIL") >= 3
    # no evaluated re-irradiation rule: no panel
    nothing = {"findings": [{**finding("reirradiation.course-cord-eqd2", "NOT_EVALUATED",
                                       None, "Dmax", None, 25.0), "kind": "reirradiation"}]}
    assert "<h2>Re-irradiation" not in render_html(nothing)


def test_reirradiation_figure_legend_inside_the_image():
    """The saved image holds the whole legend: every artist's extent lies inside it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from rtcheck.report.plots import reirradiation_figure, reirradiation_items

    fig = reirradiation_figure(reirradiation_items(reirradiation_findings()))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    legend = fig.legends[0].get_window_extent(renderer)
    assert legend.x0 >= box.x0 and legend.y0 >= box.y0
    assert legend.x1 <= box.x1 and legend.y1 <= box.y1
    for ax in fig.axes:
        for label in ax.get_xticklabels():
            ext = label.get_window_extent(renderer)
            assert ext.y0 >= legend.y1 - 1  # tick labels above the legend, not under it


def test_review_verdict_notes_and_stand_ins(result, dvhs):
    result["verdict"] = "REVIEW"
    result["exit_code"] = 5
    result["findings"] = [f for f in result["findings"] if f["status"] in ("PASS", "WARN")]
    result["findings"][0].update(stands_for="thecal_sac", evaluated=[
        {"structure": "Esophagus", "role": "esophagus", "stands_for": None, "value": 18.0,
         "status": "WARN", "code": "evaluated"},
        {"structure": "Esoph_PRV", "role": "esophagus_prv", "stands_for": None, "value": 19.5,
         "status": "WARN", "code": "evaluated"}])
    result["notes"] = [{"code": "technique", "message": "SBRT by rtcheck's criterion",
                        "structure": None},
                       {"code": "surrogate", "message": "stood in for the thecal_sac",
                        "structure": "SpinalCord"}]
    result["warnings"] = ["SBRT by rtcheck's criterion", "SpinalCord: stood in for the thecal_sac",
                          "a batch note not among the notes"]
    result["facts"] = {"technique": "sbrt", "technique_how": "criterion",
                       "technique_text": "SBRT by rtcheck's criterion (27 Gy/3)", "site": "spine"}
    result["skipped"] = [
        {"rule": "fractionation.pain", "code": "fact_missing", "needs": "indication",
         "reason": "needs the indication"},
        {"rule": "sbrt-range.sacrum", "code": "not_requested", "needs": None,
         "reason": "site sacrum not requested"}]
    doc = render(result, dvhs)
    p = parse(doc)
    assert 'class="verdict verdict-REVIEW"' in doc and "\u26a0 REVIEW" in doc
    assert "WARN finding(s) need clinical judgement" in doc and "Exit code 5." in doc
    # notes with their codes, and the warning no note says; none twice
    codes = [t for tag, t in p.texts if tag == "td" and t in ("technique", "surrogate")]
    assert codes == ["technique", "surrogate"]
    assert doc.count("a batch note not among the notes") == 2  # table + embedded JSON
    assert doc.count("stood in for the thecal_sac") == 3  # note, warning and JSON copies
    assert "stands for thecal_sac" in doc and "Esoph_PRV (esophagus_prv): WARN 19.50" in doc
    assert "Technique: sbrt</b> (decided: criterion)" in doc
    assert "needs <b>indication</b>" in doc and "[not_requested]" in doc
    css = re.search(r"<style>(.*?)</style>", doc, re.S).group(1)
    assert ".verdict-REVIEW" in css and "dotted" in css.split(".verdict-REVIEW")[1][:80]


def test_status_column_fits_not_evaluated():
    """The findings table is fixed-layout: the status column must hold "? NOT EVALUATED"
    on at most two lines (it may wrap between the words, never inside one)."""
    from rtcheck.report import FINDINGS_COLUMNS, stylesheet

    css = stylesheet()

    assert sum(FINDINGS_COLUMNS) == 100
    status_pct = FINDINGS_COLUMNS[6]
    # the page's content is at most 1150 - 2 x 14 px wide; "EVALUATED" in bold 14 px is
    # about 80 px, plus padding 2 x 6 px and the 5 px border
    assert status_pct / 100 * (1150 - 28) >= 80 + 12 + 5
    assert "table.findings td.status { white-space: normal" in css


def test_render_check_report_of_a_loaded_plan(result, tmp_path):
    from rtcheck.model import Contour, DoseGrid, PlanData, Structure, StructureSet
    from rtcheck.report import plan_input_files, render_check_report, report_dvhs

    axis = np.arange(-20.0, 20.01, 2.0)
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    rd = tmp_path / "RD.dcm"
    rd.write_bytes(b"dose bytes")
    dose = DoseGrid(axis, axis, axis, 10.0 + 0.5 * z, paths=(str(rd),))
    square = np.array([[-5, -5], [5, -5], [5, 5], [-5, 5]], float)
    cord = Structure(1, "SpinalCord", [Contour(float(k), square) for k in range(-10, 11, 2)])
    body = Structure(2, "BODY", [Contour(float(k), 3 * square) for k in range(-10, 11, 2)])
    data = PlanData(None, dose, StructureSet([cord, body], path=None))
    assert plan_input_files(data) == [str(rd)]
    curves = report_dvhs(result, data)
    assert [d.name for d in curves] == ["SpinalCord"]  # BODY is not named by a finding
    # the dose is 10 + 0.5 z on a slab from z = -11 to 11 mm: Dmax = 15.5 Gy
    assert curves[0].dmax == pytest.approx(15.5, abs=1e-6)
    doc = render_check_report(result, data, checked_at="2026-03-03T10:00")
    p = parse(doc)
    assert_self_contained(doc, p)
    import hashlib
    assert hashlib.sha256(b"dose bytes").hexdigest() in doc
    assert "SpinalCord Dmax limit 20.3 Gy: FAIL" in doc


@pytest.fixture(scope="module")
def dicom_plan(tmp_path_factory) -> Path:
    """A synthetic spine SBRT plan (27 Gy/3) as DICOM files, with a known patient identity."""
    from support import synthetic as syn

    folder = tmp_path_factory.mktemp("plan")
    who = {"patient_id": PATIENT_ID, "patient_name": PATIENT_NAME}
    frame = syn.make_uid("test-report", "frame")
    zs = syn.planes(-20.0, 20.0, 2.0)
    # the cord extends 10 mm beyond the target on both sides (the cord rules ask for 5 mm)
    ss = syn.structure_set_dataset(
        [syn.ROI("PTV", syn.cylinder(0, 0, 10, zs), roi_type="PTV"),
         syn.ROI("SpinalCord", syn.cylinder(0, 20, 5, syn.planes(-30.0, 30.0, 2.0)))],
        frame_uid=frame, **who)
    plan = syn.plan_dataset("SPINE T6", 3, 27.0, structure_set_uid=ss.SOPInstanceUID,
                            frame_uid=frame, plan_uid=PLAN_UID, **who)
    dose = syn.dose_dataset_from_function(
        lambda x, y, z: 28.0 * np.exp(-np.maximum(np.hypot(x, y) - 10.0, 0.0) / 10.0),
        (-30.0, -30.0, -34.0), (30.0, 30.0, 34.0), (2.0, 2.0, 2.0),
        plan_uid=plan.SOPInstanceUID, frame_uid=frame, **who)
    for ds, name in ((plan, "RP.dcm"), (ss, "RS.dcm"), (dose, "RD.dcm")):
        syn.write(ds, folder / name)
    return folder


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "html"])
def test_cli_check_deidentify_every_format(dicom_plan, tmp_path, fmt):
    from click.testing import CliRunner

    from rtcheck.cli.check import check_command

    out = tmp_path / f"report.{fmt}"
    args = [str(dicom_plan), "--indication", "reirradiation", "--site", "spine",
            "--prior-summary", "30Gy/10 cord_dmax=31Gy date=2025-03-01", "--format", fmt,
            "--output", str(out)]
    plain = CliRunner().invoke(check_command, args)
    assert plain.exit_code == 1, plain.output  # a cord rule FAILs
    if fmt != "csv":  # the CSV names no patient nor plan UID in the first place
        assert PLAN_UID in out.read_text(encoding="utf-8")
    res = CliRunner().invoke(check_command, args + ["--deidentify"])
    assert res.exit_code == 1, res.output
    text = out.read_text(encoding="utf-8")
    for secret in ("ZYXWAB", "QUUXLEY", PATIENT_ID, PLAN_UID):
        assert secret.lower() not in text.lower(), secret
    if fmt == "json":
        assert json.loads(text)["verdict"] == "FAIL"
    if fmt == "html":
        assert_self_contained(text, parse(text))
        assert "<svg" in text and "<h2>Re-irradiation: EQD2 over the courses</h2>" in text


def test_cli_batch_report_dir_and_index(dicom_plan, tmp_path):
    from click.testing import CliRunner

    from rtcheck.cli.batch import batch
    from rtcheck.report import report_file_name

    archive = tmp_path / "archive"
    shutil.copytree(dicom_plan, archive / "patient")
    (archive / "broken.dcm").write_bytes(b"DICM but not really")  # an ERROR record, no report
    for deid in (False, True):
        reports = tmp_path / f"reports-{deid}"
        out = tmp_path / f"results-{deid}.jsonl"
        args = [str(archive), "-o", str(out), "--jobs", "1", "--quiet",
                "--report-dir", str(reports)] + (["--deidentify"] if deid else [])
        res = CliRunner().invoke(batch, args)
        assert res.exit_code in (0, 1, 4), res.output
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted(r["verdict"] == "ERROR" for r in records) == [False, True]
        plan_rec = next(r for r in records if r["verdict"] != "ERROR")
        page = (reports / report_file_name(plan_rec["key"])).read_text(encoding="utf-8")
        assert_self_contained(page, parse(page))
        assert "sbrt-cord-dmax" in page and "<svg" in page
        index = (reports / "index.html").read_text(encoding="utf-8")
        p = parse(index)
        assert [a["href"] for tag, a in p.tags if tag == "a"] == [report_file_name(plan_rec["key"])]
        # the ERROR record is listed, first (named by its path, or its pseudonym when
        # de-identified with the archive known)
        assert "broken.dcm" in index or deid
        assert index.index("\u2716 ERROR") < index.index("SPINE T6")
        for text in (page, index):
            assert (PATIENT_ID in text) is (not deid)
            if deid:
                for secret in ("ZYXWAB", "QUUXLEY", PLAN_UID):
                    assert secret.lower() not in text.lower()


def test_cli_batch_report_dir_needs_output(tmp_path):
    from click.testing import CliRunner

    from rtcheck.cli.batch import batch

    res = CliRunner().invoke(batch, [str(tmp_path), "--report-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and "--report-dir needs --output" in res.output


def test_read_batch_records_jsonl_and_csv(tmp_path):
    from rtcheck.report import read_batch_records

    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text(
        json.dumps({"key": "k1", "plan_label": "A", "verdict": "FAIL", "seconds": 1.5,
                    "findings": [{"rule": "r1", "status": "FAIL", "reason": "x"}]}) + "\n"
        + '{"key": "k2", "plan_la' + "\n"  # a half-written line (killed run) is skipped
        + json.dumps({"key": "k3", "verdict": "ERROR", "error": "bad", "findings": []}) + "\n")
    rows = read_batch_records(jsonl)
    assert [(r["key"], r["verdict"]) for r in rows] == [("k1", "FAIL"), ("k3", "ERROR")]
    assert rows[0]["findings"] == [{"rule": "r1", "status": "FAIL"}] and rows[0]["seconds"] == 1.5
    csv_file = tmp_path / "r.csv"
    csv_file.write_text("key,plan_label,verdict,error,row,rows,rule,status,seconds\n"
                        "k1,A,FAIL,,1,2,r1,FAIL,1.5\n"
                        "k1,A,FAIL,,2,2,r2,PASS,1.5\n"
                        "k3,,ERROR,bad,1,1,,,\n")
    rows = read_batch_records(csv_file)
    assert [(r["key"], r["verdict"], len(r["findings"])) for r in rows] == [
        ("k1", "FAIL", 2), ("k3", "ERROR", 0)]
