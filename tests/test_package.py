"""The package installs, imports and exposes its command line."""

from click.testing import CliRunner

import rtcheck
from rtcheck.cli import main


def test_version_matches_cli():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert rtcheck.__version__ in result.output


def test_help_lists_usage():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "rtcheck" in result.output.lower()


def test_every_subpackage_is_installed():
    """A non-editable install ships only the packages pyproject.toml lists: every folder of
    src/rtcheck with an __init__.py must be there (rtcheck.checker.evaluators was once missing)."""
    import sys
    from pathlib import Path

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {"rtcheck." + ".".join(p.parent.relative_to(root / "src" / "rtcheck").parts)
             for p in (root / "src" / "rtcheck").rglob("__init__.py")
             if p.parent != root / "src" / "rtcheck"}
    assert found <= listed, found - listed
