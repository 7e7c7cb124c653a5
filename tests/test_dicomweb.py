"""Plans from a PACS, without a PACS: the URL grammar and every way a retrieval can fail.

A DICOMweb study URL is accepted as PATH by ``rtcheck check``, ``dvh`` and ``batch``
(:mod:`rtcheck.dicomweb`). These tests need no Orthanc (``test_orthanc.py`` has the real one):

- the URL is parsed into the DICOMweb root and the StudyInstanceUID; anything else (another
  scheme, a series URL, a UID that is not digits and dots, a query) is one line, exit 2,
  naming the URL, before any network traffic; a password in the URL is never printed;
- the failures a real server gives are one line naming the URL, exit 2, no traceback:
  connection refused, a web server that is not DICOMweb, HTTP 401, a server that stays busy
  (503), a study without RT objects, an object that is not DICOM;
- a hostile server's SOPInstanceUID (``../../x``) never becomes a path outside the folder.

The servers here are real HTTP servers on loopback (the standard library's), answering
what a misconfigured or hostile server would: the point is rtcheck's handling of those
answers, which no well-behaved PACS gives.
"""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from support.orthanc import free_port

from rtcheck.cli import main
from rtcheck.dicomweb import (
    DICOMwebError,
    hide_study_uid,
    looks_like_url,
    parse_study_url,
    retrieve_study,
)

SAMPLE = Path(__file__).resolve().parents[1] / "sample_plans" / "spine-sbrt-27Gy3"
STUDY = "1.2.826.0.1.3680043.8.498.1"
SERIES = "1.2.826.0.1.3680043.8.498.2"
BOUNDARY = "rtcheck-test-boundary"


# ------------------------------------------------------------------------ URL grammar


@pytest.mark.parametrize("url, root", [
    (f"http://pacs:8042/dicom-web/studies/{STUDY}", "http://pacs:8042/dicom-web"),
    (f"http://pacs:8042/dicom-web/studies/{STUDY}/", "http://pacs:8042/dicom-web"),
    (f"HTTPS://pacs.example.org/dcm4chee-arc/aets/DCM4CHEE/rs/studies/{STUDY}",
     "https://pacs.example.org/dcm4chee-arc/aets/DCM4CHEE/rs"),
    (f"http://[::1]:8042/dicom-web/studies/{STUDY}", "http://[::1]:8042/dicom-web"),
    (f"http://10.0.0.5/studies/{STUDY}", "http://10.0.0.5"),
])
def test_study_url_is_split_into_root_and_uid(url, root):
    parsed = parse_study_url(url)
    assert looks_like_url(url)
    assert parsed.root == root and parsed.study_uid == STUDY
    assert parsed.username is None


@pytest.mark.parametrize("url, problem", [
    (f"ftp://pacs/dicom-web/studies/{STUDY}", "the scheme must be http or https"),
    (f"http:///dicom-web/studies/{STUDY}", "no host"),
    (f"http://pacs:99999/dicom-web/studies/{STUDY}", "port"),
    (f"http://pacs/dicom-web/studies/{STUDY}?includefield=all", "query"),
    (f"http://pacs/dicom-web/studies/{STUDY}/series/{SERIES}", "a series or instance URL"),
    ("http://pacs/dicom-web/series/1.2.3", "expected http(s)://HOST[:PORT]/DICOMWEB_ROOT"),
    ("http://pacs/dicom-web/studies/1.2.abc", "is not a StudyInstanceUID"),
    ("http://pacs/dicom-web/studies/" + "1." * 40 + "1", "is not a StudyInstanceUID"),
    ("http://pacs/dicom-web/studies/..%2F..%2Fetc", "is not a StudyInstanceUID"),
])
def test_not_a_study_url_is_one_message_naming_it(url, problem):
    with pytest.raises(DICOMwebError) as err:
        parse_study_url(url)
    assert problem in str(err.value)
    assert str(err.value).startswith(url.split("?")[0][:20])


def test_password_in_the_url_is_used_never_shown():
    parsed = parse_study_url(f"http://physicist:s3cret@pacs:8042/dicom-web/studies/{STUDY}")
    assert (parsed.username, parsed.password) == ("physicist", "s3cret")
    assert "s3cret" not in parsed.shown and "s3cret" not in repr(parsed)
    assert "s3cret" not in parsed.root
    assert parsed.shown == f"http://physicist:***@pacs:8042/dicom-web/studies/{STUDY}"


def test_deidentified_messages_hide_the_study_uid():
    text = f"http://pacs/dicom-web/studies/{STUDY}: no study with this StudyInstanceUID"
    assert hide_study_uid(text) == ("http://pacs/dicom-web/studies/[study UID]: no study with "
                                    "this StudyInstanceUID")


