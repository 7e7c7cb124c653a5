"""SBRT or conventional: how rtcheck decides a course's technique, and says how.

The technique selects rules (the first-course SBRT cord table, the re-irradiation rules, the
SBRT prescription ranges), so it is never guessed. In order:

1. given (``--technique``, or ``technique=`` in a prior course's summary);
2. the scheme of the indication's row that the plan matches, when that scheme states its
   technique (Tableau 5 lists "Stéréotaxie 27 Gy en 3 fractions" for re-irradiation);
3. a criterion on the course's own numbers (:func:`technique_from_scheme`);
4. otherwise unknown: every rule that may apply is applied (the conservative reading), and the
   report says the technique was unknown.

The criterion of step 3 is rtcheck's, built from the referential's own schemes, not a
published definition:

- *conventional* when the dose per fraction is at most 5 Gy, or BED10 at most 20 Gy: every
  palliative scheme of Tableau 5, section 2.1 and Tableau 7 (30 Gy/10, 24 Gy/6, 20 Gy/5,
  20 Gy/4, 8 Gy/1, 10 Gy/1: BED10 14.4-39 Gy, at most 5 Gy per fraction or a single 6-10 Gy
  fraction);
- *SBRT* when at most 5 fractions of at least 6 Gy reach BED10 >= 30 Gy: every SBRT range of
  section 2.2.2 with at least 6 Gy per fraction (lowest: 18 Gy/2, BED10 34.2 Gy; 15 Gy/1,
  37.5 Gy; 30 Gy/5, 48 Gy);
- unknown in between (e.g. 12 Gy/1, BED10 26.4 Gy; 6 or more fractions of more than 5 Gy).
"""

from __future__ import annotations

from dataclasses import dataclass

TECHNIQUES = ("sbrt", "conventional")
#: Criterion on a course's own numbers (see the module docstring).
CONVENTIONAL_MAX_DOSE_PER_FRACTION = 5.0
CONVENTIONAL_MAX_BED10 = 20.0
SBRT_MAX_FRACTIONS = 5
SBRT_MIN_DOSE_PER_FRACTION = 6.0
SBRT_MIN_BED10 = 30.0


@dataclass(frozen=True)
class Technique:
    """A course's technique and how it was decided.

    Attributes
    ----------
    value : str or None
        ``"sbrt"``, ``"conventional"`` or None (unknown).
    how : str
        ``"given"``, ``"indication_scheme"``, ``"criterion"`` or ``"unknown"``.
    text : str
        The same in words, for the report.
    """

    value: str | None
    how: str
    text: str

    def as_dict(self) -> dict[str, str | None]:
        return {"technique": self.value, "how": self.how, "text": self.text}


def technique_from_scheme(total_gy: float | None, fractions: int | None) -> Technique:
    """The technique a scheme implies by rtcheck's criterion (module docstring), or unknown."""
    if total_gy is None or not fractions:
        return Technique(None, "unknown", "technique unknown: prescription or fractions unknown")
    d = total_gy / fractions
    bed10 = total_gy * (1.0 + d / 10.0)
    numbers = f"{total_gy:g} Gy/{fractions}: {d:.2f} Gy per fraction, BED10 {bed10:.1f} Gy"
    if d <= CONVENTIONAL_MAX_DOSE_PER_FRACTION or bed10 <= CONVENTIONAL_MAX_BED10:
        return Technique("conventional", "criterion",
                         f"conventional by rtcheck's criterion ({numbers}; conventional when "
                         f"<= {CONVENTIONAL_MAX_DOSE_PER_FRACTION:g} Gy per fraction or BED10 "
                         f"<= {CONVENTIONAL_MAX_BED10:g} Gy)")
    if fractions <= SBRT_MAX_FRACTIONS and d >= SBRT_MIN_DOSE_PER_FRACTION \
            and bed10 >= SBRT_MIN_BED10:
        return Technique("sbrt", "criterion",
                         f"SBRT by rtcheck's criterion ({numbers}; SBRT when <= "
                         f"{SBRT_MAX_FRACTIONS} fractions of >= {SBRT_MIN_DOSE_PER_FRACTION:g} Gy "
                         f"with BED10 >= {SBRT_MIN_BED10:g} Gy)")
    return Technique(None, "unknown", f"technique unknown ({numbers}: neither rtcheck's "
                     "conventional nor its SBRT criterion; give --technique)")


def given_technique(value: str, where: str = "--technique") -> Technique:
    return Technique(value, "given", f"{'SBRT' if value == 'sbrt' else value} given ({where})")
