"""The command line starts light, and fails one way.

Startup is checked by what a whole ``python -X importtime -m rtcheck ...`` process imports (a
deterministic check, not a timing): ``--help``, ``--version`` and ``convert`` do not import
pydicom, matplotlib, scipy nor the checker; only ``convert`` imports numpy (through
:mod:`rtcheck.radiobiology`, which uses it at module level).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import rtcheck
from rtcheck.cli import COMMANDS, main
from rtcheck.cli.common import CommandError

HEAVY = ("numpy", "pydicom", "matplotlib", "scipy")


def imported_modules(*args: str) -> set[str]:
    """The modules a whole ``python -X importtime -m rtcheck ARGS`` process imports."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "rtcheck", *args],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
             if line.startswith("import time:") and line.count("|") == 2}
    assert "rtcheck.cli" in names, proc.stderr[-2000:]
    return names


def top_level(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


@pytest.mark.parametrize("args", [("--help",), ("--version",)], ids=["help", "version"])
def test_help_and_version_import_nothing_heavy(args):
    names = imported_modules(*args)
    assert not top_level(names) & set(HEAVY), sorted(top_level(names) & set(HEAVY))
    # no sub-command module either: the listing is static
    assert not {n for n in names if n.startswith("rtcheck.cli_") and n != "rtcheck.cli.common"}


def test_convert_imports_only_what_it_uses():
    names = imported_modules("convert", "30Gy/10", "--alpha-beta", "2")
    heavy = top_level(names) & {"pydicom", "matplotlib", "scipy"}
    assert not heavy, sorted(heavy)
    # numpy is allowed: rtcheck.radiobiology imports it at module level
    assert not names & {"rtcheck.dicom", "rtcheck.checker", "rtcheck.dvh", "rtcheck.batch",
                        "rtcheck.report", "rtcheck.cli.dvh", "rtcheck.cli.check"}


def test_import_rtcheck_is_light():
    code = ("import sys, rtcheck; heavy = [m for m in ('numpy', 'pydicom', 'matplotlib', "
            "'scipy', 'rtcheck.checker') if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_public_api_resolves_lazily():
    from rtcheck import RTCheckError, check, eqd2, load_plan, parse_scheme  # noqa: F401

    for name in rtcheck.__all__:
        assert getattr(rtcheck, name) is not None, name
    assert set(rtcheck.__all__) <= set(dir(rtcheck))
    assert rtcheck.radiobiology.eqd2 is eqd2  # sub-modules too
    with pytest.raises(AttributeError):
        rtcheck.no_such_name  # noqa: B018


def test_static_command_table_matches_the_commands():
    ctx = click.Context(main)
    assert main.list_commands(ctx) == sorted(COMMANDS)
    assert all(name in main.commands for name in COMMANDS)  # registered, imported or not
    for name, (_module, _attr, short) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        assert short == command.get_short_help_str(1000), name


def test_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in result.output


def test_command_error_is_one_line_exit_2():
    @click.command()
    def broken():
        raise CommandError("plan.dcm: not a DICOM file")

    result = CliRunner().invoke(broken, [])
    assert result.exit_code == 2
    assert result.output == "rtcheck: error: plan.dcm: not a DICOM file\n"


@pytest.mark.parametrize("args", [
    ["convert", "30Gy/10"],                      # bad value: CommandError
    ["convert", "30Gy/10", "--alpha-beta"],      # click usage error, made one line
    ["protocols", "show", "no-such-protocol"],   # bad input
])
def test_bad_input_is_one_line_exit_2(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("rtcheck: error: "), result.output


def test_click_usage_errors_keep_exit_2():
    assert CliRunner().invoke(main, ["no-such-command"]).exit_code == 2
    assert CliRunner().invoke(main, ["dvh", "--no-such-option"]).exit_code == 2


def test_check_json_imports_only_what_it_uses(tmp_path):
    """``check --format json`` needs the report's text formats, not its HTML or batch rooms
    (the modules a whole process holds at exit: ``-X importtime`` does not list the ones
    imported through ``importlib``)."""
    from support import synthetic as syn

    folder = tmp_path / "plan"
    syn.write_spine_plan(folder, "pass")
    code = ("import sys\nfrom rtcheck.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    sys.stderr.write('MODULES ' + ' '.join(sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code, "check", str(folder), "--indication",
                           "pain", "--site", "spine", "--vertebral-level", "T8", "--format",
                           "json"], capture_output=True, text=True, timeout=120, check=False)
    names = set(proc.stderr.rsplit("MODULES ", 1)[-1].split())
    assert "rtcheck.report.formats" in names, proc.stderr[-2000:]
    # nor numpy.ma, which numpy's unique and median import on first use (12 ms)
    assert not {"rtcheck.report.html", "rtcheck.report.batch_index", "rtcheck.dicomweb",
                "jinja2", "matplotlib", "numpy.ma"} & names


def test_the_collector_is_back_on_after_an_in_process_run():
    """One-shot commands run without the cyclic garbage collector (a faster start); a
    caller running them in-process (CliRunner, a script) gets it back on."""
    import gc

    assert gc.isenabled()
    result = CliRunner().invoke(main, ["convert", "30Gy/10", "--alpha-beta", "2"])
    assert result.exit_code == 0, result.output
    assert gc.isenabled()
    seen = []
    probe = click.Command("probe", callback=lambda: seen.append(gc.isenabled()))
    from rtcheck.cli import LONG_RUNNING, LazyGroup

    group = LazyGroup("g", lazy_commands={})
    group.add_command(probe, "probe")
    CliRunner().invoke(group, ["probe"])
    assert seen == [False] and gc.isenabled()
    for name in LONG_RUNNING:  # batch and serve keep it through their run
        group.add_command(click.Command(name, callback=lambda: seen.append(gc.isenabled())),
                          name)
        CliRunner().invoke(group, [name])
    assert seen == [False, True, True]


def test_a_one_shot_command_ends_fast_with_its_output_and_exit_handlers(tmp_path):
    """Run as the program, a one-shot command ends without the interpreter's teardown: its
    exit code, its whole standard output (through a pipe), the files it wrote and the exit
    handlers (temporary folders) are those of an ordinary exit."""
    import json

    from support import synthetic as syn

    folder = tmp_path / "plan"
    syn.write_spine_plan(folder, "pass")
    args = ["check", str(folder), "--indication", "pain", "--site", "spine",
            "--vertebral-level", "T8", "--format", "json"]
    expected = CliRunner().invoke(main, args)
    code = "\n".join([
        "import atexit, sys, tempfile",
        "kept = tempfile.TemporaryDirectory(prefix='rtcheck-exit-test-')",
        "open(kept.name + '/x', 'w').close()",
        "sys.stderr.write('TEMP ' + kept.name + chr(10))",
        "atexit.register(lambda: sys.stderr.write('exit handler ran' + chr(10)))",
        "from rtcheck.cli import main",
        "main()",
    ])
    proc = subprocess.run([sys.executable, "-c", code, *args, "-o", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == expected.exit_code in (1, 3, 5), (expected.output, proc.stderr)
    assert (tmp_path / "r.json").exists(), proc.stderr
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == \
        json.loads(expected.stdout)["verdict"]
    assert "exit handler ran" in proc.stderr
    temp = proc.stderr.split("TEMP ", 1)[1].split("\n", 1)[0]
    assert not Path(temp).exists()  # its finalizer ran
    # a large output, whole through a pipe
    proc = subprocess.run([sys.executable, "-m", "rtcheck", "dvh", str(folder), "--format",
                           "json"], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and json.loads(proc.stdout)["structures"]
