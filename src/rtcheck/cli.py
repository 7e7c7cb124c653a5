"""The ``rtcheck`` command line.

Each sub-command lives in its own module and is registered here. Exit codes are part of the
contract (see the README): 0 ok, 1 a constraint failed, 2 bad input or usage, 3 something
asked for could not be evaluated, 4 some plans of a batch errored.
"""

from __future__ import annotations

import click

from rtcheck import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rtcheck")
def main() -> None:
    """Check radiotherapy plans (DICOM-RT) against planning constraints.

    \b
    Typical use:
      rtcheck dvh PLAN_FOLDER             DVH metrics of every structure
      rtcheck check PLAN_FOLDER           the plan against the bone-metastasis rules
      rtcheck convert 30Gy/10 --alpha-beta 2   BED and EQD2 of a scheme
    """

from rtcheck.cli_protocols import protocols  # noqa: E402

main.add_command(protocols)

from rtcheck.cli_dvh import dvh  # noqa: E402

main.add_command(dvh)

from rtcheck.cli_batch import batch  # noqa: E402

main.add_command(batch)

from rtcheck.cli_check import check_command  # noqa: E402

main.add_command(check_command)

from rtcheck.cli_convert import convert  # noqa: E402

main.add_command(convert)
