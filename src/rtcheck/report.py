"""The HTML report of a plan check, the batch index, de-identification of any output, and
the safety of texts from the inputs on a terminal and in a spreadsheet.

One report is one self-contained HTML file, meant to be read on screen, printed (also in
greyscale) and filed as a QA record:

* the plan's identity and the overall verdict at the top (PASS, REVIEW, NOT_EVALUATED, FAIL:
  :mod:`rtcheck.checker.findings`), in colour *and* in words and symbols with distinct borders (so
  it reads in greyscale print);
* the notes with their codes, the findings, failures first (FAIL, NOT_EVALUATED, WARN,
  PASS), each with the structure that decided, what it stood in for and every structure the
  rule read;
* the cumulative DVH of the structures the rules used, each limit drawn at its point, and
  for a re-irradiation the panel of each course's EQD2 or BED, drawn only from the
  re-irradiation findings that were evaluated, with their own limits (see
  :mod:`rtcheck.plotting`);
* a QA-record footer: protocol ids, versions and file SHA-256, rtcheck version, input files
  and their SHA-256, time of the check.

Nothing in the page refers outside it: no network, no fonts, no external CSS, scripts or
images. Plots are inline SVG (or PNG as a ``data:`` URI); styles and the few lines of script
of the batch index are inline. Every text taken from the inputs is escaped.

De-identification (``--deidentify``) follows one rule, for every output of ``check``, ``dvh``
and ``batch`` (standard output, files, standard error, error messages; table, JSON, CSV,
HTML, plots; batch JSONL/CSV, progress lines, summary and index): none holds a patient name
(any DICOM person-name form), a patient ID (also OtherPatientIDs), a birth date (DICOM or ISO
form), an accession number, a study ID, a physician's or operator's name, any DICOM UID, or
a path component that holds one of them.

* Input files are named by their kind (``RTPLAN file``, ``RTDOSE file 2``, ``prior 1 RTPLAN
  file``; the QA record adds their SHA-256); an input folder is ``input folder``; any other
  path under an input folder is a stable pseudonym ``file-<12 hex>`` (:func:`pseudonym`); a
  batch record's key is ``plan-<12 hex>`` (:func:`deidentified_key`).
* Identifying JSON keys (:data:`IDENTIFYING_KEYS`, every ``...uid`` key) are dropped; in any
  other text each identifier becomes ``[removed]`` (labels and ROI names included); a path
  component outside the inputs that holds one becomes ``[removed]`` as a whole.
* The identifiers are read from every input file (:func:`identity_of_file`: the attributes of
  :data:`IDENTITY_ATTRIBUTES`, every UID), and from every file under the inputs for a message
  that may name any of them ("several plans"); any text shaped like a UID goes too.

:class:`Deidentifier` applies the rule; :func:`check_deidentifier` builds it for ``check``
and ``dvh``, :func:`scrub_record`, :func:`batch_deidentifier` and
:func:`deidentified_progress_label` for ``batch``. Plan dates, doses, structure names and file
hashes stay: they are the QA record.

Every table rtcheck prints shows control characters of the inputs as escapes
(:func:`terminal_safe`), and every CSV cell is neutralised against spreadsheet formulas
(:func:`csv_safe`).

matplotlib is imported only when a plot is drawn (inside :mod:`rtcheck.plotting`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import html
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from rtcheck.dvh import DVH

#: Finding statuses in report order: what needs attention first.
STATUS_ORDER = ("FAIL", "NOT_EVALUATED", "WARN", "PASS")
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
FINDING_KEYS = ("rule", "structure", "role", "metric", "value", "limit", "unit", "alpha_beta",
                "model", "status", "reason", "source")
#: Finding keys shown in their own place rather than in the details under the reason.
SHOWN_ELSEWHERE = ("protocol", "kind", "operator", "cites", "code", "missing", "stands_for",
                   "evaluated")
#: Headings of the rules not applied, by their skip code.
SKIP_HEADINGS = {
    "fact_missing": "Waiting for a fact DICOM does not hold (give it to apply them)",
    "not_requested": "Not requested (another indication or site was given)",
    "out_of_scope": "Out of scope for this plan",
    "not_applicable": "Not applicable to this plan",
}
OPERATORS = {"<": "&lt;", "<=": "\u2264", ">": "&gt;", ">=": "\u2265", "==": "="}
REMOVED = "[removed]"
DASH = "\u2014"

# ======================================================================================
# De-identification
# ======================================================================================
#
# The rule (README, --deidentify): with de-identification, no output of rtcheck (standard
# output, files, standard error, HTML, JSON, CSV, batch JSONL/CSV/index, error messages)
# holds a patient name, patient ID, birth date or DICOM UID, nor a path component that holds
# one. Input files are named by their kind ("RTPLAN file", "RTDOSE file 2", "prior 1 RTPLAN
# file"), any other path under an input folder by a pseudonym ("file-<12 hex>"), an input
# folder by "input folder"; identifying JSON keys are dropped; every other text has each
# identifier replaced by "[removed]". :class:`Deidentifier` applies it.

#: Keys (compared lower-case, without separators) whose values identify a patient or name a
#: person: dropped by :func:`deidentify`. Structure, plan and protocol ``name`` keys stay.
IDENTIFYING_KEYS = frozenset({
    "patient", "patientname", "patientsname", "patientid", "patientsid", "otherpatientids",
    "otherpatientnames", "patientbirthdate", "patientsbirthdate", "birthdate", "dateofbirth",
    "dob", "patientbirthtime", "patientsbirthtime", "patientsex", "patientssex", "patientage",
    "patientsage", "patientaddress", "patientsaddress", "patienttelephonenumbers",
    "patientmothersbirthname", "medicalrecordlocator", "accessionnumber", "studyid",
    "referringphysicianname", "referringphysiciansname", "performingphysicianname",
    "physiciansofrecord", "operatorsname", "operatorname", "reviewername", "issuerofpatientid",
})
#: DICOM attributes read from the input files whose values identify the patient (or a person,
#: or the study), searched for in every output text; person names in all their forms.
IDENTITY_ATTRIBUTES = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthDate",
    "PatientBirthName", "PatientMotherBirthName", "IssuerOfPatientID", "AccessionNumber",
    "StudyID", "MedicalRecordLocator", "PatientAddress", "PatientTelephoneNumbers",
    "ReferringPhysicianName", "PerformingPhysicianName", "PhysiciansOfRecord",
    "OperatorsName", "ReviewerName",
)
#: Identity attributes nested in sequences (OtherPatientIDsSequence items...).
IDENTITY_SEQUENCES = ("OtherPatientIDsSequence", "IssuerOfPatientIDQualifiersSequence")
#: Identifying values shorter than this are dropped from their keys but not searched for
#: inside other texts (a patient ID "12" would otherwise erase every 12 of the report).
MIN_TERM_LENGTH = 3
#: Terms with a letter at least this long are found anywhere (``PTV_PID123X`` holds
#: ``PID123``); shorter ones only as whole tokens (``DOE`` but not ``DOEBLE``).
SUBSTRING_LENGTH = 5
#: What replaces an identifier inside a text.
REMOVED = "[removed]"
#: UIDs of the DICOM standard itself (SOP classes, transfer syntaxes): not identifying.
STANDARD_UID_ROOT = "1.2.840.10008."
#: Environment variable holding a secret salt for the pseudonyms (see :func:`pseudonym`).
SALT_VARIABLE = "RTCHECK_DEIDENTIFY_SALT"
#: A DICOM UID in a text (also inside a file name such as ``RD.1.2.840....dcm``): digits and
#: dots, 3+ components, starting 0-2; removed when it has 10+ characters.
UID_PATTERN = re.compile(r"(?<!\d)(?<!\d\.)[012](?:\.\d+){2,}")
_UID_MIN = 10
#: A digits-and-dots run (a UID, also inside a file name such as ``RD.1.2.840....dcm``).
_UID_RUN = re.compile(r"\d+(?:\.\d+){2,}")
#: Characters that end a path in a message.
_PATH_STOP = r"\s'\"()<>|;,\[\]{}*?"
#: A path in a message: it begins where a word may (not inside one: no quadratic search),
#: holds at least one separator, and ends at a space, a quote, a bracket or a colon.
_PATH_TOKEN = re.compile(
    rf"(?<![^{_PATH_STOP}:=])(?:[A-Za-z]:)?(?:[\\/]?[^{_PATH_STOP}\\/:]+)?"
    rf"(?:[\\/][^{_PATH_STOP}\\/:]*)+")
#: Characters a terminal may act on, or that hide or reorder text: C0 and C1 controls, DEL,
#: zero-width and bidirectional formatting characters, and the lone surrogates that stand
#: for undecodable bytes (a byte 0x9b is the C1 control CSI).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff"
                      "\ud800-\udfff]")


def _norm_key(key: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(key).lower())


def _is_identifying(key: Any) -> bool:
    k = _norm_key(key)
    # DICOM UIDs (plan, study, SOP instance, frame of reference) link back to the patient.
    return k in IDENTIFYING_KEYS or k.endswith("uid") or k.endswith("uids")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            yield from _strings(v)


def identifying_terms(doc: Any) -> set[str]:
    """Every identifying text of ``doc``: the values of identifying keys, and the parts of
    DICOM person names (``DOE^JOHN`` gives ``DOE``, ``JOHN``, ``DOE JOHN``, ``JOHN DOE``...)."""
    terms: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                if _is_identifying(k):
                    for s in _strings(v):
                        terms.update(identity_forms(s))
                else:
                    walk(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v)

    walk(doc)
    return {t for t in terms if len(t) >= MIN_TERM_LENGTH}


def identity_forms(text: str) -> set[str]:
    """The forms an identifying value may take in a text.

    A DICOM person name ``DOE^JOHN^^DR`` (also with ``=`` ideographic groups) gives the
    whole value, each component, and the components joined by a space, a comma, an
    underscore, in both orders; a DICOM date ``19470312`` also gives ``1947-03-12``,
    ``1947/03/12`` and ``12/03/1947``; an ISO date gives the DICOM form.
    """
    text = str(text).strip()
    if not text:
        return set()
    out = {text}
    if re.fullmatch(r"\d{8}", text):  # DICOM DA
        y, m, d = text[:4], text[4:6], text[6:]
        out |= {f"{y}-{m}-{d}", f"{y}/{m}/{d}", f"{d}/{m}/{y}", f"{d}.{m}.{y}"}
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        y, m, d = text.split("-")
        out |= {y + m + d, f"{y}/{m}/{d}", f"{d}/{m}/{y}", f"{d}.{m}.{y}"}
    if "\\" in text:  # a multi-valued attribute (OtherPatientIDs)
        for part in text.split("\\"):
            out |= identity_forms(part)
        return out
    parts = [p.strip() for p in re.split(r"[\^=]", text) if p.strip()]
    if len(parts) > 1:
        first, rest = parts[0], parts[1:]
        for sep in (" ", ", ", ",", "_", "^", "-", "."):
            for order in (parts, [*rest, first], parts[::-1], parts[:2], parts[1::-1]):
                out.add(sep.join(order))
        out |= set(parts)
    return {t for t in out if t}


def _person_name_forms(text: str) -> set[str]:  # kept for callers of earlier versions
    return identity_forms(text)


def _term_regex(term: str) -> str:
    """How one term is found in a text (case-insensitive)."""
    e = re.escape(term)
    if re.fullmatch(r"[\d.]+", term):  # an ID of digits, a UID, a DICOM date
        # not inside a longer number ("1001" is not in "10012" nor in "0.1001")
        return rf"(?<![\d])(?<!\d\.){e}(?![\d])(?!\.\d)"
    if len(term) >= SUBSTRING_LENGTH and re.search(r"[^\W\d_]", term):
        return e  # anywhere: "PTV_PID123X" holds "PID123"
    return rf"(?<![^\W_]){e}(?![^\W_])"  # a whole token: DOE, not DOEBLE


@functools.lru_cache(maxsize=256)
def _terms_regex(terms: tuple[str, ...]) -> re.Pattern:
    """One pattern finding any of ``terms`` (longest first), case-insensitive."""
    return re.compile("|".join(_term_regex(t) for t in terms), re.IGNORECASE)


@functools.lru_cache(maxsize=256)
def _strings_regex(strings: tuple[str, ...], kind: str) -> re.Pattern:
    """Input paths (``kind`` "file") or input folders and what follows them ("root") as
    they appear in a message: not inside a longer name."""
    alternatives = "|".join(map(re.escape, strings))
    if kind == "file":
        return re.compile(rf"(?<![^{_PATH_STOP}:=])(?:{alternatives})(?=$|[{_PATH_STOP}:])")
    return re.compile(rf"(?<![^{_PATH_STOP}:=])(?P<root>{alternatives})"
                      rf"(?P<rest>[\\/][^{_PATH_STOP}:]*)?(?=$|[{_PATH_STOP}:])")


def scrubber(terms: Iterable[str]):
    """A function replacing each term in a text by ``[removed]`` (case-insensitive; see
    :class:`Deidentifier` for the whole rule, paths and UIDs included)."""
    return Deidentifier(terms=terms).text


def pseudonym(value: str, kind: str = "file", salt: str | None = None) -> str:
    """A stable short name for ``value`` (a path, a batch key): ``kind-<12 hex digits>``.

    The digits are the SHA-256 of the salt and the value: the same value gives the same
    pseudonym in every output and every run (a resumed batch finds its plans again). The
    salt is ``salt``, else the environment variable ``RTCHECK_DEIDENTIFY_SALT``, else empty:
    without a secret salt, someone who guesses the exact value (a path) can recompute its
    pseudonym; with one, nobody without the salt can.
    """
    if salt is None:
        salt = os.environ.get(SALT_VARIABLE, "")
    digest = hashlib.sha256(f"{salt}\0{value}".encode("utf-8", "surrogateescape")).hexdigest()
    return f"{kind}-{digest[:12]}"


def deidentified_key(key: str, salt: str | None = None) -> str:
    """The key of a de-identified batch record: ``plan-<hash>`` of the plan's key (its
    SOPInstanceUIDs), ``file-<hash>`` of a bad or skipped file's key (its path). Stable
    across runs: ``--resume`` compares these. A key that already is one is returned as is."""
    if is_deidentified_key(key):
        return key
    kind = "plan" if not key.startswith(("file:", "skipped:")) else key.split(":", 1)[0]
    return pseudonym(key, kind, salt)


def is_deidentified_key(key: Any) -> bool:
    """Whether ``key`` is a de-identified batch key (:func:`deidentified_key`)."""
    return isinstance(key, str) and re.fullmatch(r"(?:plan|file|skipped)-[0-9a-f]{12}",
                                                 key) is not None


def terminal_safe(text: str) -> str:
    """``text`` with every control character shown as a visible escape (``\\x1b``,
    ``\\n``, ``\\u202e``): C0 and C1 controls, DEL, and the invisible format characters that
    reorder or hide text (bidirectional overrides, zero-width spaces). What a terminal shows
    is then exactly the characters of the name: no escape sequence, no forged line."""
    def visible(m: re.Match) -> str:
        c = m.group(0)
        named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c)
        if named:
            return named
        if 0xDC80 <= ord(c) <= 0xDCFF:  # an undecodable byte (surrogateescape)
            return f"\\x{ord(c) - 0xDC00:02x}"
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"

    return _CONTROL.sub(visible, text)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def csv_safe(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula (OWASP "CSV injection").

    A text beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
    single quote in front (``'=HYPERLINK(...)``); numbers, and texts that are plain numbers
    (``-1.5``), are kept. Control characters other than tab and line breaks are shown as
    escapes (:func:`terminal_safe`): a CSV printed on a terminal is safe too. Use on every
    cell of every CSV rtcheck writes."""
    if not isinstance(value, str):
        return value
    value = _CONTROL.sub(lambda m: m.group(0) if m.group(0) in "\t\r\n"
                         else terminal_safe(m.group(0)), value)
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_row(cells: Iterable[Any]) -> list[Any]:
    """:func:`csv_safe` of each cell (None as an empty cell)."""
    return ["" if c is None else csv_safe(c) for c in cells]


