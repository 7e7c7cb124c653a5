"""Hostile input, RTDOSE geometry and values, files: bad input names the file, exits 2.

One test per class of issue 10, parametrised over several examples:

- geometry that lies (orientation not orthonormal, pixel data longer or shorter than Rows x
  Columns x NumberOfFrames x BitsAllocated say, negative or non-finite doses, frame offsets
  with NaN or out of order, PixelSpacing and DoseGridScaling that are not sane);
- wrong VRs and unparsable numbers ('abc', 'sixty', '3.5', an unknown VR after a byte flip);
- files that are not regular files or not DICOM (a FIFO or device named *.dcm, a 24 MB
  zero-filled file): never opened or rejected at once, and listed as skipped;
- a seeded fuzz of byte flips and truncations: every outcome is a PlanData or an
  RTCheckError, never another exception.

Each example ends in an InputError whose path is the file (exit 2 on the command line,
message naming the file); never a traceback, never a silently shifted or rescaled dose.
"""

from __future__ import annotations

import copy
import os
import random
import signal
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from support import synthetic as syn

from rtcheck.cli import main
from rtcheck.dicom import load_plan, read_dose, scan
from rtcheck.errors import InputError, RTCheckError

FRAME = syn.make_uid("hostile-geometry", "frame")
ZS = syn.planes(-6, 6, 3)


@pytest.fixture(scope="module")
def small_plan():
    """A small plan: 27 Gy / 3, a PTV sphere and a cord, a 16-bit PLAN dose (11 x 11 x 7)."""
    rs = syn.structure_set_dataset({"PTV": syn.sphere(0, 0, 0, 5, ZS),
                                    "Cord": syn.cylinder(0, 8, 2, ZS)},
                                   types={"PTV": "PTV"}, frame_uid=FRAME)
    rp = syn.plan_dataset("HOSTILE", 3, 27.0, structure_set_uid=rs.SOPInstanceUID,
                          frame_uid=FRAME)
    rd = syn.dose_dataset_from_function(lambda x, y, z: 28.0 - 0.05 * (x * x + y * y),
                                        (-10, -10, -9), (10, 10, 9), (2, 2, 3), bits=16,
                                        plan_uid=rp.SOPInstanceUID, frame_uid=FRAME)
    return {"RP": rp, "RS": rs, "RD": rd}


def write(folder: Path, objs: dict) -> Path:
    with warnings.catch_warnings():  # pydicom warns when writing the invalid values planted
        warnings.simplefilter("ignore")
        syn.write_plan(folder, {k: copy.deepcopy(v) for k, v in objs.items()})
    return folder


def set_raw(ds, keyword: str, text: str | bytes, vr: str) -> None:
    """Store ``text`` as the raw value of ``keyword``, whatever its VR allows."""
    tag = Tag(keyword)
    data = text.encode("latin-1") if isinstance(text, str) else text
    if len(data) % 2:
        data += b" "
    ds[tag] = RawDataElement(tag, vr, len(data), data, 0, False, True)


def cli_dvh(*args) -> CliRunner:
    return CliRunner().invoke(main, ["dvh", *map(str, args)])


