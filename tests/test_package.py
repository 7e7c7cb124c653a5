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