def _files_of(data: Any) -> list[tuple[str, str]]:
    """(path, kind) of each file a loaded plan (:class:`rtcheck.model.PlanData`) was read
    from, numbered within a kind when there are several."""
    files: list[tuple[str, str]] = []
    plan = getattr(data, "plan", None)
    if plan is not None and getattr(plan, "path", None):
        files.append((plan.path, "RTPLAN"))
    ss = getattr(data, "structure_set", None)
    if ss is not None and getattr(ss, "path", None):
        files.append((ss.path, "RTSTRUCT"))
    dose = getattr(data, "dose", None)
    for p in getattr(dose, "paths", ()) or ():
        files.append((p, "RTDOSE"))
    for p in getattr(data, "treatment_records", ()) or ():
        files.append((str(p), "RTRECORD"))
    return files


def _path_forms(path: str) -> set[str]:
    """A path as given, absolute, resolved and normalised (a message may use any of them)."""
    p = str(path)
    out = {p, os.path.normpath(p)}
    try:
        out |= {os.path.abspath(p), os.path.realpath(p)}
    except (OSError, ValueError):
        pass
    return {f for f in out if f and f not in (".", os.sep)}


def _walk_values(ds: Any, out: set[str], uids: set[str], all_uids: bool) -> None:
    """Identity values and UIDs of a dataset, converting only the elements that may hold
    them (a structure set's contour data stays raw: fast)."""
    from pydicom.datadict import dictionary_VR, keyword_for_tag

    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        vr = getattr(raw, "VR", None)
        if vr in (None, "UN"):
            try:
                vr = dictionary_VR(tag)
            except KeyError:  # a private element: not identifying here
                continue
        keyword = keyword_for_tag(tag)
        if vr == "SQ":
            if all_uids or keyword in IDENTITY_SEQUENCES:
                for item in ds[tag].value or []:
                    _walk_values(item, out, uids, all_uids)
            continue
        if keyword not in IDENTITY_ATTRIBUTES and vr != "UI":
            continue
        elem = ds[tag]
        if elem.value in (None, ""):
            continue
        values = list(elem.value) if elem.VM > 1 else [elem.value]
        for v in values:
            v = str(v).strip().rstrip("\0")
            if not v:
                continue
            if keyword in IDENTITY_ATTRIBUTES:
                out.add(v)
            elif not v.startswith(STANDARD_UID_ROOT):
                uids.add(v)


def identity_of_file(path: str | os.PathLike, *, all_uids: bool = True) -> set[str]:
    """The identifying values of one DICOM file: patient names and IDs, other IDs, birth
    date, accession number, study ID, physician/operator names (:data:`IDENTITY_ATTRIBUTES`)
    and UIDs (every UID of the file with ``all_uids``, else those of the top level), in the
    forms they may take in a text (:func:`identity_forms`). Nothing for a file that cannot be
    read as DICOM (or is not a regular file: never opened)."""
    import stat as _stat
    import warnings

    values: set[str] = set()
    uids: set[str] = set()
    # pydicom's warnings about a bad value quote it: never shown (the loader already said
    # what is wrong with the file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if not _stat.S_ISREG(os.stat(path).st_mode):
                return set()
            import pydicom

            ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
        except Exception:  # an unreadable file has nothing to tell; the loader says why
            return set()
        try:
            _walk_values(ds, values, uids, all_uids)
            meta = getattr(ds, "file_meta", None)
            if meta is not None:
                _walk_values(meta, values, uids, False)
        except Exception:  # a damaged element: keep what was read
            pass
    terms = set(uids)
    for v in values:
        terms |= identity_forms(v)
    return {t for t in terms if len(t) >= MIN_TERM_LENGTH}


