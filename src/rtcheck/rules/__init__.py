"""Rules: what a protocol says, typed.

- :mod:`rtcheck.rules.kinds`: one rule type per kind (fractionation, prescription range,
  dose limit, re-irradiation, warning), re-exported here.
- :mod:`rtcheck.rules.protocols`: reading and validating a protocol file into rules.
- :mod:`rtcheck.rules.roles`: structure names to roles (TG-263 and the aliases a protocol adds).
- :mod:`rtcheck.rules.fractionation_tiers`: where a scheme stands in the referential's lists.

This room leans on :mod:`rtcheck.dvh` (the metric grammar), :mod:`rtcheck.radiobiology`,
:mod:`rtcheck.tomlfile` and :mod:`rtcheck.errors`; it never imports the checker, the report,
batch or the command line.
"""

from rtcheck.rules.kinds import (
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
    Preference,
    PrescriptionRangeRule,
    ReirradiationRule,
    Rule,
    Scheme,
    SchemeRange,
    WarningRule,
)

__all__ = [
    "DEFAULT_DOSE_TOLERANCE_PCT", "FRACTIONATION_TIERS", "PREFERENCES", "RULE_TYPES",
    "SCHEME_TECHNIQUES", "SITES", "DoseLimitRule", "DoseRange", "DoseRule", "FractionationRule",
    "Limit", "Preference", "PrescriptionRangeRule", "ReirradiationRule", "Rule", "Scheme",
    "SchemeRange", "WarningRule",
]
