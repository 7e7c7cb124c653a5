"""Case facts (what DICOM does not hold), the SINS and Mirels scores, the drug table.

:func:`load_case` reads a case file (``rtcheck check PLAN --case case.toml``; schema:
:data:`CASE_KEYS`, documented in the README); :mod:`rtcheck.case.scores` scores SINS
(Tableau 10) and Mirels (Tableau 3); :mod:`rtcheck.case.drugs` reads the systemic-treatment
table. The checks themselves are rules of kind ``case`` and ``systemic_treatments`` in
``constraints/`` (evaluated by :mod:`rtcheck.checker.evaluators.case`).
"""

from rtcheck.case.drugs import Drug, DrugTable, load_drug_table, normalise_name
from rtcheck.case.facts import (
    CASE_KEYS,
    CaseFacts,
    FactSpec,
    Treatment,
    case_from_mapping,
    case_from_strings,
    load_case,
)
from rtcheck.case.scores import MIRELS_ITEMS, SINS_ITEMS, Score, score_from_items

__all__ = ["CASE_KEYS", "MIRELS_ITEMS", "SINS_ITEMS", "CaseFacts", "Drug", "DrugTable",
           "FactSpec", "Score", "Treatment", "case_from_mapping", "case_from_strings", "load_case",
           "load_drug_table", "normalise_name", "score_from_items"]
