"""De-identification of every output of rtcheck: one rule, applied by :class:`Deidentifier`.

With ``--deidentify``, no output of ``check``, ``dvh`` or ``batch`` (standard output, files,
standard error, error messages; table, JSON, CSV, HTML, plots; batch JSONL/CSV, progress lines,
summary and index) holds a patient name (any DICOM person-name form), a patient ID (also
OtherPatientIDs), a birth date (DICOM or ISO form), an accession number, a study ID, a
physician's or operator's name, any DICOM UID, or a path component that holds one of them.

* Input files are named by their kind (``RTPLAN file``, ``RTDOSE file 2``, ``prior 1 RTPLAN
  file``; the QA record adds their SHA-256); an input folder is ``input folder``; any other
  path under an input folder is a stable pseudonym ``file-<12 hex>`` (:func:`pseudonym`); a
  batch record's key is ``plan-<12 hex>`` (:func:`deidentified_key`).
* Identifying JSON keys (:data:`~rtcheck.report.identity.IDENTIFYING_KEYS`, every ``...uid``
  key) are dropped; in any other text each identifier becomes ``[removed]`` (labels and ROI
  names included); a path component outside the inputs that holds one becomes ``[removed]``
  as a whole.
* The identifiers are read from every input file (:mod:`rtcheck.report.identity`), and from
  every file under the inputs for a message that may name any of them ("several plans"); any
  text shaped like a UID goes too.

:func:`check_deidentifier` builds the de-identifier of ``check`` and ``dvh``;
:func:`scrub_record`, :func:`batch_deidentifier` and :func:`deidentified_progress_label`
serve ``batch``. Plan dates, doses, structure names and file hashes stay: they are the QA
record.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rtcheck.report.identity import (
    MIN_TERM_LENGTH,
    SUBSTRING_LENGTH,
    identifying_terms,
    identity_forms,
    identity_of_file,
    is_identifying_key,
    path_forms,
    plan_files,
)

#: What replaces an identifier inside a text.
REMOVED = "[removed]"
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

    def add_terms(self, terms: Iterable[str | None]) -> Deidentifier:
        """Add identifying values, in every form they may take (None values are skipped)."""
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
        for form in path_forms(str(path)):
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
        forms = [f.rstrip("/\\") or f for f in path_forms(root)]
        if not any(f in self.roots for f in forms):
            self.roots.extend(f for f in forms if f not in (".", ""))
        self._compiled = None
        return self

    def add_plan(self, data: Any, prefix: str = "", *, read_files: bool = True
                 ) -> Deidentifier:
        """Name the files of a loaded plan by their kind (``prefix`` first: ``"prior 1 "``)
        and add its identity: patient name and ID from the model and, with ``read_files``,
        every identifying attribute and UID of its files (:func:`identity_of_file`)."""
        files = plan_files(data)
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
        for form in path_forms(p):
            if form in self.files:
                return self.files[form]
        return self.text(p)

    def input_name(self, path: str | os.PathLike) -> str:
        """The name of an input file: its kind when known (:meth:`add_plan`), else its
        pseudonym (``file-<hash>``): an input path is never shown."""
        for form in path_forms(str(path)):
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
                for form in path_forms(whole):
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
                    for k, v in node.items() if not is_identifying_key(k)}
        if isinstance(node, (list, tuple)):
            return [self.doc(v) for v in node]
        return node

    def obj(self, node: Any) -> Any:
        """A copy of any result object (dataclasses, dicts, lists: a
        :class:`rtcheck.checker.findings.CheckResult`) with every text de-identified and the
        values of identifying keys replaced by ``[removed]`` (the layout of a table stays)."""
        return map_strings(node, self.text, blank_keys=True)


def map_strings(node: Any, fn: Callable[[str], str], *, blank_keys: bool = False,
                _depth: int = 0) -> Any:
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
            if blank_keys and is_identifying_key(k):
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
                if blank_keys and is_identifying_key(f.name) and isinstance(v, str):
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

