"""Protocol files: the rules a plan is checked against, as cited data.

A protocol is a TOML file (schema: ``constraints/README.md``) with a citation and a list of
rules. This module reads it, validates it strictly (an unknown key, a bad unit, a missing
source or a missing alpha/beta where a rule converts doses is an error naming the file, the
rule and the problem) and returns typed, immutable objects: :class:`Protocol`, :class:`Rule`,
:class:`Scheme`, :class:`DoseRange`, :class:`Limit`.

Shipped protocols live in the top-level ``constraints/`` folder, installed as the
``rtcheck.constraints`` package; :func:`shipped_protocols` lists them and
:func:`load_protocol` accepts either a shipped id (``"tg101"``) or a file path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

from rtcheck.errors import InputError, MetricError
from rtcheck.rules.case_schema import CASE_RULE_KEYS, TREATMENT_RULE_KEYS
from rtcheck.rules.kinds import (  # noqa: F401  (re-exported: the rule types are part of this API)
    DEFAULT_DOSE_TOLERANCE_PCT,
    FRACTIONATION_TIERS,
    PREFERENCES,
    RULE_TYPES,
    SCHEME_TECHNIQUES,
    SITES,
    DoseLimitRule,
    DoseRange,
    DoseRule,
    FractionationRule,
    Limit,
    ListedScheme,
    Preference,
    PrescriptionRangeRule,
    ReirradiationRule,
    Rule,
    Scheme,
    SchemeRange,
    WarningRule,
    number_text,
)
from rtcheck.rules.roles import ROLES_FILE, RoleMap
from rtcheck.tomlfile import parse_toml, problem_text

SCHEMA_VERSION = 1
KINDS = ("fractionation", "sbrt_prescription_range", "dose_limit", "reirradiation", "warning",
         "case", "systemic_treatments")
SEVERITIES = ("FAIL", "WARN")
OPERATORS = ("<", "<=", ">", ">=")
MODELS = ("LQ",)
#: Re-irradiation quantities and their unit; the first three convert doses to EQD2.
QUANTITIES = {
    "cumulative_eqd2_max": "Gy",
    "course_eqd2_max": "Gy",
    "course_share": "ratio",
    "cumulative_bed_max": "Gy",
    "each_course_bed_max": "Gy",
    "interval_months": "months",
}
CONVERTING_QUANTITIES = ("cumulative_eqd2_max", "course_eqd2_max", "course_share",
                         "cumulative_bed_max", "each_course_bed_max")

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_LEVEL = re.compile(r"^(?P<region>C|T|TH|D|L|S)(?P<n>\d{1,2})$")
_REGIONS = {"C": (0, 7), "T": (7, 12), "L": (19, 5), "S": (24, 5)}  # offset, count

_TOP_KEYS = {"schema_version", "id", "title", "version", "source", "licence", "notes", "rules",
             "conus_lowest_level", "conus_source"}
_TOP_REQUIRED = {"schema_version", "id", "title", "version", "source", "rules"}
_COMMON_KEYS = {"id", "kind", "description", "source", "cites", "alpha_beta", "model",
                "severity", "notes"}
# alpha_beta is required too; radiobiology() reports its absence with the reason.
_COMMON_REQUIRED = {"id", "kind", "description", "source", "severity"}
#: Keys saying which structures a dose rule reads and which courses it was derived for.
_SCOPE_KEYS = {"also_roles", "below_conus_roles", "technique", "extent_margin_mm"}
#: What a dose_limit may convert its metric to before comparing it with the limit.
CONVERSIONS = ("EQD2",)
_KIND_KEYS = {
    "fractionation": ({"indication", "recommended", "unit"},
                      {"indication_label", "other", "exceptional", "allowed_elsewhere",
                       "schemes_source", "biological_equivalent",
                       "biological_equivalent_technique", "biological_equivalent_definition",
                       "preferences", "remarks", "dose_tolerance_pct"}),
    "sbrt_prescription_range": ({"site", "ranges", "unit"},
                                {"warn_fractions", "warn_reason", "dose_tolerance_pct"}),
    "dose_limit": ({"role", "metric", "limits", "operator", "unit"},
                   {"show", *_SCOPE_KEYS, "course", "defer_to", "convert",
                    "applies_to_fractions"}),
    "reirradiation": ({"quantity", "limit", "operator", "unit"},
                      {"role", "metric", "warn_up_to", "applies_to_fractions", "show",
                       *_SCOPE_KEYS, "prior_technique", "max_prior_courses"}),
    "warning": ({"role", "vertebral_levels", "message"}, {"show"}),
    # case kinds: keys read by rtcheck.rules.case_schema
    "case": CASE_RULE_KEYS,
    "systemic_treatments": TREATMENT_RULE_KEYS,
}
_SCHEME_KEYS = ({"dose", "fractions"}, {"technique", "source", "note"})
_RANGE_KEYS: tuple[set[str], set[str]] = (
    {"dose_min", "dose_max", "fractions_min", "fractions_max"}, set())
_LIMIT_KEYS = ({"limit"}, {"fractions", "warn_up_to", "operator"})


class ProtocolError(InputError):
    """A protocol file that does not follow the schema; ``problems`` lists every problem."""

    def __init__(self, problems: list[str], path: str | PathLike | None) -> None:
        self.problems = list(problems)
        super().__init__(problem_text(self.problems), path)


#: TOML files of constraints/ that are data, not protocols (roles; the case checks' drug table).
_DATA_FILES = (ROLES_FILE, "drugs-2026.toml")

_SCHEME_EXTRA_KEYS = {"where", "quote", "sites"}
_SCHEME_RANGE_KEYS = ({"dose_min", "dose_max", "fractions_min", "fractions_max"},
                      _SCHEME_KEYS[1] | _SCHEME_EXTRA_KEYS)
_PREFERENCE_KEYS = ({"prefer", "quote", "source"}, {"dose", "fractions", "sites", "condition"})


@dataclass(frozen=True)
class Protocol:
    """A validated protocol file."""

    id: str
    title: str
    version: str
    source: str
    rules: tuple[Rule, ...]
    path: str
    licence: str | None = None
    notes: str | None = None
    shipped: bool = False
    schema_version: int = SCHEMA_VERSION
    #: Lowest vertebral level the conus medullaris may reach (below it, no cord), and its source.
    conus_lowest_level: str | None = None
    conus_source: str | None = None
    _by_id: dict[str, Rule] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update({r.id: r for r in self.rules})

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError when absent)."""
        return self._by_id[rule_id]

    def rules_of_kind(self, kind: str) -> list[Rule]:
        return [r for r in self.rules if r.kind == kind]

    def indications(self) -> list[str]:
        return [r.indication for r in self.rules
                if isinstance(r, FractionationRule) and r.indication]

    def sites(self) -> list[str]:
        return [r.site for r in self.rules if isinstance(r, PrescriptionRangeRule) and r.site]

    def as_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "title": self.title, "version": self.version, "source": self.source,
               "path": self.path, "shipped": self.shipped}
        if self.licence:
            out["licence"] = self.licence
        if self.notes:
            out["notes"] = self.notes
        out["rules"] = [r.as_dict() for r in self.rules]
        return out


