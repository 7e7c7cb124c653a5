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
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

from rtcheck.errors import InputError, MetricError
from rtcheck.roles import ROLES_FILE, RoleMap, _problem_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SCHEMA_VERSION = 1
KINDS = ("fractionation", "sbrt_prescription_range", "dose_limit", "reirradiation", "warning")
SEVERITIES = ("FAIL", "WARN")
OPERATORS = ("<", "<=", ">", ">=")
MODELS = ("LQ",)
SITES = ("spine", "sacrum", "extraspinal")
#: Re-irradiation quantities and their unit; the first three convert doses to EQD2.
QUANTITIES = {
    "cumulative_eqd2_max": "Gy",
    "course_eqd2_max": "Gy",
    "course_share": "ratio",
    "interval_months": "months",
}
CONVERTING_QUANTITIES = ("cumulative_eqd2_max", "course_eqd2_max", "course_share")
#: Default tolerance (percent of the listed dose) when a plan's dose is compared with a listed
#: scheme or a range bound; it absorbs rounding of the stored prescription, nothing more.
DEFAULT_DOSE_TOLERANCE_PCT = 0.5

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_LEVEL = re.compile(r"^(?P<region>C|T|TH|D|L|S)(?P<n>\d{1,2})$")
_REGIONS = {"C": (0, 7), "T": (7, 12), "L": (19, 5), "S": (24, 5)}  # offset, count

_TOP_KEYS = {"schema_version", "id", "title", "version", "source", "licence", "notes", "rules"}
_TOP_REQUIRED = {"schema_version", "id", "title", "version", "source", "rules"}
_COMMON_KEYS = {"id", "kind", "description", "source", "cites", "alpha_beta", "model",
                "severity", "notes"}
# alpha_beta is required too; radiobiology() reports its absence with the reason.
_COMMON_REQUIRED = {"id", "kind", "description", "source", "severity"}
_KIND_KEYS = {
    "fractionation": ({"indication", "recommended", "unit"},
                      {"indication_label", "other", "exceptional", "biological_equivalent",
                       "prefer_fractionated_sites", "remarks", "dose_tolerance_pct"}),
    "sbrt_prescription_range": ({"site", "ranges", "unit"},
                                {"warn_fractions", "warn_reason", "dose_tolerance_pct"}),
    "dose_limit": ({"role", "metric", "limits", "operator", "unit"}, {"show"}),
    "reirradiation": ({"quantity", "limit", "operator", "unit"},
                      {"role", "metric", "warn_up_to", "applies_to_fractions", "show"}),
    "warning": ({"role", "vertebral_levels", "message"}, {"show"}),
}
_SCHEME_KEYS = ({"dose", "fractions"}, {"technique", "source", "note"})
_RANGE_KEYS = ({"dose_min", "dose_max", "fractions_min", "fractions_max"}, set())
_LIMIT_KEYS = ({"fractions", "limit"}, {"warn_up_to", "operator"})


class ProtocolError(InputError):
    """A protocol file that does not follow the schema; ``problems`` lists every problem."""

    def __init__(self, problems: list[str], path: str | PathLike | None) -> None:
        self.problems = list(problems)
        super().__init__(_problem_text(self.problems), path)


# ======================================================================== typed objects


@dataclass(frozen=True)
class Scheme:
    """A listed fractionation scheme: ``dose`` Gy in ``fractions`` fractions."""

    dose: float
    fractions: int
    tier: str  # "recommended", "other", "exceptional"
    technique: str | None = None
    source: str | None = None
    note: str | None = None

    @property
    def label(self) -> str:
        """``"30 Gy/10"`` (with ``SBRT`` when the scheme says so)."""
        text = f"{_num(self.dose)} Gy/{self.fractions}"
        return f"{self.technique} {text}" if self.technique else text

    def bed(self, alpha_beta: float) -> float:
        """BED (Gy) of the scheme with the LQ model: D (1 + d / (alpha/beta))."""
        return self.dose * (1.0 + self.dose / self.fractions / alpha_beta)


