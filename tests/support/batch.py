"""Builders for the ``rtcheck batch`` tests: plans with known verdicts, CT slices, facts
files, and workers that fail on purpose.

The plans come from :func:`support.synthetic.write_spine_plan` (the builder the batch
benchmark uses too): a spine SBRT plan, 27 Gy/3, whose analytic cord maximum is
``CORD_DMAX_GY["pass"]`` (17 Gy) or ``CORD_DMAX_GY["fail"]`` (23 Gy) against the 20.3 Gy
limit; the synthetic thecal sac is left out so that the cord decides.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from rtcheck import batch as B
from support.synthetic import CORD_DMAX_GY, FACTS, build_archive, write_spine_plan

__all__ = ["CORD_DMAX_GY", "FACTS", "build_archive", "crashing_check", "facts_file",
           "make_plan", "raising_check", "write_ct_slice"]


def make_plan(folder: Path, patient: str, label: str, kind: str = "pass", *,
              ct_slices: int = 0, **parts) -> dict:
    """A spine SBRT plan (27 Gy/3, support.synthetic) whose analytic cord maximum is 17 Gy
    ("pass") or 23 Gy ("fail") against the 20.3 Gy limit; CT slices without extension
    beside it. The cord alone is contoured (:func:`support.synthetic.spine_datasets`)."""
    out = write_spine_plan(folder, kind, patient_id=patient, label=label, **parts)
    for k in range(ct_slices):
        write_ct_slice(folder / f"CT{k:03d}", patient)
    return out


def write_ct_slice(path: Path, patient: str) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Modality, ds.PatientID = "CT", patient
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 15, 1, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.zeros((4, 4), np.int16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def facts_file(path: Path, patients: list[str], **overrides: str) -> Path:
    """A facts CSV giving FACTS (with overrides) to each patient."""
    facts = {**FACTS, **overrides}
    lines = ["patient_id," + ",".join(facts)]
    lines += [p + "," + ",".join(facts.values()) for p in patients]
    path.write_text("\n".join(lines) + "\n")
    return path


# Workers given to rtcheck.batch.run_batch(worker=...); module-level, so that worker
# processes (fork server, spawn) and Dask can import them by name.

def crashing_check(task: B.PlanTask) -> dict:
    """Kills its worker process on the plan labelled CRASH, like a segfault would."""
    if task.group.plan_label == "CRASH":
        os._exit(11)
    return B.check_one(task)


def raising_check(task: B.PlanTask) -> dict:
    """Raises (instead of returning an ERROR record) on the plan labelled RAISE."""
    if task.group.plan_label == "RAISE":
        raise ValueError("something broke")
    return B.check_one(task)
