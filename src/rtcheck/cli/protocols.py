"""``rtcheck protocols``: list the shipped protocols and their rules; ``show`` prints one."""

from __future__ import annotations

import json
import textwrap

import click

from rtcheck.cli.common import CommandError
from rtcheck.errors import RTCheckError
from rtcheck.rules.protocols import Protocol, Rule, load_protocol, shipped_protocols
from rtcheck.rules.roles import RoleMap

_FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                       show_default=True, help="Output format.")
_ROLES = click.option("--roles", "roles_file", type=click.Path(dir_okay=False),
                      help="Extra structure-role file (for protocols naming custom roles).")


def _role_map(roles_file: str | None) -> RoleMap:
    table = RoleMap.shipped()
    return table.extended(roles_file) if roles_file else table


@click.group("protocols", invoke_without_command=True)
@_FORMAT
@click.pass_context
def protocols(ctx: click.Context, fmt: str) -> None:
    """List the shipped protocols and their rules.

    \b
    rtcheck protocols                    every shipped protocol, one line per rule
    rtcheck protocols show tg101         one protocol in full (id or file)
    rtcheck protocols show my.toml       validate and print your own protocol file
    """
    if ctx.invoked_subcommand is not None:
        return
    try:
        found = shipped_protocols()
    except RTCheckError as exc:
        raise CommandError(str(exc)) from exc
    if fmt == "json":
        click.echo(json.dumps({"protocols": [_listing(p) for p in found]}, indent=2,
                              ensure_ascii=False))
        return
    for i, proto in enumerate(found):
        if i:
            click.echo("")
        click.echo(f"{proto.id}: {proto.title} ({proto.version}), {len(proto.rules)} rules")
        click.echo(f"  file: {proto.path}")
        width = max(len(r.id) for r in proto.rules)
        for rule in proto.rules:
            click.echo(f"  {rule.id:<{width}}  {_ab(rule):<9} {rule.severity:<4}  {_target(rule)}"
                       f"{rule.summary()}")


@protocols.command("show")
@click.argument("name_or_file")
@_FORMAT
@_ROLES
def show(name_or_file: str, fmt: str, roles_file: str | None) -> None:
    """Print one protocol (shipped id or TOML file), every rule with its source."""
    try:
        proto = load_protocol(name_or_file, roles=_role_map(roles_file))
    except RTCheckError as exc:
        raise CommandError(str(exc)) from exc
    if fmt == "json":
        click.echo(json.dumps(proto.as_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_protocol(proto))


def _listing(proto: Protocol) -> dict:
    return {"id": proto.id, "title": proto.title, "version": proto.version, "path": proto.path,
            "rules": [{"id": r.id, "kind": r.kind, "role": r.role, "metric": r.metric,
                       "alpha_beta": r.alpha_beta if r.converts else "none", "model": r.model,
                       "severity": r.severity, "requires": r.summary(), "source": r.source}
                      for r in proto.rules]}


def _ab(rule: Rule) -> str:
    return f"a/b={rule.alpha_beta:g}" if rule.converts else "a/b=none"


def _target(rule: Rule) -> str:
    if _get(rule, "indication"):
        return f"[{_get(rule, 'indication')}] "
    if _get(rule, "site"):
        return f"[{_get(rule, 'site')}] "
    return f"[{rule.role}] " if rule.role else ""


def render_protocol(proto: Protocol) -> str:
    """The ``show`` text: header, then each rule with limits, a/b, source and notes."""
    wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="    ",
                                break_on_hyphens=False, break_long_words=False)
    lines = [f"{proto.id}: {proto.title}", f"version: {proto.version}", f"file: {proto.path}",
             "source:", wrap.fill(proto.source)]
    if proto.licence:
        lines += ["licence:", wrap.fill(proto.licence)]
    if proto.notes:
        lines += ["notes:", wrap.fill(proto.notes)]
    for rule in proto.rules:
        lines += ["", f"rule {rule.id} ({rule.kind}), severity {rule.severity}",
                  wrap.fill(rule.description)]
        facts = []
        if _get(rule, "indication"):
            facts.append(f"indication: {_get(rule, 'indication')}"
                         + (f" ({_get(rule, 'indication_label')})" if _get(rule, "indication_label") else ""))
        if _get(rule, "site"):
            facts.append(f"site: {_get(rule, 'site')}")
        if rule.role:
            facts.append(f"role: {rule.role} (the structure the source used)")
        if _get(rule, "also_roles"):
            facts.append(f"also read: {', '.join(rule.also_roles)} (stand in when "  # type: ignore[attr-defined]
                         f"{rule.role} is not contoured)")
        if _get(rule, "below_conus_roles"):
            facts.append("below the conus, read on: "
                         + ", ".join(rule.below_conus_roles))  # type: ignore[attr-defined]
        scope = [f"{k.replace('_', ' ')} {_get(rule, k)}" for k in
                 ("technique", "course", "prior_technique", "max_prior_courses", "defer_to",
                  "convert", "extent_margin_mm") if _get(rule, k) is not None]
        if scope:
            facts.append("scope: " + ", ".join(scope))
        if rule.metric:
            facts.append(f"metric: {rule.metric}" + (f" (also shown: {', '.join(rule.show)})"
                                                     if rule.show else ""))
        facts.append(f"alpha/beta: {rule.alpha_beta:g} Gy, model {rule.model}" if rule.converts
                     else "alpha/beta: none (compares physical dose, no conversion)")
        if _get(rule, "applies_to_fractions"):
            lo, hi = _get(rule, "applies_to_fractions")
            facts.append(f"applies to courses of {lo} to {hi} fractions")
        lines += [f"    {f}" for f in facts]
        lines += [wrap.fill(f"requires: {rule.summary()}")]
        for label, value in (("remarks", _get(rule, "remarks")), ("warn reason", _get(rule, "warn_reason")),
                             ("message", _get(rule, "message")), ("source", rule.source)):
            if value:
                lines.append(wrap.fill(f"{label}: {value}"))
        lines += [wrap.fill(f"cites: {c}") for c in rule.cites]
        if rule.notes:
            lines.append(wrap.fill(f"notes: {rule.notes}"))
    return "\n".join(lines)


def _get(rule: Rule, name: str):
    """A field that only some kinds of rule have (None on the others)."""
    return getattr(rule, name, None)
