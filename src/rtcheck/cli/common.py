"""What every ``rtcheck`` command shares: the one way to fail on the command line.

A command's bad-input path raises :class:`CommandError`; click prints it as one line
(``rtcheck: error: FILE: the problem``) on standard error and exits with code 2, the code of
click's own usage errors. Light on purpose (click only): ``rtcheck --help`` and ``rtcheck
convert`` import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any, NoReturn

import click

from rtcheck.files import looks_like_url

if TYPE_CHECKING:
    from rtcheck.model import PlanData

#: Exit code of bad input or usage (click's usage errors use it too).
EXIT_USAGE = 2


class CommandError(click.ClickException):
    """Bad input: one line naming the file (or option) and the problem, exit code 2.

    Raise it anywhere under a command; click's ``main`` shows it and exits, with no traceback.
    """

    exit_code = EXIT_USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        """Print ``rtcheck: error: MESSAGE`` (to standard error unless ``file``)."""
        message = self.format_message()
        if file is None:
            click.echo(f"rtcheck: error: {message}", err=True)
        else:
            click.echo(f"rtcheck: error: {message}", file=file)


# --------------------------------------------------------------- one-line usage errors


def usage_error_line(exc: click.UsageError, command: str | None = None) -> str:
    """One line for a click usage error: ``--vertebral-level 'T3-T13': the problem`` for a bad
    value (an option of :class:`RTCheckParamType` names the value, unless the problem already
    quotes it), ``--format: 'x' is not one of ...`` for click's own types, click's message
    otherwise, with ``(see 'rtcheck COMMAND --help')`` for a usage mistake."""
    if isinstance(exc, click.BadParameter):
        param = exc.param
        name = exc.param_hint if isinstance(exc.param_hint, str) else None
        if name is None and param is not None:
            if isinstance(param, click.Option) and param.opts:
                name = max(param.opts, key=len)
            else:
                name = (param.name or param.human_readable_name or "").upper()
        value = getattr(exc, "rtcheck_value", None)
        message = " ".join(exc.message.split())
        if name is None:
            return message
        if value is not None and repr(value) not in message:
            return f"{name} {value!r}: {message}"
        return f"{name}: {message}"
    message = " ".join(exc.format_message().split())
    return f"{message} (see 'rtcheck {command} --help')" if command else message


class OneLineCommand(click.Command):
    """A command whose usage errors (bad option values, unknown options, missing arguments)
    are one line, ``rtcheck: error: ...``, exit 2, like :class:`CommandError`, instead of
    click's three-line usage block."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise CommandError(usage_error_line(exc, info_name or self.name)) from exc


class RTCheckParamType(click.ParamType):
    """A click type whose bad value is reported as ``--option 'VALUE': the problem``."""

    def fail_value(self, value: Any, reason: str, param: click.Parameter | None,
                   ctx: click.Context | None) -> NoReturn:
        exc = click.BadParameter(reason, ctx=ctx, param=param)
        exc.rtcheck_value = value  # type: ignore[attr-defined]
        raise exc


class SchemeType(RTCheckParamType):
    """A fractionation scheme (``30Gy/10``, ``10x3Gy``...) -> :class:`rtcheck.radiobiology.Scheme`."""

    name = "scheme"

    def convert(self, value, param, ctx):
        from rtcheck.radiobiology import Scheme, parse_scheme

        if isinstance(value, Scheme):
            return value
        try:
            return parse_scheme(value)
        except ValueError as exc:
            self.fail_value(value, str(exc), param, ctx)


class RoleValueType(RTCheckParamType):
    """``ROLE=VALUE`` -> ``(role, value)``; ``number=True`` makes VALUE a float."""

    name = "role=value"

    def __init__(self, expected: str, number: bool = False) -> None:
        self.expected = expected
        self.number = number

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        key, sep, text = str(value).partition("=")
        key, text = key.strip(), text.strip()
        result: Any = text
        ok = bool(sep and key and text)
        if ok and self.number:
            try:
                result = float(text)
            except ValueError:
                ok = False
        if not ok:
            self.fail_value(value, f"expected {self.expected}", param, ctx)
        return key, result


