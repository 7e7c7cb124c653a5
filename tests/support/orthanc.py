"""A private, real Orthanc for the tests: Debian's ``orthanc`` with its DICOMweb plugin
(``orthanc-dicomweb``), started on free loopback ports with its own configuration and storage
folder (never the system service, whose ports and database it leaves alone).

``.ci/run`` installs both packages. When the binary or the plugin is missing, or Orthanc does
not come up, the test using it FAILS with the reason and the log's tail: a CI run without its
parts must not pass by skipping.

Usage::

    with running_orthanc(tmp_path) as pacs:
        pacs.upload_folder(Path("sample_plans/spine-sbrt-27Gy3"))
        url = pacs.study_url(study_uid)          # http://127.0.0.1:PORT/dicom-web/studies/UID
        pacs.add_modality("rtcheck", "RTCHECK", "127.0.0.1", 11112)
        pacs.store("rtcheck", [pacs.orthanc_study_id(study_uid)])
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

#: Where Debian's packages put the binary and the DICOMweb plugin.
ORTHANC_BINARY = "Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
INSTALL_HINT = ("apt-get install orthanc orthanc-dicomweb (.ci/run installs them; "
                "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends)")
#: The AE title of the test Orthanc.
ORTHANC_AET = "ORTHANCTEST"
#: Seconds Orthanc has to answer its REST API after start (it creates its database first).
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port free on the loopback interface now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def orthanc_binary() -> str:
    """The Orthanc executable; the test FAILS (not skips) with how to install it if absent."""
    found = shutil.which(ORTHANC_BINARY) or shutil.which(ORTHANC_BINARY, path="/usr/sbin")
    if not found:
        pytest.fail(f"Orthanc is not installed: {INSTALL_HINT}", pytrace=False)
    if not DICOMWEB_PLUGIN.is_file():
        pytest.fail(f"Orthanc's DICOMweb plugin {DICOMWEB_PLUGIN} is missing: {INSTALL_HINT}",
                    pytrace=False)
    return found


@dataclass
class Orthanc:
    """A running private Orthanc and the REST calls the tests make."""

    folder: Path
    http_port: int
    dicom_port: int
    process: subprocess.Popen
    log_path: Path
    aet: str = ORTHANC_AET
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        """The REST API's base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_root(self) -> str:
        """The DICOMweb service root."""
        return f"{self.url}/dicom-web"

    def study_url(self, study_uid: str) -> str:
        """The DICOMweb URL of a study, as a user gives it to ``rtcheck check``."""
        return f"{self.dicomweb_root}/studies/{study_uid}"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of Orthanc's log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One REST call; an HTTP error fails the test with Orthanc's answer and log."""
        kwargs.setdefault("timeout", 120)
        response = self.session.request(method, self.url + path, **kwargs)
        if response.status_code >= 400:
            pytest.fail(f"Orthanc {method} {path}: HTTP {response.status_code} "
                        f"{response.text[:500]}\n--- Orthanc log ---\n{self.log_tail()}",
                        pytrace=False)
        return response.json() if response.content else None

    def upload(self, path: Path) -> dict:
        """Upload one DICOM file (``POST /instances``); returns Orthanc's answer (``ID``,
        ``ParentStudy``, ``Status``...)."""
        return self.request("POST", "/instances", data=path.read_bytes(),
                            headers={"Content-Type": "application/dicom"})

    def upload_folder(self, folder: Path) -> list[dict]:
        """Upload every ``*.dcm`` under ``folder`` (sorted); returns the answers."""
        return [self.upload(p) for p in sorted(folder.rglob("*.dcm"))]

    def orthanc_study_id(self, study_uid: str) -> str:
        """Orthanc's own ID of a study (``POST /tools/lookup``)."""
        found = [r for r in self.request("POST", "/tools/lookup", data=study_uid)
                 if r.get("Type") == "Study"]
        if len(found) != 1:
            pytest.fail(f"Orthanc holds {len(found)} studies with UID {study_uid}",
                        pytrace=False)
        return str(found[0]["ID"])

    def add_modality(self, name: str, aet: str, host: str, port: int) -> None:
        """Declare a DICOM modality (``PUT /modalities/NAME``): where C-STOREs go."""
        self.request("PUT", f"/modalities/{name}",
                     data=json.dumps({"AET": aet, "Host": host, "Port": port}))

    def echo(self, name: str) -> None:
        """C-ECHO the modality (``POST /modalities/NAME/echo``); fails the test if it does
        not answer."""
        self.request("POST", f"/modalities/{name}/echo", data="{}")

    def store(self, name: str, resources: list[str]) -> dict:
        """C-STORE resources (Orthanc IDs of studies, series or instances) to the modality,
        synchronously (``POST /modalities/NAME/store``); returns Orthanc's answer."""
        return self.request("POST", f"/modalities/{name}/store",
                            data=json.dumps({"Resources": resources, "Synchronous": True}))

    def stop(self) -> None:
        """Stop Orthanc (SIGTERM, then SIGKILL after 20 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        self.session.close()


def write_config(folder: Path, http_port: int, dicom_port: int) -> Path:
    """The private configuration: loopback-only REST API without authentication, storage
    and index in ``folder``, the DICOMweb plugin at ``/dicom-web/``, modalities declared
    through the REST API (kept in memory), no jobs saved across runs."""
    config = {
        "Name": "rtcheck-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,  # REST API for 127.0.0.1 only
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": ORTHANC_AET,
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": False,
        "DicomModalities": {},
        "DicomModalitiesInDatabase": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomScuTimeout": 30,
        "DicomAssociationCloseDelay": 0,  # close an SCU association at once: the test waits
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False,
                     "Ssl": False},
        "SaveJobs": False,
        "ConcurrentJobs": 1,
        "HttpThreadsCount": 8,
        "StorageCompression": False,
        "OverwriteInstances": True,
        "StableAge": 1,
    }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def start_orthanc(folder: Path, *, attempts: int = 3) -> Orthanc:
    """Start a private Orthanc in ``folder`` and wait until its REST API and the DICOMweb
    plugin answer. Ports are chosen free just before start; if one was taken meanwhile, it
    tries again with others. The test FAILS with the log's tail when it never comes up."""
    binary = orthanc_binary()
    folder.mkdir(parents=True, exist_ok=True)
    last = ""
    for attempt in range(attempts):
        http_port, dicom_port = free_port(), free_port()
        config = write_config(folder, http_port, dicom_port)
        log_path = folder / f"orthanc-{attempt}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen([binary, str(config)], stdout=log,
                                       stderr=subprocess.STDOUT, cwd=folder,
                                       start_new_session=True)
        server = Orthanc(folder=folder, http_port=http_port, dicom_port=dicom_port,
                         process=process, log_path=log_path)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(requests.RequestException):
                plugins = server.session.get(server.url + "/plugins", timeout=2)
                if plugins.ok:
                    if "dicom-web" not in plugins.json():
                        server.stop()
                        pytest.fail(f"Orthanc started without its DICOMweb plugin: "
                                    f"{INSTALL_HINT}\n{server.log_tail()}", pytrace=False)
                    return server
            time.sleep(0.3)
        last = server.log_tail()
        server.stop()
    pytest.fail(f"Orthanc did not come up in {START_TIMEOUT_S:g} s ({attempts} attempts); "
                f"log:\n{last}", pytrace=False)


@contextlib.contextmanager
def running_orthanc(folder: Path) -> Iterator[Orthanc]:
    """``with running_orthanc(tmp_path / "orthanc") as pacs:`` a private Orthanc, stopped at
    the end of the block."""
    server = start_orthanc(folder)
    try:
        yield server
    finally:
        server.stop()


def environment_without_proxy() -> dict[str, str]:
    """The environment for an ``rtcheck`` subprocess that talks to the loopback Orthanc: no
    HTTP proxy variable (requests would send 127.0.0.1 through a proxy unless NO_PROXY says
    otherwise)."""
    env = dict(os.environ)
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                "all_proxy"):
        env.pop(key, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env
