"""Starting ``rtcheck serve`` for a test and sending it objects with a real Storage SCU.

Shared by tests/test_serve.py, tests/test_serve_bad_input.py, the browser and Orthanc tests
and benchmarks/serve.py. The node runs as a real subprocess (``python -m rtcheck serve``) on
free loopback ports (``--dicom-port 0``, ``--http 127.0.0.1:0``: the node picks them and
prints them in its ``ready:`` line, so no two tests race for a port).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[2]
SAMPLE_PLANS = REPOSITORY / "sample_plans"
_READY = re.compile(r"ready: dicom=(?P<ae>[^@]+)@(?P<host>[^:]+):(?P<port>\d+) "
                    r"http=(?P<http>\S+)")
#: Seconds a node may take to start (imports, reconciliation) on a loaded 2-core machine.
START_TIMEOUT = 60.0


class NodeFailed(AssertionError):
    """The node did not start, or exited: the message holds its standard error."""


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class RunningNode:
    """``rtcheck serve --store STORE ...`` in a subprocess, with its API at hand.

    Use as a context manager (stopped with SIGTERM at the end, killed if it hangs), or call
    :meth:`start` and :meth:`stop`; :meth:`kill` sends SIGKILL (the crash tests).
    """

    def __init__(self, store: Path, *args: str, ae_title: str = "RTCHECK",
                 env: dict[str, str] | None = None) -> None:
        self.store = Path(store)
        self.args = list(args)
        self.ae_title = ae_title
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[str] | None = None
        self.stderr: list[str] = []
        self.dicom_port = 0
        self.http = ""
        self.token: str | None = None
        self._ready = threading.Event()

    # ------------------------------------------------------------------ life cycle

    def command(self) -> list[str]:
        return [sys.executable, "-m", "rtcheck", "serve", "--store", str(self.store),
                "--ae-title", self.ae_title, "--dicom-host", "127.0.0.1", "--dicom-port", "0",
                "--http", "127.0.0.1:0", *self.args]

    def start(self, timeout: float = START_TIMEOUT) -> RunningNode:
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True, env=self.env)
        threading.Thread(target=self._read_stderr, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise NodeFailed("rtcheck serve did not start:\n" + "".join(self.stderr))
        return self

    def _read_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)
            match = _READY.search(line)
            if match:
                self.dicom_port = int(match["port"])
                self.http = match["http"].rstrip("/")
                self._ready.set()

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 20 s; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: the node gets no chance to tidy up."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def __enter__(self) -> RunningNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP

    def request(self, path: str, body: Any = None, method: str | None = None,
                headers: dict[str, str] | None = None, raw: bytes | None = None) -> Response:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.http + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {self.token}"}
                                                 if self.token else {}),
                                              **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return Response(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read(), dict(exc.headers))

    def api(self, path: str) -> Any:
        resp = self.request(path)
        if resp.status != 200:
            raise NodeFailed(f"GET {path}: HTTP {resp.status} {resp.body[:300]!r}")
        return resp.json()

    def plans(self) -> list[dict[str, Any]]:
        return self.api("/api/plans")

    def plan(self, plan_id: str) -> dict[str, Any]:
        return self.api(f"/api/plans/{plan_id}")

    def wait_for(self, what: str, predicate: Callable[[], Any], timeout: float = 60.0,
                 every: float = 0.05) -> Any:
        """Poll ``predicate`` until it returns something true; fail naming ``what``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.process is not None and self.process.poll() is not None:
                raise NodeFailed(f"the node exited while waiting for {what}:\n"
                                 + "".join(self.stderr))
            time.sleep(every)
        raise NodeFailed(f"timed out after {timeout:g} s waiting for {what}; node stderr:\n"
                         + "".join(self.stderr[-30:]))

    def wait_checked(self, plan_id: str, checks: int = 1, timeout: float = 60.0
                     ) -> dict[str, Any]:
        """The plan's detail once it has ``checks`` finished checks and is not checking."""
        def done() -> dict[str, Any] | None:
            resp = self.request(f"/api/plans/{plan_id}")
            if resp.status != 200:
                return None
            doc = resp.json()
            finished = [h for h in doc["history"] if h["status"] in ("done", "error")]
            ready = len(finished) >= checks and doc["status"] in ("checked", "error")
            return doc if ready else None

        return self.wait_for(f"plan {plan_id} checked {checks} time(s)", done, timeout)


# ---------------------------------------------------------------------- sending


def files_of(*folders: Path) -> list[Path]:
    """The DICOM files of sample-plan folders, plan first then structure set then doses
    (the order a planning system exports in)."""
    order = {"RP": 0, "RS": 1, "RD": 2}
    files = [f for folder in folders for f in sorted(Path(folder).rglob("*.dcm"))]
    return sorted(files, key=lambda f: (str(f.parent), order.get(f.name[:2], 3), f.name))


