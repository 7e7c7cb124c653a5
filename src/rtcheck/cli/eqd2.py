"""``rtcheck eqd2``: EQD2 (or BED) dose maps, courses accumulated, back to the planning system.

The numbers come from :mod:`rtcheck.accumulation`; the file from :mod:`rtcheck.dicom.write`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from rtcheck.cli.common import (
    CommandError,
    OneLineCommand,
    RoleValueType,
    check_output,
    load_from_cli,
)
from rtcheck.errors import RTCheckError


def registration_option(purpose: str):
    """``--registration FILE`` (repeatable), as ``rtcheck check`` and ``rtcheck eqd2`` take it."""
    return click.option(
        "--registration", "registrations", multiple=True,
        type=click.Path(exists=True, dir_okay=False),
        help=f"DICOM spatial registration (REG, rigid) relating a prior course's frame of "
             f"reference to this plan's ({purpose}); repeatable (a REG beside the prior plan "
             "is found without it).")


@click.command("eqd2", cls=OneLineCommand)
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=str))
@click.option("--plan", "plan", metavar="LABEL_OR_UID", help="Which plan, when PATH holds several.")
@click.option("--prior", "prior_paths", multiple=True, type=click.Path(exists=True),
              help="Prior course as DICOM (folder or files), repeatable: summed voxel by voxel.")
@registration_option("summed voxel by voxel")
@click.option("--alpha-beta", "alpha_beta", multiple=True, metavar="STRUCTURE=VALUE",
              type=RoleValueType("STRUCTURE=VALUE (Gy)", number=True),
              help="alpha/beta of a structure (Gy), repeatable; a voxel in several takes the "
                   "FIRST one given.")
@click.option("--default-alpha-beta", type=float, metavar="VALUE", required=True,
              help="alpha/beta (Gy) of every voxel outside those structures (required: rtcheck "
                   "has no default).")
@click.option("--quantity", type=click.Choice(["EQD2", "BED"]), default="EQD2",
              show_default=True)
@click.option("--model", type=click.Choice(["LQ", "LQ-L"]), default="LQ", show_default=True)
@click.option("--dt", type=float, metavar="GY",
              help="LQ-L transition dose per fraction (Gy), required with --model LQ-L.")
@click.option("--recovery", type=click.Choice(["none", "nieder2006"]), default="none",
              show_default=True,
              help="Discount each prior course by the time from its last fraction to this "
                   "plan's date. nieder2006: -25 % after >= 6 months, -50 % after >= 12 months "
                   "(an assumption cited with Nieder 2006, not a consensus; printed in the file).")
@click.option("--allow-uncovered", is_flag=True,
              help="Write the voxels a prior course's grid does not reach as 0 (stated in the "
                   "file's comment) instead of refusing.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="The RTDOSE to write (e.g. RD_EQD2.dcm).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="The summary printed.")
def eqd2_command(paths, plan, prior_paths, registrations, alpha_beta, default_alpha_beta,
                 quantity, model, dt, recovery, allow_uncovered, output, fmt):
    """Write the plan's EQD2 (or BED) dose, prior courses added, as an RTDOSE.

    Every voxel is converted with its own dose per fraction (voxel dose / the course's
    fractions) and the alpha/beta of the structure it lies in; prior courses (--prior) are
    read at this plan's voxels (same FrameOfReferenceUID, or a rigid REG) and added. The
    RTDOSE has new SOP and series UIDs, this plan's frame of reference, DoseType EFFECTIVE,
    DoseSummationType PLAN and a comment stating the model, alpha/beta map and courses: a
    planning system imports it as a reference dose.

    \b
    Examples:
      rtcheck eqd2 PLAN/ --alpha-beta SpinalCord=2 --default-alpha-beta 3 -o RD_EQD2.dcm
      rtcheck eqd2 sample_plans/reirradiation/course2-sbrt-27Gy3 \\
          --prior sample_plans/reirradiation/course1-30Gy10 \\
          --alpha-beta SpinalCord=2 --alpha-beta PTV=10 --default-alpha-beta 3 -o RD_EQD2.dcm
      rtcheck eqd2 PLAN/ --prior PRIOR/ --registration REG.dcm --default-alpha-beta 2 -o RD.dcm
    """
    check_output(output)
    try:
        summary = export_eqd2(load_from_cli(paths, plan, None, ()), prior_paths, registrations,
                              alpha_beta, default_alpha_beta, quantity, model, dt,
                              allow_uncovered, output, recovery)
    except (RTCheckError, ValueError) as exc:  # ValueError: a model parameter out of domain
        raise CommandError(str(exc)) from exc
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"Wrote {output}: {summary['description']}\n"
                   f"Largest value {summary['max_gy']:.2f} Gy; {summary['uncovered_nodes']} "
                   "voxel(s) outside a prior course's grid")
    sys.exit(0)


def export_eqd2(data, prior_paths, registrations, alpha_beta, default_alpha_beta, quantity,
                model, dt, allow_uncovered, output, recovery: str = "none") -> dict[str, Any]:
    """Accumulate and write; the summary (typed) for the command's output."""
    import numpy as np

    from rtcheck import accumulation as acc
    from rtcheck.checker.courses import read_priors, registrations_for
    from rtcheck.dicom import load_plan
    from rtcheck.dicom.write import rtdose_dataset, write_rtdose
    from rtcheck.errors import InputError
    from rtcheck.rules.roles import RoleMap

    dose, n = _usable_dose(data)
    prior_plans = [load_plan(p) for p in prior_paths]
    _refuse_overwriting_an_input(output, [data, *prior_plans])
    priors = read_priors(prior_plans, data, RoleMap.shipped(), {}, [])
    regs = registrations_for(registrations, priors, dose.frame_of_reference_uid)
    pairs = []
    for p in priors:
        if p.dose is None or not p.fractions:
            raise InputError(f"{p.label}: no usable dose in Gy with its fractions ("
                             + "; ".join(p.notes) + ")")
        how = acc.mapping(dose.frame_of_reference_uid, p.dose.frame_of_reference_uid, regs)
        if isinstance(how, str):
            raise InputError(f"{p.label}: {how}")
        weight, source = _recovery(recovery, p, data)
        pairs.append((acc.CourseDose(p.label, p.dose, p.fractions, weight, source), how))
    structures = {s.name: s for s in (data.structure_set.structures if data.structure_set
                                      else [])}
    ab_map = acc.AlphaBetaMap.parse(list(alpha_beta), default_alpha_beta)
    result = acc.accumulate_grid(acc.CourseDose("this plan", dose, n), pairs, ab_map,
                                 structures, getattr(data.structure_set, "plane_spacing_mm",
                                                     None), quantity, model, dt)
    description = result.describe()
    if result.uncovered:
        if not allow_uncovered:
            raise InputError(f"{result.uncovered} voxel(s) of this plan's grid lie outside a "
                             "prior course's dose grid: their cumulative dose is unknown (give "
                             "--allow-uncovered to write them as 0)")
        description += (f"; {result.uncovered} voxel(s) outside a prior course's grid written "
                        "as 0 (unknown)")
        result.grid.values = np.nan_to_num(result.grid.values, nan=0.0)
    ds = rtdose_dataset(result.grid, dose.paths[0], comment=_short(quantity, model, ab_map,
                                                                   len(result.courses)),
                        description=f"rtcheck: {description}",
                        plan_uid=data.plan.uid if data.plan else None,
                        series_description=f"rtcheck {quantity}")
    write_rtdose(output, ds)
    return {"output": output, "quantity": quantity, "model": model, "description": description,
            "alpha_beta": {"default": ab_map.default,
                           "structures": [{"structure": k, "alpha_beta": v}
                                          for k, v in ab_map.structures]},
            "courses": result.courses, "max_gy": float(np.nanmax(result.grid.values)),
            "uncovered_nodes": result.uncovered, "sop_instance_uid": str(ds.SOPInstanceUID)}