def test_a_path_is_not_a_url(tmp_path):
    assert not looks_like_url(str(tmp_path))
    assert not looks_like_url("sample_plans/spine-sbrt-27Gy3")
    assert not looks_like_url("C:/plans")


# ---------------------------------------------------------- the commands, failing cleanly


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit 2, one ``rtcheck: error:`` line holding every fragment, no traceback."""
    assert result.exit_code == 2, (result.output, result.exception)
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("rtcheck: error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Usage:" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("command", ["check", "dvh", "batch"])
def test_every_command_takes_a_url_and_names_it_when_it_is_malformed(command):
    url = f"http://pacs/dicom-web/studies/{STUDY}/series/{SERIES}"
    assert_one_line_error(run_cli(command, url), url, "not a DICOMweb study URL")


@pytest.mark.parametrize("command", ["check", "dvh", "batch"])
def test_unreachable_host_is_one_line_naming_the_url(command):
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}/dicom-web/studies/{STUDY}"
    assert_one_line_error(run_cli(command, url), url, f"cannot reach 127.0.0.1:{port}",
                          "Connection refused")


def test_deidentify_hides_the_study_uid_in_the_error():
    port = free_port()
    url = f"http://127.0.0.1:{port}/dicom-web/studies/{STUDY}"
    line = assert_one_line_error(run_cli("check", url, "--deidentify"),
                                 "/studies/[study UID]")
    assert STUDY not in line


def test_missing_client_library_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dicomweb_client.api", None)  # import fails
    url = f"http://127.0.0.1:{free_port()}/dicom-web/studies/{STUDY}"
    assert_one_line_error(run_cli("check", url), url, "pip install 'rtcheck[dicomweb]'")


# ------------------------------------------------------ servers that answer badly


Answer = tuple[int, dict[str, str], bytes]


@contextmanager
def http_server(routes: dict[str, Answer]) -> Iterator[tuple[str, list[dict]]]:
    """A loopback HTTP server answering ``routes`` (by path, query ignored; 404 otherwise).
    Yields its base URL and the list of requests it saw (path and headers)."""
    seen: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            path = self.path.split("?", 1)[0]
            seen.append({"path": path, "headers": dict(self.headers)})
            status, headers, body = routes.get(path, (404, {}, b"not found"))
            self.send_response(status)
            for key, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # quiet test output
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def qido(*items: dict) -> Answer:
    return 200, {"Content-Type": "application/dicom+json"}, json.dumps(list(items)).encode()


def series_item(modality: str, series_uid: str = SERIES, count: int = 1) -> dict:
    return {"0020000E": {"vr": "UI", "Value": [series_uid]},
            "00080060": {"vr": "CS", "Value": [modality]},
            "00201209": {"vr": "IS", "Value": [count]}}


def multipart(*parts: bytes) -> Answer:
    body = b"".join(b"--" + BOUNDARY.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n"
                    + p + b"\r\n" for p in parts) + b"--" + BOUNDARY.encode() + b"--\r\n"
    return 200, {"Content-Type": f'multipart/related; type="application/dicom"; '
                                 f'boundary={BOUNDARY}'}, body


def study_routes(series: list[dict], wado: dict[str, Answer] | None = None) -> dict[str, Answer]:
    """A DICOMweb root at /dw holding study STUDY with ``series``."""
    routes = {"/dw/studies": qido({"0020000D": {"vr": "UI", "Value": [STUDY]}}),
              f"/dw/studies/{STUDY}/series": qido(*series)}
    routes.update(wado or {})
    return routes


def dicom_bytes(path: Path, **changes: str) -> bytes:
    ds = pydicom.dcmread(path)
    for key, value in changes.items():
        setattr(ds, key, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=False)
    return out.getvalue()


def test_a_web_server_that_is_not_dicomweb():
    page = (200, {"Content-Type": "text/html"}, b"<html><body>Welcome</body></html>")
    with http_server({"/dw/studies": page}) as (base, _):
        url = f"{base}/dw/studies/{STUDY}"
        assert_one_line_error(run_cli("check", url), url, "the server's answer is not DICOMweb")


def test_no_dicomweb_service_at_that_root_is_a_404_naming_the_root():
    with http_server({}) as (base, _):
        url = f"{base}/wrong/studies/{STUDY}"
        assert_one_line_error(run_cli("dvh", url), url, "HTTP 404",
                              f"no DICOMweb service at {base}/wrong")


def test_access_refused_says_how_to_give_credentials():
    refused = (401, {"WWW-Authenticate": 'Basic realm="pacs"'}, b"")
    with http_server({"/dw/studies": refused}) as (base, seen):
        url = f"{base}/dw/studies/{STUDY}"
        assert_one_line_error(run_cli("check", url), url, "access refused (HTTP 401)",
                              "USER:PASSWORD@")
        secret_url = url.replace("http://", "http://physicist:s3cret@")
        result = run_cli("check", secret_url)
        line = assert_one_line_error(result, "the credentials in the URL were refused",
                                     "physicist:***@")
        assert "s3cret" not in result.output and "s3cret" not in line
        # the credentials were sent (HTTP basic), not dropped
        assert seen[-1]["headers"].get("Authorization", "").startswith("Basic ")


def test_a_server_that_stays_busy():
    busy = (503, {"Retry-After": "1"}, b"busy")
    with http_server({"/dw/studies": busy}) as (base, seen):
        url = f"{base}/dw/studies/{STUDY}"
        assert_one_line_error(run_cli("check", url), url, "stayed busy", "try again later")
        assert len(seen) == 3  # MAX_ATTEMPTS, then a clear message


def test_a_study_without_rt_objects_names_what_it_holds():
    routes = study_routes([series_item("CT", count=120), series_item("MR", "1.2.3", 40)])
    with http_server(routes) as (base, seen):
        url = f"{base}/dw/studies/{STUDY}"
        assert_one_line_error(run_cli("check", url), url, "holds no RT objects",
                              "CT 120, MR 40")
        # the CT and MR series were never asked for
        assert not [r for r in seen if "/series/" in r["path"]]


def test_an_unknown_study_is_told_apart_from_a_missing_service():
    with http_server({"/dw/studies": qido()}) as (base, _):
        url = f"{base}/dw/studies/{STUDY}"
        assert_one_line_error(run_cli("check", url), url,
                              "no study with this StudyInstanceUID on the server")


def test_an_object_that_is_not_dicom():
    routes = study_routes([series_item("RTPLAN")],
                          {f"/dw/studies/{STUDY}/series/{SERIES}": multipart(b"not DICOM")})
    with http_server(routes) as (base, _):
        url = f"{base}/dw/studies/{STUDY}"
        assert_one_line_error(run_cli("check", url), url, "not readable DICOM")


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # the hostile UID, on purpose
def test_a_hostile_sop_instance_uid_never_becomes_a_path(tmp_path):
    body = dicom_bytes(SAMPLE / "RP.dcm", SOPInstanceUID="../../escaped")
    routes = study_routes([series_item("RTPLAN")],
                          {f"/dw/studies/{STUDY}/series/{SERIES}": multipart(body)})
    target = tmp_path / "a" / "b"
    with http_server(routes) as (base, _):
        study = retrieve_study(f"{base}/dw/studies/{STUDY}", target)
    assert [p.name for p in study.files] == ["object-00001.dcm"]
    assert study.files[0].parent == target
    assert not list(tmp_path.rglob("escaped*"))
    assert study.modalities == {"RTPLAN": 1}
    assert not list(target.glob(".*.part"))  # no temporary file left


def test_only_rt_series_are_retrieved_and_written_by_sop_uid(tmp_path):
    rt_series = "1.2.826.0.1.3680043.8.498.3"
    files = [SAMPLE / n for n in ("RP.dcm", "RS.dcm", "RD.dcm")]
    routes = study_routes(
        [series_item("CT", count=80), series_item("RTPLAN", rt_series, 3)],
        {f"/dw/studies/{STUDY}/series/{rt_series}":
            multipart(*(f.read_bytes() for f in files))})
    with http_server(routes) as (base, seen):
        study = retrieve_study(f"{base}/dw/studies/{STUDY}", tmp_path)
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files]
    assert [p.name for p in study.files] == [f"{u}.dcm" for u in uids]
    assert study.skipped == {"CT": 80}
    assert "not retrieved: CT 80" in study.summary()
    assert [r["path"] for r in seen if "/series/" in r["path"] and r["path"].count("/") > 4] \
        == [f"/dw/studies/{STUDY}/series/{rt_series}"]
    # the written objects are the sent ones, element for element
    for sent, got in zip(files, study.files):
        assert pydicom.dcmread(sent) == pydicom.dcmread(got)


def test_an_object_sent_without_multipart_envelope_is_read_quietly(tmp_path, recwarn):
    """Some servers answer a one-object series as bare application/dicom (not compliant):
    the object is kept, and dicomweb-client's multi-line warning is not shown."""
    body = (SAMPLE / "RP.dcm").read_bytes()
    routes = study_routes([series_item("RTPLAN")], {
        f"/dw/studies/{STUDY}/series/{SERIES}": (200, {"Content-Type": "application/dicom"},
                                                 body)})
    with http_server(routes) as (base, _):
        study = retrieve_study(f"{base}/dw/studies/{STUDY}", tmp_path)
    assert study.modalities == {"RTPLAN": 1} and len(study.files) == 1
    assert not [w for w in recwarn if "dicomweb" in str(w.filename)], [str(w.message)
                                                                       for w in recwarn]