def send(files: Iterable[Path | Any], port: int, *, ae_title: str = "RTCHECK",
         calling: str = "TESTSCU", host: str = "127.0.0.1", tls: Any = None) -> list[int]:
    """Send files (paths or datasets) with pynetdicom's Storage SCU in one association;
    returns each C-STORE status (-1 for an object that could not be sent: no accepted
    context). ``tls``: an :class:`ssl.SSLContext` for DICOM over TLS. Raises
    :class:`ConnectionError` when the association is rejected."""
    from pydicom import dcmread
    from pynetdicom import AE
    from pynetdicom.presentation import DEFAULT_TRANSFER_SYNTAXES

    items = list(files)
    ae = AE(ae_title=calling)
    classes = set()
    for item in items:
        ds = item if not isinstance(item, (str, Path)) else dcmread(item, stop_before_pixels=True)
        classes.add(str(ds.SOPClassUID))
    for uid in sorted(classes):
        ae.add_requested_context(uid, DEFAULT_TRANSFER_SYNTAXES)
    assoc = ae.associate(host, port, ae_title=ae_title,
                         tls_args=(tls, host) if tls is not None else None)
    if not assoc.is_established:
        raise ConnectionError(f"association to {ae_title}@{host}:{port} as {calling} "
                              "not established (rejected or aborted)")
    statuses = []
    try:
        for item in items:
            try:
                status = assoc.send_c_store(item)
            except ValueError:  # no accepted presentation context for this class
                statuses.append(-1)
                continue
            statuses.append(int(status.Status) if "Status" in status else -2)
    finally:
        assoc.release()
    return statuses


def echo(port: int, *, ae_title: str = "RTCHECK", calling: str = "TESTSCU") -> int:
    """C-ECHO; returns the status (-1 when the association was not established)."""
    from pynetdicom import AE

    ae = AE(ae_title=calling)
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title=ae_title)
    if not assoc.is_established:
        return -1
    try:
        status = assoc.send_c_echo()
        return int(status.Status) if "Status" in status else -2
    finally:
        assoc.release()


def storescu() -> str | None:
    """dcmtk's ``storescu`` when installed (pynetdicom installs a ``storescu`` of its own,
    which may come first on PATH: the one whose ``--version`` says dcmtk is chosen)."""
    dirs = [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin"]
    for folder in dict.fromkeys(d for d in dirs if d):
        exe = shutil.which("storescu", path=folder)
        if exe is None:
            continue
        try:
            out = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                 timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if "dcmtk" in out.lower():
            return exe
    return None


def send_storescu(files: Sequence[Path], port: int, *, ae_title: str = "RTCHECK",
                  calling: str = "STORESCU") -> subprocess.CompletedProcess[str]:
    """Send files with dcmtk's ``storescu`` (``-xs``... defaults: it proposes each file's
    SOP class)."""
    exe = storescu()
    if exe is None:
        raise FileNotFoundError("storescu (Debian package dcmtk) is not installed")
    return subprocess.run([exe, "-aet", calling, "-aec", ae_title, "127.0.0.1", str(port),
                           *map(str, files)], capture_output=True, text=True, timeout=120)


def plan_uid(folder: Path) -> str:
    """The SOPInstanceUID of the RTPLAN in a sample-plan folder."""
    from pydicom import dcmread

    plans = [f for f in Path(folder).rglob("RP*.dcm")]
    if len(plans) != 1:
        raise ValueError(f"{folder}: expected one RP*.dcm, found {len(plans)}")
    return str(dcmread(plans[0], stop_before_pixels=True).SOPInstanceUID)


def rtcheck_check_json(*args: str) -> dict[str, Any]:
    """``rtcheck check ... --format json`` run as a command: its JSON."""
    proc = subprocess.run([sys.executable, "-m", "rtcheck", "check", *args, "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode not in (0, 1, 3, 5):
        raise AssertionError(f"rtcheck check {' '.join(args)}: exit {proc.returncode}: "
                             f"{proc.stderr}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"rtcheck check {' '.join(args)}: exit {proc.returncode}, no "
                             f"JSON on stdout; stderr: {proc.stderr[-2000:]}") from None


def fresh_copies(folder: Path, tag: str = "") -> list[Any]:
    """The plan, structure set and dose of a sample folder as datasets with new UIDs (the
    plan's reference to its structure set and the dose's to its plan rewired): a new plan
    for the node, in export order. ``tag`` is appended to the plan label."""
    from pydicom import dcmread
    from pydicom.uid import generate_uid

    datasets = [dcmread(f) for f in files_of(folder) if f.name[:2] in ("RP", "RS", "RD")]
    new = {str(ds.SOPInstanceUID): generate_uid() for ds in datasets}
    for ds in datasets:
        ds.SOPInstanceUID = new[str(ds.SOPInstanceUID)]
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for seq in ("ReferencedStructureSetSequence", "ReferencedRTPlanSequence"):
            for item in ds.get(seq) or []:
                old = str(item.ReferencedSOPInstanceUID)
                item.ReferencedSOPInstanceUID = new.get(old, old)
        if tag and "RTPlanLabel" in ds:
            ds.RTPlanLabel = f"{ds.RTPlanLabel}{tag}"[:16]
    return datasets


def index_rows(store: Path, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
    """Rows of the node's SQLite index (read with the stdlib sqlite3, as any tool could)."""
    import sqlite3

    db = sqlite3.connect(Path(store) / ".rtcheck" / "index.sqlite3", timeout=30)
    try:
        return [tuple(r) for r in db.execute(sql, args)]
    finally:
        db.close()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM), made with the ``openssl`` command."""
    exe = shutil.which("openssl")
    if exe is None:
        raise FileNotFoundError("the openssl command (Debian package openssl) is not installed")
    cert, key = Path(folder) / "node.pem", Path(folder) / "node-key.pem"
    subprocess.run([exe, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=120)
    return cert, key