@dataclass(frozen=True)
class DoseRange:
    """A prescription range: ``dose_min``-``dose_max`` Gy in ``fractions_min``-``fractions_max``."""

    dose_min: float
    dose_max: float
    fractions_min: int
    fractions_max: int

    @property
    def label(self) -> str:
        fx = (str(self.fractions_min) if self.fractions_min == self.fractions_max
              else f"{self.fractions_min}-{self.fractions_max}")
        return f"{_num(self.dose_min)}-{_num(self.dose_max)} Gy in {fx} fx"


@dataclass(frozen=True)
class Limit:
    """A threshold: the value must satisfy ``value <operator> limit``.

    ``warn_up_to`` (upper-bound operators only) is a band above the limit reported as WARN
    instead of the rule's severity: e.g. cumulative cord EQD2 < 70 Gy, 70-75 Gy WARN.
    ``fractions`` is set for limits tabulated by number of fractions.
    """

    limit: float
    operator: str
    warn_up_to: float | None = None
    fractions: int | None = None

    def satisfied(self, value: float) -> bool:
        return _compare(value, self.operator, self.limit)

    def status(self, value: float, severity: str) -> str:
        """``PASS``, ``WARN`` or ``severity`` for a value (which must be a number)."""
        if math.isnan(value):
            raise ValueError("a NaN value cannot be compared with a limit")
        if self.satisfied(value):
            return "PASS"
        if self.warn_up_to is not None and value <= self.warn_up_to:
            return "WARN"
        return severity

    def label(self, unit: str | None = None) -> str:
        """``"<= 12.4 Gy (WARN up to 14 Gy)"``."""
        u = f" {unit}" if unit and unit != "ratio" else ""
        text = f"{self.operator} {_num(self.limit)}{u}"
        if self.warn_up_to is not None:
            text += f" (WARN up to {_num(self.warn_up_to)}{u})"
        return text


