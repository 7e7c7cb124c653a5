"""The command line's parameter types, several --dose files, and atomic outputs (issue 11).

- a bad scheme, ROLE=VALUE pair, metric or vertebral level is one line on standard error,
  naming the option and the value, exit 2 (no click usage block);
- ``--dose`` is repeatable: the BEAM doses of a plan, one file per beam;
- ``-o`` / ``--plot`` are written to a temporary file then renamed: an interrupted write
  leaves the old file as it was and no temporary file.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from support import synthetic as syn

from rtcheck.cli import main
from rtcheck.cli.common import (
    MetricType,
    OneLineCommand,
    RoleValueType,
    SchemeType,
    VertebralLevelType,
    write_text_atomic,
)
from rtcheck.files import atomic_path

FRAME = syn.make_uid("cli-params", "frame")
ZS = syn.planes(-6, 6, 3)


def dose_field(x, y, z):
    return 2.0 + 0.01 * (x + y + z)


def write_case(folder: Path, *, summation: str = "PLAN", beams: int = 1) -> dict:
    """Plan + structures + dose(s) in ``folder`` (BEAM: one RTDOSE per beam)."""
    folder.mkdir(parents=True, exist_ok=True)
    rs = syn.structure_set_dataset({"PTV": syn.sphere(0, 0, 0, 5, ZS)}, types={"PTV": "PTV"},
                                   frame_uid=FRAME)
    rp = syn.plan_dataset("PARAMS", 3, 6.0, beams=syn.default_beams((0, 90, 180)[:beams]),
                          structure_set_uid=rs.SOPInstanceUID, frame_uid=FRAME)
    out = {"plan": syn.write(rp, folder / "RP.dcm"),
           "structures": syn.write(rs, folder / "RS.dcm"), "doses": []}
    numbers = [b.BeamNumber for b in rp.BeamSequence] if summation == "BEAM" else [None]
    for n in numbers:
        rd = syn.dose_dataset_from_function(dose_field, (-10, -10, -9), (10, 10, 9), (2, 2, 3),
                                            summation=summation, plan_uid=rp.SOPInstanceUID,
                                            beam_number=n, frame_uid=FRAME)
        out["doses"].append(syn.write(rd, folder / f"RD_{n or 'plan'}.dcm"))
    return out


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> dict:
    return write_case(tmp_path_factory.mktemp("plan"))


def one_error_line(args: list[str]) -> str:
    """Run ``rtcheck ARGS``: exit 2, nothing on stdout, one line on stderr; return it."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rtcheck: error: ") and "Usage:" not in result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# ------------------------------------------------------------------ parameter types


@pytest.mark.parametrize("command, option, value", [
    ("check", "--vertebral-level", "T13"),
    ("check", "--vertebral-level", "T3-T13"),
    ("check", "--vertebral-level", "T3-T4-T5"),
    ("check", "--vertebral-level", "X2"),
    ("check", "--map", "spinal_cord"),
    ("check", "--map", "=MOELLE"),
    ("check", "--alpha-beta", "spinal_cord=two"),
    ("check", "--alpha-beta", "3"),
    ("dvh", "--metric", "D95"),
    ("dvh", "--metric", "V20Gy"),
    ("dvh", "--metric", "nonsense"),
])
def test_bad_value_is_one_line_naming_option_and_value(case, command, option, value):
    line = one_error_line([command, case["plan"].parent, option, value])
    assert option in line and repr(value) in line, line


def test_bad_scheme_is_one_line():
    line = one_error_line(["convert", "30Gy/2.5", "--alpha-beta", "2"])
    assert "SCHEME" in line and "'30Gy/2.5'" in line


def test_click_usage_mistakes_are_one_line_too(case):
    for command in ("check", "dvh"):
        line = one_error_line([command, case["plan"].parent, "--no-such-option"])
        assert "--no-such-option" in line and f"rtcheck {command} --help" in line
        line = one_error_line([command, case["plan"].parent, "--format", "xml"])
        assert "--format" in line and "'xml'" in line
    line = one_error_line(["batch", case["plan"].parent / "missing"])
    assert "ARCHIVE" in line and "missing" in line
    line = one_error_line(["batch", case["plan"].parent, "--jobs", "0"])
    assert "--jobs" in line


def test_good_values_reach_the_command():
    seen = {}

    @click.command(cls=OneLineCommand)
    @click.option("--scheme", type=SchemeType())
    @click.option("--map", "maps", type=RoleValueType("ROLE=NAME"), multiple=True)
    @click.option("--alpha-beta", type=RoleValueType("ROLE=VALUE", number=True),
                  multiple=True)
    @click.option("--metric", type=MetricType(), multiple=True)
    @click.option("--level", type=VertebralLevelType())
    def cmd(**kwargs):
        seen.update(kwargs)

    result = CliRunner().invoke(cmd, ["--scheme", "10 x 3 Gy", "--map", "spinal_cord = MOELLE",
                                      "--alpha-beta", "spinal_cord=2", "--metric", "D95%[Gy]",
                                      "--level", "T3-T5"])
    assert result.exit_code == 0, result.output
    assert (seen["scheme"].total_gy, seen["scheme"].fractions) == (30.0, 10)
    assert seen["maps"] == (("spinal_cord", "MOELLE"),)
    assert seen["alpha_beta"] == (("spinal_cord", 2.0),)
    assert seen["metric"] == ("D95%[Gy]",)
    assert seen["level"] == "T3-T5"


