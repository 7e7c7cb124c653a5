"""Structure roles: which structure of a plan stands for the spinal cord, the oesophagus...

Rules name a *role* (``spinal_cord``); plans name *structures* ("Moelle", "SpinalCord_PRV05").
The link is a synonym table, ``constraints/structure-roles.toml`` (schema in
``constraints/README.md``), that users extend with their own file, plus explicit choices
(``--map spinal_cord=MOELLE_PRV``). Matching is explicit and reported: every
:class:`RoleMatch` says which structure matched which role and how, and a role with two
candidates is *ambiguous*, never resolved by guessing.

A role whose organ comes in several structures says how they are evaluated: ``multiple``
(paired or segmented organs: left and right plexus, ribs) evaluates each structure on its own;
``union`` (one organ contoured in parts: jejunum + ileum, colon + sigmoid, heart + pericardium)
evaluates the union of the structures as one organ (see :func:`rtcheck.dvh.compute_union_dvh`).

Names are compared after :func:`normalise_name`: case, spaces, underscores, hyphens and
accents do not matter ("Moëlle", "MOELLE", "moelle" are the same name).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

from rtcheck.errors import InputError
from rtcheck.tomlfile import parse_toml, problem_text

ROLES_FILE = "structure-roles.toml"
SCHEMA_VERSION = 1
_ROLE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_TOP_KEYS = {"schema_version", "roles"}
_ROLE_KEYS = {"description", "synonyms", "patterns", "multiple", "union", "related"}


def normalise_name(name: str) -> str:
    """The comparison form of a structure name.

    Lower case (Unicode case folding), accents removed, ``œ``/``æ`` spelled ``oe``/``ae``,
    and spaces, underscores and hyphens dropped: ``"Moëlle épinière"`` -> ``"moelleepiniere"``,
    ``"Spinal_Cord"`` -> ``"spinalcord"``, ``"Œsophage"`` -> ``"oesophage"``.
    """
    s = name.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return re.sub(r"[\s_\-]+", "", s.casefold())


@dataclass(frozen=True)
class RoleDef:
    """One role of the synonym table.

    Attributes
    ----------
    name : str
        Role id (``spinal_cord``).
    description : str
    synonyms : tuple of str
        Names as written in the table; compared after :func:`normalise_name`.
    patterns : tuple of str
        Regular expressions matched against the whole normalised name.
    multiple : bool
        True for paired or segmented organs: every matching structure is evaluated on its own.
    related : tuple of str
        Roles named in the reason when this one is missing (possible stand-ins to map).
    union : bool
        True for one organ contoured in several structures (jejunum + ileum): every matching
        structure is taken, and their union is evaluated as one organ. Never together with
        ``multiple``.
    """

    name: str
    description: str = ""
    synonyms: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    multiple: bool = False
    related: tuple[str, ...] = ()
    union: bool = False
    _normalised: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    _compiled: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.multiple and self.union:
            raise ValueError(f"role {self.name!r}: multiple and union exclude each other")
        object.__setattr__(self, "_normalised", frozenset(normalise_name(s) for s in self.synonyms))
        object.__setattr__(self, "_compiled", tuple(re.compile(p) for p in self.patterns))

    def how_matches(self, structure_name: str) -> str | None:
        """How ``structure_name`` matches this role (``"synonym"`` or ``"pattern"``), or None."""
        norm = normalise_name(structure_name)
        if norm in self._normalised:
            return "synonym"
        for pat in self._compiled:
            if pat.fullmatch(norm):
                return "pattern"
        return None


@dataclass(frozen=True)
class RoleMatch:
    """The structure(s) standing for one role in one plan.

    Attributes
    ----------
    role : str
    name : str or None
        The structure chosen for a single role; None when the role is missing or ambiguous,
        and for a ``multiple`` or ``union`` role with several structures (see :attr:`names`).
    candidates : tuple of str
        Every structure name that matched the role (duplicates kept: two structures with the
        same name are two candidates).
    how : str
        Human-readable account: ``"'Moelle' (synonym)"``, ``"--map spinal_cord=MOELLE_PRV"``,
        ``"ambiguous: 'Cord', 'Moelle' ..."``, ``"no structure matches ..."``.
    multiple : bool
        The role evaluates every matching structure, each on its own.
    union : bool
        The role evaluates the union of every matching structure, as one organ.
    """

    role: str
    name: str | None
    candidates: tuple[str, ...] = ()
    how: str = ""
    multiple: bool = False
    union: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        """The structures to evaluate for this role (empty when missing or ambiguous).

        For a ``union`` role these are the parts of one organ: evaluate their union, not each.
        """
        if self.name is not None:
            return (self.name,)
        if (self.multiple or self.union) and self.status == "matched":
            return self.candidates
        return ()

    @property
    def status(self) -> str:
        """``"matched"``, ``"missing"`` or ``"ambiguous"``."""
        if self.name is not None:
            return "matched"
        if not self.candidates:
            return "missing"
        # Two structures with the same name stay ambiguous: which one is meant is unknown.
        if (self.multiple or self.union) and len(set(self.candidates)) == len(self.candidates):
            return "matched"
        return "ambiguous"

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "status": self.status, "structures": list(self.names),
                "candidates": list(self.candidates), "how": self.how, "union": self.union}


#: The shipped table once validated, by its bytes: a check asks for it several times, and
#: validating it (every synonym normalised) cost ~5 ms each time. RoleDefs are frozen, and
#: each RoleMap copies the dict, so sharing them is safe.
_VALIDATED: dict[bytes, dict[str, RoleDef]] = {}


class RoleMap:
    """A synonym table: role id -> :class:`RoleDef`.

    Build it with :meth:`shipped` (the table in ``constraints/``), :meth:`from_file`, and
    :meth:`extended` (user synonyms on top of the shipped ones).
    """

    def __init__(self, roles: Mapping[str, RoleDef], sources: Iterable[str] = ()) -> None:
        self.roles: dict[str, RoleDef] = dict(roles)
        self.sources: tuple[str, ...] = tuple(sources)
        self.notes: list[str] = []

    def __contains__(self, role: str) -> bool:
        return role in self.roles

    def __iter__(self):
        return iter(self.roles)

    # ---------------------------------------------------------------- construction

    @classmethod
    def shipped(cls) -> RoleMap:
        """The shipped table, ``constraints/structure-roles.toml``."""
        res = resources.files("rtcheck.constraints").joinpath(ROLES_FILE)
        raw = res.read_bytes()
        roles = _VALIDATED.get(raw)
        if roles is None:
            roles = _read_roles(parse_toml(raw, str(res)), str(res), check_overlaps=True)
            _VALIDATED.clear()
            _VALIDATED[raw] = roles
        return cls(roles, (str(res),))

    @classmethod
    def from_file(cls, path: str | PathLike) -> RoleMap:
        """A roles file on its own (same schema as the shipped table)."""
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read roles file: {exc.strerror or exc}", p) from exc
        # Related roles may be shipped ones: they are checked once the file extends a table.
        roles = _read_roles(parse_toml(raw, str(p)), str(p), check_overlaps=True,
                            check_related=False)
        return cls(roles, (str(p),))

    def extended(self, extra: RoleMap | Mapping[str, Iterable[str]] | str | PathLike) -> RoleMap:
        """This table with ``extra`` synonyms added.

        ``extra`` is another :class:`RoleMap`, a roles file, or ``{role: [names...]}``.
        A role of ``extra`` that exists here gains its synonyms and patterns (its ``multiple``,
        ``union`` and ``description`` win when given: ``multiple = true`` turns a shipped union
        role into a multiple one, and the reverse); a new role is added. A name the extra table
        gives to a role is removed from any other role's synonyms: the user's choice wins,
        and :attr:`notes` records it.
        """
        if isinstance(extra, (str, PathLike)):
            extra = RoleMap.from_file(extra)
        elif not isinstance(extra, RoleMap):
            extra = RoleMap({r: RoleDef(r, synonyms=tuple(_as_names(r, v))) for r, v in extra.items()})
        merged = dict(self.roles)
        notes: list[str] = list(self.notes)
        for rid, add in extra.roles.items():
            claimed = {normalise_name(s) for s in add.synonyms}
            for other_id, other in list(merged.items()):
                if other_id == rid:
                    continue
                kept = tuple(s for s in other.synonyms if normalise_name(s) not in claimed)
                if kept != other.synonyms:
                    moved = sorted(set(other.synonyms) - set(kept))
                    notes.append(f"{', '.join(repr(m) for m in moved)} moved from role "
                                 f"{other_id} to role {rid} by {', '.join(extra.sources) or 'user synonyms'}")
                    merged[other_id] = _replace(other, synonyms=kept)
            base = merged.get(rid)
            if base is None:
                merged[rid] = add
            else:
                merged[rid] = _replace(
                    base,
                    description=add.description or base.description,
                    synonyms=base.synonyms + tuple(s for s in add.synonyms if s not in base.synonyms),
                    patterns=base.patterns + tuple(p for p in add.patterns if p not in base.patterns),
                    # The user's mode wins, and the two modes exclude each other.
                    multiple=add.multiple or (base.multiple and not add.union),
                    union=add.union or (base.union and not add.multiple),
                    related=base.related + tuple(r for r in add.related if r not in base.related),
                )
        out = RoleMap(merged, self.sources + extra.sources)
        out.notes = notes
        _check_related(out.roles, ", ".join(out.sources))
        return out

    # ---------------------------------------------------------------- matching

    def roles_of(self, structure_name: str) -> list[tuple[str, str]]:
        """Every (role, how) a structure name matches."""
        out = []
        for rid, rdef in self.roles.items():
            how = rdef.how_matches(structure_name)
            if how:
                out.append((rid, how))
        return out

    def match(self, structure_names: Iterable[str], explicit: Mapping[str, str] | None = None,
              roles: Iterable[str] | None = None) -> dict[str, RoleMatch]:
        """Match a plan's structure names to roles.

        Parameters
        ----------
        structure_names : iterable of str
            The plan's structure names as stored (duplicates allowed: they make a role
            ambiguous).
        explicit : mapping role -> structure name, optional
            Choices made by the user (``--map``); they override the synonym table.
        roles : iterable of str, optional
            The roles to report (default: every role of the table).

        Returns
        -------
        dict role -> RoleMatch

        Raises
        ------
        InputError
            When ``explicit`` names a role that is not in the table.
        """
        names = list(structure_names)
        explicit = dict(explicit or {})
        unknown = sorted(set(explicit) - set(self.roles))
        if unknown:
            raise InputError(f"--map names unknown role(s) {', '.join(unknown)}; known roles: "
                             f"{', '.join(sorted(self.roles))}")
        wanted = list(self.roles) if roles is None else list(roles)
        out: dict[str, RoleMatch] = {}
        for rid in wanted:
            if rid not in self.roles:
                out[rid] = RoleMatch(rid, None, (), f"role {rid!r} is not in the structure-role table")
            elif rid in explicit:
                rdef = self.roles[rid]
                out[rid] = _explicit_match(rid, explicit[rid], names, rdef.multiple, rdef.union)
            else:
                out[rid] = self._table_match(self.roles[rid], names)
        return out

    def _table_match(self, rdef: RoleDef, names: list[str]) -> RoleMatch:
        found = [(n, h) for n in names if (h := rdef.how_matches(n))]
        cands = tuple(n for n, _ in found)
        detail = ", ".join(f"{n!r} ({h})" for n, h in found)
        modes = (rdef.multiple, rdef.union)
        if not found:
            return RoleMatch(rdef.name, None, (), self._missing_reason(rdef, names), *modes)
        if len(found) == 1:
            return RoleMatch(rdef.name, cands[0], cands, detail, *modes)
        if (rdef.multiple or rdef.union) and len(set(cands)) == len(cands):
            if rdef.union:
                detail = f"union of {detail}"
            return RoleMatch(rdef.name, None, cands, detail, *modes)
        why = "two structures have the same name" if len(set(cands)) < len(cands) else \
            f"{len(cands)} structures match"
        return RoleMatch(rdef.name, None, cands,
                         f"ambiguous, {why}: {detail}; choose one with --map {rdef.name}=NAME",
                         *modes)

    def near_misses(self, role: str, structure_names: Iterable[str]) -> list[str]:
        """Names that match no role but contain one of ``role``'s synonyms (at least 5
        letters, normalised): ``ThecalSac_old``, ``zzThecalSac`` for ``thecal_sac``. Such a
        structure may be the organ under another name; it is never matched silently."""
        rdef = self.roles.get(role)
        if rdef is None:
            return []
        keys = [k for k in rdef._normalised if len(k) >= 5]
        out = []
        for name in structure_names:
            norm = normalise_name(name)
            if any(k in norm for k in keys) and not self.roles_of(name):
                out.append(name)
        return out

    def _missing_reason(self, rdef: RoleDef, names: list[str]) -> str:
        msg = f"no structure matches role {rdef.name}"
        stand_ins = []
        for rel in rdef.related:
            if rel in self.roles:
                stand_ins += [f"{n!r} ({rel})" for n in names if self.roles[rel].how_matches(n)]
        if stand_ins:
            msg += (f"; possible stand-ins: {', '.join(stand_ins)} -- map one deliberately with "
                    f"--map {rdef.name}=NAME")
        return msg


def match_roles(structure_names: Iterable[str],
                extra_synonyms: RoleMap | Mapping[str, Iterable[str]] | str | PathLike | None = None,
                explicit: Mapping[str, str] | None = None,
                roles: Iterable[str] | None = None) -> dict[str, RoleMatch]:
    """Match structure names to roles with the shipped table (plus ``extra_synonyms``).

    Parameters
    ----------
    structure_names : iterable of str
    extra_synonyms : RoleMap, mapping role -> names, or path of a roles file, optional
    explicit : mapping role -> structure name, optional
        ``--map`` choices; they win over the table.
    roles : iterable of str, optional
        Roles to report (default: all).

    Returns
    -------
    dict role -> RoleMatch

    Examples
    --------
    >>> m = match_roles(["MOELLE", "PTV_30"])
    >>> m["spinal_cord"].name, m["spinal_cord"].how
    ('MOELLE', "'MOELLE' (synonym)")
    """
    table = RoleMap.shipped()
    if extra_synonyms is not None:
        table = table.extended(extra_synonyms)
    return table.match(structure_names, explicit=explicit, roles=roles)


def parse_map_options(items: Iterable[str]) -> dict[str, str]:
    """``["spinal_cord=MOELLE_PRV", ...]`` -> ``{"spinal_cord": "MOELLE_PRV"}``.

    Raises
    ------
    InputError
        For an item without ``=`` or a role given twice.
    """
    out: dict[str, str] = {}
    for item in items:
        role, sep, name = item.partition("=")
        role, name = role.strip(), name.strip()
        if not sep or not role or not name:
            raise InputError(f"--map {item!r}: expected ROLE=STRUCTURE_NAME, e.g. spinal_cord=MOELLE")
        if role in out and out[role] != name:
            raise InputError(f"--map gives role {role} twice ({out[role]!r} and {name!r})")
        out[role] = name
    return out


# -------------------------------------------------------------------- helpers


def _explicit_match(role: str, wanted: str, names: list[str], multiple: bool,
                    union: bool = False) -> RoleMatch:
    exact = [n for n in names if n == wanted]
    if len(exact) == 1:
        return RoleMatch(role, wanted, (wanted,), f"--map {role}={wanted}", multiple, union)
    if len(exact) > 1:
        return RoleMatch(role, None, tuple(exact),
                         f"--map {role}={wanted}: {len(exact)} structures have this name", False)
    loose = [n for n in names if normalise_name(n) == normalise_name(wanted)]
    if len(loose) == 1:
        return RoleMatch(role, loose[0], (loose[0],),
                         f"--map {role}={wanted} (matched {loose[0]!r} ignoring case/spaces/accents)",
                         multiple, union)
    if len(loose) > 1:
        return RoleMatch(role, None, tuple(loose),
                         f"--map {role}={wanted}: matches {', '.join(map(repr, loose))}; "
                         "give the exact name", False)
    return RoleMatch(role, None, (), f"--map {role}={wanted}: no structure of this plan has that name",
                     multiple, union)


def _replace(rdef: RoleDef, **changes: Any) -> RoleDef:
    values = {k: getattr(rdef, k) for k in ("name", "description", "synonyms", "patterns",
                                             "multiple", "related", "union")}
    values.update(changes)
    return RoleDef(**values)


def _as_names(role: str, value: Iterable[str] | str) -> list[str]:
    if isinstance(value, str):
        return [value]
    names = list(value)
    if not all(isinstance(v, str) and v.strip() for v in names):
        raise InputError(f"extra synonyms for role {role}: expected non-empty names, got {names!r}")
    return names


def _read_roles(data: dict[str, Any], where: str, check_overlaps: bool,
                check_related: bool = True) -> dict[str, RoleDef]:
    problems: list[str] = []
    for key in sorted(set(data) - _TOP_KEYS):
        problems.append(f"top level: unknown key {key!r} (allowed: {', '.join(sorted(_TOP_KEYS))})")
    if data.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"top level: schema_version must be {SCHEMA_VERSION}, "
                        f"got {data.get('schema_version')!r}")
    table = data.get("roles")
    if not isinstance(table, dict) or not table:
        problems.append("top level: missing [roles.<id>] tables")
        table = {}
    roles: dict[str, RoleDef] = {}
    for rid, body in table.items():
        rdef = _read_role(rid, body, problems)
        if rdef is not None:
            roles[rid] = rdef
    if check_overlaps:
        _overlap_problems(roles, problems)
    if problems:
        raise InputError(problem_text(problems), where)
    if check_related:
        _check_related(roles, where)
    return roles


def _read_role(rid: str, body: Any, problems: list[str]) -> RoleDef | None:
    where = f"role {rid!r}"
    if not _ROLE_ID.match(rid):
        problems.append(f"{where}: role ids are lower case letters, digits and '_'")
    if not isinstance(body, dict):
        problems.append(f"{where}: expected a table")
        return None
    for key in sorted(set(body) - _ROLE_KEYS):
        problems.append(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(_ROLE_KEYS))})")
    lists = {}
    for key in ("synonyms", "patterns", "related"):
        value = body.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            problems.append(f"{where}: {key} must be a list of non-empty strings")
            value = []
        lists[key] = tuple(value)
    for pat in lists["patterns"]:
        try:
            re.compile(pat)
        except re.error as exc:
            problems.append(f"{where}: pattern {pat!r} is not a valid regular expression ({exc})")
            return None
    multiple, union = (_flag(body, key, where, problems) for key in ("multiple", "union"))
    if multiple and union:
        problems.append(f"{where}: multiple and union exclude each other (multiple: each "
                        "structure on its own; union: all of them as one organ)")
        union = False
    description = body.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{where}: description must be a string")
        description = ""
    if not lists["synonyms"] and not lists["patterns"]:
        problems.append(f"{where}: give at least one synonym or pattern")
    return RoleDef(rid, description, lists["synonyms"], lists["patterns"], multiple, lists["related"],
                   union)


def _flag(body: dict[str, Any], key: str, where: str, problems: list[str]) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        problems.append(f"{where}: {key} must be true or false")
        return False
    return value


def _overlap_problems(roles: dict[str, RoleDef], problems: list[str]) -> None:
    owner: dict[str, str] = {}
    for rid, rdef in roles.items():
        for syn in rdef.synonyms:
            norm = normalise_name(syn)
            if norm in owner and owner[norm] != rid:
                problems.append(f"role {rid!r}: synonym {syn!r} is also a synonym of role "
                                f"{owner[norm]!r}")
            owner.setdefault(norm, rid)


def _check_related(roles: Mapping[str, RoleDef], where: str) -> None:
    bad = [f"role {rid!r}: related role {rel!r} is not defined"
           for rid, rdef in roles.items() for rel in rdef.related if rel not in roles]
    if bad:
        raise InputError(problem_text(bad), where)