@dataclass(frozen=True)
class Rule:
    """One rule of a protocol. Fields not used by a rule's kind are None or empty.

    Attributes
    ----------
    id, kind, description, source : str
        ``source`` names the table/section of the protocol's document.
    cites : tuple of str
        The paper(s) the source relies on.
    alpha_beta : float or None
        alpha/beta (Gy) the rule converts doses with; None for a rule that never converts
        (``alpha_beta = "none"`` in the file).
    model : str or None
        ``"LQ"`` when ``alpha_beta`` is set.
    role, metric : str or None
        Structure role and DVH metric (``"Dmax"``, ``"D0.35cc"``) the rule reads.
    show : tuple of str
        Extra metrics reported beside the value (e.g. ``D0.035cc``, ``D0.03cc``).
    unit : str or None
        ``"Gy"``, ``"months"`` or ``"ratio"``.
    severity : str
        Status of a violation: ``"FAIL"`` or ``"WARN"``.
    protocol : str
        Id of the protocol the rule belongs to.
    """

    id: str
    kind: str
    description: str
    source: str
    severity: str
    protocol: str = ""
    cites: tuple[str, ...] = ()
    alpha_beta: float | None = None
    model: str | None = None
    role: str | None = None
    metric: str | None = None
    show: tuple[str, ...] = ()
    unit: str | None = None
    notes: str | None = None
    # fractionation
    indication: str | None = None
    indication_label: str | None = None
    recommended: tuple[Scheme, ...] = ()
    other: tuple[Scheme, ...] = ()
    exceptional: tuple[Scheme, ...] = ()
    biological_equivalent: bool = False
    prefer_fractionated_sites: tuple[str, ...] = ()
    remarks: str | None = None
    dose_tolerance_pct: float = DEFAULT_DOSE_TOLERANCE_PCT
    # sbrt_prescription_range
    site: str | None = None
    ranges: tuple[DoseRange, ...] = ()
    warn_fractions: tuple[int, ...] = ()
    warn_reason: str | None = None
    # dose_limit (limits by fractions) and reirradiation (one limit)
    limits: tuple[Limit, ...] = ()
    quantity: str | None = None
    applies_to_fractions: tuple[int, int] | None = None
    # warning
    vertebral_levels: tuple[str, str] | None = None
    message: str | None = None

    @property
    def converts(self) -> bool:
        """True when the rule converts doses (BED/EQD2) and so depends on alpha/beta."""
        return self.alpha_beta is not None

    @property
    def schemes(self) -> tuple[Scheme, ...]:
        return self.recommended + self.other + self.exceptional

    def limit_for(self, fractions: int | None = None) -> Limit | None:
        """The limit for a number of fractions (dose_limit), or the rule's single limit."""
        if self.kind != "dose_limit":
            return self.limits[0] if self.limits else None
        for lim in self.limits:
            if lim.fractions == fractions:
                return lim
        return None

    @property
    def fraction_span(self) -> tuple[int, int] | None:
        """Smallest and largest tabulated number of fractions (dose_limit), else None."""
        fx = [lim.fractions for lim in self.limits if lim.fractions is not None]
        return (min(fx), max(fx)) if fx else None

    def bed_span(self) -> tuple[float, float] | None:
        """[min, max] BED of the recommended schemes at the rule's alpha/beta (biological
        equivalent), or None when the rule allows no biological equivalent."""
        if not self.biological_equivalent or self.alpha_beta is None:
            return None
        beds = [s.bed(self.alpha_beta) for s in self.recommended]
        return (min(beds), max(beds))

    def summary(self) -> str:
        """One line saying what the rule requires."""
        if self.kind == "fractionation":
            parts = [f"recommended {', '.join(s.label for s in self.recommended)}"]
            if self.biological_equivalent:
                lo, hi = self.bed_span()  # type: ignore[misc]
                parts.append(f"or BED{_num(self.alpha_beta)} within [{lo:.1f}, {hi:.1f}] Gy")
            if self.other:
                parts.append(f"other {', '.join(s.label for s in self.other)}")
            if self.exceptional:
                parts.append(f"exceptionally {', '.join(s.label for s in self.exceptional)}")
            return "; ".join(parts)
        if self.kind == "sbrt_prescription_range":
            return "; ".join(r.label for r in self.ranges)
        if self.kind == "dose_limit":
            return "; ".join(f"{lim.fractions} fx: {self.metric} {lim.label(self.unit)}"
                             for lim in self.limits)
        if self.kind == "reirradiation":
            what = self.quantity if self.metric is None else f"{self.quantity} ({self.metric})"
            return f"{what} {self.limits[0].label(self.unit)}"
        lo, hi = self.vertebral_levels  # type: ignore[misc]
        return f"vertebral level {lo}-{hi}: {self.severity}"

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for JSON); empty and None fields left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == () or (f.name == "biological_equivalent" and not value):
                continue
            if f.name == "dose_tolerance_pct" and self.kind not in (
                    "fractionation", "sbrt_prescription_range"):
                continue
            out[f.name] = _plain(value)
        out["alpha_beta"] = self.alpha_beta if self.alpha_beta is not None else "none"
        return out


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
    _by_id: dict[str, Rule] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update({r.id: r for r in self.rules})

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError when absent)."""
        return self._by_id[rule_id]

    def rules_of_kind(self, kind: str) -> list[Rule]:
        return [r for r in self.rules if r.kind == kind]

    def indications(self) -> list[str]:
        return [r.indication for r in self.rules if r.indication]

    def sites(self) -> list[str]:
        return [r.site for r in self.rules if r.site]

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
        if res.name.endswith(".toml") and res.name != ROLES_FILE:
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
        this set is an error; pass an extended :class:`~rtcheck.roles.RoleMap` for custom roles.

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
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProtocolError([f"not UTF-8 text ({exc})"], where) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError([f"not valid TOML ({exc})"], where) from exc
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
        from rtcheck.dvh import parse_metric  # late import: dvh pulls numpy geometry code

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
        header = {k: self.text(ctx, data, k) for k in ("title", "version", "source", "licence", "notes")}
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
                        licence=header["licence"], notes=header["notes"], shipped=shipped)

    def unique(self, rules: list[Rule]) -> None:
        seen: set[str] = set()
        indications: set[str] = set()
        sites: set[str] = set()
        for r in rules:
            if r.id in seen:
                self.problem(f"rule {r.id!r}", "duplicate rule id")
            seen.add(r.id)
            for value, pool, what in ((r.indication, indications, "indication"),
                                      (r.site, sites, "site")):
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
            (kind == "fractionation" and raw.get("biological_equivalent") is True)
        common.update(self.radiobiology(ctx, raw, converts))
        if len(self.problems) > before:
            return None
        return Rule(**common, **specific)

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
                self.problem(ctx, f"warn_up_to ({_num(warn)}) must be above the limit ({_num(limit)})")
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
        out["indication"] = self.text(ctx, raw, "indication")
        out["indication_label"] = self.text(ctx, raw, "indication_label")
        out["remarks"] = self.text(ctx, raw, "remarks")
        for tier in ("recommended", "other", "exceptional"):
            out[tier] = self.schemes(ctx, raw, tier)
        if "recommended" in raw and not out["recommended"]:
            self.problem(ctx, "recommended must list at least one scheme")
        bio = raw.get("biological_equivalent", False)
        if not isinstance(bio, bool):
            self.problem(ctx, "biological_equivalent must be true or false")
            bio = False
        out["biological_equivalent"] = bio
        sites = self.strings(ctx, raw, "prefer_fractionated_sites")
        for s in sites:
            if s not in SITES:
                self.problem(ctx, f"prefer_fractionated_sites: {s!r} is not a site ({', '.join(SITES)})")
        out["prefer_fractionated_sites"] = sites
        return self.tolerance(ctx, raw, out)

    def schemes(self, ctx: str, raw: dict, tier: str) -> tuple[Scheme, ...]:
        out = []
        for sub, item in self.subtables(ctx, raw, tier, _SCHEME_KEYS, required=False):
            dose = self.number(sub, item, "dose", positive=True)
            n = self.integer(sub, item, "fractions")
            extra = {k: self.text(sub, item, k) for k in ("technique", "source", "note")}
            if dose is not None and n is not None:
                out.append(Scheme(dose, n, tier, **extra))
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
            n = self.integer(lctx, item, "fractions")
            values = self.limit_fields(lctx, item, operator)
            if n in seen:
                self.problem(lctx, f"a second limit for {n} fractions")
            seen.add(n)
            if n is not None and values is not None:
                limits.append(Limit(fractions=n, **values))
        out["limits"] = tuple(sorted(limits, key=lambda lim: lim.fractions))
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
        span = raw.get("applies_to_fractions")
        if span is not None:
            if (not isinstance(span, list) or len(span) != 2 or not all(
                    isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in span)
                    or span[0] > span[1]):
                self.problem(ctx, "applies_to_fractions must be [min, max] whole numbers >= 1")
            else:
                out["applies_to_fractions"] = (span[0], span[1])
        return out

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


def _compare(value: float, operator: str, limit: float) -> bool:
    return {"<": value < limit, "<=": value <= limit,
            ">": value > limit, ">=": value >= limit}[operator]


def _num(x: float | None) -> str:
    """``30.0`` -> ``"30"``, ``20.3`` -> ``"20.3"``."""
    return "" if x is None else f"{x:g}"


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)
                if getattr(value, f.name) is not None}
    return value