# ======================================================================== public API


def shipped_protocols() -> list[Protocol]:
    """Every protocol shipped in ``constraints/`` (sorted by id)."""
    root = resources.files("rtcheck.constraints")
    out = []
    for res in sorted(root.iterdir(), key=lambda r: r.name):
        if res.name.endswith(".toml") and res.name not in _DATA_FILES:
            out.append(_load_bytes(res.read_bytes(), str(res), shipped=True))
    return sorted(out, key=lambda p: p.id)


def load_protocol(name_or_path: str | PathLike, roles: RoleMap | Iterable[str] | None = None
                  ) -> Protocol:
    """Load and validate a protocol: a shipped id (``"tg101"``) or a TOML file.

    Parameters
    ----------
    name_or_path : str or PathLike
        A shipped protocol id or file stem, or the path of a protocol file.
    roles : RoleMap or iterable of str, optional
        Known structure roles (default: the shipped role table). A rule naming a role not in
        this set is an error; pass an extended :class:`~rtcheck.rules.roles.RoleMap` for custom roles.

    Raises
    ------
    ProtocolError
        The file does not follow the schema (every problem listed, with the rule id).
    InputError
        No such shipped protocol and no such file.
    """
    text = str(name_or_path)
    path = Path(text)
    looks_like_path = isinstance(name_or_path, PathLike) or text.endswith(".toml") \
        or "/" in text or "\\" in text
    if path.is_file() or looks_like_path:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read protocol file: {exc.strerror or exc}", path) from exc
        return _load_bytes(raw, str(path), shipped=False, roles=roles)
    # The file named like the id first: validating every shipped protocol to find one cost
    # a check three protocols' validation per protocol it named.
    res = resources.files("rtcheck.constraints").joinpath(f"{text}.toml")
    if text + ".toml" not in _DATA_FILES and res.is_file():
        proto = _load_bytes(res.read_bytes(), str(res), shipped=True)
        if text in (proto.id, Path(proto.path).stem):
            return proto
    shipped = shipped_protocols()
    for proto in shipped:
        if text in (proto.id, Path(proto.path).stem):
            return proto
    raise InputError(f"no shipped protocol {text!r} and no such file; shipped protocols: "
                     f"{', '.join(p.id for p in shipped)}")


