"""The data sets ``benchmarks/quality.py`` scores, in its order, and their splits.

Kept apart from quality.py, which imports torch, so ``card_tables.py`` can order its tables by it
without loading a model stack.
"""

SPLITS = {
    "statements": ("dev", "test"),
    "statements_parties": ("dev",),
    "statements_attempts": ("dev",),
    "statements_numbers": ("dev",),
    "statements_swapped": ("dev",),
    "mnli_taxinli": ("dev", "test"),
    "snli_counterfactual": ("dev",),
    "negation_nli": ("dev",),
    "sick": ("dev", "test"),
    "fnc1": ("dev",),
    "arc": ("dev",),
    "emergent": ("dev", "test"),
    "climate_fever": ("dev", "test"),
    "perspectrum": ("dev", "test"),
    "ibm_claim_stance": ("dev", "test"),
}
