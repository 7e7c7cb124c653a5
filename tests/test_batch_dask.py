"""``rtcheck batch --scheduler``: the same batch on a Dask distributed cluster.

The cluster is a LocalCluster on the loopback interface (TCP, one in-process worker with
one thread, no dashboard): the batch connects to it by address exactly as it would to a
remote ``dask scheduler``.
"""

from __future__ import annotations

import json
import socket

import pytest
from click.testing import CliRunner
from support.batch import facts_file, make_plan, raising_check

from rtcheck import batch as B
from rtcheck.cli import main
from rtcheck.errors import InputError

distributed = pytest.importorskip(
    "distributed", reason="Dask is not installed: pip install 'rtcheck[dask]' (or '.[test]')")


@pytest.fixture(scope="module")
def scheduler() -> str:
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_batch_on_a_dask_cluster(tmp_path, scheduler):
    assert scheduler.startswith("tcp://127.0.0.1:")
    root = tmp_path / "archive"
    kinds = {"P0": "pass", "P1": "fail", "P2": "pass", "P3": "fail"}
    for patient, kind in kinds.items():
        make_plan(root / patient, patient, f"L{patient}", kind)
    facts = facts_file(tmp_path / "facts.csv", list(kinds))
    out = tmp_path / "results.jsonl"
    r = CliRunner().invoke(main, ["batch", str(root), "--scheduler", scheduler,
                                  "--indication-from", str(facts), "-o", str(out)])
    assert r.exit_code == 1, r.output  # two plans exceed the cord limit
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["patient_id"]: r["verdict"] for r in records} == {
        p: "PASS" if k == "pass" else "FAIL" for p, k in kinds.items()}
    assert "4 plans checked" in r.output


def test_worker_exception_on_dask_becomes_an_error_record(tmp_path, scheduler):
    root = tmp_path / "archive"
    make_plan(root / "A", "A", "GOOD")
    bad = make_plan(root / "B", "B", "RAISE")
    out = tmp_path / "r.jsonl"
    summary = B.run_batch(root, output=str(out), scheduler=scheduler, worker=raising_check,
                          progress="off")
    recs = {r["plan_label"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert recs["RAISE"]["verdict"] == "ERROR"
    assert recs["RAISE"]["error"] == f"{bad['plan']}: ValueError: something broke"
    assert recs["GOOD"]["verdict"] == "NOT_EVALUATED"
    assert summary.exit_code == B.EXIT_ERROR


def test_unreachable_scheduler_is_an_input_error(tmp_path):
    root = tmp_path / "archive"
    make_plan(root / "A", "A", "GOOD")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InputError, match="cannot connect to the Dask scheduler"):
        B.run_batch(root, output=str(tmp_path / "r.jsonl"), progress="off",
                    scheduler=f"tcp://127.0.0.1:{port}", connect_timeout="1s")
