"""The papers' claims that this book tests: one :class:`Claim` each, in :data:`CLAIMS`.

A claim names its paper, where it is stated, a one-line paraphrase, the comparison that
supports it (``test``), the results files its evidence comes from, the function that builds
that evidence (:mod:`minima.claims.growing_networks`, :mod:`minima.claims.no_barriers`), the
paper's own number in the same terms, and what would test it where this build cannot.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import growing_networks as gn
from . import no_barriers as nb

GROWING = "Caillon & Cerisara 2021"
NO_BARRIERS = "Draxler et al. 2018"


@dataclass(frozen=True)
class Claim:
    """One claim of a paper and how this book tests it.

    ``evidence`` takes the results tables named in ``reads`` (DataFrames, in that order) and
    returns the comparisons (:data:`minima.claims.evidence.PAIRED`) or runs
    (:data:`~minima.claims.evidence.TREND`, when ``kind`` is ``"trend"``), or ``None`` when
    the files lack what the test needs. ``paper`` gives the paper's own number: a text, or a
    function of the scope and measure (``"MNIST-500", "rsi"``) returning one (empty where the
    paper has no such number: it reports no ``elementwise``). ``effect`` says what the effect
    column of the ledger is; ``page`` is the results page (doc name and section anchor).
    """

    id: str
    source: str
    where: str
    statement: str
    test: str
    effect: str
    reads: tuple[str, ...]
    evidence: Callable
    page: str
    kind: str = "paired"
    paper: "str | Callable[[str], str]" = ""
    untested: str = ""


def _paper_pairs(build: Callable, description: str) -> Callable[[str], str]:
    """The paper's Table 1 run through ``build``: per scope, how many of its comparisons agree
    and their median effect under its spectral norm."""
    def paper(scope: str, measure: str) -> str:
        rows = build(gn.paper_runs())
        rows = rows[(rows.scope == scope) & (rows.measure == measure) & rows.value.notna()]
        if not len(rows):
            return ""
        return f"{int(rows.supports.sum())} of {len(rows)} agree; median {description} {rows.value.median():.3g}"
    return paper


def _paper_trend(scope: str, measure: str) -> str:
    from .stats import spearman

    runs = gn.flatness_goes_with_accuracy(gn.paper_runs())
    runs = runs[(runs.scope == scope) & (runs.measure == measure) & runs.x.notna()]
    return f"Spearman rho {spearman(runs.x, runs.y)[0]:.2f} over its {len(runs)} runs" if len(runs) >= 3 else ""


PAPER_NB = nb.paper_ranges()
TABLE1_PAGE = "generated/40_table1.md#the-two-claims-counted-twice"
NB_PAGE = "generated/50_no_barriers.md#every-path"

CLAIMS: tuple[Claim, ...] = (
    Claim("growing.flatter", GROWING, "Table 1",
          "The grown network's minimum is flatter than each fully connected twin's of the same size.",
          "grown against each twin at the same protocol, task, size, batch and seed; agrees when the grown run's "
          "flatness is lower", "median ratio twin / grown flatness", ("40_table1",), gn.flatter, TABLE1_PAGE,
          paper=_paper_pairs(gn.flatter, "ratio")),
    Claim("growing.batch-sharper", GROWING, "Table 1", "A larger batch gives a sharper minimum.",
          "each model and seed at the task's small and large batch; agrees when the large batch's flatness is higher",
          "median ratio large / small batch flatness", ("40_table1",), gn.batch_sharper, TABLE1_PAGE,
          paper=_paper_pairs(gn.batch_sharper, "ratio")),
    Claim("growing.accuracy-mnist", GROWING, "Discussion",
          "At the larger size on MNIST the grown network is also more accurate on the test set.",
          "grown against each twin at the larger size; agrees when its test accuracy is higher",
          "median accuracy difference grown - twin, points", ("40_table1",), gn.more_accurate_large, TABLE1_PAGE,
          paper=_paper_pairs(gn.more_accurate_large, "difference")),
    Claim("growing.accuracy-agnews", GROWING, "Discussion",
          "On AG News the flatter grown minima bring no better accuracy: roughly the same performances.",
          f"grown against each twin at the larger size; agrees when the accuracies are within "
          f"{gn.SIMILAR_ACCURACY_PP:g} point", "median accuracy difference grown - twin, points", ("40_table1",),
          gn.similar_accuracy_large, TABLE1_PAGE, paper=_paper_pairs(gn.similar_accuracy_large, "difference")),
    Claim("growing.flat-generalises", GROWING, "Discussion",
          "A lower spectral norm goes with a higher test accuracy.",
          "rank correlation of flatness and test accuracy over the runs of a task and size; the claim is a negative one",
          "Spearman rho (flatness, test accuracy)", ("40_table1",), gn.flatness_goes_with_accuracy, TABLE1_PAGE,
          kind="trend", paper=_paper_trend),
    Claim("growing.small-much-flatter", GROWING, "Discussion",
          "With 10 hidden units the grown minimum is at least 2.5 times flatter at similar accuracy.",
          f"grown against its twin at the task's smallest size; agrees when at least {gn.SMALL_FLATTER_FACTOR:g} "
          f"times flatter with accuracies within {gn.SIMILAR_ACCURACY_PP:g} point",
          "median ratio twin / grown flatness", ("40_table1",), gn.small_much_flatter, TABLE1_PAGE,
          paper=_paper_pairs(gn.small_much_flatter, "ratio")),
    Claim("growing.head-flatter", GROWING, "Table 2, Discussion",
          "A grown classification head on CoLA is flatter by an order of magnitude without loss of accuracy.",
          f"grown against the reference head per seed; agrees when at least {gn.HEAD_FLATTER_FACTOR:g} times "
          f"flatter (rsi) with MCC x 100 at most {gn.SIMILAR_ACCURACY_PP:g} below",
          "median ratio reference / grown rsi", ("60_table2",), gn.head_flatter,
          "generated/60_table2.md#table-2", paper=gn.paper_head(),
          untested="CoLA's files and the encoder (see the data page)"),
    Claim("no-barriers.below-initialisation", NO_BARRIERS, "Section 5",
          "The saddles' training loss is about two orders of magnitude below the loss at initialisation.",
          f"per path; agrees when the initial loss is at least {nb.INIT_FACTOR:g} times the saddle's",
          "median ratio initial / saddle training loss", ("50_no_barriers",), nb.below_initialisation, NB_PAGE,
          paper=PAPER_NB["no-barriers.below-initialisation"],
          untested="a results file with the loss at initialisation (column train_loss_init)"),
    Claim("no-barriers.below-test-loss", NO_BARRIERS, "Section 5",
          "The saddles' training loss is below the test loss at the minima.",
          "per path; agrees when the minima's mean test loss exceeds the saddle's training loss",
          "median ratio test loss at minima / saddle training loss", ("50_no_barriers",), nb.below_test_loss, NB_PAGE,
          paper=PAPER_NB["no-barriers.below-test-loss"],
          untested="a results file with the test loss at the minima (column test_loss_minima)"),
    Claim("no-barriers.small-error-rise", NO_BARRIERS, "Section 5",
          "The test error at the saddle rises by at most about one percentage point (CIFAR-10; ours: the "
          "architectures and data named in the scope).",
          f"per path; agrees when the saddle's test error is at most {nb.ERROR_RISE_PP:g} point above the minima's",
          "median rise in test error, points", ("50_no_barriers",), nb.small_error_rise, NB_PAGE,
          paper=PAPER_NB["no-barriers.small-error-rise"]),
    Claim("no-barriers.below-straight-line", NO_BARRIERS, "Section 4",
          "The AutoNEB saddle lies far below the barrier on the straight line between the same minima.",
          f"per path; agrees when the straight-line barrier is at least {nb.STRAIGHT_FACTOR:g} times the saddle",
          "median ratio straight-line barrier / saddle", ("50_no_barriers",), nb.below_straight_line, NB_PAGE,
          paper=PAPER_NB["no-barriers.below-straight-line"]),
    Claim("no-barriers.vanishing-eigenvalue", NO_BARRIERS, "Abstract",
          "Each minimum has at least one vanishing Hessian eigenvalue besides those of trivial invariances.",
          "per minimum; agrees when the data-loss Hessian off the trivial symmetry directions (and off the data-null "
          "directions, along which the outputs on the training set do not move) has an eigenvalue of size at most "
          "the weight decay",
          "median count of vanishing non-trivial eigenvalues",
          ("50_no_barriers_minima",), nb.vanishing_eigenvalue, NB_PAGE,
          paper=PAPER_NB["no-barriers.vanishing-eigenvalue"],
          untested="the exact spectrum of the Hessian off the trivial symmetries at the minima (column "
                   "nontrivial_vanishing of 50_no_barriers_minima.csv), computed for networks of at most "
                   "spectrum_max_params parameters: the capacity sweep's small widths"),
)


def claim(claim_id: str) -> Claim:
    """The claim with id ``claim_id``; raises ``KeyError`` listing the ids."""
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    raise KeyError(f"no claim {claim_id!r}; choose one of {', '.join(c.id for c in CLAIMS)}")