class Deidentifier:
    """The de-identification rule applied to any output: texts, JSON-like documents,
    result objects, paths.

    Parameters
    ----------
    terms : iterable of str
        Identifying values (names, IDs, birth dates, UIDs), in every form they may take
        (:func:`identity_forms`); those shorter than :data:`MIN_TERM_LENGTH` are ignored
        in texts.
    files : mapping of path to name
        Input files and the name they get in the output (``"RTPLAN file"``).
    roots : iterable of path
        Input folders: every path under one of them that is not a named file becomes a
        pseudonym (``file-<hash>``); a root itself becomes ``input folder`` (numbered when
        several).
    salt : str, optional
        For :func:`pseudonym`.

    A text (:meth:`text`) is de-identified in this order: the input files' paths become
    their names; any other path under an input folder becomes its pseudonym; any other
    path component that holds an identifier or a UID becomes ``[removed]``; every remaining
    identifier (as a whole token, or anywhere for a term of :data:`SUBSTRING_LENGTH`
    characters or more with a letter) and anything shaped like a UID becomes ``[removed]``.
    """

    def __init__(self, terms: Iterable[str] = (), files: Mapping[str, str] | None = None,
                 roots: Iterable[str | os.PathLike] = (), salt: str | None = None) -> None:
        self.terms: set[str] = set()
        self.files: dict[str, str] = {}
        self.roots: list[str] = []
        self.salt = salt
        self._root_files: list[str] = []
        self._compiled: tuple | None = None
        self.add_terms(terms)
        for path, name in (files or {}).items():
            self.add_file(path, name)
        for root in roots:
            self.add_root(root)

    # ------------------------------------------------------------------ building

    def copy(self) -> Deidentifier:
        """An independent copy (adding to it leaves this one as it is)."""
        other = Deidentifier(salt=self.salt)
        other.terms = set(self.terms)
        other.files = dict(self.files)
        other.roots = list(self.roots)
        other._root_files = list(self._root_files)
        return other

    def add_terms(self, terms: Iterable[str]) -> Deidentifier:
        for t in terms:
            if t is None:
                continue
            for form in identity_forms(str(t)):
                if len(form) >= MIN_TERM_LENGTH:
                    self.terms.add(form)
        self._compiled = None
        return self

    def add_file(self, path: str | os.PathLike, name: str, *, replace: bool = True
                 ) -> Deidentifier:
        """Name an input file (``replace=False``: unless it already has a name)."""
        for form in _path_forms(str(path)):
            if replace:
                self.files[form] = name
            else:
                self.files.setdefault(form, name)
        self._compiled = None
        return self

    def add_root(self, root: str | os.PathLike) -> Deidentifier:
        """An input folder, or an input file given on its own (named by its pseudonym until
        :meth:`add_plan` names it by its kind)."""
        root = str(root)
        if os.path.lexists(root) and not os.path.isdir(root):
            self.add_file(root, pseudonym(os.path.normpath(root), "file", self.salt),
                          replace=False)
            self._root_files.append(root)
            return self
        forms = [f.rstrip("/\\") or f for f in _path_forms(root)]
        if not any(f in self.roots for f in forms):
            self.roots.extend(f for f in forms if f not in (".", ""))
        self._compiled = None
        return self

    def add_plan(self, data: Any, prefix: str = "", *, read_files: bool = True
                 ) -> Deidentifier:
        """Name the files of a loaded plan by their kind (``prefix`` first: ``"prior 1 "``)
        and add its identity: patient name and ID from the model and, with ``read_files``,
        every identifying attribute and UID of its files (:func:`identity_of_file`)."""
        files = _files_of(data)
        counts = Counter(kind for _, kind in files)
        seen: Counter = Counter()
        for path, kind in files:
            seen[kind] += 1
            number = f" {seen[kind]}" if counts[kind] > 1 else ""
            self.add_file(path, f"{prefix}{kind} file{number}")
            if read_files:
                self.add_terms(identity_of_file(path))
        plan = getattr(data, "plan", None)
        self.add_terms([getattr(plan, "patient_name", None), getattr(plan, "patient_id", None),
                        getattr(plan, "uid", None),
                        getattr(plan, "referenced_structure_set_uid", None),
                        getattr(plan, "frame_of_reference_uid", None)])
        ss = getattr(data, "structure_set", None)
        self.add_terms([getattr(ss, "uid", None), getattr(ss, "frame_of_reference_uid", None)])
        dose = getattr(data, "dose", None)
        self.add_terms([getattr(dose, "frame_of_reference_uid", None),
                        *(getattr(dose, "sop_instance_uids", ()) or ())])
        return self

    def add_files(self, paths: Iterable[str | os.PathLike], *, all_uids: bool = False
                  ) -> Deidentifier:
        """Add the identity read from these DICOM files (not named: see :meth:`add_file`)."""
        for p in paths:
            self.add_terms(identity_of_file(p, all_uids=all_uids))
        return self

    def add_folder_identities(self, *, all_uids: bool = False, limit: int | None = None
                              ) -> Deidentifier:
        """Add the identity of every DICOM file under the roots (for a message that may
        name any plan found there, e.g. "several plans"). Hidden entries, links to folders
        and non-regular files are skipped; ``limit`` files at most."""
        n = 0
        for path in self._root_files:
            self.add_terms(identity_of_file(path, all_uids=all_uids))
        for root in dict.fromkeys(self.roots):
            if not os.path.isdir(root):
                continue
            from rtcheck.dicom import walk_files

            for path in walk_files(root):
                if limit is not None and n >= limit:
                    break
                n += 1
                self.add_terms(identity_of_file(path, all_uids=all_uids))
        return self

    # ------------------------------------------------------------------ applying

    def _compile(self) -> tuple:
        if self._compiled is None:
            terms = sorted({t for t in self.terms if len(t) >= MIN_TERM_LENGTH},
                           key=len, reverse=True)
            self._compiled = (sorted(self.files, key=len, reverse=True),
                              sorted(set(self.roots), key=len, reverse=True),
                              [(t, t.lower()) for t in terms])
        return self._compiled

    def name_of(self, path: str | os.PathLike) -> str:
        """The name a path gets in a de-identified output."""
        p = str(path)
        for form in _path_forms(p):
            if form in self.files:
                return self.files[form]
        return self.text(p)

    def input_name(self, path: str | os.PathLike) -> str:
        """The name of an input file: its kind when known (:meth:`add_plan`), else its
        pseudonym (``file-<hash>``): an input path is never shown."""
        for form in _path_forms(str(path)):
            if form in self.files:
                return self.files[form]
        return pseudonym(os.path.normpath(str(path)), "file", self.salt)

    def _root_label(self, root: str) -> str:
        distinct = list(dict.fromkeys(os.path.realpath(r) for r in self.roots))
        if len(distinct) <= 1:
            return "input folder"
        return f"input folder {distinct.index(os.path.realpath(root)) + 1}"

    def text(self, value: str) -> str:
        """``value`` de-identified (see the class); not a string: returned as is.

        Linear in the length of the text: only the files, folders and terms that occur in
        it are searched for."""
        if not isinstance(value, str) or not value:
            return value
        files, roots, terms = self._compile()
        out = value
        present = [f for f in files if f in out]
        if present:
            out = _strings_regex(tuple(present), "file").sub(
                lambda m: self.files[m.group(0)], out)
        present = [r for r in roots if r in out]
        if present:
            def under_root(m: re.Match) -> str:
                whole, rest = m.group(0), (m.group("rest") or "").rstrip("/\\")
                if not rest:
                    return self._root_label(m.group("root"))
                for form in _path_forms(whole):
                    if form in self.files:
                        return self.files[form]
                return pseudonym(os.path.normpath(whole), "file", self.salt)
            out = _strings_regex(tuple(present), "root").sub(under_root, out)
        low = out.lower()
        found = [(t, lt) for t, lt in terms if lt in low]
        lowered = [lt for _, lt in found]

        def unsafe(component: str) -> bool:
            c = component.lower()
            return any(t in c for t in lowered) or any(
                len(m.group(0)) >= _UID_MIN for m in _UID_RUN.finditer(component))

        def path_token(m: re.Match) -> str:
            token = m.group(0)
            if not unsafe(token):
                return token
            parts = re.split(r"([\\/])", token)
            return "".join(REMOVED if p not in ("/", "\\", "", REMOVED) and unsafe(p) else p
                           for p in parts)
        out = _PATH_TOKEN.sub(path_token, out)
        if found:
            out = _terms_regex(tuple(t for t, _ in found)).sub(REMOVED, out)
        return UID_PATTERN.sub(lambda m: REMOVED if len(m.group(0)) >= _UID_MIN
                               else m.group(0), out)

    __call__ = text

    def doc(self, node: Any) -> Any:
        """A copy of a JSON-like document: identifying keys (:data:`IDENTIFYING_KEYS`, every
        ``...uid``/``...uids`` key) dropped at any depth, every text (keys included)
        de-identified."""
        if isinstance(node, str):
            return self.text(node)
        if isinstance(node, Mapping):
            return {self.text(k) if isinstance(k, str) else k: self.doc(v)
                    for k, v in node.items() if not _is_identifying(k)}
        if isinstance(node, (list, tuple)):
            return [self.doc(v) for v in node]
        return node

    def obj(self, node: Any) -> Any:
        """A copy of any result object (dataclasses, dicts, lists: a
        :class:`rtcheck.checker.findings.CheckResult`) with every text de-identified and the values of
        identifying keys replaced by ``[removed]`` (the layout of a table stays)."""
        return map_strings(node, self.text, blank_keys=True)


