"""Who a plan identifies, read from its documents and its DICOM files.

The identifiers that :mod:`rtcheck.report.deidentification` removes from every output: the
values of identifying keys of a JSON-like document (:func:`identifying_terms`), the identity
attributes and UIDs of a DICOM file (:func:`identity_of_file`), each in every form it may take
in a text (:func:`identity_forms`: a person name ``DOE^JOHN`` is also ``John Doe``, a DICOM
date is also an ISO one). pydicom is imported only when a file is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

#: Keys (compared lower-case, without separators) whose values identify a patient or name a
#: person: dropped by :func:`rtcheck.report.deidentify`. Structure, plan and protocol
#: ``name`` keys stay.
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
#: UIDs of the DICOM standard itself (SOP classes, transfer syntaxes): not identifying.
STANDARD_UID_ROOT = "1.2.840.10008."


def _norm_key(key: Any) -> str:
    """``key`` lower-case, letters and digits only (``Patient_ID`` and ``PatientID`` are one)."""
    return re.sub(r"[^a-z0-9]", "", str(key).lower())


def is_identifying_key(key: Any) -> bool:
    """Whether a key's value identifies a patient or a person (:data:`IDENTIFYING_KEYS`),
    or is a DICOM UID (any ``...uid``/``...uids`` key)."""
    k = _norm_key(key)
    # DICOM UIDs (plan, study, SOP instance, frame of reference) link back to the patient.
    return k in IDENTIFYING_KEYS or k.endswith(("uid", "uids"))


def _strings(value: Any) -> Iterable[str]:
    """Every string inside a JSON-like value."""
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
                if is_identifying_key(k):
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



def plan_files(data: Any) -> list[tuple[str, str]]:
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


def path_forms(path: str) -> set[str]:
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

