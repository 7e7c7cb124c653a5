#!/usr/bin/env python3
"""Screenshot the review page of ``rtcheck serve`` with the sample plans in it.

Starts a node on free loopback ports with a throw-away store, sends it the sample plans with
pynetdicom's Storage SCU (as a planning system exports), waits until each is checked, gives
two of them their facts through the API (as the page's form does), then saves a PNG of the
page taken by Debian's headless Chromium (through selenium and chromium-driver).

The node, the sending and the browser are the tests' own helpers (``tests/support/node.py``
and ``tests/support/browser.py``): the picture shows what the browser tests check.

Usage::

    python scripts/screenshot_serve.py [--output docs/serve.png] [--width 1400] [--deidentify]

Needs Debian's ``chromium`` and ``chromium-driver``, and selenium (the ``test`` extra).
Chromium runs with no network use of its own (no sync, no component updates, no QUIC, a
throw-away profile); the page refers to nothing outside the node.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.browser import BrowserMissing, full_page_png, headless_chromium  # noqa: E402
from support.node import (  # noqa: E402
    SAMPLE_PLANS,
    NodeFailed,
    RunningNode,
    files_of,
    plan_uid,
    send,
)
from support.orthanc import free_port  # noqa: E402

#: Sent in this order (the page lists the last first).
CASES = ["spine-30Gy10", "reirradiation/course1-30Gy10", "reirradiation/course2-sbrt-27Gy3",
         "spine-sbrt-27Gy3", "single-8Gy1"]
#: Facts given through the API, as the page's form posts them: plan folder -> facts.
FACTS = {
    "spine-30Gy10": {"indication": "pain", "site": "spine", "vertebral_level": "T12"},
    "reirradiation/course2-sbrt-27Gy3": {"indication": "reirradiation", "site": "spine",
                                         "prior": "course1"},
}


def populate(node: RunningNode) -> None:
    """Send the sample plans, wait for their checks, post the facts and wait again."""
    for case in CASES:
        send(files_of(SAMPLE_PLANS / case), node.dicom_port, calling="TPS_EXPORT")
    ids = {}
    for case in CASES:
        detail = node.wait_checked(plan_uid(SAMPLE_PLANS / case), timeout=180)
        ids[case] = detail["id"]
    for case, facts in FACTS.items():
        body = dict(facts)
        if body.get("prior") == "course1":
            body["prior"] = ids["reirradiation/course1-30Gy10"]
        answer = node.request(f"/api/plans/{ids[case]}/check", body, method="POST")
        if answer.status != 202:
            raise NodeFailed(f"facts for {case} refused: {answer.body[:300]!r}")
        node.wait_checked(ids[case], checks=2, timeout=180)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "serve.png")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--deidentify", action="store_true",
                        help="start the node with --deidentify")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rtcheck-serve-shot-") as tmp:
        # a fixed free port rather than the tests' "--dicom-port 0", so that the page's
        # header shows the port a planning system would be given
        extra = ["--dicom-port", str(free_port()), *(["--deidentify"] if args.deidentify
                                                     else [])]
        try:
            with RunningNode(Path(tmp) / "store", "--settle", "5", *extra,
                             ae_title="RTCHECK") as node:
                populate(node)
                with headless_chromium(width=args.width) as driver:
                    driver.get(node.http + "/")
                    png = full_page_png(driver, args.output)
        except (BrowserMissing, NodeFailed) as exc:
            print(f"screenshot_serve: {exc}", file=sys.stderr)
            return 2
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
