"""The papers' claims and their verdicts: a registry of claims (:mod:`~minima.claims.registry`),
the evidence each one reads from the results files (:mod:`~minima.claims.growing_networks`,
:mod:`~minima.claims.no_barriers`), the statistics (:mod:`~minima.claims.stats`) and the ledger
that decides each claim (:mod:`~minima.claims.ledger`)."""
from .ledger import COLUMNS, VERDICTS, evaluate, headline, headlines, read, verdicts
from .registry import CLAIMS, SHORT_NAMES, Claim, claim
from .stats import ALPHA, N_MIN, sign_test

__all__ = ["ALPHA", "CLAIMS", "SHORT_NAMES", "COLUMNS", "Claim", "N_MIN", "VERDICTS", "claim", "evaluate", "headline", "headlines",
           "read", "sign_test", "verdicts"]
