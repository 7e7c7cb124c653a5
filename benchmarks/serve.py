"""``rtcheck serve``: received-to-verdict time and objects per second accepted.

Usage (from the repository root)::

    python benchmarks/serve.py                  # 7 plans, 200 + 60 objects
    python benchmarks/serve.py --plans 3 --objects 40 --doses 10   # quick

The node runs as ``rtcheck serve`` in a subprocess on free loopback ports, with a fresh store
in a temporary folder, and objects are sent with pynetdicom's Storage SCU (the helpers of
``tests/support/node.py``, shared with the node's tests and imported from there).

* **Received to verdict**: the sample spine SBRT plan (plan, structure set, dose: 0.5 MB)
  sent again and again under new UIDs, one association per plan; the time from the last
  C-STORE success to the verdict in ``GET /api/plans/{uid}``, and from the first object
  sent. Median, min and max over the plans.
* **Objects per second**: distinct structure sets (121 KB) and doses (179 KB, read by
  rtcheck's dose reader on arrival) sent in one association each, each acknowledged only
  once written, synced and committed to the index. Doses name a plan that never comes, so no
  check competes with the transfer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.node import SAMPLE_PLANS, RunningNode, fresh_copies, send  # noqa: E402

SBRT = SAMPLE_PLANS / "spine-sbrt-27Gy3"
SINGLE = SAMPLE_PLANS / "single-8Gy1"


def received_to_verdict(node: RunningNode, plans: int) -> tuple[list[float], list[float]]:
    """Per plan: seconds from the last acknowledgement, and from the first send, to the
    verdict in the API."""
    after_ack, after_first = [], []
    for i in range(plans):
        datasets = fresh_copies(SBRT, f"B{i}")
        uid = str(datasets[0].SOPInstanceUID)
        first = time.perf_counter()
        statuses = send(datasets, node.dicom_port)
        acked = time.perf_counter()
        if statuses != [0] * len(datasets):
            raise SystemExit(f"plan {i}: C-STORE statuses {statuses}")
        node.wait_for(f"the verdict of plan {i}", lambda: (
            node.request(f"/api/plans/{uid}").json().get("verdict")), timeout=120, every=0.01)
        done = time.perf_counter()
        after_ack.append(done - acked)
        after_first.append(done - first)
    return after_ack, after_first


def distinct(path: Path, n: int, orphan: bool = False) -> list:
    """``n`` copies of one object under new UIDs (a dose's plan reference made unknown)."""
    from pydicom import dcmread
    from pydicom.uid import generate_uid

    base = dcmread(path)
    out = []
    for _ in range(n):
        ds = base.copy()
        ds.file_meta = base.file_meta.copy()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if orphan:
            ds.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID = generate_uid()
        out.append(ds)
    return out


def throughput(node: RunningNode, datasets: list, size: int) -> tuple[float, float]:
    """Objects per second and MB per second for one association carrying ``datasets``."""
    start = time.perf_counter()
    statuses = send(datasets, node.dicom_port)
    seconds = time.perf_counter() - start
    if set(statuses) != {0}:
        raise SystemExit(f"C-STORE statuses {sorted(set(statuses))}")
    return len(datasets) / seconds, len(datasets) * size / seconds / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=7, help="plans for received-to-verdict")
    parser.add_argument("--objects", type=int, default=200, help="structure sets sent")
    parser.add_argument("--doses", type=int, default=60, help="doses sent")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rtcheck-serve-bench-") as tmp:
        with RunningNode(Path(tmp) / "store", "--settle", "60") as node:
            # one plan first: the worker's imports are not the node's steady state
            received_to_verdict(node, 1)
            after_ack, after_first = received_to_verdict(node, args.plans)
            rs = SINGLE / "RS.dcm"
            rd = SINGLE / "RD.dcm"
            rs_rate = throughput(node, distinct(rs, args.objects), rs.stat().st_size)
            rd_rate = throughput(node, distinct(rd, args.doses, orphan=True), rd.stat().st_size)
    print(f"rtcheck serve, sample spine SBRT plan (3 objects, 0.5 MB), {args.plans} plans:")
    print(f"  last object acknowledged -> verdict in the API: median "
          f"{statistics.median(after_ack):.2f} s (min {min(after_ack):.2f}, "
          f"max {max(after_ack):.2f})")
    print(f"  first object sent -> verdict in the API:        median "
          f"{statistics.median(after_first):.2f} s (min {min(after_first):.2f}, "
          f"max {max(after_first):.2f})")
    print("objects accepted (one association, each synced and indexed before success):")
    print(f"  RTSTRUCT 121 KB x {args.objects}: {rs_rate[0]:.1f} objects/s ({rs_rate[1]:.1f} MB/s)")
    print(f"  RTDOSE   179 KB x {args.doses}: {rd_rate[0]:.1f} objects/s ({rd_rate[1]:.1f} MB/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
