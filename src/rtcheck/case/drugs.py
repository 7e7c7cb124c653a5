"""The systemic-treatment table (``constraints/drugs-2026.toml``): categories, names, half-lives.

Each drug has a category from section 3.1 of the referential (``stop``: radiosensitising,
strict wash-out; ``compatible``: with palliative radiotherapy; ``precaution``: little or no
data), its generic and brand names (matched case- and accent-insensitively, ignoring spaces,
hyphens and dots), and a half-life with its source, or none ("unknown": the wash-out check then
says so). The wash-out is 5 half-lives ("Il faut, en théorie, respecter un délai de 5
demi-vies", section 3.1); a half-life given as a range gives a wash-out range.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

from rtcheck.errors import InputError
from rtcheck.rules.case_schema import literal
from rtcheck.tomlfile import parse_toml, problem_text

#: The shipped drug table (in ``constraints/``, installed as ``rtcheck.constraints``).
DRUGS_FILE = "drugs-2026.toml"
CATEGORIES = ("stop", "compatible", "precaution")
_TOP_KEYS = ({"schema_version", "id", "source", "drugs"}, {"notes"})
_DRUG_KEYS = ({"generic", "category", "category_source"},
              {"brands", "aliases", "half_life_h", "half_life_source", "radiosync_delay_h",
               "radiosync_source", "notes"})


@dataclass(frozen=True)
class Drug:
    """One drug of the table.

    Attributes
    ----------
    generic : str
        The generic (INN) name.
    category : str
        ``stop``, ``compatible`` or ``precaution`` (:data:`CATEGORIES`).
    category_source : str
        Where the referential puts the drug in that category.
    names : tuple of str
        Every name it is known by (generic, brands, aliases), as written in the table.
    half_life_h : (float, float) or None
        Elimination half-life (hours), lowest and highest; None when unknown.
    half_life_source : str or None
    radiosync_delay_h : dict or None
        Radiosync's interruption delays (hours) by radiotherapy type (``palliative``,
        ``stereotactic``...), when the referential's excerpt gives them.
    """

    generic: str
    category: str
    category_source: str
    names: tuple[str, ...]
    half_life_h: tuple[float, float] | None = None
    half_life_source: str | None = None
    radiosync_delay_h: tuple[tuple[str, float], ...] = ()
    radiosync_source: str | None = None

    def washout_days(self, half_lives: float) -> tuple[float, float] | None:
        """``half_lives`` half-lives, in days (lowest, highest), or None when unknown."""
        if self.half_life_h is None:
            return None
        return (self.half_life_h[0] * half_lives / 24.0, self.half_life_h[1] * half_lives / 24.0)


@dataclass(frozen=True)
class DrugTable:
    """The validated drug table; :meth:`find` looks a name up."""

    id: str
    source: str
    drugs: tuple[Drug, ...]
    path: str

    def find(self, name: str) -> Drug | None:
        """The drug known by ``name`` (generic, brand or alias; case, accents, spaces, hyphens
        and dots ignored), or None."""
        key = normalise_name(name)
        for drug in self.drugs:
            if any(normalise_name(n) == key for n in drug.names):
                return drug
        return None


def normalise_name(name: str) -> str:
    """``"Adriamycine "`` -> ``"adriamycine"``; ``"Bévacizumab"`` -> ``"bevacizumab"``."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if c.isalnum())


def load_drug_table(path: str | PathLike | None = None) -> DrugTable:
    """The shipped table (``path`` None) or a table file, validated.

    Raises
    ------
    InputError
        Unreadable file, or one that does not follow the schema (every problem listed).
    """
    if path is None:
        res = resources.files("rtcheck.constraints") / DRUGS_FILE
        raw, where = res.read_bytes(), str(res)
    else:
        where = str(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read drug table: {exc.strerror or exc}", where) from exc
    data = parse_toml(raw, where)
    problems: list[str] = []
    table = _table(data, where, problems)
    if problems or table is None:
        raise InputError(problem_text(problems), where)
    return table


def _table(data: dict[str, Any], where: str, problems: list[str]) -> DrugTable | None:
    _keys("top level", data, _TOP_KEYS, problems)
    drugs = []
    seen: dict[str, str] = {}
    items = data.get("drugs", [])
    if not isinstance(items, list):
        problems.append("drugs: must be an array of tables [[drugs]]")
        items = []
    for i, item in enumerate(items):
        ctx = f"drugs[{i}]" + (f" ({item.get('generic')})" if isinstance(item, dict) else "")
        if not isinstance(item, dict):
            problems.append(f"{ctx}: expected a table")
            continue
        drug = _drug(ctx, item, problems)
        if drug is None:
            continue
        for n in drug.names:
            key = normalise_name(n)
            if key in seen and seen[key] != drug.generic:
                problems.append(f"{ctx}: name {literal(n)} is also a name of {seen[key]}")
            seen[key] = drug.generic
        drugs.append(drug)
    for key in ("id", "source"):
        if key in data and not (isinstance(data[key], str) and data[key].strip()):
            problems.append(f"top level: {key} must be a non-empty string")
    if problems:
        return None
    return DrugTable(data["id"], data["source"], tuple(drugs), where)


def _drug(ctx: str, item: dict[str, Any], problems: list[str]) -> Drug | None:
    before = len(problems)
    _keys(ctx, item, _DRUG_KEYS, problems)
    texts = {}
    for key in ("generic", "category_source", "half_life_source", "radiosync_source"):
        value = item.get(key)
        if value is not None and not (isinstance(value, str) and value.strip()):
            problems.append(f"{ctx}: {key} must be a non-empty string")
        texts[key] = value
    if item.get("category") not in CATEGORIES:
        problems.append(f"{ctx}: category {literal(item.get('category'))} not one of "
                        f"{', '.join(CATEGORIES)}")
    names: list[str] = [item.get("generic", "")]
    for key in ("brands", "aliases"):
        value = item.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            problems.append(f"{ctx}: {key} must be a list of names")
        else:
            names += value
    half = _half_life(ctx, item, problems)
    if half is not None and not texts["half_life_source"]:
        problems.append(f"{ctx}: half_life_h needs half_life_source (where the value comes "
                        "from); leave both out when the half-life is unknown")
    delays = item.get("radiosync_delay_h", {})
    if not isinstance(delays, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
            for v in delays.values()):
        problems.append(f"{ctx}: radiosync_delay_h must be a table of hours >= 0")
        delays = {}
    if delays and not texts["radiosync_source"]:
        problems.append(f"{ctx}: radiosync_delay_h needs radiosync_source")
    if len(problems) > before:
        return None
    return Drug(item["generic"], item["category"], item["category_source"], tuple(names),
                half, texts["half_life_source"],
                tuple((k, float(v)) for k, v in delays.items()), texts["radiosync_source"])


def _half_life(ctx: str, item: dict[str, Any], problems: list[str]
               ) -> tuple[float, float] | None:
    value = item.get("half_life_h")
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    if not (1 <= len(values) <= 2) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values):
        problems.append(f"{ctx}: half_life_h must be hours > 0, or [lowest, highest]")
        return None
    lo, hi = float(min(values)), float(max(values))
    return lo, hi


def _keys(ctx: str, table: dict[str, Any], spec: tuple[set[str], set[str]],
          problems: list[str]) -> None:
    required, optional = spec
    for key in sorted(set(table) - required - optional):
        problems.append(f"{ctx}: unknown key {literal(key)} (allowed: "
                        f"{', '.join(sorted(required | optional))})")
    for key in sorted(required - set(table)):
        problems.append(f"{ctx}: missing {literal(key)}")