def map_strings(node: Any, fn, *, blank_keys: bool = False, _depth: int = 0) -> Any:
    """A copy of ``node`` with ``fn`` applied to every string in it: through dicts (keys
    too), lists, tuples and dataclass instances (copied with :func:`dataclasses.replace`,
    fields that are not part of ``__init__`` and numpy arrays left as they are). With
    ``blank_keys``, the values of identifying keys become ``[removed]`` (None stays None).
    DVH objects (heavy arrays) keep everything but their name."""
    if _depth > 50:
        return node
    if isinstance(node, str):
        return fn(node)
    if isinstance(node, Mapping):
        out = {}
        for k, v in node.items():
            key = fn(k) if isinstance(k, str) else k
            if blank_keys and _is_identifying(k):
                out[key] = None if v is None else REMOVED
            else:
                out[key] = map_strings(v, fn, blank_keys=blank_keys, _depth=_depth + 1)
        return out
    if isinstance(node, list):
        return [map_strings(v, fn, blank_keys=blank_keys, _depth=_depth + 1) for v in node]
    if isinstance(node, tuple) and not hasattr(node, "_fields"):
        return tuple(map_strings(v, fn, blank_keys=blank_keys, _depth=_depth + 1)
                     for v in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        if type(node).__name__ == "DVH":
            name = getattr(node, "name", None)
            return dataclasses.replace(node, name=fn(name)) if isinstance(name, str) else node
        changes = {}
        for f in dataclasses.fields(node):
            if not f.init:
                continue
            v = getattr(node, f.name)
            if isinstance(v, (str, Mapping, list, tuple)) or (
                    dataclasses.is_dataclass(v) and not isinstance(v, type)):
                if blank_keys and _is_identifying(f.name) and isinstance(v, str):
                    changes[f.name] = REMOVED
                else:
                    changes[f.name] = map_strings(v, fn, blank_keys=blank_keys,
                                                  _depth=_depth + 1)
        try:
            return dataclasses.replace(node, **changes)
        except (TypeError, ValueError):
            return node
    return node


def deidentify(doc: Any, extra_terms: Iterable[str] = ()) -> Any:
    """A copy of ``doc`` without patient names, IDs, birth dates and DICOM UIDs.

    Works on any JSON-like output (dicts, lists, strings, numbers): the check result, the
    ``rtcheck dvh`` document, batch records, CSV rows as dicts.

    * Keys that identify a patient or name a person (:data:`IDENTIFYING_KEYS`: patient
      name/ID/birth date/sex/age/address, other patient IDs, accession number, study ID,
      physician and operator names) and every ``...uid``/``...uids`` key are removed,
      whatever their depth.
    * Their values (in every form: :func:`identity_forms`), plus ``extra_terms``, are then
      replaced by ``[removed]`` wherever they appear inside other texts (labels, warnings,
      structure names), and so is any text shaped like a DICOM UID; a path component that
      holds one becomes ``[removed]`` as a whole. Values shorter than
      :data:`MIN_TERM_LENGTH` characters are not searched for inside texts.

    Dates of plans and checks, doses and structure names are kept: they are the QA record.
    For input files named by their kind and paths under an input folder, use a
    :class:`Deidentifier` (:meth:`Deidentifier.doc`).
    """
    return Deidentifier(identifying_terms(doc) | {t for t in extra_terms if t}).doc(doc)


def plan_identity_terms(*plans: Any) -> list[str]:
    """Patient names and IDs of loaded plans (:class:`rtcheck.model.PlanData`), which a check
    result does not always carry, to pass as ``extra_terms``."""
    terms: set[str] = set()
    for data in plans:
        plan = getattr(data, "plan", None)
        for value in (getattr(plan, "patient_name", None), getattr(plan, "patient_id", None)):
            if value:
                terms |= identity_forms(str(value))
    return sorted(terms)


def check_deidentifier(data: Any = None, priors: Iterable[Any] = (),
                       roots: Iterable[str | os.PathLike] = (), *, read_files: bool = True,
                       extra_terms: Iterable[str] = ()) -> Deidentifier:
    """The :class:`Deidentifier` of one ``rtcheck check`` or ``rtcheck dvh`` run: the plan's
    files by kind, each prior plan's as ``prior N ...``, the input folders and files
    (``roots``: the PATH, --structures, --dose, --prior arguments), and the identity read
    from every file."""
    deid = Deidentifier(extra_terms)
    for root in roots:
        deid.add_root(root)
    if data is not None:
        deid.add_plan(data, read_files=read_files)
    for i, prior in enumerate(priors, start=1):
        if prior is not None and not isinstance(prior, str):
            deid.add_plan(prior, f"prior {i} ", read_files=read_files)
    return deid


def deidentified_message(text: str, roots: Iterable[str | os.PathLike] = (),
                         deidentifier: Deidentifier | None = None) -> str:
    """An error or warning message, de-identified: it may name any file or plan under the
    inputs (``roots``: "3 plans found; choose one with --plan" lists them all), so the
    identity of every DICOM file under them is read first (once per ``deidentifier``:
    names, IDs, birth dates and their top-level UIDs; any other UID by its shape)."""
    deid = deidentifier if deidentifier is not None else Deidentifier()
    for root in roots:
        deid.add_root(root)
    if not getattr(deid, "_folders_read", False):
        deid.add_folder_identities()
        deid._folders_read = True  # type: ignore[attr-defined]
    return deid.text(text)


def deidentify_output(text: str, fmt: str, doc: Any, extra_terms: Iterable[str] = (),
                      deidentifier: Deidentifier | None = None) -> str:
    """De-identify an output already rendered from ``doc``.

    JSON (``fmt == "json"``) is parsed, passed through :meth:`Deidentifier.doc` and written
    again (indent 2): identifying keys disappear. Any other text format (table, CSV) keeps
    its layout: every identifying value of ``doc`` (patient ID, UIDs...), every extra term,
    every input path (see :class:`Deidentifier`) is replaced in the text.
    """
    deid = deidentifier or Deidentifier()
    deid.add_terms(identifying_terms(doc) | {t for t in extra_terms if t})
    if fmt == "json":
        return json_text(deid.doc(json.loads(text)))
    return deid.text(text)


def json_text(doc: Any, ensure_ascii: bool = False) -> str:
    """JSON of an output (indent 2, UTF-8 unless ``ensure_ascii``) with C1 control characters
    and bidirectional overrides escaped too (JSON escapes only C0): no terminal escape
    sequence in any JSON rtcheck prints."""
    text = json.dumps(doc, indent=2, ensure_ascii=ensure_ascii)
    return re.sub("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]",
                  lambda m: f"\\u{ord(m.group(0)):04x}", text) + "\n"


def scrub_record(record: Mapping[str, Any], terms: Iterable[str] | Deidentifier | None = None,
                 *, archive: str | os.PathLike | None = None, read_files: bool = True,
                 salt: str | None = None) -> dict:
    """A de-identified batch record (what ``rtcheck batch --deidentify`` writes).

    * ``key`` becomes :func:`deidentified_key` (stable across runs: ``--resume`` works on
      it); ``plan_uid``, ``patient_id``, every ``...uid`` key and the identifying keys of
      :data:`IDENTIFYING_KEYS` are dropped, at any depth (``plan.uid``...);
    * ``files`` are named by their kind (``RTPLAN file``, ``RTDOSE file 2``, ``RTSTRUCT
      file``) for a plan's record, by their pseudonym (``file-<hash>``) for a bad or skipped
      file;
    * every text (error, warnings, notes, findings' reasons, structure names, the plan
      label) is de-identified: the record's identifiers, ``terms`` (strings or a
      :class:`Deidentifier` holding more), the identity read from the record's files (with
      ``read_files``: names and IDs, which a record does not carry; a header read of each),
      anything shaped like a UID; paths under ``archive`` become pseudonyms.

    A record only holds its own plan's identity, and paths (which become pseudonyms): do not
    pass the whole batch's :func:`batch_deidentifier` as ``terms`` (every text would be
    searched for every patient's identifiers, a cost that grows with the archive).
    """
    rec = dict(record)
    if isinstance(terms, Deidentifier):
        deid = terms.copy()
        if salt is not None:
            deid.salt = salt
    else:
        deid = Deidentifier(terms or (), salt=salt)
    if archive is not None:
        deid.add_root(archive)
    deid.add_terms(identifying_terms(rec))
    key = str(rec.get("key") or "")
    if not is_deidentified_key(key):
        deid.add_terms(k for k in re.split(r"[|,]", key) if k and not k.startswith(
            ("file:", "skipped:")))
    files = [str(f) for f in rec.get("files") or []]
    if read_files:
        deid.add_files(files)
    if rec.get("plan_uid") and files:
        kinds = ["RTPLAN"]
        has_ss = "RTSTRUCT" not in (rec.get("missing") or []) and len(files) > 1
        kinds += ["RTDOSE"] * (len(files) - 1 - has_ss) + ["RTSTRUCT"] * has_ss
        counts = Counter(kinds)
        seen: Counter = Counter()
        for path, kind in zip(files, kinds):
            seen[kind] += 1
            deid.add_file(path, f"{kind} file" + (f" {seen[kind]}" if counts[kind] > 1
                                                  else ""))
    else:
        for path in files:
            deid.add_file(path, pseudonym(os.path.normpath(path), "file", deid.salt))
    out = deid.doc({k: v for k, v in rec.items() if k != "key"})
    return {"key": deidentified_key(key, deid.salt) if key else key, **out}


def deidentified_progress_label(record: Mapping[str, Any]) -> str:
    """The label of a de-identified record for progress lines and the summary (instead of
    ``patient / plan label``): its pseudonymous key and its (de-identified) plan label."""
    key = str(record.get("key") or "")
    if key and not is_deidentified_key(key):
        key = deidentified_key(key)
    label = record.get("plan_label")
    return f"{key} {label}" if label else (key or "?")


def batch_deidentifier(archive: str | os.PathLike, *, discovery: Any = None, facts: Any = None,
                       salt: str | None = None, read_files: bool = True) -> Deidentifier:
    """The :class:`Deidentifier` of a batch's own messages (summary, discovery lines on
    standard error, a usage error): paths under ``archive`` become pseudonyms; the patient
    IDs and plan UIDs of every plan found (``discovery``: :class:`rtcheck.batch.Discovery`),
    with ``read_files`` the identity read from each plan's RTPLAN header (patient names,
    other IDs, birth date: about a millisecond a plan), and the keys of the facts table
    (``facts``: plan UIDs and patient IDs) are removed; so is anything shaped like a UID.
    Build it once, for the summary: records are scrubbed one by one (:func:`scrub_record`)."""
    deid = Deidentifier(roots=[archive], salt=salt)
    for g in getattr(discovery, "groups", None) or []:
        deid.add_terms([getattr(g, "patient_id", None), getattr(g, "plan_uid", None),
                        *(getattr(g, "dose_uids", ()) or ())])
        if read_files and getattr(g, "plan_path", None):
            deid.add_terms(identity_of_file(g.plan_path, all_uids=False))
    for rows in (getattr(facts, "by_plan", None), getattr(facts, "by_patient", None),
                 getattr(facts, "by_id", None)):
        deid.add_terms(str(k) for k in (rows or {}))
    return deid


# ======================================================================================
# Helpers shared by the report and the CLI
# ======================================================================================


def sort_findings(findings: Iterable[dict]) -> list[dict]:
    """Findings in report order: FAIL, NOT_EVALUATED, WARN, PASS (stable within a status).

    An unknown status sorts right after FAIL: it is not a pass.
    """
    def rank(f: dict) -> float:
        status = str(f.get("status"))
        return STATUS_ORDER.index(status) if status in STATUS_ORDER else 0.5

    return sorted(findings, key=rank)


def used_dvhs(result: dict, dvhs: Iterable[DVH]) -> list[DVH]:
    """The DVHs of the structures the findings name, in the order given."""
    names = {f.get("structure") for f in result.get("findings", []) if f.get("structure")}
    return [d for d in dvhs if d.name in names]


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def input_records(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """``[{"path", "sha256"}]`` for the input files, in a stable (sorted) order; a file that
    cannot be read gets ``sha256 = None`` and an ``error``."""
    out = []
    for p in sorted({str(p) for p in paths}):
        try:
            out.append({"path": p, "sha256": file_sha256(p)})
        except OSError as exc:
            out.append({"path": p, "sha256": None, "error": exc.strerror or str(exc)})
    return out


def protocol_records(protocols: Iterable[Any]) -> list[dict]:
    """``[{"id", "version", "title", "path", "sha256"}]`` from Protocol objects or dicts."""
    out = []
    for p in protocols or []:
        if isinstance(p, Mapping):
            rec = {k: p.get(k) for k in ("id", "version", "title", "path", "sha256")}
        elif isinstance(p, str):
            rec = _shipped_protocol_record(p)
        else:
            rec = {k: getattr(p, k, None) for k in ("id", "version", "title", "path")}
            rec["sha256"] = None
        if rec.get("sha256") is None and rec.get("path") and Path(rec["path"]).is_file():
            rec["sha256"] = file_sha256(rec["path"])
        out.append(rec)
    return out


def _shipped_protocol_record(name: str) -> dict:
    """Id, version, title and file of a protocol given by id or path (as far as it loads)."""
    from rtcheck.errors import RTCheckError
    from rtcheck.rules.protocols import load_protocol

    rec = {"id": name, "version": None, "title": None, "path": None, "sha256": None}
    try:
        proto = load_protocol(name)
    except (RTCheckError, OSError):
        return rec
    rec.update(id=proto.id, version=proto.version, title=proto.title, path=proto.path)
    return rec


# ======================================================================================
# Formatting
# ======================================================================================

_e = html.escape


def _num(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "not finite"
        # a ratio such as 0.561 needs its third digit to be compared with 0.5
        return f"{value:.{digits + 1 if abs(value) < 1 else digits}f}"
    return str(value)


def _text(value: Any) -> str:
    """Escaped text of any value; None and empty values as a dash."""
    if value is None or value == "" or value == [] or value == {}:
        return "\u2014"
    if isinstance(value, Mapping):
        return "; ".join(f"{_e(str(k))}: {_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        sep = "<br>" if any(isinstance(v, Mapping) for v in value) else "; "
        return sep.join(_text(v) for v in value)
    return _e(_num(value))


def _with_unit(value: Any, unit: Any) -> str:
    if value is None:
        return "\u2014"
    if unit and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{_e(_num(value))} {_e(str(unit))}"
    return _text(value)


def _status_label(status: Any) -> str:
    s = str(status or "NOT_EVALUATED")
    return f"{SYMBOLS.get(s, '?')} {s.replace('_', ' ')}"


def _css_class(status: Any) -> str:
    s = str(status or "")
    return s if s in SYMBOLS else "UNKNOWN"


def _when(value: Any) -> str:
    if value is None:
        return "not recorded"
    if isinstance(value, _dt.datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


CSS = """
:root { --fail:#b71c1c; --pass:#1b5e20; --warn:#8d6e00; --ne:#37474f; --review:#8a3c00; }
* { box-sizing: border-box; }
body { font-family: system-ui, "Segoe UI", "DejaVu Sans", "Liberation Sans", Arial, sans-serif;
  margin: 1.5em auto; max-width: 1150px; padding: 0 1em; color: #111; font-size: 14px;
  line-height: 1.35; }
h1 { font-size: 1.5em; margin: 0 0 .4em; }
h2 { font-size: 1.15em; margin: 1.4em 0 .5em; border-bottom: 1px solid #999; }
h3 { font-size: 1em; margin: 1em 0 .3em; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #999; padding: .3em .45em; text-align: left; vertical-align: top; }
th { background: #eceff1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Consolas, monospace;
  font-size: .92em; }
.mono { word-break: break-all; }
.verdict { display: flex; align-items: center; gap: 1.2em; padding: .7em 1em; margin: .8em 0;
  font-size: 1.1em; }
.verdict .word { font-size: 2.1em; font-weight: 800; letter-spacing: .04em; }
.verdict-FAIL, .verdict-ERROR { border: 7px double var(--fail); color: var(--fail);
  background: repeating-linear-gradient(135deg, #ffebee 0 10px, #ffcdd2 10px 20px); }
.verdict-PASS { border: 2px solid var(--pass); color: var(--pass); background: #e8f5e9; }
.verdict-NOT_EVALUATED, .verdict-UNKNOWN { border: 5px dashed var(--ne); color: var(--ne);
  background: #fff8e1; }
.verdict-WARN { border: 4px dotted var(--warn); color: var(--warn); background: #fffde7; }
.verdict-REVIEW { border: 6px dotted var(--review); color: var(--review);
  background: repeating-linear-gradient(90deg, #fff3e0 0 14px, #ffe0b2 14px 16px); }
.verdict .counts { color: #111; }
.verdict .meaning { display: block; font-weight: 600; }
.ident { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: .2em 1em; }
.ident dt { font-weight: 600; } .ident dd { margin: 0; }
td.status { font-weight: 700; white-space: nowrap; }
table.findings td.status { white-space: normal; overflow-wrap: normal; word-break: keep-all; }
tr.FAIL td.status, tr.ERROR td.status { color: var(--fail); border-left: 6px double var(--fail);
  text-decoration: underline; }
tr.NOT_EVALUATED td.status, tr.UNKNOWN td.status { color: var(--ne);
  border-left: 5px dashed var(--ne); }
tr.WARN td.status { color: var(--warn); border-left: 4px dotted var(--warn); }
tr.REVIEW td.status { color: var(--review); border-left: 5px dotted var(--review);
  font-style: italic; }
td.code, span.code { font-family: ui-monospace, "DejaVu Sans Mono", Consolas, monospace;
  font-size: .88em; white-space: nowrap; }
tr.PASS td.status { color: var(--pass); font-weight: 400; }
tr.FAIL, tr.ERROR { background: #fff5f5; }
.details { color: #444; font-size: .85em; margin-top: .2em; }
summary { cursor: pointer; color: #555; }
table.findings { table-layout: fixed; }
table.findings td { overflow-wrap: anywhere; }
.note { color: #444; font-size: .92em; }
.deid { display: inline-block; border: 2px solid #111; padding: 0 .4em; font-weight: 700; }
figure { margin: .5em 0; } figure svg, figure img { max-width: 100%; height: auto; }
figure svg { width: 100%; }
figcaption { font-size: .9em; color: #333; }
footer { margin-top: 2em; border-top: 3px double #555; padding-top: .5em; font-size: .92em; }
th.sortable { cursor: pointer; } th.sortable::after { content: " \\2195"; color: #777; }
@media print {
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  tr, figure, .verdict { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  .no-print { display: none; }
  a { color: inherit; text-decoration: none; }
}
"""


def _page(title: str, body: str, script: str = "") -> str:
    """A complete HTML document: inline CSS, optional inline script, nothing external."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta name=\"generator\" content=\"rtcheck {_e(_version())}\">\n"
            f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
            + (f"<script>{script}</script>\n" if script else "") + "</body>\n</html>\n")


def _version() -> str:
    from rtcheck import __version__

    return __version__


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
        The check result document (:meth:`rtcheck.checker.findings.CheckResult.to_dict`: ``plan``,
        ``verdict``, ``findings``, ``notes``, ``skipped``, ``facts``...; a batch record works
        too). The re-irradiation panel is drawn from its findings of kind ``reirradiation``
        that were evaluated, with their own limits (:func:`rtcheck.plotting.reirradiation_items`).
    dvhs : list of DVH, optional
        Curves to plot: pass those the rules used (:func:`used_dvhs`). The limits of the
        physical-dose findings of these structures are drawn at their points.
    protocols : iterable, optional
        Protocol objects, dicts (``id``, ``version``, ``title``, ``path``, ``sha256``) or ids.
    inputs : iterable, optional
        Input files: paths (hashed here) or dicts ``{"path", "sha256"}``.
    checked_at : datetime or str, optional
        Time of the check (default: ``result["checked_at"]`` when present).
    deidentify : bool
        Remove patient names, IDs, birth dates, UIDs and paths everywhere (the rule of this
        module); input files are then named by their kind (``RTPLAN file``) when
        ``deidentifier`` knows them, else by a pseudonym, with their SHA-256.
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
    bundle = {"result": result, "protocols": protocol_records(protocols), "inputs": files,
              "checked_at": _when(checked_at if checked_at is not None
                                  else result.get("checked_at"))}
    curves = list(dvhs or [])
    if deidentify:
        deid = deidentifier if deidentifier is not None else Deidentifier()
        deid.add_terms(identifying_terms(bundle) | {t for t in extra_terms if t})
        for rec in bundle["inputs"]:
            rec["path"] = deid.input_name(str(rec.get("path") or rec.get("name") or ""))
        bundle = deid.doc(bundle)
        curves = [dataclasses.replace(d, name=deid.text(d.name))
                  if deid.text(d.name) != d.name else d for d in curves]
    res = bundle["result"]
    plan = res.get("plan") or {}
    title = f"rtcheck: {plan.get('label') or 'plan'}: {res.get('verdict') or 'NOT_EVALUATED'}"
    badge = ' <span class="deid">DE-IDENTIFIED</span>' if deidentify else ""
    findings = res.get("findings") or []
    parts = [
        "<header>",
        f"<h1>Plan check report{badge}</h1>",
        _verdict_block(res),
        _identity_block(plan, deidentify),
        "</header>",
        _notes_block(res.get("notes") or [], res.get("warnings") or []),
        _findings_block(findings),
        _context_block(res),
        _dvh_block(findings, curves, plot_format),
        _reirradiation_block(findings, plot_format),
        _footer(bundle, deidentify),
        _embedded_json(res),
    ]
    return _page(title, "\n".join(p for p in parts if p))


def _verdict_block(res: dict) -> str:
    verdict = str(res.get("verdict") or "NOT_EVALUATED")
    counts = Counter(str(f.get("status")) for f in res.get("findings") or [])
    summary = ", ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in STATUS_ORDER if counts[s])
    cls = _css_class(verdict)
    meaning = VERDICT_MEANING.get(verdict, "verdict not known to this version of rtcheck")
    code = res.get("exit_code")
    return (f'<div class="verdict verdict-{cls}" role="status">'
            f'<span class="word">{_e(_status_label(verdict))}</span>'
            f'<span class="counts"><span class="meaning">{_e(meaning)}.</span>'
            f'Overall verdict. Findings: {_e(summary or "none")}.'
            + (f" Exit code {_e(str(code))}." if _is_number(code) else "")
            + "</span></div>")


_IDENTITY = (("patient_id", "Patient ID"), ("patient_name", "Patient name"),
             ("label", "Plan label"), ("uid", "Plan UID"), ("date", "Plan date"),
             ("prescription_gy", "Prescription"), ("fractions", "Fractions"))


def _identity_block(plan: dict, deidentified: bool) -> str:
    rows = []
    for key, label in _IDENTITY:
        value = plan.get(key)
        if key == "prescription_gy":
            text = _with_unit(value, "Gy")
            n = plan.get("fractions")
            if isinstance(value, (int, float)) and isinstance(n, int) and n > 0:
                text += f" ({_e(_num(value / n))}&nbsp;Gy per fraction)"
        elif value is None and deidentified and key in ("patient_id", "patient_name", "uid"):
            text = "<em>removed (de-identified)</em>"
        elif value is None and key == "patient_name":
            continue
        else:
            text = _text(value)
        rows.append(f"<dt>{_e(label)}</dt><dd>{text}</dd>")
    known = {k for k, _ in _IDENTITY}
    for key, value in plan.items():
        if key not in known and value not in (None, "", [], {}):
            rows.append(f"<dt>{_e(str(key).replace('_', ' '))}</dt><dd>{_text(value)}</dd>")
    return '<dl class="ident">' + "".join(rows) + "</dl>"


def _notes_block(notes: list, warnings: list) -> str:
    """The notes with their codes; warnings (plain strings, e.g. a batch record's discovery
    notes) that no note already says are listed after them."""
    typed = [n for n in notes if isinstance(n, Mapping)]
    said = {(f"{n.get('structure')}: {n.get('message')}" if n.get("structure")
             else str(n.get("message"))) for n in typed}
    rest = [w for w in warnings if str(w) not in said]
    if not typed and not rest:
        return ""
    rows = "".join(f'<tr><td class="code">{_text(n.get("code"))}</td>'
                   f"<td>{_text(n.get('structure'))}</td><td>{_text(n.get('message'))}</td></tr>"
                   for n in typed)
    rows += "".join(f'<tr><td class="code">{DASH}</td><td>{DASH}</td><td>{_text(w)}</td></tr>'
                    for w in rest)
    return ("<section><h2>Notes</h2>"
            '<p class="note">What qualifies the findings: loader, DVH, structure roles, the '
            "technique and how it was decided, scoping choices, stand-in structures.</p>"
            '<table><colgroup><col style="width:13%"><col style="width:14%"><col></colgroup>'
            "<thead><tr><th>Code</th><th>Structure</th><th>Note</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></section>")


#: Widths (%) of the findings table's columns: rule, structure, metric, value, limit,
#: alpha/beta, status, reason, source. The status column holds "? NOT EVALUATED" on two lines.
FINDINGS_COLUMNS = (12, 12, 9, 7, 8, 7, 11, 21, 13)


def _findings_block(findings: list[dict]) -> str:
    head = ("<tr><th>Rule</th><th>Structure (role)</th><th>Metric</th><th>Value</th>"
            "<th>Limit</th><th>\u03b1/\u03b2, model</th><th>Status</th><th>Reason</th>"
            "<th>Source</th></tr>")
    rows = [_finding_row(f) for f in sort_findings(findings)]
    if not rows:
        rows = ['<tr><td colspan="9">No finding: no rule applied to this plan.</td></tr>']
    cols = "".join(f'<col style="width:{w}%">' for w in FINDINGS_COLUMNS)
    return ("<section><h2>Findings</h2>"
            '<p class="note">Failures first: FAIL, NOT EVALUATED, WARN, PASS. '
            "Doses are physical doses in Gy unless a model and \u03b1/\u03b2 are given "
            "(then EQD2 or BED as the metric says). The structure shown decided the outcome; "
            "\u201cstands for\u201d names the structure of the rule's source it replaced.</p>"
            f"<table class=\"findings\"><colgroup>{cols}</colgroup><thead>{head}</thead>"
            f"<tbody>{''.join(rows)}"
            "</tbody></table></section>")


def _breakable(value: Any) -> str:
    """Escaped text that may wrap after ``.``, ``-`` and ``_`` (long rule ids)."""
    return re.sub(r"([._-])", r"\1<wbr>", _text(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: A text limit (a list of schemes) longer than this shows its first clause, the rest folded.
LONG_TEXT = 90


def _long_text(value: Any) -> str:
    """Escaped text; a long one shows its first clause (up to ``;``) and folds the rest
    under a <details> (no script), so that a scheme list does not stretch its row."""
    text = "" if value is None else str(value)
    if len(text) <= LONG_TEXT:
        return _text(value)
    head, sep, rest = text.partition("; ")
    if not sep or len(head) > LONG_TEXT:
        head = text[:LONG_TEXT].rsplit(" ", 1)[0]
        sep, rest = "", text[len(head):]
    more = ";" if sep else " \u2026"
    return (f"{_e(head)}{more}<details class=\"details\"><summary>the rest</summary>"
            f"{_e(rest.strip())}</details>")


def _structure_cell(f: dict) -> str:
    """The structure that decided, its role, what it stood in for, and the other structures
    the rule read (with their status and value)."""
    text = _text(f.get("structure"))
    if f.get("role"):
        text += f'<div class="details">role: {_e(str(f["role"]))}</div>'
    if f.get("stands_for"):
        text += f'<div class="details"><b>stands for {_e(str(f["stands_for"]))}</b></div>'
    others = [v for v in f.get("evaluated") or [] if isinstance(v, Mapping)
              and v.get("structure") != f.get("structure")]
    if others:
        items = "; ".join(
            f"{_text(v.get('structure'))} ({_e(str(v.get('role') or DASH))}"
            + (f", stands for {_e(str(v['stands_for']))}" if v.get("stands_for") else "")
            + f"): {_e(str(v.get('status')))}"
            + (f" {_e(_num(v['value']))}" if _is_number(v.get("value")) else "")
            for v in others)
        text += f'<div class="details">also evaluated: {items}</div>'
    return text


def _finding_row(f: dict) -> str:
    status = f.get("status") or "NOT_EVALUATED"
    rule = f"<code>{_breakable(f.get('rule'))}</code>"
    if f.get("protocol"):
        rule += f'<div class="details">{_breakable(f["protocol"])}</div>'
    unit = f.get("unit")
    value, limit = f.get("value"), f.get("limit")
    op = OPERATORS.get(str(f.get("operator")), "")
    value_td = (f'<td class="num">{_with_unit(value, unit)}</td>' if _is_number(value)
                else f"<td>{_text(value)}</td>")
    limit_td = (f'<td class="num">{op} {_with_unit(limit, unit)}</td>' if _is_number(limit)
                else f"<td>{_long_text(limit)}</td>")
    ab = f.get("alpha_beta")
    if ab in (None, "", "none") and f.get("model") in (None, "", "none"):
        ab_text = "physical dose" if unit in ("Gy", "cGy") else DASH
    else:
        ab_text = _with_unit(ab, "Gy") if ab not in (None, "", "none") else DASH
        if f.get("model"):
            ab_text += ", " + _e(str(f["model"]))
    shown = {k: v for k, v in f.items() if k not in FINDING_KEYS and k not in SHOWN_ELSEWHERE
             and v not in (None, "", [], {})}
    if isinstance(f.get("details"), Mapping):
        shown = {**{k: v for k, v in shown.items() if k != "details"}, **f["details"]}
    # Details and citations fold away (<details> needs no script): the reason already says
    # the numbers, and the embedded JSON keeps everything.
    reason = _text(f.get("reason"))
    code = f.get("code")
    if (code and code != "evaluated") or f.get("missing"):
        reason += (f'<div class="details">code: <span class="code">{_text(code)}</span>'
                   + (f'; missing: <span class="code">{_text(f["missing"])}</span>'
                      if f.get("missing") else "") + "</div>")
    if shown:
        reason += f'<details class="details"><summary>details</summary>{_text(shown)}</details>'
    source = _text(f.get("source"))
    if f.get("cites"):
        source += (f'<details class="details"><summary>references</summary>'
                   f"{_text(f['cites'])}</details>")
    return (f'<tr class="{_css_class(status)}"><td>{rule}</td><td>{_structure_cell(f)}</td>'
            f"<td>{_text(f.get('metric'))}</td>{value_td}{limit_td}<td>{ab_text}</td>"
            f'<td class="status">{_e(_status_label(status))}</td><td>{reason}</td>'
            f"<td>{source}</td></tr>")


_TECHNIQUE_FACTS = ("technique", "technique_how", "technique_text")


def _context_block(res: dict) -> str:
    """What the check assumed: technique and how it was decided, facts given or derived,
    structure roles, rules not applied (grouped by their skip code)."""
    parts = []
    all_facts = res.get("facts") or {}
    if isinstance(all_facts, Mapping) and "technique" in all_facts:
        parts.append(
            f"<p><b>Technique: {_text(all_facts.get('technique') or 'unknown')}</b> "
            f"(decided: {_text(all_facts.get('technique_how') or 'unknown')})"
            + (f": {_text(all_facts['technique_text'])}" if all_facts.get("technique_text")
               else "") + "</p>")
    facts = {k: v for k, v in all_facts.items()
             if v not in (None, "", [], {}) and k not in _TECHNIQUE_FACTS}
    if facts:
        items = "".join(f"<dt>{_e(str(k).replace('_', ' '))}</dt><dd>{_text(v)}</dd>"
                        for k, v in facts.items())
        parts.append(f'<h3>Facts</h3><dl class="ident">{items}</dl>')
    roles = res.get("roles") or {}
    if roles:
        rows = "".join(
            f"<tr><td>{_e(str(r))}</td><td>{_text(m.get('status'))}</td>"
            f"<td>{_text(m.get('structures'))}</td><td>{_text(m.get('how'))}</td></tr>"
            if isinstance(m, Mapping) else f"<tr><td>{_e(str(r))}</td><td colspan=3>"
            f"{_text(m)}</td></tr>" for r, m in roles.items())
        parts.append("<h3>Structure roles</h3><table><thead><tr><th>Role</th><th>Match</th>"
                     f"<th>Structures</th><th>How</th></tr></thead><tbody>{rows}</tbody></table>")
    skipped = [s for s in res.get("skipped") or [] if isinstance(s, Mapping)]
    if skipped:
        parts.append("<h3>Rules not applied</h3>" + _skipped_html(skipped))
    if not parts:
        return ""
    return "<section><h2>How the plan was checked</h2>" + "".join(parts) + "</section>"


def _skipped_html(skipped: list[Mapping]) -> str:
    """The skipped rules grouped by their code: those waiting for a fact by the fact they
    need, those of other indications or sites on one line."""
    groups: dict[str, list[Mapping]] = {}
    for s in skipped:
        groups.setdefault(str(s.get("code") or "other"), []).append(s)
    out = []
    for code in [*SKIP_HEADINGS, *sorted(set(groups) - set(SKIP_HEADINGS))]:
        items = groups.get(code)
        if not items:
            continue
        head = (f'<p class="note"><b>{_e(SKIP_HEADINGS.get(code, code))}</b> '
                f'<span class="code">[{_e(code)}]</span></p>')
        if code == "fact_missing":
            needs: dict[str, list[str]] = {}
            for s in items:
                needs.setdefault(str(s.get("needs") or "?"), []).append(str(s.get("rule")))
            body = "".join(f"<li>needs <b>{_e(n)}</b>: "
                           + ", ".join(f"<code>{_breakable(r)}</code>" for r in rules) + "</li>"
                           for n, rules in needs.items())
        elif code == "not_requested":
            body = "<li>" + ", ".join(f"<code>{_breakable(s.get('rule'))}</code>"
                                      for s in items) + "</li>"
        else:
            body = "".join(f"<li><code>{_breakable(s.get('rule'))}</code>: "
                           f"{_text(s.get('reason'))}</li>" for s in items)
        out.append(f'{head}<ul class="note">{body}</ul>')
    return "".join(out)


def _embed(fig: Any, fmt: str, prefix: str, alt: str) -> str:
    from rtcheck import plotting

    if fmt == "png":
        return f'<img src="{plotting.figure_png_data_uri(fig)}" alt="{_e(alt)}">'
    svg = plotting.figure_svg(fig, id_prefix=prefix)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_e(alt)}" ', 1)


def _dvh_block(findings: list[dict], dvhs: list[DVH], fmt: str) -> str:
    if not dvhs:
        return ('<section><h2>Dose-volume histograms</h2><p class="note">No DVH was given '
                "to the report.</p></section>")
    from rtcheck import plotting

    markers = plotting.limit_markers(findings, dvhs)
    fig = plotting.dvh_figure(dvhs, markers)
    drawn = _embed(fig, fmt, "dvh", "Cumulative DVH of the structures the rules used, "
                   "with the limits marked")
    return ("<section><h2>Dose-volume histograms</h2><figure>" + drawn +
            "<figcaption>Cumulative DVH (volume in % of each structure) of the structures the "
            "rules used. Each physical-dose limit is a marker at its point (a point maximum "
            "at volume 0): filled cross FAIL, triangle WARN, open square NOT EVALUATED, open "
            "circle PASS; a dotted segment joins the plan's value to its limit. Converted "
            "(EQD2, BED) limits are in the re-irradiation panel.</figcaption></figure></section>")


def _reirradiation_block(findings: list[dict], fmt: str) -> str:
    """Each course's EQD2 (or BED) against the limits of the re-irradiation rules that were
    evaluated, a table of the same numbers with each finding's own status, and the
    re-irradiation rules that were not evaluated (whose limits are not drawn). Nothing when
    no re-irradiation rule was evaluated."""
    reirr = [f for f in findings if f.get("kind") == "reirradiation"]
    ran = [f for f in reirr if f.get("status") not in (None, "NOT_EVALUATED")]
    if not ran:
        return ""
    from rtcheck import plotting

    items = plotting.reirradiation_items(ran)
    words = " and ".join(dict.fromkeys(i.word for i in items)) or "interval"
    figure = ""
    if items:
        fig = plotting.reirradiation_figure(items)
        structures = "; ".join(dict.fromkeys(i.where for i in items))
        drawn = _embed(fig, fmt, "reirr", f"Re-irradiation: {words} of each course on "
                       f"{structures}, against the limits of the rules that were evaluated")
        figure = (f"<figure>{drawn}<figcaption>{_e(words)} (LQ model) of each course, read "
                  f"on <b>{_e(structures)}</b>, against the limit of each re-irradiation rule "
                  "that was evaluated (the rule's own limit and operator; a dotted line ends "
                  "its WARN band). Hatched bars: prior course(s) //, this course \\\\. Rules "
                  "that were not evaluated draw no limit.</figcaption></figure>")
    rows = []
    for f in ran:
        d = f.get("details") if isinstance(f.get("details"), Mapping) else {}
        courses = "<br>".join(
            f"{_text(c.get('course'))}: {_e(_num(c['value_gy']))} Gy "
            f"{_e(str(c.get('quantity') or ''))}"
            + (f" ({_e(_num(c['dose_gy']))} Gy in {_e(str(c.get('fractions')))} fx)"
               if _is_number(c.get("dose_gy")) else "")
            for c in d.get("courses") or [] if isinstance(c, Mapping)
            and _is_number(c.get("value_gy"))) or DASH
        where = _text(f.get("structure"))
        if f.get("role"):
            where += f" ({_e(str(f['role']))})"
        if f.get("stands_for"):
            where += f"<br><b>stands for {_e(str(f['stands_for']))}</b>"
        limit = d.get("requirement") or (
            f"{f.get('operator') or ''} {_num(f.get('limit'))} {f.get('unit') or ''}"
            if _is_number(f.get("limit")) else f.get("limit"))
        status = str(f.get("status"))
        unit = None if f.get("unit") == "ratio" else f.get("unit")
        rows.append(f'<tr class="{_css_class(status)}"><td><code>{_breakable(f.get("rule"))}'
                    f"</code></td><td>{_text(f.get('metric'))}</td><td>{where}</td>"
                    f"<td>{courses}</td><td class=\"num\">{_with_unit(f.get('value'), unit)}"
                    f"</td><td>{_text(limit)}</td>"
                    f'<td class="status">{_e(_status_label(status))}</td></tr>')
    for f in reirr:
        if f in ran:
            continue
        rows.append(f'<tr class="NOT_EVALUATED"><td><code>{_breakable(f.get("rule"))}</code>'
                    f"</td><td>{_text(f.get('metric'))}</td><td colspan=\"4\">not evaluated "
                    f"({_text(f.get('code'))}"
                    + (f"; missing {_text(f.get('missing'))}" if f.get("missing") else "")
                    + "): its limit is not drawn nor judged here</td>"
                    f'<td class="status">{_e(_status_label("NOT_EVALUATED"))}</td></tr>')
    return (f"<section><h2>Re-irradiation: {_e(words)} over the courses</h2>{figure}"
            '<table class="findings"><colgroup>'
            + "".join(f'<col style="width:{w}%">' for w in (19, 14, 14, 24, 9, 9, 11))
            + "</colgroup><thead><tr><th>Rule</th><th>Quantity</th><th>Read on</th>"
            "<th>Courses</th><th>Value</th><th>Limit</th><th>Status</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            '<p class="note">The status is the finding\'s (the findings table holds the '
            "reasons); this table repeats its numbers.</p></section>")


def _footer(bundle: dict, deidentified: bool) -> str:
    prot = "".join(
        f"<tr><td><code>{_text(p.get('id'))}</code></td><td>{_text(p.get('version'))}</td>"
        f"<td>{_text(p.get('title'))}</td><td class=\"mono\">{_text(p.get('sha256'))}</td></tr>"
        for p in bundle["protocols"]) or '<tr><td colspan="4">not given</td></tr>'
    files = "".join(
        f"<tr><td class=\"mono\">{_text(i.get('path') or i.get('name'))}</td>"
        f"<td class=\"mono\">{_text(i.get('sha256') or i.get('error') or 'not computed')}"
        "</td></tr>" for i in bundle["inputs"]) or '<tr><td colspan="2">not given</td></tr>'
    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    return ("<footer><h2>QA record</h2>"
            "<table><thead><tr><th>Protocol</th><th>Version</th><th>Title</th>"
            f"<th>SHA-256 of the protocol file</th></tr></thead><tbody>{prot}</tbody></table>"
            "<p></p><table><thead><tr><th>Input file</th><th>SHA-256</th></tr></thead>"
            f"<tbody>{files}</tbody></table>"
            f"<p>rtcheck version <b>{_e(_version())}</b>. Checked at "
            f"<b>{_e(str(bundle['checked_at']))}</b>; report written {_e(now)}."
            + (" De-identified: patient names, IDs, birth dates, DICOM UIDs and paths "
               "removed; input files named by their kind, with their SHA-256."
               if deidentified else "")
            + "</p></footer>")


def _embedded_json(res: dict) -> str:
    """The result document itself, machine-readable, inside the page (never executed)."""
    text = json.dumps(res, ensure_ascii=True, default=str).replace("<", "\\u003c")
    return f'<script type="application/json" id="rtcheck-result">{text}</script>'


def plan_input_files(data: Any) -> list[str]:
    """The files a loaded plan (:class:`rtcheck.model.PlanData`) was read from."""
    files: list[str] = []
    if getattr(data, "plan", None) is not None and data.plan.path:
        files.append(data.plan.path)
    if getattr(data, "structure_set", None) is not None and data.structure_set.path:
        files.append(data.structure_set.path)
    if getattr(data, "dose", None) is not None:
        files += list(data.dose.paths)
    return files


def report_dvhs(result: dict, data: Any) -> list[DVH]:
    """DVHs of the structures the findings name, computed on the plan's dose.

    Structures absent from the structure set (or without contours) are left out; the
    findings already say why they could not be used.
    """
    if getattr(data, "dose", None) is None or getattr(data, "structure_set", None) is None:
        return []
    from rtcheck.dvh import compute_dvh

    names = {f.get("structure") for f in result.get("findings") or [] if f.get("structure")}
    spacing = getattr(data.structure_set, "plane_spacing_mm", None)
    return [compute_dvh(s, data.dose, slice_spacing_mm=spacing)
            for s in data.structure_set.structures
            if s.name in names and s.contours]


def render_check_report(result: dict, data: Any, *, protocols: Iterable[Any] | None = None,
                        extra_inputs: Iterable[str] = (), checked_at: Any = None,
                        deidentify: bool = False, extra_terms: Iterable[str] = (),
                        dvhs: list[DVH] | None = None, plot_format: str = "svg",
                        deidentifier: Deidentifier | None = None) -> str:
    """The HTML report of a check of a loaded plan: what ``rtcheck check --format html`` writes.

    Computes the DVHs of the structures the findings name (unless ``dvhs`` are given), hashes
    the plan's files (plus ``extra_inputs``, e.g. prior plans) and calls :func:`render_html`.
    With ``deidentify``, the rule of this module: the plan's identity (read from its files
    too, and ``extra_terms``) is removed wherever it appears, also where the result itself
    does not name it as such; its files are named by their kind (``deidentifier``, default
    :func:`check_deidentifier` of ``data``).
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

_SORT_SCRIPT = """
document.querySelectorAll('table.sortable-table').forEach(function (t) {
  t.querySelectorAll('th.sortable').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var dir = th.getAttribute('data-dir') === 'asc' ? -1 : 1;
      th.setAttribute('data-dir', dir === 1 ? 'asc' : 'desc');
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-sort') || a.cells[col].textContent;
        var y = b.cells[col].getAttribute('data-sort') || b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return dir * c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _seconds(value: Any) -> str:
    return f"{value:.1f}" if _is_number(value) else _text(value)


def _batch_rank(verdict: Any) -> int:
    v = str(verdict)
    return BATCH_ORDER.index(v) if v in BATCH_ORDER else 1


def _record_link(i: int, rec: dict, report_links: Mapping) -> str | None:
    for key in (rec.get("key"), i, rec.get("path"), rec.get("plan_uid")):
        if key is not None and key in report_links:
            return str(report_links[key])
    return None


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
    rows = []
    for i in order:
        rec = records[i]
        verdict = str(rec.get("verdict") or "NOT_EVALUATED")
        counts = Counter(str(f.get("status")) for f in rec.get("findings") or [])
        flagged = ("FAIL", "NOT_EVALUATED", "WARN") if verdict == "REVIEW" else (
            "FAIL", "NOT_EVALUATED")
        failing = [f.get("rule") for f in sort_findings(rec.get("findings") or [])
                   if f.get("status") in flagged]
        note = rec.get("error") or ", ".join(str(r) for r in failing if r)
        link = _record_link(i, rec, report_links)
        plan = rec.get("plan") or {}
        label = rec.get("plan_label") or plan.get("label")
        patient = rec.get("patient_id") or plan.get("patient_id")
        cls = _css_class(verdict)
        rows.append(
            f'<tr class="{cls}"><td class="status" data-sort="{_batch_rank(verdict)}">'
            f"{_e(_status_label(verdict))}</td><td>{_text(label)}</td><td>{_text(patient)}</td>"
            + "".join(f'<td class="num">{counts[s]}</td>' for s in STATUS_ORDER)
            + f"<td>{_text(note)}</td>"
            f'<td class="num">{_seconds(rec.get("seconds"))}</td>'
            + (f'<td><a href="{_e(link, quote=True)}">report</a></td>' if link
               else "<td>\u2014</td>") + "</tr>")
    totals = Counter(str(r.get("verdict")) for r in records)
    summary = ", ".join(f"{totals[v]} {v.replace('_', ' ')}" for v in BATCH_ORDER if totals[v])
    heads = ["Verdict", "Plan", "Patient ID", "FAIL", "NOT EVAL.", "WARN", "PASS",
             "Error, failing rules (WARN rules for a REVIEW)", "Seconds", "Report"]
    head = "".join(f'<th class="sortable">{_e(h)}</th>' for h in heads)
    when = _when(generated_at if generated_at is not None
                 else _dt.datetime.now().astimezone())
    body = (f"<h1>{_e(title)}</h1><p>{len(records)} plans: {_e(summary or 'none')}. "
            f"Written {_e(when)} by rtcheck {_e(_version())}.</p>"
            '<p class="note no-print">Rows are sorted by verdict, worst first; click a column '
            "header to sort by it.</p>"
            f'<table class="sortable-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")
    return _page(title, body, _SORT_SCRIPT)


# ======================================================================================
# Batch: one report per plan, and the index built from the batch output
# ======================================================================================


def report_file_name(key: str) -> str:
    """File name of a plan's report in a batch report folder: the plan's de-identified key
    (:func:`deidentified_key`), so the same for the key and for its pseudonym (the index of a
    de-identified output finds its reports), stable across resumed runs, naming no patient.
    The pseudonym is salted with ``RTCHECK_DEIDENTIFY_SALT``: set it alike on Dask workers."""
    return f"{deidentified_key(key)}.html"


def _write_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all (a killed batch leaves no half report)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def batch_report_worker(task: Any, *, report_dir: str, deidentify: bool = False,
                        archive: str | None = None) -> dict:
    """:func:`rtcheck.batch.check_one`, then the plan's HTML report in ``report_dir``.

    The record is check_one's, unchanged, except for a warning when the report could not be
    written (the check itself stands). ERROR records get no report. The plan is loaded a
    second time for the report's DVHs (check_one does not hand its plan data out). With
    ``deidentify``, the report follows the rule of this module: the plan's files by kind,
    any other path under ``archive`` by its pseudonym. (The record itself is de-identified
    by the batch, where it is written: :func:`scrub_record`.)
    """
    from rtcheck.batch import check_one
    from rtcheck.dicom import load_plan

    rec = check_one(task)
    if rec.get("verdict") in (None, "ERROR"):
        return rec
    try:
        data = load_plan(task.group.files, plan=task.group.plan_uid)
        result = {k: rec.get(k) for k in ("plan", "verdict", "findings", "notes", "warnings",
                                          "facts")}
        deid = None
        if deidentify:
            deid = check_deidentifier(data, (), [archive] if archive else [])
            deid.add_terms(identifying_terms(rec))
        page = render_check_report(result, data, protocols=list(task.protocols) or None,
                                   deidentify=deidentify, deidentifier=deid)
        _write_atomic(Path(report_dir) / report_file_name(rec["key"]), page)
    except Exception as exc:  # a report that fails must not turn a checked plan into ERROR
        rec["warnings"] = list(rec.get("warnings") or []) + [
            f"HTML report not written: {type(exc).__name__}: {exc}"]
    return rec


def batch_worker(report_dir: str | os.PathLike, deidentify: bool = False,
                 archive: str | os.PathLike | None = None):
    """The ``worker`` to give :func:`rtcheck.batch.run_batch` for one report per plan
    (picklable: worker processes and Dask workers import it). With ``deidentify``, give the
    ``archive``: paths under it become pseudonyms in the reports."""
    import functools

    return functools.partial(batch_report_worker, report_dir=str(Path(report_dir).resolve()),
                             deidentify=deidentify,
                             archive=None if archive is None else str(archive))


_INDEX_FIELDS = ("key", "plan_label", "patient_id", "plan_uid", "verdict", "error", "seconds")


def read_batch_records(path: str | os.PathLike) -> list[dict]:
    """The index rows of a batch output file (JSONL, or CSV with one row per finding):
    identity, verdict, error, seconds and each finding's rule and status; one row per plan
    (the last record of a key wins). Damaged lines are skipped."""
    import csv as _csv

    rows: dict[str, dict] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        first = fh.readline()
        fh.seek(0)
        if first.startswith("key,"):
            for row in _csv.DictReader(fh):
                key = row.get("key")
                if not key:
                    continue
                rec = rows.get(key) if row.get("row") != "1" else None
                if rec is None:
                    rec = {k: row.get(k) or None for k in _INDEX_FIELDS}
                    rec["findings"] = []
                    rows[key] = rec
                if row.get("rule"):
                    rec["findings"].append({"rule": row["rule"], "status": row.get("status")})
        else:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and rec.get("key"):
                    slim = {k: rec.get(k) for k in _INDEX_FIELDS}
                    slim["findings"] = [{"rule": f.get("rule"), "status": f.get("status")}
                                        for f in rec.get("findings") or []]
                    rows[rec["key"]] = slim
    for rec in rows.values():
        try:
            rec["seconds"] = None if rec["seconds"] is None else float(rec["seconds"])
        except (TypeError, ValueError):
            rec["seconds"] = None
    return list(rows.values())


def write_batch_index(report_dir: str | os.PathLike, output: str | os.PathLike, *,
                      deidentify: bool = False, archive: str | os.PathLike | None = None
                      ) -> Path:
    """Write ``report_dir/index.html`` from the batch output file ``output`` (every plan of
    it, also those of earlier resumed runs and ERROR records), linking the reports found in
    ``report_dir``. Returns the index path.

    With ``deidentify``, each row is :func:`scrub_record`'s (the rule of this module: no
    name, ID, UID; paths under ``archive`` by their pseudonyms); rows already de-identified
    (a de-identified output) are kept as they are, and find their reports all the same
    (:func:`report_file_name` of a key and of its pseudonym are one)."""
    folder = Path(report_dir)
    # SKIPPED records are files that are not plans (listed in the batch output and summary)
    records = [r for r in read_batch_records(output) if r.get("verdict") != "SKIPPED"]
    if deidentify:
        records = [scrub_record(r, archive=archive, read_files=False) for r in records]
    links = {r["key"]: report_file_name(r["key"]) for r in records
             if (folder / report_file_name(r["key"])).exists()}
    index = folder / "index.html"
    title = "rtcheck batch summary" + (" (de-identified)" if deidentify else "")
    _write_atomic(index, render_batch_index(records, links, title=title))
    return index