def parse_vertebral_level(text: str) -> int:
    """Ordinal of a vertebra, C1 = 1 ... C7 = 7, T1 = 8 ... T12 = 19, L1 = 20 ... S5 = 29.

    ``T``, ``Th`` and the French ``D`` (dorsal) are the same thoracic vertebrae.

    Raises
    ------
    ValueError
        For a text that is not a vertebra (``"T13"``, ``"X2"``).
    """
    m = _LEVEL.match(text.strip().upper())
    if not m:
        raise ValueError(f"{text!r} is not a vertebral level (C1-C7, T1-T12 or D1-D12, L1-L5, S1-S5)")
    region = {"TH": "T", "D": "T"}.get(m["region"], m["region"])
    offset, count = _REGIONS[region]
    n = int(m["n"])
    if not 1 <= n <= count:
        raise ValueError(f"{text!r} is not a vertebral level ({region}1-{region}{count})")
    return offset + n


# ======================================================================== reading


def _load_bytes(raw: bytes, where: str, shipped: bool,
                roles: RoleMap | Iterable[str] | None = None) -> Protocol:
    try:
        data = parse_toml(raw, where)
    except InputError as exc:
        raise ProtocolError([exc.message], where) from exc
    if roles is None:
        roles = RoleMap.shipped()
    known_roles = set(roles.roles if isinstance(roles, RoleMap) else roles)
    reader = _Reader(where, known_roles)
    proto = reader.protocol(data, shipped)
    if reader.problems:
        raise ProtocolError(reader.problems, where)
    return proto  # type: ignore[return-value]


