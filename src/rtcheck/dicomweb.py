"""Plans from a PACS: retrieve a study's RT objects over DICOMweb into a folder.

``rtcheck check``, ``rtcheck dvh`` and ``rtcheck batch`` accept, instead of a folder, a DICOMweb
study URL such as ``http://pacs:8042/dicom-web/studies/1.2.826.0.1.3680043.8.498.1``: the
part before ``/studies/`` is the DICOMweb service root (Orthanc's is ``/dicom-web``, dcm4chee's
``/dcm4chee-arc/aets/DCM4CHEE/rs``), the last segment the StudyInstanceUID. rtcheck then

1. asks the server (QIDO-RS, ``GET {root}/studies?StudyInstanceUID=...``) whether the study
   exists, so that "no such study" is told apart from "no DICOMweb service at that address";
2. lists its series (``GET {root}/studies/{uid}/series``) and keeps those whose Modality is an
   RT one (RTPLAN, RTDOSE, RTSTRUCT, RTRECORD): CT and MR series, often hundreds of slices, are
   never downloaded;
3. retrieves each RT series (WADO-RS, ``GET {root}/studies/{uid}/series/{uid}``, multipart,
   streamed) and writes every instance as ``{SOPInstanceUID}.dcm``, atomically, into the folder;
4. hands the folder to the usual loading, pairing and checks, as if it had been exported.

The HTTP work is done by dicomweb-client (the DICOMweb client of the Imaging Data Commons
project, on requests). Credentials may be given in the URL (``http://user:password@host/...``,
HTTP basic authentication; the password is never printed) or as a bearer token in the
environment variable :data:`TOKEN_ENV`.

Every failure is a :class:`DICOMwebError`: one line naming the URL (without its password) and
the problem: host unreachable, no answer, HTTP 404 or 401, not a study URL, no such study, a
study without RT objects, an answer that is not DICOM.

This module imports only the standard library at module level (``rtcheck --help`` imports the
command-line type that parses URLs); requests, dicomweb-client and pydicom are imported when a
study is retrieved.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from rtcheck.errors import RTCheckError
from rtcheck.files import atomic_path, looks_like_url

if TYPE_CHECKING:  # pragma: no cover - typing only
    import requests

#: Series modalities that are retrieved (the objects rtcheck reads; see rtcheck.dicom).
RT_MODALITIES = ("RTPLAN", "RTDOSE", "RTSTRUCT", "RTRECORD")
#: Environment variable holding a bearer token sent with every request (``Authorization:
#: Bearer TOKEN``), for a DICOMweb server behind an OAuth proxy.
TOKEN_ENV = "RTCHECK_DICOMWEB_TOKEN"
#: Seconds to wait for a connection, and between two reads of an answer (not for the whole
#: download: a large RTDOSE over a slow link may take longer, as long as bytes keep coming).
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0
#: Attempts for an answer the server marks as transient (429, 408, 503, 504).
MAX_ATTEMPTS = 3
#: QIDO-RS pages read at most when listing a study's series (a study has a handful).
MAX_SERIES_PAGES = 20

#: A DICOM UID: digits and dots, at most 64 characters (PS3.5 9.1). Checked before a UID is
#: put in a URL or a file name: a hostile server's "../../x" is never a path.
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
#: DICOM JSON tags (PS3.18 F.2) read from QIDO-RS answers.
_MODALITY = "00080060"
_SERIES_UID = "0020000E"
_INSTANCES = "00201209"  # NumberOfSeriesRelatedInstances
_STUDY_UID = "0020000D"
STUDY_URL_FORM = "http(s)://HOST[:PORT]/DICOMWEB_ROOT/studies/STUDY_INSTANCE_UID"


class DICOMwebError(RTCheckError):
    """A study that could not be retrieved: the message is one line, ``URL: the problem``.

    Parameters
    ----------
    url : str
        The study URL as it may be shown (password removed).
    problem : str
        What went wrong, in words a user can act on.
    """

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        super().__init__(f"{url}: {problem}")


@dataclass(frozen=True)
class StudyURL:
    """A parsed DICOMweb study URL.

    Attributes
    ----------
    text : str
        The URL as given (with its password, if any: kept out of ``repr``).
    root : str
        The DICOMweb service root (everything before ``/studies/``), without credentials.
    study_uid : str
        The StudyInstanceUID.
    shown : str
        The URL as messages show it: the password replaced by ``***``.
    username, password : str or None
        HTTP basic-authentication credentials from the URL's user part, if any.
    """

    text: str = field(repr=False)
    root: str
    study_uid: str
    shown: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass
class RetrievedStudy:
    """What :func:`retrieve_study` wrote.

    Attributes
    ----------
    url : StudyURL
        The study.
    folder : Path
        The folder holding the files (one per SOP instance).
    files : list of Path
        The files written, in the order they arrived.
    modalities : Counter
        Objects written, by series modality (``RTPLAN``: 1...).
    skipped : Counter
        Series not retrieved, by modality (``CT``: 1...), with their instance counts when the
        server gave them.
    """

    url: StudyURL
    folder: Path
    files: list[Path] = field(default_factory=list)
    modalities: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        """``3 RT objects (RTDOSE 1, RTPLAN 1, RTSTRUCT 1); not retrieved: CT 120``."""
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.modalities.items()))
        text = f"{len(self.files)} RT object{'s' * (len(self.files) != 1)} ({kinds})"
        if self.skipped:
            text += "; not retrieved: " + ", ".join(
                f"{k or 'no modality'} {n}" for k, n in sorted(self.skipped.items()))
        return text


def is_uid(text: str) -> bool:
    """Whether ``text`` is a well-formed DICOM UID (digits and dots, at most 64 characters)."""
    return len(text) <= 64 and bool(_UID.match(text))


def hide_study_uid(text: str) -> str:
    """``text`` with every ``/studies/UID`` written ``/studies/[study UID]`` (``--deidentify``:
    a StudyInstanceUID identifies the patient's study)."""
    return re.sub(r"/studies/[^/\s:'\"]+", "/studies/[study UID]", text)


def parse_study_url(text: str) -> StudyURL:
    """Split a DICOMweb study URL into its service root and StudyInstanceUID.

    Parameters
    ----------
    text : str
        ``http(s)://[user:password@]HOST[:PORT]/ROOT/studies/STUDY_UID``; a trailing slash is
        allowed; a query or fragment is not.

    Returns
    -------
    StudyURL

    Raises
    ------
    DICOMwebError
        Not http(s), no host, a bad port, a query string, no ``/studies/UID`` at the end (a
        series or instance URL included), or a UID that is not digits and dots.
    """
    parts = urlsplit(str(text).strip())
    shown = _shown(parts)

    def bad(problem: str) -> DICOMwebError:
        return DICOMwebError(shown, problem)

    if parts.scheme.lower() not in ("http", "https"):
        raise bad(f"not a DICOMweb study URL: the scheme must be http or https "
                  f"(expected {STUDY_URL_FORM})")
    if not parts.hostname:
        raise bad(f"not a DICOMweb study URL: no host (expected {STUDY_URL_FORM})")
    try:
        parts.port  # noqa: B018 - urllib checks the port on access
    except ValueError:
        raise bad("not a DICOMweb study URL: the port is not a number from 0 to 65535") from None
    if parts.query or parts.fragment:
        raise bad(f"not a DICOMweb study URL: it has a query or fragment "
                  f"(expected {STUDY_URL_FORM})")
    segments = parts.path.rstrip("/").split("/")
    if len(segments) < 3 or segments[-2] != "studies":
        hint = ""
        if "studies" in segments[:-2]:
            hint = " (a series or instance URL: give the study's, ending at /studies/UID)"
        raise bad(f"not a DICOMweb study URL{hint}: expected {STUDY_URL_FORM}")
    uid = unquote(segments[-1])
    if not is_uid(uid):
        raise bad(f"not a DICOMweb study URL: {uid!r} is not a StudyInstanceUID (digits and "
                  "dots, at most 64 characters)")
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    root = urlunsplit((parts.scheme.lower(), netloc, "/".join(segments[:-2]), "", ""))
    return StudyURL(text=str(text), root=root, study_uid=uid, shown=shown,
                    username=unquote(parts.username) if parts.username else None,
                    password=unquote(parts.password) if parts.password else None)


def _shown(parts: Any) -> str:
    """The URL with its password (if any) replaced by ``***``: messages never print it."""
    if parts.password is None:
        return urlunsplit(parts)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


# ---------------------------------------------------------------------------- retrieval


def retrieve_study(url: str | StudyURL, folder: str | os.PathLike[str], *,
                   session: requests.Session | None = None) -> RetrievedStudy:
    """Retrieve the RT objects of a study from a DICOMweb server into ``folder``.

    Parameters
    ----------
    url : str or StudyURL
        The study URL (see :func:`parse_study_url`).
    folder : path
        Where the files go (created if missing); each is ``{SOPInstanceUID}.dcm``, written
        atomically. A file of the same name is replaced: it is the same SOP instance, and the
        PACS's copy is the one asked for.
    session : requests.Session, optional
        An HTTP session (proxies, certificates); a new one otherwise.

    Returns
    -------
    RetrievedStudy

    Raises
    ------
    DICOMwebError
        The host cannot be reached or does not answer, an HTTP error, no such study, no RT
        series in it, an answer that is not DICOMweb JSON or not DICOM, a file that cannot
        be written. One line naming the URL.
    """
    study = url if isinstance(url, StudyURL) else parse_study_url(url)
    target = Path(folder)
    result = RetrievedStudy(url=study, folder=target)
    client = _client(study, session)  # first: it says so when dicomweb-client is missing
    with _translated_errors(study), warnings.catch_warnings():
        # dicomweb-client warns (a multi-line Python warning) when a server sends one object
        # without its multipart envelope; rtcheck reads it all the same: not the user's news
        warnings.filterwarnings("ignore", category=UserWarning, module="dicomweb_client")
        if not client.search_for_studies(search_filters={_STUDY_UID: study.study_uid}):
            raise DICOMwebError(study.shown, "no study with this StudyInstanceUID on the "
                                             "server")
        wanted: list[tuple[str, str]] = []
        for series in _all_series(client, study.study_uid):
            modality = str(_value(series, _MODALITY) or "").strip().upper()
            series_uid = str(_value(series, _SERIES_UID) or "").strip()
            if modality in RT_MODALITIES and is_uid(series_uid):
                wanted.append((modality, series_uid))
            else:
                result.skipped[modality] += int(_value(series, _INSTANCES) or 1)
        if not wanted:
            found = ", ".join(f"{k or 'no modality'} {n}" for k, n in
                              sorted(result.skipped.items())) or "no series at all"
            raise DICOMwebError(study.shown, "the study holds no RT objects (RTPLAN, RTDOSE, "
                                             f"RTSTRUCT, RTRECORD); it has: {found}")
        _make_folder(study, target)
        for modality, series_uid in wanted:
            for ds in client.iter_series(study_instance_uid=study.study_uid,
                                         series_instance_uid=series_uid):
                result.files.append(_write_instance(study, target, ds, len(result.files)))
                result.modalities[modality] += 1
    if not result.files:
        raise DICOMwebError(study.shown, "the server listed RT series but sent no object")
    return result


@contextlib.contextmanager
def study_folder(url: str | StudyURL, download_dir: str | os.PathLike[str] | None = None,
                 *, session: requests.Session | None = None) -> Iterator[RetrievedStudy]:
    """``with study_folder(URL) as study:`` the study's RT objects in a folder for the block.

    Without ``download_dir`` the folder is temporary and removed afterwards; with it, the
    files go to ``download_dir/STUDY_UID/`` and are kept (a second run replaces them).
    """
    study = url if isinstance(url, StudyURL) else parse_study_url(url)
    if download_dir is not None:
        yield retrieve_study(study, Path(download_dir) / study.study_uid, session=session)
        return
    with tempfile.TemporaryDirectory(prefix="rtcheck-dicomweb-") as tmp:
        yield retrieve_study(study, tmp, session=session)


def _client(study: StudyURL, session: requests.Session | None) -> Any:
    """A dicomweb-client for the study's service root, with rtcheck's timeouts and retries."""
    try:
        import requests
        from dicomweb_client.api import DICOMwebClient
    except ImportError:
        raise DICOMwebError(study.shown, "reading from a PACS needs dicomweb-client: "
                                         "pip install 'rtcheck[dicomweb]'") from None
    session = session if session is not None else requests.Session()
    if study.username is not None:
        session.auth = (study.username, study.password or "")
    headers = {}
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    # its log lines (a server's "Warning: results truncated" header) would reach standard
    # error through Python's last-resort handler: rtcheck pages the series itself
    logging.getLogger("dicomweb_client").setLevel(logging.ERROR)
    client = DICOMwebClient(study.root, session=session, headers=headers or None,
                            timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
    client.set_http_retry_params(retry=True, max_attempts=MAX_ATTEMPTS,
                                 wait_exponential_multiplier=500)
    return client


def _all_series(client: Any, study_uid: str) -> list[dict]:
    """Every series of the study, page by page (a server may cut long answers), bounded:
    paging stops at an empty page or one that brings no new series, since a server that
    ignores ``offset`` sends the same page forever (dicomweb-client's ``get_remaining``
    would loop)."""
    found: dict[str, dict] = {}
    unnamed: list[dict] = []
    offset = 0
    for _ in range(MAX_SERIES_PAGES):
        page = client.search_for_series(study_instance_uid=study_uid, offset=offset or None)
        fresh = False
        for item in page:
            uid = str(_value(item, _SERIES_UID) or "")
            if not uid:
                unnamed.append(item)
            elif uid not in found:
                found[uid] = item
                fresh = True
        if not page or not fresh:
            break
        offset += len(page)
    return [*found.values(), *unnamed]


def _value(item: Any, tag: str) -> Any:
    """The first value of ``tag`` in one DICOM JSON object (PS3.18 F.2), or None."""
    if not isinstance(item, dict):
        return None
    element = item.get(tag) or item.get(tag.lower())
    values = element.get("Value") if isinstance(element, dict) else None
    return values[0] if isinstance(values, list) and values else None


def _make_folder(study: StudyURL, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DICOMwebError(study.shown, f"cannot create the download folder {folder} "
                                         f"({exc.strerror or exc})") from exc


def _write_instance(study: StudyURL, folder: Path, ds: Any, index: int) -> Path:
    """Write one retrieved instance as ``{SOPInstanceUID}.dcm`` (temporary file, then
    rename: a killed download never leaves half a file under the final name)."""
    uid = str(getattr(ds, "SOPInstanceUID", "") or "")
    name = f"{uid}.dcm" if is_uid(uid) else f"object-{index + 1:05d}.dcm"
    path = folder / name
    try:
        with atomic_path(path, ".dcm") as tmp:
            ds.save_as(tmp, enforce_file_format=False)
    except OSError as exc:
        raise DICOMwebError(study.shown, f"cannot write {path} ({exc.strerror or exc})") from exc
    return path


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


@contextlib.contextmanager
def _translated_errors(study: StudyURL) -> Iterator[None]:
    """Turn what requests, dicomweb-client and pydicom raise into one :class:`DICOMwebError`
    line naming the URL."""
    import requests
    import retrying  # dicomweb-client's retry decorator (its RetryError ends the attempts)
    from pydicom.errors import InvalidDicomError

    server = study.root.split("/", 3)[2] if "//" in study.root else study.root
    try:
        yield
    except DICOMwebError:
        raise
    except requests.exceptions.HTTPError as exc:
        raise DICOMwebError(study.shown, _http_problem(study, exc.response)) from exc
    except requests.exceptions.Timeout as exc:
        raise DICOMwebError(study.shown, f"{server} did not answer within "
                                         f"{READ_TIMEOUT_S:g} s") from exc
    except requests.exceptions.SSLError as exc:
        raise DICOMwebError(study.shown, f"TLS failed with {server} "
                                         f"({_reason(exc, 'certificate not accepted')})") from exc
    except requests.exceptions.ConnectionError as exc:
        raise DICOMwebError(study.shown, f"cannot reach {server} "
                                         f"({_reason(exc, 'connection failed')})") from exc
    except requests.exceptions.JSONDecodeError as exc:  # also a RequestException: first
        raise DICOMwebError(study.shown, "the server's answer is not DICOMweb (is the root "
                                         "before /studies/ right?): not JSON") from exc
    except requests.exceptions.RequestException as exc:
        raise DICOMwebError(study.shown, f"the transfer failed ({_reason(exc, type(exc).__name__)})") from exc
    except retrying.RetryError as exc:
        raise DICOMwebError(study.shown, f"the server stayed busy after {MAX_ATTEMPTS} "
                                         "attempts (HTTP 429/503/504); try again later") from exc
    except (InvalidDicomError, EOFError, struct.error) as exc:
        raise DICOMwebError(study.shown, f"the server sent an object that is not readable "
                                         f"DICOM ({exc})") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # JSON that does not parse, a multipart answer without boundary, a Content-Type
        # missing: the service at that address does not speak DICOMweb (or not fully)
        raise DICOMwebError(study.shown, "the server's answer is not DICOMweb (is the root "
                                         f"before /studies/ right?): {_one_line(exc)}") from exc


def _http_problem(study: StudyURL, response: requests.Response | None) -> str:
    """One sentence for an HTTP error answer, by status."""
    if response is None:
        return "HTTP error without an answer"
    code = response.status_code
    asked = response.request.url if response.request is not None else ""
    if code == 404:
        if f"/studies/{study.study_uid}" in str(asked):
            return "not found (HTTP 404): no such study on the server"
        return (f"not found (HTTP 404): no DICOMweb service at {study.root} (the part of the "
                "URL before /studies/)")
    if code in (401, 403):
        how = ("the credentials in the URL were refused" if study.username is not None
               else f"give credentials as http://USER:PASSWORD@HOST/... or a token in {TOKEN_ENV}")
        return f"access refused (HTTP {code}): {how}"
    return f"HTTP {code} {response.reason or ''}".rstrip()


def _reason(exc: BaseException, default: str) -> str:
    """The operating system's words inside a requests exception (``Connection refused``,
    ``Name or service not known``), else ``default``."""
    found = _ERRNO.findall(str(exc))
    return found[-1].strip() if found else default


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."

