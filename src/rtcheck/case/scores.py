"""SINS (referential Tableau 10) and Mirels (Tableau 3): points by item, the sum, the bands.

A case file gives a score as its total or as its items (``[sins] location = "junctional"``...);
items are scored from the tables below, which transcribe the referential's tables cell by cell
(the French label of each cell is kept beside its key). The sum is shown with its terms.
"""

from __future__ import annotations

from dataclasses import dataclass

#: SINS, Tableau 10 ("Score SINS"): item -> choice -> (points, the table's words).
SINS_ITEMS: dict[str, dict[str, tuple[int, str]]] = {
    "location": {
        "junctional": (3, "Charnières (C0-C2, C7-T2, T11-L1, L5-S1)"),
        "mobile": (2, "Rachis mobile (C3-C6, L2-L4)"),
        "semi-rigid": (1, "Rachis semi-rigide (T3-T10)"),
        "rigid": (0, "Rachis rigide (S2-S5)"),
    },
    "pain": {
        "mechanical": (3, "Douleur mécanique : oui"),
        "non-mechanical": (1, "Douleur non mécanique"),
        "none": (0, "Indolore"),
    },
    "bone_lesion": {
        "lytic": (2, "Lytique"),
        "mixed": (1, "Mixte"),
        "condensing": (0, "Condensant"),
    },
    "alignment": {
        "subluxation": (4, "Subluxation/translation"),
        "deformity": (2, "Déformation harmonieuse"),
        "normal": (0, "Normal"),
    },
    "collapse": {
        "over-50": (3, "Tassement vertébral > 50%"),
        "under-50": (2, "Tassement vertébral < 50%"),
        "osteolysis-over-50-no-collapse": (1, "Ostéolyse > 50% sans tassement"),
        "none": (0, "Aucun"),
    },
    "posterior_elements": {
        "bilateral": (3, "Atteinte des éléments postérieurs bilatérale"),
        "unilateral": (1, "Unilatérale"),
        "none": (0, "Aucune"),
    },
}
#: Tableau 10's location rows as vertebral ordinals (C1 = 1 ... C7 = 7, T1 = 8 ... T12 = 19,
#: L1 = 20 ... L5 = 24, S1 = 25 ... S5 = 29; the occiput C0 is not a level rtcheck takes).
SINS_LOCATION_LEVELS: dict[str, tuple[tuple[int, int], ...]] = {
    "junctional": ((1, 2), (7, 9), (18, 20), (24, 25)),  # C0-C2, C7-T2, T11-L1, L5-S1
    "mobile": ((3, 6), (21, 23)),  # C3-C6, L2-L4
    "semi-rigid": ((10, 17),),  # T3-T10
    "rigid": ((26, 29),),  # S2-S5
}


def sins_locations(lo: int, hi: int) -> list[str]:
    """The SINS location rows (Tableau 10) of the vertebrae ``lo``-``hi`` (ordinals)."""
    return [name for name, spans in SINS_LOCATION_LEVELS.items()
            if any(a <= hi and lo <= b for a, b in spans)]


def sins_location_problem(score: Score, lo: int, hi: int, levels_text: str) -> str | None:
    """Why a SINS scored with a location item contradicts the lesion's vertebral levels
    (a T12 lesion scored "semi-rigid": 1 point where Tableau 10 gives 3); None when it
    agrees or the location is not itemised."""
    chosen = next((choice for item, choice, _ in score.items if item == "location"), None)
    allowed = sins_locations(lo, hi)
    if chosen is None or chosen in allowed:
        return None
    rows = " or ".join(f"{a!r} ({SINS_ITEMS['location'][a][1]})" for a in allowed) or "no row"
    return (f"sins.location: {chosen!r} is not the location of vertebral level(s) "
            f"{levels_text} (Tableau 10: {rows})")


#: Tableau 10's interpretation: (lowest, highest, words).
SINS_BANDS = ((0, 6, "stable"), (7, 12, "potentially unstable"), (13, 18, "unstable"))

#: Mirels, Tableau 3 ("Score de Mirels sur les radiographies simples", ref. 91).
MIRELS_ITEMS: dict[str, dict[str, tuple[int, str]]] = {
    "location": {
        "upper-limb": (1, "Membre supérieur"),
        "lower-limb": (2, "Membre inférieur"),
        "trochanteric": (3, "Région trochantérienne"),
    },
    "size": {
        "under-1/3": (1, "< 1/3 de la corticale"),
        "1/3-2/3": (2, "1/3 à 2/3 de la corticale"),
        "over-2/3": (3, "> 2/3 de la corticale"),
    },
    "lesion": {
        "condensing": (1, "Condensante"),
        "mixed": (2, "Mixte"),
        "lytic": (3, "Lytique"),
    },
    "pain": {
        "mild": (1, "Légère"),
        "moderate": (2, "Modérée"),
        "functional": (3, "Handicapante"),
    },
}
MIRELS_BANDS = ((3, 7, "observation, radiotherapy"), (8, 8, "multidisciplinary (RCP) decision"),
                (9, 12, "prophylactic fixation"))

SCORES = {"sins": (SINS_ITEMS, SINS_BANDS, "Tableau 10"),
          "mirels": (MIRELS_ITEMS, MIRELS_BANDS, "Tableau 3")}


@dataclass(frozen=True)
class Score:
    """A SINS or Mirels score: the total and, when given by items, each item's points.

    Attributes
    ----------
    name : str
        ``"sins"`` or ``"mirels"``.
    total : int
    items : tuple of (item, choice, points)
        Empty when the case file gave the total only.
    """

    name: str
    total: int
    items: tuple[tuple[str, str, int], ...] = ()

    @property
    def band(self) -> str:
        """The table's interpretation of the total (``"potentially unstable"``...)."""
        return next(words for lo, hi, words in SCORES[self.name][1] if lo <= self.total <= hi)

    @property
    def sum_text(self) -> str:
        """``"9 = location 3 + pain 3 + ..."`` (just the total when given as a total)."""
        if not self.items:
            return f"{self.total} (given as a total)"
        return f"{self.total} = " + " + ".join(f"{item} {pts}" for item, _, pts in self.items)

    def as_dict(self) -> dict[str, object]:
        return {"total": self.total, "band": self.band,
                "items": {item: {"choice": choice, "points": pts}
                          for item, choice, pts in self.items}}


def score_range(name: str) -> tuple[int, int]:
    """Smallest and largest total of a score (SINS 0-18, Mirels 4-12)."""
    items = SCORES[name][0]
    return (sum(min(p for p, _ in c.values()) for c in items.values()),
            sum(max(p for p, _ in c.values()) for c in items.values()))


def score_from_items(name: str, choices: dict[str, str]) -> Score:
    """The score of every item's choice (the caller validated the keys and choices)."""
    items = SCORES[name][0]
    terms = tuple((item, choices[item], items[item][choices[item]][0]) for item in items)
    return Score(name, sum(t[2] for t in terms), terms)
