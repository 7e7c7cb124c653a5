"""The ``rtcheck`` command line.

Each sub-command lives in its own module, registered here by name and imported only when it
runs (or when its own ``--help`` is asked for): ``rtcheck --help``, ``--version`` and ``rtcheck
convert`` do not import numpy, pydicom or the checker. Exit codes are part of the contract
(see the README): 0 ok, 1 a constraint failed, 2 bad input or usage
(:class:`rtcheck.cli.common.CommandError`), 3 something asked for could not be evaluated,
4 some plans of a batch errored.

To add a command: write ``rtcheck/cli_NAME.py`` with a click command, and add a line to
:data:`COMMANDS` (its module, the command's attribute, and the first line of its help).
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

import click

from rtcheck import __version__

#: name -> (module, attribute, short help). The short help is the first paragraph of the
#: command's docstring (``rtcheck --help`` lists it without importing the module; a test
#: checks the two agree).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "batch": ("rtcheck.cli.batch", "batch",
              "Check every plan under ARCHIVE and stream one result per plan."),
    "budget": ("rtcheck.cli.budget", "budget",
               "The largest cord point maximum a new course may give, by number of fractions."),
    "check": ("rtcheck.cli.check", "check_command",
              "Check the plan in PATH against the protocols' rules."),
    "convert": ("rtcheck.cli.convert", "convert",
                ("BED and EQD2 of a fractionation scheme, iso-effective doses, and courses "
                 "summed in EQD2.")),
    "eqd2": ("rtcheck.cli.eqd2", "eqd2_command",
             "Write the plan's EQD2 (or BED) dose, prior courses added, as an RTDOSE."),
    "dvh": ("rtcheck.cli.dvh", "dvh", "DVH metrics of every structure of a plan."),
    "protocols": ("rtcheck.cli.protocols", "protocols",
                  "List the shipped protocols and their rules."),
    "serve": ("rtcheck.cli.serve", "serve",
              "A DICOM node that checks every plan it receives."),
}


#: Commands that run for hours over thousands of plans: they keep Python's cyclic garbage
#: collector; the others run once and exit, and run without it (see :meth:`LazyGroup.main`).
LONG_RUNNING = frozenset({"batch", "serve"})


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's sub-commands by name, each imported from its module on first access.

    ``name in commands`` and the listing need no import; ``commands[name]`` (click's
    ``get_command``) imports the module once. Commands added with ``add_command`` are kept
    as given.
    """

    def __init__(self, table: dict[str, tuple[str, str, str]]) -> None:
        self.table = dict(table)
        self.loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.loaded:
            if name not in self.table:
                raise KeyError(name)
            module_name, attr, _ = self.table[name]
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{module_name}.{attr} is not a click command")
            self.loaded[name] = command
        return self.loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self.loaded.pop(name, None)
        self.table.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self.loaded or name in self.table

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self.loaded, *self.table}))

    def __len__(self) -> int:
        return len({*self.loaded, *self.table})

    def short_help(self, name: str) -> str | None:
        """The static short help of a command not imported yet (else None)."""
        return None if name in self.loaded else self.table[name][2]


def _exit_now(done: SystemExit) -> None:
    """End the process with ``done``'s exit code, skipping the interpreter's teardown, when
    that is safe: the output flushed, the exit handlers run (temporary folders removed), no
    other thread alive. Otherwise return, and the ordinary exit follows.

    rtcheck's one-shot commands close every file they write (atomic writes) before they
    exit; the batch's sinks, which keep files open, belong to a long-running command.
    """
    code = done.code
    if code is None:
        code = 0
    if not isinstance(code, int) or threading.active_count() > 1:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: Python's own exit reports it
        return
    atexit._run_exitfuncs()  # what the ordinary exit runs first (weakref finalizers too)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on demand (click's "lazy loading" pattern):
    ``get_command`` resolves a name through :class:`LazyCommands`, ``list_commands`` and the
    ``--help`` listing come from the static table."""

    def __init__(self, *args, lazy_commands: dict[str, tuple[str, str, str]] | None = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        lazy = LazyCommands(lazy_commands or {})
        for name, command in self.commands.items():
            lazy[name] = command
        self.commands = lazy

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line with the cyclic garbage collector off (back on for the
        :data:`LONG_RUNNING` commands as soon as they are chosen, and when an in-process
        caller gets control back); a one-shot command run as the program ends without
        tearing the interpreter down.

        A one-shot command allocates most of its objects while importing numpy, pydicom and
        its own modules, and they all live to the end: the collector only walked them again
        and again (three generations, ~50 ms of a 0.8 s ``rtcheck check``, peak memory the
        same without it), and the interpreter's teardown then frees them one by one (~90
        ms) for a process that is ending. Reference counting still frees every array and
        dataset while the command runs.
        """
        # Called with the arguments (click's CliRunner, a script), the caller goes on: the
        # collector comes back. Called as the program (no arguments: sys.argv), it does not:
        # turning it on just before exit cost one more walk of every object (~35 ms).
        in_process = bool(args) or "args" in kwargs
        enabled = gc.isenabled()
        gc.disable()
        try:
            return super().main(*args, **kwargs)
        except SystemExit as done:
            if not in_process and not gc.isenabled():  # a one-shot command, as the program
                _exit_now(done)
            raise
        finally:
            if enabled and in_process:
                gc.enable()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LONG_RUNNING:
            gc.enable()  # (also keeps their exit the ordinary one: _exit_now is not for them)
        return self.commands.get(cmd_name)  # imports the command's module, once

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # no import

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command listing of ``--help``, from the static short help (no import)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            static = (self.commands.short_help(name)
                      if isinstance(self.commands, LazyCommands) else None)
            if static is not None:
                # a throw-away command shortens the static help exactly as click would
                rows.append((name, click.Command(name, help=static).get_short_help_str(limit)))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rtcheck")
def main() -> None:
    """Check radiotherapy plans (DICOM-RT) against planning constraints.

    \b
    Typical use:
      rtcheck dvh PLAN_FOLDER             DVH metrics of every structure
      rtcheck check PLAN_FOLDER           the plan against the bone-metastasis rules
      rtcheck convert 30Gy/10 --alpha-beta 2   BED and EQD2 of a scheme
    """