class _Reader:
    """Validates the TOML tables and collects every problem before raising."""

    def __init__(self, where: str, known_roles: set[str]) -> None:
        self.where = where
        self.known_roles = known_roles
        self.problems: list[str] = []

    def problem(self, ctx: str, msg: str) -> None:
        self.problems.append(f"{ctx}: {msg}")

    # ---------------------------------------------------------------- generic checks

    def keys(self, ctx: str, table: dict, required: set[str], optional: set[str]) -> None:
        allowed = required | optional
        for key in sorted(set(table) - allowed):
            self.problem(ctx, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required - set(table)):
            self.problem(ctx, f"missing {key!r}")

    def text(self, ctx: str, table: dict, key: str) -> str | None:
        value = table.get(key)
        if value is None:
            return None  # a missing required key is reported by keys()
        if not isinstance(value, str) or not value.strip():
            self.problem(ctx, f"{key} must be a non-empty string")
            return None
        return value.strip()

    def number(self, ctx: str, table: dict, key: str, positive: bool = False) -> float | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.problem(ctx, f"{key} must be a number, got {value!r}")
            return None
        if positive and value <= 0:
            self.problem(ctx, f"{key} must be > 0, got {value!r}")
            return None
        return float(value)

    def integer(self, ctx: str, table: dict, key: str) -> int | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.problem(ctx, f"{key} must be a whole number >= 1, got {value!r}")
            return None
        return value

    def choice(self, ctx: str, table: dict, key: str, allowed: Iterable[str]) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        allowed = tuple(allowed)
        if value not in allowed:
            self.problem(ctx, f"{key} {value!r} not allowed (expected {' or '.join(map(repr, allowed))})")
            return None
        return value

    def strings(self, ctx: str, table: dict, key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.problem(ctx, f"{key} must be a list of non-empty strings")
            return ()
        return tuple(v.strip() for v in value)

    def subtables(self, ctx: str, raw: dict, key: str, keyspec: tuple[set[str], set[str]],
                  required: bool) -> Iterable[tuple[str, dict]]:
        """Yield (context, table) for each inline table of the array ``raw[key]``, keys checked."""
        items = raw.get(key, [])
        if not isinstance(items, list) or (required and key in raw and not items):
            self.problem(ctx, f"{key} must be a non-empty array of inline tables {{ ... }}")
            return
        for j, item in enumerate(items):
            sub = f"{ctx}, {key}[{j}]"
            if not isinstance(item, dict):
                self.problem(sub, "expected an inline table { ... }")
                continue
            self.keys(sub, item, *keyspec)
            yield sub, item

    def metric(self, ctx: str, text: str | None, key: str, dose_only: bool) -> str | None:
        if text is None:
            return None
        from rtcheck.dvh import (
            parse_metric,  # late import: dvh pulls numpy geometry code
        )

        try:
            parsed = parse_metric(text)
        except MetricError as exc:
            self.problem(ctx, f"{key}: {exc}")
            return None
        if dose_only and (parsed.kind not in ("max", "min", "mean", "D")
                          or parsed.output_unit != "Gy"):
            self.problem(ctx, f"{key} {text!r}: a limit needs a dose metric in Gy "
                              "(Dmax, Dmean, Dmin, D<x>cc, D<x>%)")
            return None
        return text

    # ---------------------------------------------------------------- protocol

    def protocol(self, data: dict, shipped: bool) -> Protocol | None:
        ctx = "top level"
        self.keys(ctx, data, _TOP_REQUIRED, _TOP_KEYS - _TOP_REQUIRED)
        if "schema_version" in data and data["schema_version"] != SCHEMA_VERSION:
            self.problem(ctx, f"schema_version must be {SCHEMA_VERSION}, got {data['schema_version']!r}")
        pid = self.text(ctx, data, "id")
        if pid and not _ID.match(pid):
            self.problem(ctx, f"id {pid!r}: use letters, digits, '.', '_' and '-'")
        header = {k: self.text(ctx, data, k) for k in ("title", "version", "source", "licence", "notes",
                                                       "conus_lowest_level", "conus_source")}
        if header["conus_lowest_level"]:
            try:
                parse_vertebral_level(header["conus_lowest_level"])
            except ValueError as exc:
                self.problem(ctx, f"conus_lowest_level: {exc}")
            if not header["conus_source"]:
                self.problem(ctx, "conus_lowest_level needs conus_source (where the level comes from)")
        raw_rules = data.get("rules")
        rules: list[Rule] = []
        if raw_rules is not None and (not isinstance(raw_rules, list) or not raw_rules):
            self.problem(ctx, "rules must be a non-empty array of [[rules]] tables")
        for i, raw in enumerate(raw_rules if isinstance(raw_rules, list) else []):
            rule = self.rule(i, raw, pid or "")
            if rule is not None:
                rules.append(rule)
        self.unique(rules)
        if self.problems:
            return None
        return Protocol(id=pid, title=header["title"], version=header["version"],  # type: ignore[arg-type]
                        source=header["source"], rules=tuple(rules), path=self.where,  # type: ignore[arg-type]
                        licence=header["licence"], notes=header["notes"], shipped=shipped,
                        conus_lowest_level=header["conus_lowest_level"],
                        conus_source=header["conus_source"])

    def unique(self, rules: list[Rule]) -> None:
        seen: set[str] = set()
        indications: set[str] = set()
        sites: set[str] = set()
        for r in rules:
            if r.id in seen:
                self.problem(f"rule {r.id!r}", "duplicate rule id")
            seen.add(r.id)
            for value, pool, what in ((getattr(r, "indication", None), indications, "indication"),
                                      (getattr(r, "site", None), sites, "site")):
                if value is None:
                    continue
                if value in pool:
                    self.problem(f"rule {r.id!r}", f"a second rule for {what} {value!r}")
                pool.add(value)

    # ---------------------------------------------------------------- rules

    def rule(self, index: int, raw: Any, protocol_id: str) -> Rule | None:
        if not isinstance(raw, dict):
            self.problem(f"rule #{index + 1}", "expected a [[rules]] table")
            return None
        rid = raw.get("id")
        ctx = f"rule {rid!r}" if isinstance(rid, str) and rid else f"rule #{index + 1} (no id)"
        if isinstance(rid, str) and rid and not _ID.match(rid):
            self.problem(ctx, "id: use letters, digits, '.', '_' and '-'")
        kind = raw.get("kind")
        if kind not in KINDS:
            self.problem(ctx, f"kind {kind!r} not allowed (expected one of {', '.join(KINDS)})"
                         if kind is not None else "missing 'kind'")
            return None
        required, optional = _KIND_KEYS[kind]
        self.keys(ctx, raw, _COMMON_REQUIRED | required, (_COMMON_KEYS - _COMMON_REQUIRED) | optional)
        before = len(self.problems)
        common = dict(
            id=rid, kind=kind, protocol=protocol_id,
            description=self.text(ctx, raw, "description"),
            source=self.text(ctx, raw, "source"),
            severity=self.choice(ctx, raw, "severity", SEVERITIES),
            cites=self.strings(ctx, raw, "cites"),
            notes=self.text(ctx, raw, "notes"),
            show=tuple(m for m in self.strings(ctx, raw, "show")
                       if self.metric(ctx, m, "show", dose_only=False)),
        )
        specific = getattr(self, f"_{kind}")(ctx, raw)
        converts = (kind == "reirradiation" and raw.get("quantity") in CONVERTING_QUANTITIES) or \
            (kind == "dose_limit" and raw.get("convert") is not None) or \
            (kind == "fractionation" and raw.get("biological_equivalent") is True)
        common.update(self.radiobiology(ctx, raw, converts))
        if len(self.problems) > before:
            return None
        return RULE_TYPES[kind](**common, **specific)

    def radiobiology(self, ctx: str, raw: dict, converts: bool) -> dict[str, Any]:
        ab = raw.get("alpha_beta")
        model = raw.get("model")
        if converts:
            if ab is None or ab == "none":
                self.problem(ctx, "missing alpha_beta: this rule converts doses (BED/EQD2) and must "
                                  "state the alpha/beta (Gy) of its source")
                return {}
            value = self.number(ctx, raw, "alpha_beta", positive=True)
            if model is None:
                self.problem(ctx, "missing 'model' (\"LQ\") for a rule that converts doses")
            else:
                self.choice(ctx, raw, "model", MODELS)
            return {"alpha_beta": value, "model": model}
        if ab is None:
            self.problem(ctx, "missing alpha_beta: write alpha_beta = \"none\" (this rule compares "
                              "physical doses and never converts them)")
        elif ab != "none":
            self.problem(ctx, f"alpha_beta = {ab!r} but this rule never converts doses: write "
                              "alpha_beta = \"none\"")
        if model is not None:
            self.problem(ctx, "model is only allowed on a rule that converts doses")
        return {}

    def unit(self, ctx: str, raw: dict, expected: str) -> str | None:
        unit = raw.get("unit")
        if unit is not None and unit != expected:
            self.problem(ctx, f"unit {unit!r} not allowed here (expected {expected!r})")
            return None
        return unit

    def role(self, ctx: str, raw: dict) -> str | None:
        role = raw.get("role")
        if role is not None and role not in self.known_roles:
            self.problem(ctx, f"role {role!r} is not in the structure-role table (known: "
                              f"{', '.join(sorted(self.known_roles))}); add it with a roles file")
            return None
        return role

    def limit_fields(self, ctx: str, table: dict, operator: str | None) -> dict[str, Any] | None:
        limit = self.number(ctx, table, "limit")
        op = self.choice(ctx, table, "operator", OPERATORS) if "operator" in table else operator
        warn = self.number(ctx, table, "warn_up_to")
        if warn is not None and limit is not None:
            if op not in ("<", "<="):
                self.problem(ctx, "warn_up_to needs an upper-bound operator ('<' or '<=')")
            elif warn <= limit:
                self.problem(ctx, f"warn_up_to ({number_text(warn)}) must be above the limit ({number_text(limit)})")
        if limit is None or op is None:
            return None
        return {"limit": limit, "operator": op, "warn_up_to": warn}

    def tolerance(self, ctx: str, raw: dict, out: dict[str, Any]) -> dict[str, Any]:
        tol = self.number(ctx, raw, "dose_tolerance_pct")
        if tol is not None:
            if not 0 <= tol <= 5:
                self.problem(ctx, "dose_tolerance_pct must be between 0 and 5")
            out["dose_tolerance_pct"] = tol
        return out

    # ---------------------------------------------------------------- kinds

    def _fractionation(self, ctx: str, raw: dict) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": self.unit(ctx, raw, "Gy")}
        for key in ("indication", "indication_label", "remarks", "schemes_source"):
            out[key] = self.text(ctx, raw, key)
        for tier in FRACTIONATION_TIERS:
            out[tier] = self.schemes(ctx, raw, tier)
        if "recommended" in raw and not out["recommended"]:
            self.problem(ctx, "recommended must list at least one scheme")
        for entry in out["allowed_elsewhere"]:
            if entry.source is None:
                self.problem(ctx, f"allowed_elsewhere {entry.label}: needs a source (where the "
                                  "scheme or range stands)")
        bio = raw.get("biological_equivalent", False)
        if not isinstance(bio, bool):
            self.problem(ctx, "biological_equivalent must be true or false")
            bio = False
        out["biological_equivalent"] = bio
        out["biological_equivalent_definition"] = self.text(
            ctx, raw, "biological_equivalent_definition")
        out["biological_equivalent_technique"] = self.choice(
            ctx, raw, "biological_equivalent_technique", SCHEME_TECHNIQUES)
        if bio and out["biological_equivalent_definition"] is None:
            self.problem(ctx, "biological_equivalent = true needs biological_equivalent_definition "
                              "(the definition rtcheck prints in every such finding)")
        if not bio:
            for key in ("biological_equivalent_definition", "biological_equivalent_technique"):
                if key in raw:
                    self.problem(ctx, f"{key} is only allowed with biological_equivalent = true")
        elif out["biological_equivalent_technique"] and not any(
                s.technique == out["biological_equivalent_technique"]
                for tier in FRACTIONATION_TIERS for s in out[tier]):
            self.problem(ctx, "biological_equivalent_technique "
                              f"{out['biological_equivalent_technique']!r}: no listed scheme of "
                              "that technique to take the BED span from")
        prefs = []
        for sub, item in self.subtables(ctx, raw, "preferences", _PREFERENCE_KEYS, required=False):
            prefer = self.choice(sub, item, "prefer", PREFERENCES)
            fields_ = {k: self.text(sub, item, k) for k in ("quote", "source", "condition")}
            dose = self.number(sub, item, "dose", positive=True)
            n = self.integer(sub, item, "fractions")
            if prefer == "scheme" and (dose is None or n is None):
                self.problem(sub, "prefer = \"scheme\" needs dose and fractions")
            if prefer == "fractionated" and ("dose" in item or "fractions" in item):
                self.problem(sub, "dose and fractions are only allowed with prefer = \"scheme\"")
            sites = self._sites(sub, item)
            if prefer is not None and fields_["quote"] and fields_["source"]:
                prefs.append(Preference(prefer, fields_["quote"], fields_["source"],
                                        dose=dose if prefer == "scheme" else None,
                                        fractions=n if prefer == "scheme" else None,
                                        sites=sites, condition=fields_["condition"]))
        out["preferences"] = tuple(prefs)
        return self.tolerance(ctx, raw, out)

    def _sites(self, ctx: str, item: dict) -> tuple[str, ...]:
        sites = self.strings(ctx, item, "sites")
        for site in sites:
            if site not in SITES:
                self.problem(ctx, f"sites: {site!r} is not a site ({', '.join(SITES)})")
        if "sites" in item and not sites:
            self.problem(ctx, "sites must list at least one site (leave it out for any site)")
        return tuple(s for s in sites if s in SITES)

    def schemes(self, ctx: str, raw: dict, tier: str) -> tuple[ListedScheme, ...]:
        """The entries of one tier: ``{ dose, fractions }`` schemes or ``{ dose_min, dose_max,
        fractions_min, fractions_max }`` ranges, each with optional technique, source, where,
        quote, sites, note."""
        exact_keys = (_SCHEME_KEYS[0], _SCHEME_KEYS[1] | _SCHEME_EXTRA_KEYS)
        out: list[ListedScheme] = []
        items = raw.get(tier, [])
        if tier in raw and not isinstance(items, list):
            self.problem(ctx, f"{tier} must be an array of inline tables {{ ... }}")
            return ()
        for j, entry in enumerate(items):
            sub = f"{ctx}, {tier}[{j}]"
            if not isinstance(entry, dict):
                self.problem(sub, "expected an inline table { ... }")
                continue
            exact_form = "dose" in entry or "fractions" in entry
            is_range = any(k in entry for k in _SCHEME_RANGE_KEYS[0])
            if exact_form and is_range:
                self.problem(sub, "give either dose and fractions (a scheme) or dose_min, "
                                  "dose_max, fractions_min, fractions_max (a range), not both")
                continue
            self.keys(sub, entry, *(_SCHEME_RANGE_KEYS if is_range else exact_keys))
            extra: dict[str, Any] = {k: self.text(sub, entry, k)
                                     for k in ("source", "note", "where", "quote")}
            extra["technique"] = self.choice(sub, entry, "technique", SCHEME_TECHNIQUES)
            extra["sites"] = self._sites(sub, entry)
            if not is_range:
                dose = self.number(sub, entry, "dose", positive=True)
                n = self.integer(sub, entry, "fractions")
                if dose is not None and n is not None:
                    out.append(Scheme(dose, n, tier=tier, **extra))
                continue
            d0, d1 = (self.number(sub, entry, k, positive=True) for k in ("dose_min", "dose_max"))
            n0, n1 = (self.integer(sub, entry, k) for k in ("fractions_min", "fractions_max"))
            if None in (d0, d1, n0, n1):
                continue
            if d0 > d1 or n0 > n1:  # type: ignore[operator]
                self.problem(sub, "a minimum is above its maximum")
                continue
            out.append(SchemeRange(d0, d1, n0, n1, tier=tier, **extra))  # type: ignore[arg-type]
        return tuple(out)

    def _sbrt_prescription_range(self, ctx: str, raw: dict) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": self.unit(ctx, raw, "Gy")}
        out["site"] = self.choice(ctx, raw, "site", SITES)
        ranges = []
        for rctx, item in self.subtables(ctx, raw, "ranges", _RANGE_KEYS, required=True):
            d0, d1 = (self.number(rctx, item, k, positive=True) for k in ("dose_min", "dose_max"))
            n0, n1 = (self.integer(rctx, item, k) for k in ("fractions_min", "fractions_max"))
            if None in (d0, d1, n0, n1):
                continue
            if d0 > d1 or n0 > n1:  # type: ignore[operator]
                self.problem(rctx, "a minimum is above its maximum")
                continue
            ranges.append(DoseRange(d0, d1, n0, n1))  # type: ignore[arg-type]
        out["ranges"] = tuple(ranges)
        warn_fx = raw.get("warn_fractions", [])
        if not isinstance(warn_fx, list) or not all(isinstance(n, int) and not isinstance(n, bool)
                                                    and n >= 1 for n in warn_fx):
            self.problem(ctx, "warn_fractions must be a list of whole numbers >= 1")
            warn_fx = []
        out["warn_fractions"] = tuple(warn_fx)
        out["warn_reason"] = self.text(ctx, raw, "warn_reason")
        if warn_fx and not out["warn_reason"]:
            self.problem(ctx, "warn_fractions needs a warn_reason (with its source)")
        return self.tolerance(ctx, raw, out)

    def _dose_limit(self, ctx: str, raw: dict) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": self.unit(ctx, raw, "Gy"), "role": self.role(ctx, raw)}
        out["metric"] = self.metric(ctx, self.text(ctx, raw, "metric"), "metric", dose_only=True)
        operator = self.choice(ctx, raw, "operator", OPERATORS)
        limits, seen = [], set()
        for lctx, item in self.subtables(ctx, raw, "limits", _LIMIT_KEYS, required=True):
            n = self.integer(lctx, item, "fractions") if "fractions" in item else None
            values = self.limit_fields(lctx, item, operator)
            if n in seen:
                self.problem(lctx, "a second limit for " + (f"{n} fractions" if n else
                                                             "any number of fractions"))
            seen.add(n)
            if values is not None:
                limits.append(Limit(fractions=n, **values))
        if None in seen and len(seen) > 1:
            self.problem(ctx, "limits: either every limit states its fractions or one limit "
                              "without fractions holds for any")
        out["limits"] = tuple(sorted(limits, key=lambda lim: lim.fractions or 0))
        convert = raw.get("convert")
        if convert is not None and convert not in CONVERSIONS:
            self.problem(ctx, f"convert {convert!r}: expected one of {', '.join(CONVERSIONS)}")
        out["convert"] = convert
        course = raw.get("course")
        if course is not None and course != "first":
            self.problem(ctx, f"course {course!r}: the only value is \"first\" (a first "
                              "irradiation; re-irradiations have their own rules)")
        out["course"] = course
        out["defer_to"] = self.text(ctx, raw, "defer_to")
        out.update(self.scope(ctx, raw))
        return out

    def scope(self, ctx: str, raw: dict) -> dict[str, Any]:
        """Structures a dose rule reads beside its role, and the situation it was derived for."""
        out: dict[str, Any] = {}
        for key in ("also_roles", "below_conus_roles"):
            roles = self.strings(ctx, raw, key)
            for r in roles:
                if r not in self.known_roles:
                    self.problem(ctx, f"{key}: role {r!r} is not in the structure-role table")
            out[key] = roles
        for key in ("technique", "prior_technique"):
            value = raw.get(key)
            if value is not None and value not in ("sbrt", "conventional"):
                self.problem(ctx, f"{key} {value!r}: expected \"sbrt\" or \"conventional\"")
            if key in raw:
                out[key] = value
        if "extent_margin_mm" in raw:
            out["extent_margin_mm"] = self.number(ctx, raw, "extent_margin_mm", positive=True)
        if "max_prior_courses" in raw:
            out["max_prior_courses"] = self.integer(ctx, raw, "max_prior_courses")
        span = raw.get("applies_to_fractions")
        if span is not None:
            if (not isinstance(span, list) or len(span) != 2 or not all(
                    isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in span)
                    or span[0] > span[1]):
                self.problem(ctx, "applies_to_fractions must be [min, max] whole numbers >= 1")
            else:
                out["applies_to_fractions"] = (span[0], span[1])
        return out

    def _reirradiation(self, ctx: str, raw: dict) -> dict[str, Any]:
        quantity = self.choice(ctx, raw, "quantity", QUANTITIES)
        out: dict[str, Any] = {"quantity": quantity}
        if quantity is None:
            return out
        out["unit"] = self.unit(ctx, raw, QUANTITIES[quantity])
        if quantity in CONVERTING_QUANTITIES:
            for key in ("role", "metric"):
                if key not in raw:
                    self.problem(ctx, f"missing {key!r} (quantity {quantity} reads a structure's dose)")
            out["role"] = self.role(ctx, raw)
            out["metric"] = self.metric(ctx, self.text(ctx, raw, "metric"), "metric", dose_only=True)
        else:
            for key in ("role", "metric", "show"):
                if key in raw:
                    self.problem(ctx, f"{key} not allowed for quantity {quantity}")
        values = self.limit_fields(ctx, raw, self.choice(ctx, raw, "operator", OPERATORS))
        out["limits"] = (Limit(**values),) if values else ()
        out.update(self.scope(ctx, raw))
        return out

    def _case(self, ctx: str, raw: dict) -> dict[str, Any]:
        from rtcheck.rules.case_schema import case_rule_fields  # the case kinds' keys

        return case_rule_fields(raw, lambda msg: self.problem(ctx, msg))

    def _systemic_treatments(self, ctx: str, raw: dict) -> dict[str, Any]:
        from rtcheck.rules.case_schema import treatment_rule_fields

        return treatment_rule_fields(raw, lambda msg: self.problem(ctx, msg))

    def _warning(self, ctx: str, raw: dict) -> dict[str, Any]:
        if "unit" in raw:
            self.problem(ctx, "unit not allowed for a warning (it has no limit)")
        out: dict[str, Any] = {"role": self.role(ctx, raw),
                               "message": self.text(ctx, raw, "message")}
        levels = raw.get("vertebral_levels")
        if levels is not None:
            try:
                if not isinstance(levels, list) or len(levels) != 2:
                    raise ValueError("vertebral_levels must be [first, last], e.g. [\"C5\", \"T10\"]")
                first, last = (parse_vertebral_level(str(v)) for v in levels)
                if first > last:
                    raise ValueError(f"vertebral_levels {levels}: the first level is below the last")
                out["vertebral_levels"] = (str(levels[0]), str(levels[1]))
            except ValueError as exc:
                self.problem(ctx, str(exc))
        return out


# ======================================================================== helpers