def assert_bad_input(folder: Path, name: str, pattern: str) -> None:
    """load_plan raises an InputError on ``folder/name`` matching ``pattern``; the CLI says
    it on one line and exits 2."""
    path = str(folder / name)
    with pytest.raises(InputError, match=pattern) as err:
        load_plan(folder)
    assert err.value.path == path, str(err.value)
    result = cli_dvh(folder)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output + result.stderr
    assert result.stderr.startswith(f"rtcheck: error: {path}: ")
    assert len(result.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------------------
# Geometry that lies
# --------------------------------------------------------------------------------------

def _pixels(rd) -> np.ndarray:
    return np.frombuffer(rd.PixelData, "<u2").astype(np.int64)


def _signed_negative(rd):
    values = _pixels(rd)
    values[:40] = -values.max() // 4  # a signed grid with dose < 0 near the cord
    rd.PixelRepresentation = 1
    rd.PixelData = values.astype("<i2").tobytes()


def _unsigned_read_as_signed(rd):
    rd.PixelRepresentation = 1  # values above 32767 become negative


def _float_pixels(bad: float):
    def mutate(rd):
        values = _pixels(rd).astype("<f4") * float(rd.DoseGridScaling)
        values[5] = bad
        del rd.PixelData
        rd.FloatPixelData = values.tobytes()
        del rd.DoseGridScaling
    return mutate


def _offsets(values):
    return lambda rd: set_raw(rd, "GridFrameOffsetVector", "\\".join(values), "DS")


GEOMETRY = {
    "orientation doubled": (lambda rd: setattr(rd, "ImageOrientationPatient",
                                               ["2", "0", "0", "0", "2", "0"]), "orthonormal"),
    "orientation sheared": (lambda rd: setattr(rd, "ImageOrientationPatient",
                                               ["1", "0", "0", "0.5", "0.8660254", "0"]),
                            "orthonormal"),
    "orientation short": (lambda rd: setattr(rd, "ImageOrientationPatient",
                                             ["0.9", "0", "0", "0", "1", "0"]), "orthonormal"),
    "pixel data longer": (lambda rd: setattr(rd, "PixelData", rd.PixelData + b"\0" * 242),
                          "pixel data holds .* bytes but"),
    "pixel data shorter": (lambda rd: setattr(rd, "PixelData", rd.PixelData[:-242]),
                           "truncated"),
    "BitsAllocated 8 for 16-bit data": (lambda rd: (setattr(rd, "BitsAllocated", 8),
                                                    setattr(rd, "BitsStored", 8),
                                                    setattr(rd, "HighBit", 7)),
                                        "disagree with the pixel data"),
    "BitsAllocated 32 for 16-bit data": (lambda rd: (setattr(rd, "BitsAllocated", 32),
                                                     setattr(rd, "BitsStored", 32),
                                                     setattr(rd, "HighBit", 31)), "truncated"),
    "BitsStored 12": (lambda rd: setattr(rd, "BitsStored", 12), "BitsStored 12"),
    "Rows one too many": (lambda rd: setattr(rd, "Rows", rd.Rows + 1), "truncated"),
    "Columns one too few": (lambda rd: setattr(rd, "Columns", rd.Columns - 1),
                            "disagree with the pixel data"),
    "NumberOfFrames one too few": (lambda rd: (setattr(rd, "NumberOfFrames",
                                                       rd.NumberOfFrames - 1),
                                               setattr(rd, "GridFrameOffsetVector",
                                                       rd.GridFrameOffsetVector[:-1])),
                                   "disagree with the pixel data"),
    "PixelRepresentation 2": (lambda rd: setattr(rd, "PixelRepresentation", 2),
                              "PixelRepresentation 2"),
    "signed grid, negative dose": (_signed_negative, "negative"),
    "unsigned data read as signed": (_unsigned_read_as_signed, "negative"),
    "float NaN voxel": (_float_pixels(float("nan")), "non-finite"),
    "float infinite voxel": (_float_pixels(float("inf")), "non-finite"),
    "float negative voxel": (_float_pixels(-5.0), "negative"),
    "frame offset NaN": (_offsets(["0", "3", "NaN", "9", "12", "15", "18"]), "non-finite"),
    "frame offset inf": (_offsets(["0", "3", "6", "inf", "12", "15", "18"]), "non-finite"),
    "frame offsets out of order": (_offsets(["0", "3", "9", "6", "12", "15", "18"]),
                                   "not monotonic"),
    "frame offsets repeated": (_offsets(["0", "3", "3", "9", "12", "15", "18"]),
                               "not monotonic|same position"),
    "PixelSpacing 0": (lambda rd: setattr(rd, "PixelSpacing", ["0", "2"]), "PixelSpacing"),
    "PixelSpacing negative": (lambda rd: setattr(rd, "PixelSpacing", ["2", "-2"]),
                              "PixelSpacing"),
    "PixelSpacing NaN": (lambda rd: set_raw(rd, "PixelSpacing", "NaN\\2", "DS"),
                         "PixelSpacing"),
    "ImagePositionPatient 1e30": (lambda rd: setattr(rd, "ImagePositionPatient",
                                                     ["1e30", "0", "0"]),
                                  "ImagePositionPatient"),
    "DoseGridScaling 0": (lambda rd: setattr(rd, "DoseGridScaling", "0"), "DoseGridScaling"),
    "DoseGridScaling -1": (lambda rd: setattr(rd, "DoseGridScaling", "-1"), "DoseGridScaling"),
    "DoseGridScaling 1e300": (lambda rd: set_raw(rd, "DoseGridScaling", "1e300", "DS"),
                              "DoseGridScaling"),
    "DoseGridScaling x 1e5": (lambda rd: setattr(rd, "DoseGridScaling",
                                                 f"{float(rd.DoseGridScaling) * 1e5:.6e}"),
                              "beyond any radiotherapy dose"),
    "DoseGridScaling inf": (lambda rd: set_raw(rd, "DoseGridScaling", "inf", "DS"),
                            "DoseGridScaling"),
    "DoseGridScaling NaN": (lambda rd: set_raw(rd, "DoseGridScaling", "NaN", "DS"),
                            "DoseGridScaling"),
}


@pytest.mark.parametrize("case", list(GEOMETRY))
def test_geometry_that_lies_is_bad_input(tmp_path, small_plan, case):
    mutate, pattern = GEOMETRY[case]
    objs = copy.deepcopy(small_plan)
    mutate(objs["RD"])
    assert_bad_input(write(tmp_path, objs), "RD.dcm", pattern)


def test_rounding_noise_below_zero_is_clipped_with_a_note(tmp_path, small_plan):
    objs = copy.deepcopy(small_plan)
    rd = objs["RD"]
    values = _pixels(rd) // 2
    values[:3] = -1  # -1 stored step: far below 0.1 % of the maximum
    rd.PixelRepresentation = 1
    rd.PixelData = values.astype("<i2").tobytes()
    rd.DoseGridScaling = f"{float(rd.DoseGridScaling) * 2:.9e}"
    data = load_plan(write(tmp_path, objs))
    assert float(data.dose.values.min()) == 0.0
    assert any("slightly negative" in n and "set to 0" in n for n in data.dose.notes)


def test_odd_pixel_count_with_its_pad_byte_is_accepted(tmp_path):
    # 8-bit data with an odd number of values carries one pad byte (PS3.5 7.1): not "longer".
    frames = np.full((1, 3, 3), 2.0)
    rd = syn.dose_dataset_from_frames(frames, (0, 0, 0), "HFS", (1, 1), (0,), bits=16)
    rd.BitsAllocated = rd.BitsStored = 8
    rd.HighBit = 7
    rd.DoseGridScaling = "0.01"
    rd.PixelData = bytes([200] * 9) + b"\0"
    dose = read_dose(syn.write(rd, tmp_path / "RD.dcm"))
    np.testing.assert_allclose(dose.values, 2.0)


# --------------------------------------------------------------------------------------
# Wrong VRs, unparsable numbers
# --------------------------------------------------------------------------------------

def _flip_vr(keyword_tag: bytes, vr: bytes):
    """Rewrite the VR of an element in the written file (a corrupted byte)."""
    def mutate_file(path: Path):
        blob = bytearray(path.read_bytes())
        at = blob.find(keyword_tag)
        assert at > 0
        blob[at + 4:at + 6] = vr
        path.write_bytes(bytes(blob))
    return mutate_file


UNPARSABLE = {
    "DoseGridScaling 'abc'": (lambda rd: set_raw(rd, "DoseGridScaling", "abc", "DS"), None,
                              "DoseGridScaling"),
    "Rows 'sixty'": (lambda rd: set_raw(rd, "Rows", b"sixty ", "US"), None, "Rows"),
    "Columns empty": (lambda rd: set_raw(rd, "Columns", b"", "US"), None, "Columns"),
    "NumberOfFrames '3.5'": (lambda rd: set_raw(rd, "NumberOfFrames", "3.5", "IS"), None,
                             "NumberOfFrames"),
    "NumberOfFrames '-7'": (lambda rd: set_raw(rd, "NumberOfFrames", "-7", "IS"), None,
                            "NumberOfFrames"),
    "NumberOfFrames 'seven'": (lambda rd: set_raw(rd, "NumberOfFrames", "seven", "IS"), None,
                               "NumberOfFrames"),
    "BitsAllocated 'x'": (lambda rd: set_raw(rd, "BitsAllocated", b"x\0", "US"), None,
                          "BitsAllocated"),
    "GridFrameOffsetVector 'a\\b'": (lambda rd: set_raw(rd, "GridFrameOffsetVector",
                                                         "a\\b\\c\\d\\e\\f\\g", "DS"), None,
                                      "GridFrameOffsetVector"),
    "unknown VR on DoseGridScaling": (None, _flip_vr(b"\x04\x30\x0e\x00DS", b"XZ"),
                                      "DoseGridScaling"),
    "unknown VR on Rows": (None, _flip_vr(b"\x28\x00\x10\x00US", b"QQ"), "Rows"),
    "unknown VR on GridFrameOffsetVector": (None, _flip_vr(b"\x04\x30\x0c\x00DS", b"ZZ"),
                                            "GridFrameOffsetVector"),
    "DoseGridScaling read as FD": (None, _flip_vr(b"\x04\x30\x0e\x00DS", b"FD"),
                                   "DoseGridScaling"),
    "Rows read as FD": (None, _flip_vr(b"\x28\x00\x10\x00US", b"FD"), "Rows"),
    "VR byte zeroed": (None, _flip_vr(b"\x04\x30\x0e\x00DS", b"\0\0"), ""),
}


@pytest.mark.parametrize("case", list(UNPARSABLE))
def test_wrong_vr_or_unparsable_number_is_bad_input_naming_the_attribute(tmp_path, small_plan,
                                                                        case):
    mutate, mutate_file, attribute = UNPARSABLE[case]
    objs = copy.deepcopy(small_plan)
    if mutate is not None:
        mutate(objs["RD"])
    folder = write(tmp_path, objs)
    if mutate_file is not None:
        mutate_file(folder / "RD.dcm")
    with pytest.raises(InputError) as err:
        load_plan(folder)
    # the file is named: as the error's path, or (a header no scan can read: the plan's
    # dose is missing) in the list of files that could not be read
    assert str(folder / "RD.dcm") in str(err.value) and attribute in err.value.message
    result = cli_dvh(folder)
    assert result.exit_code == 2 and "Traceback" not in result.output + result.stderr
    assert result.stderr.startswith("rtcheck: error: ") and str(folder / "RD.dcm") in \
        result.stderr


# --------------------------------------------------------------------------------------
# Files: not regular, not DICOM
# --------------------------------------------------------------------------------------

@pytest.fixture
def deadline():
    """Fail (instead of hanging the suite) when a test blocks for 30 s."""
    def expired(*_):
        raise TimeoutError("blocked: a non-regular file was opened?")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _fifo(path: Path) -> str:
    os.mkfifo(path)
    return "FIFO"


def _char_device(target: str):
    def make(path: Path) -> str:
        if not os.path.exists(target):
            pytest.skip(f"{target} not available")
        os.symlink(target, path)
        return "character device"
    return make


def _zero_filled(path: Path) -> str:
    with open(path, "wb") as f:
        f.truncate(24 * 1024 * 1024)
    return "not a DICOM file"


def _dicm_then_zeros(path: Path) -> str:
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        f.truncate(24 * 1024 * 1024)
    return "not a DICOM file"


def _header_then_zeros(path: Path, source: Path) -> str:
    with open(path, "wb") as f:
        f.write(source.read_bytes()[:600])
        f.truncate(24 * 1024 * 1024)
    return "zero-filled"


FILES = {"FIFO": _fifo, "/dev/zero": _char_device("/dev/zero"),
         "/dev/null": _char_device("/dev/null"), "24 MB of zeros": _zero_filled,
         "DICM then zeros": _dicm_then_zeros, "a DICOM header then zeros": _header_then_zeros}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
@pytest.mark.parametrize("case", list(FILES))
def test_files_that_are_not_regular_or_not_dicom_are_skipped_and_listed(tmp_path, small_plan,
                                                                       deadline, case):
    folder = write(tmp_path / "plan", small_plan)
    bad = folder / "RD_extra.dcm"
    maker = FILES[case]
    why = (maker(bad, folder / "RD.dcm") if maker is _header_then_zeros else maker(bad))
    start = time.monotonic()
    headers = scan(folder)  # listed, with why
    (listed,) = [h for h in headers if h.path == str(bad)]
    assert listed.error and why in listed.error
    data = load_plan(folder)  # the plan still loads; the skipped file is in the warnings
    assert data.dose is not None
    assert any(w.startswith(f"{bad}: skipped (") and why in w for w in data.warnings)
    with pytest.raises(InputError) as err:  # named explicitly: bad input
        load_plan(folder, dose=bad)
    assert err.value.path == str(bad) and why in err.value.message
    result = cli_dvh("--structures", folder / "RS.dcm", "--dose", bad)
    assert result.exit_code == 2 and result.stderr.startswith(f"rtcheck: error: {bad}: ")
    assert time.monotonic() - start < 5.0  # never 10 s parsing zeros


def test_a_non_dicom_file_not_named_like_dicom_is_still_ignored_silently(tmp_path, small_plan):
    folder = write(tmp_path / "plan", small_plan)
    (folder / "notes.txt").write_text("a note\n")
    (folder / "README").write_text("read me\n")
    assert all(h.error is None for h in scan(folder))
    assert not any("notes.txt" in w or "README" in w for w in load_plan(folder).warnings)


# --------------------------------------------------------------------------------------
# Fuzz: seeded byte flips and truncations, through the Python API
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["RD", "RP", "RS"])
def test_fuzzed_files_give_a_result_or_an_rtcheck_error(tmp_path, small_plan, deadline,
                                                         target):
    folder = write(tmp_path / "plan", small_plan)
    path = folder / f"{target}.dcm"
    original = path.read_bytes()
    rng = random.Random(f"hostile-{target}")
    for trial in range(25):
        blob = bytearray(original)
        if trial % 5 == 4:
            blob = blob[:rng.randrange(132, len(blob))]
        else:
            for _ in range(rng.choice((1, 2, 4, 8))):
                at = rng.randrange(132, len(blob))
                blob[at] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(blob))
        try:
            load_plan(folder)
        except RTCheckError as exc:
            assert str(exc).strip() and "\n" not in str(exc).split(":", 1)[0]
        # anything else propagates and fails the test
    path.write_bytes(original)
