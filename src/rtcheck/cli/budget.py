"""``rtcheck budget``: the remaining point maximum of a re-irradiation, before planning.

The numbers come from :func:`rtcheck.checker.budget.remaining_dose` (the rules of the loaded
protocols); this module parses the options and renders the typed result (table or JSON).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from typing import Any

import click

from rtcheck.checker.run import DEFAULT_PROTOCOLS
from rtcheck.cli.common import (
    CommandError,
    OneLineCommand,
    RoleValueType,
    RTCheckParamType,
    check_output,
    write_output,
)
from rtcheck.errors import RTCheckError

#: Largest number of fractions ``--fractions`` accepts (a table, not a scan).
MAX_FRACTIONS = 40


class FractionsType(RTCheckParamType):
    """``3``, ``1..5`` or ``1,3,5`` -> a tuple of fraction counts."""

    name = "fractions"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            counts = _fraction_counts(str(value))
        except ValueError:
            self.fail_value(value, "expected a number of fractions (3), a range (1..5) or a "
                            "list (1,3,5)", param, ctx)
        bad = [n for n in counts if not 1 <= n <= MAX_FRACTIONS]
        if bad or not counts:
            self.fail_value(value, f"fractions must lie within 1..{MAX_FRACTIONS}", param, ctx)
        return tuple(dict.fromkeys(counts))


def _fraction_counts(text: str) -> list[int]:
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        lo, sep, hi = part.partition("..")
        out += list(range(int(lo), int(hi) + 1)) if sep else [int(part)]
    return out


@click.command("budget", cls=OneLineCommand)
@click.option("--prior", "prior_paths", multiple=True, type=click.Path(exists=True),
              help="Prior course as DICOM (folder or files), repeatable.")
@click.option("--prior-summary", "prior_summaries", multiple=True, metavar="TEXT",
              help='Prior course when only its doses are known, repeatable (as for rtcheck '
                   'check): "30Gy/10 cord_dmax=31Gy sac_dmax=31.5Gy end=2025-03-14".')
@click.option("--fractions", "fractions", type=FractionsType(), default="1..5",
              show_default=True, help="Numbers of fractions of the new course: 3, 1..5 or 1,3,5.")
@click.option("--technique", type=click.Choice(["sbrt", "conventional"]), default="sbrt",
              show_default=True,
              help="Technique of the new course: sbrt (Sahgal's re-irradiation rules) or "
                   "conventional (Nieder 2006).")
@click.option("--date", "course_date", metavar="YYYY-MM-DD",
              help="Planned start of the new course: checks the interval rules.")
@click.option("--below-conus", is_flag=True,
              help="The lesion lies below the conus: the rules read the cauda equina / thecal sac.")
@click.option("--protocol", "protocols", multiple=True, metavar="ID_OR_FILE",
              help=f"Protocol, repeatable [default: {', '.join(DEFAULT_PROTOCOLS)}].")
@click.option("--alpha-beta", "alpha_beta", multiple=True, metavar="ROLE=VALUE",
              type=RoleValueType("ROLE=VALUE or RULE_ID=VALUE (Gy)", number=True),
              help="Override a rule's alpha/beta (Gy) by role or rule id, repeatable.")
@click.option("--map", "maps", multiple=True, metavar="ROLE=NAME",
              type=RoleValueType("ROLE=STRUCTURE_NAME, e.g. spinal_cord=MOELLE"),
              help="Use this structure of the prior plans for this role, repeatable.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE.")
def budget(prior_paths, prior_summaries, fractions, technique, course_date, below_conus,
           protocols, alpha_beta, maps, fmt, output):
    """The largest cord point maximum a new course may give, by number of fractions.

    For each organ the re-irradiation rules read (thecal sac, cord, cord PRV, or the cauda
    equina below the conus), the largest point maximum (Gy) of the new course in each number
    of fractions such that every applicable rule holds, and the rule that binds. Without a
    prior course: the first-course limits (Sahgal 2013's SBRT table).

    \b
    Reported values are rounded DOWN to 0.01 Gy; a strict limit (EQD2 < 25 Gy)
    stays strict: a bound on a 0.01 Gy step is given 0.01 Gy below it. A plan
    whose point maximum is the value printed passes the rules; 0.01 Gy more
    fails the binding rule. "with WARN band" is the same when a no-consensus
    band (cumulative EQD2 70-75 Gy) is accepted. "-" means unknown: the prior
    course gives no maximum for that organ (never guessed). SCOPE "WARN [n]":
    the bound lies outside the rules' derivation (an SBRT prior, several
    priors, or a number of fractions a rule is not stated for: rtcheck check
    skips that rule and WARNs, never PASSes, the others). A prior dated after
    --date is never summed.

    \b
    Examples:
      rtcheck budget --prior-summary "30Gy/10 cord_dmax=31Gy end=2025-03-14"
        (the course EQD2 < 25 Gy binds: 3 fractions -> 14.57 Gy)
      rtcheck budget --prior sample_plans/reirradiation/course1-30Gy10 --fractions 1,3,5
      rtcheck budget --prior-summary "20Gy/5 cord_dmax=20.5Gy" --technique conventional \\
          --fractions 5,10 --format json
      rtcheck budget                      (no prior: the first-course SBRT table)
    """
    from rtcheck.checker.budget import remaining_dose
    from rtcheck.checker.courses import parse_date
    from rtcheck.rules.roles import parse_map_options

    check_output(output)
    try:
        priors: list[Any] = list(prior_summaries)
        priors += [_load_prior(p) for p in prior_paths]
        result = remaining_dose(
            priors or None, fractions, protocols=list(protocols) or None, technique=technique,
            below_conus=below_conus, alpha_beta=dict(alpha_beta),
            date=parse_date(course_date, "--date") if course_date else None,
            explicit_roles=parse_map_options(f"{k}={v}" for k, v in maps))
    except (RTCheckError, ValueError) as exc:  # ValueError: an alpha/beta or dose out of domain
        raise CommandError(str(exc)) from exc
    text = (json.dumps(result.as_dict(), indent=2, default=_json_default) + "\n"
            if fmt == "json" else render_table(result))
    if output:
        write_output(output, text)
    else:
        click.echo(text, nl=False)
    sys.exit(0)


def _load_prior(path: str):
    from rtcheck.dicom import load_plan

    return load_plan(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date,)):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


# ------------------------------------------------------------------------ table


def render_table(result: Any) -> str:
    """Priors, one row per organ and number of fractions, the rules, the intervals."""
    out = io.StringIO()
    out.write(f"Technique of the new course: {result.technique or 'unknown'}\n")
    skipped = {p["label"] for p in result.priors_not_summed}
    for p in result.priors:
        out.write(f"Prior course: {p.label}" + "".join(f"; {n}" for n in p.notes)
                  + ("; NOT SUMMED (dated after this course)" if p.label in skipped else "")
                  + "\n")
    for note in result.notes:
        out.write(f"Note: {note}\n")
    caveats: dict[str, int] = {}  # caveat -> its number, in order of first appearance
    rows = [("ORGAN (ROLE)", "FX", "MAX POINT DOSE", "BINDING RULE", "WITH WARN BAND",
             "SCOPE")]
    for o in result.organs:
        organ = o.role + (f" (stands for {o.stands_for})" if o.stands_for else "")
        marks = [caveats.setdefault(c, len(caveats) + 1) for c in o.outside_derivation]
        rows.append((organ, str(o.fractions), _gy(o.max_gy, o.code),
                     o.binding_rule or "-",
                     _gy(o.review_max_gy, o.code) if o.review_max_gy != o.max_gy else "same",
                     "WARN " + ",".join(f"[{m}]" for m in marks) if marks else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out.write("\n")
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
    if caveats:
        out.write("\nOutside the rules' derivation (rtcheck check: WARN, not PASS; a rule not "
                  "stated for the fractions is skipped):\n")
        for text, number in caveats.items():
            out.write(f"  [{number}] {text}\n")
    _write_rules(out, result.organs)
    for i in result.intervals:
        out.write(f"\nInterval ({i.rule}): {i.operator} {i.limit_months:g} months from the "
                  f"prior course's last fraction ({i.prior_end or 'unknown'}, {i.prior_end_how})"
                  + (f": earliest start {i.earliest}" if i.earliest else "")
                  + (f" (the end is an estimate: rtcheck check WARNs before {i.earliest_pass})"
                     if i.earliest_pass and i.earliest_pass != i.earliest else "")
                  + (f"; {i.date}: {i.status}: {i.text}" if i.date else "")
                  + "".join(f"; {c}" for c in i.outside_derivation) + "\n")
    return out.getvalue()


def _write_rules(out: io.StringIO, organs: list[Any]) -> None:
    """What each rule allows, once per rule and organ (the first fraction count shown)."""
    seen: set[tuple[str, str]] = set()
    out.write("\nRules (what each allows):\n")
    for o in organs:
        for b in o.bounds:
            key = (b.rule, o.role)
            ab = f", alpha/beta {b.alpha_beta:g} Gy" if b.alpha_beta is not None else ""
            line = (f"  {o.fractions} fx {o.role}: {b.rule} {b.operator} {b.limit:g}{ab}: "
                    f"{b.text}" + (f" -> {_down(b.max_gy)} Gy" if b.max_gy is not None else
                                   f" -> WARN band only: {_down(b.review_max_gy)} Gy"
                                   if b.review_max_gy is not None else ""))
            if key not in seen or o.fractions == organs[0].fractions:
                out.write(line + "\n")
            seen.add(key)
        for rule in o.not_summed:
            if (rule, o.role) not in seen:
                out.write(f"  {o.role}: {rule} not summed on it (the prior courses give no "
                          "maximum for it; another structure stands in)\n")
                seen.add((rule, o.role))


def _gy(value: float | None, code: str) -> str:
    if value is None:
        return f"- ({code})"
    return f"{value:.2f} Gy"


def remaining_dose_text(remaining: dict[str, Any]) -> str:
    """One line for a re-irradiation finding's ``details["remaining_dose"]`` (rtcheck check)."""
    n = remaining.get("fractions")
    role = remaining.get("role")
    if remaining.get("max_gy") is None:
        text = (f"remaining dose in {n} fraction(s) on the {role}: "
                f"{'none' if remaining.get('code') == 'exhausted' else 'unknown'} "
                f"({remaining.get('code')}, {remaining.get('binding_rule')})")
        if remaining.get("review_max_gy") is not None:
            text += (f"; {remaining['review_max_gy']:.2f} Gy with the WARN band "
                     f"({remaining.get('review_binding_rule')})")
        return text
    text = (f"remaining dose: point maximum <= {remaining['max_gy']:.2f} Gy in {n} fraction(s) "
            f"on the {role} (binding: {remaining.get('binding_rule')})")
    if remaining.get("review_max_gy") not in (None, remaining["max_gy"]):
        text += (f"; {remaining['review_max_gy']:.2f} Gy with the WARN band "
                 f"({remaining.get('review_binding_rule')})")
    return text


def _down(gy: float) -> str:
    """An exact bound shown to 3 decimals, rounded down (never above what the rule allows)."""
    import math

    return f"{math.floor(gy * 1000 + 1e-9) / 1000:.3f}"