def test_check_still_refuses_a_role_mapped_twice(case):
    line = one_error_line(["check", case["plan"].parent, "--map", "spinal_cord=A",
                           "--map", "spinal_cord=B"])
    assert "twice" in line


# ----------------------------------------------------------------- several --dose


def test_dose_takes_several_beam_files(tmp_path):
    files = write_case(tmp_path / "beam", summation="BEAM", beams=2)
    assert len(files["doses"]) == 2
    args = ["dvh", files["plan"], "--structures", files["structures"], "--format", "json"]
    for d in files["doses"]:
        args += ["--dose", d]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert sorted(Path(f).name for f in doc["dose"]["files"]) == ["RD_1.dcm", "RD_2.dcm"]
    # the same dose as the folder's (both beams summed), not one beam
    folder = CliRunner().invoke(main, ["dvh", str(tmp_path / "beam"), "--format", "json"])
    assert folder.exit_code == 0, folder.output
    assert (json.loads(folder.stdout)["structures"][0]["metrics"]
            == doc["structures"][0]["metrics"])
    # one beam of two is refused, as the message that asks for --dose FILE... says
    one = CliRunner().invoke(main, [str(a) for a in args[:-2]])
    assert one.exit_code == 2 and "incomplete" in one.stderr


def test_check_takes_several_dose_files(tmp_path):
    files = write_case(tmp_path / "beam", summation="BEAM", beams=2)
    args = ["check", files["plan"], "--structures", files["structures"], "--format", "json"]
    for d in files["doses"]:
        args += ["--dose", d]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code != 2, result.output
    assert json.loads(result.stdout)["verdict"]


def test_one_dose_file_still_works(case):
    result = CliRunner().invoke(main, ["dvh", "--structures", str(case["structures"]),
                                       "--dose", str(case["doses"][0]), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("structure,")


# ------------------------------------------------------------------- atomic outputs


def no_temporary_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp" in p.name]


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "report.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        Path(tmp).write_text("half a rep")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and no_temporary_files(tmp_path)
    with atomic_path(target) as tmp:
        assert Path(tmp).parent == tmp_path and tmp.endswith(".txt")
        Path(tmp).write_text("new")
    assert target.read_text() == "new" and no_temporary_files(tmp_path)


def test_write_text_atomic_keeps_the_mode(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("{}")
    target.chmod(0o640)
    write_text_atomic(str(target), "[]")
    assert target.read_text() == "[]" and (target.stat().st_mode & 0o777) == 0o640


@pytest.mark.parametrize("command", ["dvh", "check"])
def test_interrupted_output_leaves_the_old_file(case, tmp_path, monkeypatch, command):
    target = tmp_path / "out.json"
    target.write_text("the old report\n")
    real_write = Path.write_text
    real_open = open

    class Killed(Exception):
        pass

    class HalfFile:
        """A file that takes half of what is written, then the process is 'killed'."""

        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            self.f.write(text[: len(text) // 2])
            self.f.flush()
            raise Killed

    def opener(path, *args, **kwargs):
        f = real_open(path, *args, **kwargs)
        if str(path).startswith(str(tmp_path)) and "w" in (args[0] if args else kwargs.get(
                "mode", "r")):
            return HalfFile(f)
        return f

    import builtins

    monkeypatch.setattr(builtins, "open", opener)
    def write_text(self, *a, **k):
        assert self != target, "the output is written in place, not atomically"
        return real_write(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", write_text)
    result = CliRunner().invoke(main, [command, str(case["plan"].parent), "--format", "json",
                                       "-o", str(target)])
    monkeypatch.undo()
    assert isinstance(result.exception, Killed), (result.output, result.exception)
    assert target.read_text() == "the old report\n"
    assert no_temporary_files(tmp_path)


def test_output_is_written_whole(case, tmp_path):
    target = tmp_path / "out.json"
    target.write_text("the old report\n")
    result = CliRunner().invoke(main, ["dvh", str(case["plan"].parent), "--format", "json",
                                       "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["structures"]
    assert no_temporary_files(tmp_path)


def test_interrupted_plot_leaves_the_old_file(case, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from rtcheck.report import plots as plotting

    target = tmp_path / "dvh.png"
    target.write_bytes(b"old plot")

    def half_plot(dvhs, path, title=None, dpi=120):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plotting, "save_dvh_plot", half_plot)
    result = CliRunner().invoke(main, ["dvh", str(case["plan"].parent), "--plot", str(target)])
    assert result.exit_code == 2 and "cannot write the plot" in result.stderr
    assert target.read_bytes() == b"old plot" and no_temporary_files(tmp_path)


def test_plot_without_suffix_is_still_png(case, tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "dvh"
    result = CliRunner().invoke(main, ["dvh", str(case["plan"].parent), "--plot", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:4] == b"\x89PNG" and no_temporary_files(tmp_path)