class MetricType(RTCheckParamType):
    """A DVH metric (``D95%[Gy]``, ``V20Gy[cc]``...), checked by
    :func:`rtcheck.dvh.parse_metric`; the text is kept (it names the column)."""

    name = "metric"

    def convert(self, value, param, ctx):
        from rtcheck.errors import RTCheckError

        try:
            from rtcheck.dvh import parse_metric

            parse_metric(value)
        except (RTCheckError, ValueError) as exc:
            self.fail_value(value, str(exc), param, ctx)
        return value


class VertebralLevelType(RTCheckParamType):
    """A vertebral level or span (``T4``, ``T3-T5``), checked by
    :func:`rtcheck.rules.protocols.parse_vertebral_level`; the text is kept."""

    name = "level"

    def convert(self, value, param, ctx):
        from rtcheck.rules.protocols import parse_vertebral_level

        parts = [t.strip() for t in str(value).split("-")]
        if len(parts) not in (1, 2):
            self.fail_value(value, "give one level (T4) or a span (T3-T5)", param, ctx)
        try:
            for part in parts:
                parse_vertebral_level(part)
        except ValueError as exc:
            self.fail_value(value, str(exc), param, ctx)
        return value


# ------------------------------------------------------------------ atomic output


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:class:`rtcheck.files.atomic_path`); a failure (disk
    full, folder read-only...) is :class:`CommandError`: one line, exit 2, the old file kept."""
    from rtcheck.files import write_text_atomic as write

    try:
        write(path, text)
    except OSError as exc:
        raise CommandError(f"{path}: cannot write the output ({exc.strerror or exc})") from exc


# --- Loading a plan as PATH / --plan / --structures / --dose say; writing -o ------------

#: Key of the --dose-summation value in the click context's ``meta`` (for commands that
#: take the option without a parameter of their own: ``expose_value=False``).
DOSE_SUMMATION_META = "rtcheck.dose_summation"
DOSE_SUMMATION_HELP = ("Override the RTDOSE's DoseSummationType: PLAN = the stored dose is the "
                       "whole course (never multiplied by the fractions; e.g. Pinnacle exports "
                       "label whole-course doses FRACTION), FRACTION = it is one fraction "
                       "(multiplied by the plan's fractions). Recorded in the report.")
DOSE_FILES_HELP = ("RTDOSE file; repeat it for BEAM doses (one file per beam, summed): "
                   "--dose RD1.dcm --dose RD2.dcm.")


def remember_dose_summation(ctx: click.Context, param: click.Parameter, value):
    """Click callback: keep --dose-summation in the context for :func:`load_from_cli`."""
    ctx.meta[DOSE_SUMMATION_META] = value.upper() if value else None
    return value.upper() if value else None


def dose_summation_option(expose_value: bool = True):
    """The shared ``--dose-summation [PLAN|FRACTION]`` option (case-insensitive)."""
    return click.option("--dose-summation", "dose_summation",
                        type=click.Choice(["PLAN", "FRACTION"], case_sensitive=False),
                        default=None, expose_value=expose_value,
                        callback=remember_dose_summation, help=DOSE_SUMMATION_HELP)


def load_from_cli(paths: tuple[str, ...], plan: str | None, structures: str | None,
                  dose: str | Sequence[str] | None, dose_summation: str | None = None, *,
                  deidentify: bool = False, contours: str = "all") -> PlanData:
    """Load a plan as the commands' PATH / --plan / --structures / --dose /
    --dose-summation options say. ``dose`` is one RTDOSE file or several (BEAM doses: the
    option is repeatable).

    ``dose_summation`` defaults to the --dose-summation value of the running click command
    (see :func:`dose_summation_option`), so every command that declares the option gets it.
    With ``deidentify``, an error message is de-identified (it may list every plan found:
    :func:`rtcheck.report.deidentified_message`). ``contours`` as for
    :func:`rtcheck.dicom.load_plan` (``"when_used"`` for a check).
    """
    from rtcheck.dicom import load_plan
    from rtcheck.errors import RTCheckError

    if dose_summation is None:
        ctx = click.get_current_context(silent=True)
        dose_summation = ctx.meta.get(DOSE_SUMMATION_META) if ctx is not None else None
    doses = [dose] if isinstance(dose, str) else list(dose or ())
    if not paths and not (structures and doses):
        raise CommandError("give a PATH (folder or files), or both --structures and --dose")
    try:
        return load_plan(list(paths) if paths else None, plan=plan, structures=structures,
                         dose=(doses[0] if len(doses) == 1 else doses) or None,
                         dose_summation=dose_summation, contours=contours)
    except RTCheckError as exc:
        if deidentify:
            from rtcheck.report import deidentified_message

            raise CommandError(deidentified_message(
                str(exc), [*paths, *([structures] if structures else []), *doses])) from exc
        raise CommandError(str(exc)) from exc


def check_output(path: str | None) -> None:
    """Exit 2 with one line naming ``--output`` when it cannot be written (its folder missing
    or read-only, a folder of that name, a read-only file): checked before any work."""
    if path:
        from rtcheck.batch import output_file_problem

        problem = output_file_problem(path)
        if problem:
            raise CommandError(f"{path}: {problem}")


def write_output(path: str, text: str) -> None:
    """Write ``--output`` atomically (a temporary file in its folder, then renamed: an
    interrupted run never leaves half a file); a failure (disk full...) is one line and
    exit 2, no traceback, the old file kept."""
    write_text_atomic(path, text)


# ------------------------------------------------------------- plans from a PACS (DICOMweb)


class PathOrStudyURL(click.Path):
    """An existing file or folder, as ``click.Path(exists=True)``, or a DICOMweb study URL
    (``http://host:8042/dicom-web/studies/UID``), checked here and kept as text: the command
    retrieves it with :func:`local_paths`. A malformed URL is one line, exit 2."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and looks_like_url(value):
            from rtcheck.dicomweb import DICOMwebError, parse_study_url

            try:
                parse_study_url(value)
            except DICOMwebError as exc:
                raise CommandError(str(exc)) from exc
            return value
        return super().convert(value, param, ctx)


#: Help of --download-dir (check, dvh, batch).
DOWNLOAD_DIR_HELP = ("With a DICOMweb study URL to read: keep the retrieved RT objects in "
                     "DIR/STUDY_UID/ (created) instead of a temporary folder removed at exit.")


#: Key of the --download-dir value in the click context's ``meta`` (read by local_paths).
DOWNLOAD_DIR_META = "rtcheck.download_dir"


def download_dir_option():
    """The shared ``--download-dir DIR`` option of the commands whose PATH may be a URL. It
    is not a parameter of the command function: :func:`local_paths` reads it from the click
    context (as --dose-summation), so adding it changes no command's signature."""
    return click.option("--download-dir", metavar="DIR", default=None, expose_value=False,
                        type=click.Path(file_okay=False, path_type=str), help=DOWNLOAD_DIR_HELP,
                        callback=lambda ctx, _p, v: ctx.meta.update({DOWNLOAD_DIR_META: v}))


def local_paths(paths: tuple[str, ...] | list[str], download_dir: str | None = None, *,
                deidentify: bool = False) -> tuple[str, ...]:
    """``paths`` with every DICOMweb study URL replaced by the folder its RT objects were
    retrieved into (:func:`rtcheck.dicomweb.study_folder`); files and folders are kept.

    ``download_dir`` defaults to the command's --download-dir (:func:`download_dir_option`).
    A temporary folder lives until the running command ends (the click context closes it).
    A note on standard error says what was retrieved. A study that cannot be retrieved is
    :class:`CommandError`: one line naming the URL (with ``deidentify``, its StudyInstanceUID
    replaced by ``[study UID]``).
    """
    if not any(looks_like_url(p) for p in paths):
        return tuple(paths)  # files and folders only: no DICOMweb client to import
    from rtcheck.dicomweb import DICOMwebError, hide_study_uid, parse_study_url, study_folder

    out = []
    ctx = click.get_current_context()
    if download_dir is None:
        download_dir = ctx.meta.get(DOWNLOAD_DIR_META)
    for path in paths:
        if not looks_like_url(path):
            out.append(path)
            continue
        try:
            url = parse_study_url(path)
            study = ctx.with_resource(study_folder(url, download_dir))
        except DICOMwebError as exc:
            raise CommandError(hide_study_uid(str(exc)) if deidentify else str(exc)) from exc
        shown = hide_study_uid(url.shown) if deidentify else url.shown
        click.echo(f"rtcheck: note: retrieved {study.summary()} from {shown}"
                   + ("" if download_dir is None or deidentify else f" into {study.folder}"),
                   err=True)
        out.append(str(study.folder))
    return tuple(out)
