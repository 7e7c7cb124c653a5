"""The review page of ``rtcheck serve`` in a real browser (issue 13).

A node is started on loopback ports (tests/support/node.py: a real ``rtcheck serve``
process), the sample plans are sent to it with pynetdicom's Storage SCU, and Debian's
Chromium, headless, driven by selenium through chromium-driver (tests/support/browser.py),
reads the page as a person would:

- the list shows every plan, newest first, with its patient, label, date, fractions and
  dose, calling AE and status, and the verdict ``rtcheck check`` gives on the same files,
  in the HTML report's colours;
- a plan's report opens from its link, with the same verdict;
- the facts form sets indication and site, the node checks the plan again and the row shows
  the new verdict (the one ``rtcheck check`` gives with those facts); a prior course is
  chosen among the same patient's plans of the store; facts the node refuses are shown in
  the form, and the page keeps working;
- with ``--deidentify`` the page holds no patient name or ID.

Chromium, chromium-driver or selenium missing is a FAILURE naming them, never a skip.
"""

from __future__ import annotations

import re

import pytest
from support.browser import chromium
from support.node import (
    SAMPLE_PLANS,
    RunningNode,
    files_of,
    plan_uid,
    rtcheck_check_json,
    send,
)

from rtcheck.report import stylesheet

#: Sent in this order: the list must show them in the reverse one.
SENT = ["spine-30Gy10", "reirradiation/course1-30Gy10", "reirradiation/course2-sbrt-27Gy3",
        "spine-sbrt-27Gy3", "single-8Gy1"]
#: Verdict level -> the report's CSS variable that colours it.
COLOUR_VARS = {"FAIL": "--fail", "PASS": "--pass", "NOT_EVALUATED": "--ne",
               "REVIEW": "--review"}
WAIT_S = 120


def css_rgb(hex_colour: str) -> str:
    """``#b71c1c`` -> ``rgba(183, 28, 28, 1)`` / ``rgb(183, 28, 28)`` as Chromium computes."""
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"{r}, {g}, {b}"


def report_colours() -> dict[str, str]:
    """The report stylesheet's verdict colours (``--fail:#b71c1c`` ...), as ``r, g, b``."""
    css = stylesheet()
    colours = {}
    for verdict, var in COLOUR_VARS.items():
        found = re.search(rf"{var}:\s*(#[0-9a-fA-F]{{6}})", css)
        assert found, f"the report stylesheet defines no {var} colour"
        colours[verdict] = css_rgb(found.group(1))
    return colours


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A node holding the sample plans, each checked once."""
    with RunningNode(tmp_path_factory.mktemp("store"), "--settle", "5") as running:
        for case in SENT:
            statuses = send(files_of(SAMPLE_PLANS / case), running.dicom_port)
            assert statuses and all(s == 0 for s in statuses), (case, statuses)
        for case in SENT:
            running.wait_checked(plan_uid(SAMPLE_PLANS / case), timeout=WAIT_S)
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def rows(driver) -> list[dict]:
    """The plan rows of the list as a person reads them."""
    out = []
    for tr in driver.find_elements("css selector", "table#plans tbody tr[data-plan]"):
        cells = tr.find_elements("tag name", "td")
        out.append({"id": tr.get_attribute("data-plan"), "verdict": cells[0].text.strip(),
                    "patient": cells[1].text, "label": cells[2].text, "date": cells[3].text,
                    "dose": cells[4].text, "ae": cells[5].text, "status": cells[6].text,
                    "facts": cells[8].text, "colour": cells[0].value_of_css_property("color"),
                    "element": tr})
    return out


def row_of(driver, plan_id: str) -> dict:
    found = [r for r in rows(driver) if r["id"] == plan_id]
    assert len(found) == 1, [r["id"] for r in rows(driver)]
    return found[0]


def open_page(driver, node) -> None:
    driver.get(node.http + "/")
    assert driver.find_element("css selector", "h1").text.startswith("rtcheck node")


def test_list_shows_the_plans_newest_first_with_their_verdicts(node, browser):
    open_page(browser, node)
    shown = rows(browser)
    assert [r["id"] for r in shown] == [plan_uid(SAMPLE_PLANS / c) for c in reversed(SENT)]
    colours = report_colours()
    for case, row in zip(reversed(SENT), shown):
        expected = rtcheck_check_json(str(SAMPLE_PLANS / case))  # no facts, as the node
        assert row["verdict"] == expected["verdict"], case
        assert colours[row["verdict"]] in row["colour"], (case, row["colour"])
        plan = expected["plan"]
        assert row["label"] == plan["label"] and row["date"] == plan["date"]
        assert row["dose"] == f"{plan['fractions']} fx, {plan['prescription_gy']:.2f} Gy"
        assert plan["patient_id"] in row["patient"]
        assert row["ae"] == "TESTSCU" and row["status"].startswith("checked")
        # the node checked without indication nor site: the row says what it waits for
        assert "needs: indication" in row["facts"]
    # the summary line counts them by verdict
    summary = browser.find_element("id", "summary").text
    assert summary.startswith(f"{len(SENT)} plans:")
    # the node listens on a port the system chose (--dicom-port 0): the page says which
    assert f"port {node.dicom_port}" in browser.find_element("tag name", "body").text
    assert node.dicom_port != 0


def test_a_report_opens_from_the_list(node, browser):
    open_page(browser, node)
    uid = plan_uid(SAMPLE_PLANS / "spine-sbrt-27Gy3")
    row = row_of(browser, uid)
    main_window = browser.current_window_handle
    row["element"].find_element("css selector", "a.report").click()
    try:
        browser.switch_to.window(next(h for h in browser.window_handles if h != main_window))
        report = browser.find_element("css selector", ".verdict")
        assert f"verdict-{row['verdict']}" in report.get_attribute("class")
        assert "SBRT_27GY3" in browser.page_source
    finally:
        for handle in browser.window_handles:
            if handle != main_window:
                browser.switch_to.window(handle)
                browser.close()
        browser.switch_to.window(main_window)


def fill_facts(driver, plan_id: str, **values: str) -> None:
    """Open the plan's facts form and set fields (by name); selects by value."""
    from selenium.webdriver.support.ui import Select

    row_of(driver, plan_id)["element"].find_element("css selector", "button.set-facts").click()
    form = driver.find_element("id", "facts-form")
    assert driver.find_element("id", "facts-panel").is_displayed()
    for name, value in values.items():
        element = form.find_element("name", name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)