def _recovery(name: str, prior, data) -> tuple[float, str | None]:
    """(weight, source) of a prior course under ``--recovery`` (1, None when off)."""
    if name == "none":
        return 1.0, None
    from rtcheck.errors import InputError
    from rtcheck.radiobiology import RecoveryModel, completed_months

    model = RecoveryModel.nieder_2006()
    this_date = data.plan.date if data.plan else None
    if prior.end_date is None or this_date is None:
        raise InputError(f"--recovery {name}: the last fraction of {prior.label} "
                         f"({prior.end_text}) or this plan's date (RTPlanDate) is unknown")
    months = completed_months(prior.end_date, this_date)
    return 1.0 - model.discount(months), (f"{model.name} ({months} months from "
                                          f"{prior.end_date} to {this_date}; {model.source})")


def _usable_dose(data):
    from rtcheck.errors import InputError

    dose = data.dose
    if dose is None or dose.units != "GY":
        raise InputError("the plan has no dose in Gy to convert")
    if dose.problems:
        raise InputError("the plan's dose is not usable: " + "; ".join(dose.problems))
    if not data.fractions:
        raise InputError("the number of fractions is unknown (no RTPLAN, or it does not "
                         "state NumberOfFractionsPlanned)")
    if not dose.paths:
        raise InputError("the plan's dose has no file to take the patient and frame from")
    return dose, data.fractions


def _short(quantity: str, model: str, ab_map, courses: int) -> str:
    """DoseComment (64 characters): ``EQD2 LQ a/b 3 (+1 struct) 2 courses rtcheck``."""
    extra = f" (+{len(ab_map.structures)} struct)" if ab_map.structures else ""
    return f"{quantity} {model} a/b {ab_map.default:g}{extra} {courses} course(s) rtcheck"


def _refuse_overwriting_an_input(output: str, plans: list[Any]) -> None:
    """``--output`` must not be one of the files read (it would replace a plan's own dose)."""
    import os

    from rtcheck.errors import InputError
    from rtcheck.report import plan_input_files

    target = os.path.realpath(output)
    for data in plans:
        if any(os.path.realpath(f) == target for f in plan_input_files(data)):
            raise InputError(f"{output}: this is one of the input files; write the EQD2 dose "
                             "to a new file")