def submit_and_wait_for_verdict(driver, node, plan_id: str, before_checks: int) -> dict:
    """Save the form; wait for the page to reload with the new check's verdict."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element("id", "facts-save").click()
    detail = node.wait_checked(plan_id, checks=before_checks + 1, timeout=WAIT_S)
    # The page reloads: the panel found may belong to the page being replaced (stale); ask
    # again until the new page is complete with its panel closed.
    WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
        and not d.find_element("id", "facts-panel").is_displayed())
    return detail


def finished_checks(node, plan_id: str) -> int:
    return len([h for h in node.plan(plan_id)["history"] if h["status"] in ("done", "error")])


def test_setting_facts_checks_the_plan_again(node, browser):
    open_page(browser, node)
    folder = SAMPLE_PLANS / "spine-30Gy10"
    uid = plan_uid(folder)
    before = row_of(browser, uid)
    n = finished_checks(node, uid)
    fill_facts(browser, uid, indication="pain", site="spine", vertebral_level="T6")
    detail = submit_and_wait_for_verdict(browser, node, uid, n)
    expected = rtcheck_check_json(str(folder), "--indication", "pain", "--site", "spine",
                                  "--vertebral-level", "T6")
    row = row_of(browser, uid)
    assert row["verdict"] == detail["verdict"] == expected["verdict"]
    assert before["verdict"] == "NOT_EVALUATED" != expected["verdict"]
    assert "indication pain" in row["facts"] and "site spine" in row["facts"]
    assert "level T6" in row["facts"] and "needs:" not in row["facts"]
    latest = detail["history"][0]
    assert latest["trigger"] == "requested" and latest["facts"]["indication"] == "pain"


def test_a_prior_course_is_chosen_among_the_same_patients_plans(node, browser):
    from selenium.webdriver.support.ui import Select

    open_page(browser, node)
    course1 = SAMPLE_PLANS / "reirradiation/course1-30Gy10"
    course2 = SAMPLE_PLANS / "reirradiation/course2-sbrt-27Gy3"
    uid2, uid1 = plan_uid(course2), plan_uid(course1)
    n = finished_checks(node, uid2)
    fill_facts(browser, uid2, indication="reirradiation", site="spine")
    prior = Select(browser.find_element("id", "f-prior-plan"))
    offered = [o.get_attribute("value") for o in prior.options
               if o.get_attribute("value") and o.is_enabled()]
    assert offered == [uid1]  # the same patient's other plan, and only it
    prior.select_by_value(uid1)
    detail = submit_and_wait_for_verdict(browser, node, uid2, n)
    expected = rtcheck_check_json(str(course2), "--prior", str(course1), "--indication",
                                  "reirradiation", "--site", "spine")
    assert detail["verdict"] == expected["verdict"]
    assert {f["rule"]: f["status"] for f in detail["findings"]} == \
        {f["rule"]: f["status"] for f in expected["findings"]}
    row = row_of(browser, uid2)
    assert row["verdict"] == expected["verdict"] and "prior C1_30GY10" in row["facts"]


def test_refused_facts_are_shown_in_the_form_and_the_page_keeps_working(node, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, node)
    uid = plan_uid(SAMPLE_PLANS / "single-8Gy1")
    n = finished_checks(node, uid)
    fill_facts(browser, uid, prior_summary="thirty gray in ten")
    browser.find_element("id", "facts-save").click()
    status = browser.find_element("id", "facts-status")
    WebDriverWait(browser, 30).until(lambda d: "error" in (status.get_attribute("class") or ""))
    assert status.text and "thirty gray" in status.text
    assert finished_checks(node, uid) == n  # nothing was checked
    open_page(browser, node)
    assert len(rows(browser)) == len(SENT)


def test_deidentified_page_shows_no_patient_name_or_id(tmp_path):
    folder = SAMPLE_PLANS / "spine-sbrt-27Gy3"
    with RunningNode(tmp_path / "store", "--deidentify", "--settle", "5") as deid:
        send(files_of(folder), deid.dicom_port)
        listed = deid.wait_for("the plan listed", lambda: deid.plans(), timeout=WAIT_S)
        deid.wait_checked(listed[0]["id"], timeout=WAIT_S)
        with chromium() as driver:
            driver.get(deid.http + "/")
            page = driver.page_source
            text = driver.find_element("tag name", "body").text
            shown = rows(driver)
        assert len(shown) == 1 and shown[0]["verdict"] in COLOUR_VARS
        for secret in ("RTCHECK-SAMPLE-02", "Sample^Spine", "Sample", plan_uid(folder)):
            assert secret not in page, secret
        assert "[removed]" in text and "de-identified" in text
