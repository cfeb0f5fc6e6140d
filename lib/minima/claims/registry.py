"""The papers' claims that this book tests: one :class:`Claim` each, in :data:`CLAIMS`.

A claim names its paper, where it is stated, a one-line paraphrase, the comparison that
supports it (``test``), the results files its evidence comes from, the function that builds
that evidence (:mod:`minima.claims.growing_networks`, :mod:`minima.claims.no_barriers`), the
paper's own number in the same terms, and what would test it where this build cannot.

Each claim's :class:`Headline` is the one test that decides it, stated here before any data:
its protocol, measure, the scopes it pools, the test, direction and threshold. The family
over which Holm's adjustment runs is every claim of :data:`CLAIMS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import growing_networks as gn
from . import no_barriers as nb

GROWING = "Caillon & Cerisara 2021"
NO_BARRIERS = "Draxler et al. 2018"


@dataclass(frozen=True)
class Headline:
    """The test that decides a claim, on cluster summaries (:mod:`minima.claims.stats`).

    ``protocol``, ``measure``: which evidence rows (``protocol=None``: any protocol of the file,
    for paths "all pairs" or "tree paths"); ``scopes``: the scopes pooled (``None``: every
    scope; clusters stay within their scope); ``test``: ``"sign"`` (exact sign test of the
    cluster summaries), ``"tost"`` (equivalence of the cluster-mean gap within ``margin``) or
    ``"universal"`` (every unit: the Clopper-Pearson lower bound on the share of units that
    agree must exceed ``bound``); ``threshold``, ``scale``: a comparison's value enters its
    cluster's summary as ``log(value / threshold)`` (``scale="log"``, ratios) or ``value -
    threshold`` (``"linear"``), times ``direction`` (+1: the claim says above, -1: below).
    Only certified points count, except under the paper's protocol, whose end points are
    tested as the paper computed them, and the ``matched-loss`` end points, stated points at
    equal training loss. ``over_parameterised``: only the scopes in the paper's regime
    (:func:`minima.claims.no_barriers.over_parameterised`). ``robustness``: a protocol on which
    the same pooled test is stated before the data as the headline's robustness row (shown
    beside it, not adjusted, outside the family)."""

    protocol: str | None
    measure: str
    test: str = "sign"
    threshold: float = 1.0
    scale: str = "log"
    direction: int = 1
    scopes: tuple[str, ...] | None = None
    margin: float = 0.0
    bound: float = 0.0
    over_parameterised: bool = False
    robustness: str | None = None

    def describe(self) -> str:
        """The headline in words, for the ledger page."""
        where = "every scope pooled" if self.scopes is None else ", ".join(self.scopes)
        if self.over_parameterised:
            where = f"the over-parameterised scopes pooled (MLPs of at least {nb.LARGE_WIDTH} units, any CNN)"
        side = "above" if self.direction > 0 else "below"
        if self.test == "tost":
            what = f"equivalence (two one-sided t-tests) of the mean gap within ±{self.margin:g}"
        elif self.test == "universal":
            what = (f"every unit: exact one-sided Clopper-Pearson lower bound on the share that agree above "
                    f"{self.bound:g}")
        else:
            value = f"log(value / {self.threshold:g})" if self.scale == "log" else f"value - {self.threshold:g}"
            what = f"exact sign test: cluster means of {value} {side} 0"
        again = f"; robustness row: the same test on the {self.robustness} protocol" if self.robustness else ""
        return f"{self.protocol or 'any'} protocol, {self.measure}, {where}; {what}{again}"


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
    ``headline`` decides the claim; ``unit`` names the cluster (``"seed"``, ``"model and
    seed"``, ``"minimum"``: a path's cluster ``a-b`` counts for both of its minima).
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
    headline: Headline | None = None
    unit: str = "seed"


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
    return f"Spearman rho {spearman(runs.x, runs.y):.2f} over its {len(runs)} runs" if len(runs) >= 3 else ""


PAPER_NB = nb.paper_ranges()
TABLE1_PAGE = "generated/40_table1.md#the-two-claims-counted-twice"
NB_PAGE = "generated/50_no_barriers.md#every-path"

ALL_GROWN = None  # every scope of Table 1, pooled
SMALL = ("MNIST-10", "AG News-10")
FLAT = "elementwise"  # the flatness measure invariant for both kinds of network: every flatness headline's
# Table 1's headline protocol: a certified minimum of cross-entropy + lambda/2 |theta|^2, the same
# objective for every arm (the plain cross-entropy has no finite minimum on separable data, and its
# flatness falls with its loss: the `converged` finish took grown and twin to losses 600x apart)
WELL_POSED = "regularised"
# ... and its robustness row: every run of a cell stopped at one training CE on the paper's schedule
EQUAL_LOSS = "matched-loss"

CLAIMS: tuple[Claim, ...] = (
    Claim("growing.flatter", GROWING, "Table 1",
          "The grown network's minimum is flatter than each fully connected twin's of the same size.",
          "grown against each twin at the same protocol, task, size, batch and seed; agrees when the grown run's "
          "flatness is lower", "median ratio twin / grown flatness", ("40_table1",), gn.flatter, TABLE1_PAGE,
          paper=_paper_pairs(gn.flatter, "ratio"), headline=Headline(WELL_POSED, FLAT, robustness=EQUAL_LOSS)),
    Claim("growing.batch-sharper", GROWING, "Table 1", "A larger batch gives a sharper minimum.",
          "each model and seed at the task's small and large batch; agrees when the large batch's flatness is higher",
          "median ratio large / small batch flatness", ("40_table1",), gn.batch_sharper, TABLE1_PAGE,
          paper=_paper_pairs(gn.batch_sharper, "ratio"), headline=Headline(WELL_POSED, FLAT), unit="model and seed"),
    Claim("growing.accuracy-mnist", GROWING, "Discussion",
          "At the larger size on MNIST the grown network is also more accurate on the test set.",
          "grown against each twin at the larger size; agrees when its test accuracy is higher",
          "median accuracy difference grown - twin, points", ("40_table1",), gn.more_accurate_large, TABLE1_PAGE,
          paper=_paper_pairs(gn.more_accurate_large, "difference"),
          headline=Headline(WELL_POSED, "test accuracy", threshold=0.0, scale="linear")),
    Claim("growing.accuracy-agnews", GROWING, "Discussion",
          "On AG News the flatter grown minima bring no better accuracy: roughly the same performances.",
          f"grown against each twin at the larger size; agrees when the accuracies are within "
          f"{gn.SIMILAR_ACCURACY_PP:g} points", "median accuracy difference grown - twin, points", ("40_table1",),
          gn.similar_accuracy_large, TABLE1_PAGE, paper=_paper_pairs(gn.similar_accuracy_large, "difference"),
          headline=Headline(WELL_POSED, "test accuracy", test="tost", threshold=0.0, scale="linear",
                            margin=gn.SIMILAR_ACCURACY_PP)),
    Claim("growing.flat-generalises", GROWING, "Discussion",
          "A lower spectral norm goes with a higher test accuracy.",
          "rank correlation of flatness and test accuracy over the runs of a task, size and seed; the claim is a "
          "negative one", "median Spearman rho (flatness, test accuracy) over seeds", ("40_table1",),
          gn.flatness_goes_with_accuracy, TABLE1_PAGE, kind="trend", paper=_paper_trend,
          headline=Headline(WELL_POSED, FLAT, threshold=0.0, scale="linear", direction=-1)),
    Claim("growing.small-much-flatter", GROWING, "Discussion",
          "With 10 hidden units the grown minimum is at least 2.5 times flatter at similar accuracy.",
          f"grown against its twin at the task's smallest size; agrees when at least {gn.SMALL_FLATTER_FACTOR:g} "
          f"times flatter with accuracies within {gn.SIMILAR_ACCURACY_PP:g} points",
          "median ratio twin / grown flatness", ("40_table1",), gn.small_much_flatter, TABLE1_PAGE,
          paper=_paper_pairs(gn.small_much_flatter, "ratio"),
          headline=Headline(WELL_POSED, FLAT, threshold=gn.SMALL_FLATTER_FACTOR, scopes=SMALL)),
    Claim("growing.flatter-than-static", GROWING, "Table 1 (\"the insertion process is the only difference\")",
          "Growing itself, not the grown architecture, gives the flatter minimum: the grown network is flatter than "
          "its own final graph trained from the start with no insertion.",
          "grown against the static control (its final DAG, every edge from the first epoch) at the same protocol, "
          "task, size, batch and seed; agrees when the grown run's flatness is lower",
          "median ratio static / grown flatness", ("40_table1",), gn.flatter_than_static, TABLE1_PAGE,
          paper="not run by the paper (its Table 1 compares fully connected twins only)",
          untested="the static control arm (Table 1's controls)",
          headline=Headline(WELL_POSED, FLAT, robustness=EQUAL_LOSS)),
    Claim("growing.flatter-than-linear", GROWING, "Table 1 (what the grown network starts from)",
          "The grown network is flatter than its own starting network, the direct input-output map (a softmax "
          "regression) trained alone.",
          "grown against the linear control at the same protocol, task, size, batch and seed; agrees when the grown "
          "run's flatness is lower", "median ratio linear / grown flatness", ("40_table1",), gn.flatter_than_linear,
          TABLE1_PAGE, paper="not run by the paper", untested="the linear control arm (Table 1's controls)",
          headline=Headline(WELL_POSED, FLAT, robustness=EQUAL_LOSS)),
    Claim("growing.generalises-better", GROWING, "Discussion",
          "The grown network's flatter minima generalise better: higher test accuracy than its fully connected twin "
          "and than its own graph trained without insertion, at the same points.",
          "grown against twin a and against the static control; agrees when the grown run's test accuracy is higher",
          "median accuracy difference grown - other, points", ("40_table1",), gn.generalises_better, TABLE1_PAGE,
          untested="the static control arm (Table 1's controls)",
          headline=Headline(WELL_POSED, "test accuracy", threshold=0.0, scale="linear")),
    Claim("growing.head-flatter", GROWING, "Table 2, Discussion",
          "A grown classification head on CoLA is flatter by an order of magnitude without loss of accuracy.",
          f"grown against the reference head per seed, both at certified minima of the regularised head objective "
          f"and both learning CoLA (dev MCC > 0; a head at the majority-class baseline or below is left out); agrees "
          f"when at least {gn.HEAD_FLATTER_FACTOR:g} times flatter with MCC x 100 at most "
          f"{gn.SIMILAR_ACCURACY_PP:g} below",
          "median ratio reference / grown flatness", ("60_table2",), gn.head_flatter,
          "generated/60_table2.md#table-2", paper=gn.paper_head(),
          untested="CoLA's files and the encoder (see the data page)",
          headline=Headline("frozen", FLAT, threshold=gn.HEAD_FLATTER_FACTOR)),
    Claim("no-barriers.essentially-flat", NO_BARRIERS, "Title, Section 5",
          "Paths between minima are essentially flat: the saddle's training loss is within a small factor of the "
          "minima's (2-16x in the paper's table).",
          f"per path; agrees when the saddle's training loss is at most {nb.FLAT_FACTOR:g} times the higher minimum's",
          "median ratio saddle / minimum training loss", ("50_no_barriers", "50_no_barriers_minima"),
          nb.essentially_flat, NB_PAGE, paper=PAPER_NB["no-barriers.essentially-flat"],
          headline=Headline(None, "training loss", threshold=nb.FLAT_FACTOR, direction=-1, over_parameterised=True),
          unit="minimum"),
    Claim("no-barriers.below-initialisation", NO_BARRIERS, "Section 5",
          "The saddle's excess loss over the minima is a small fraction of the fall from the loss at "
          "initialisation (at most 7.5 % in the paper's table).",
          f"per path; agrees when the saddle's excess over the higher minimum is at most {nb.EXCESS_FRACTION:.1%} of "
          "the fall from the initial loss to the minima", "median excess / fall",
          ("50_no_barriers", "50_no_barriers_minima"), nb.below_initialisation, NB_PAGE,
          paper=PAPER_NB["no-barriers.below-initialisation"],
          untested="a results file with the loss at initialisation (column train_loss_init)",
          headline=Headline(None, "training loss", threshold=nb.EXCESS_FRACTION, scale="linear", direction=-1,
                            over_parameterised=True),
          unit="minimum"),
    Claim("no-barriers.below-test-loss", NO_BARRIERS, "Section 5",
          "The saddles' training loss is well below the test loss at the minima (at least 2.1x in the paper's table).",
          f"per path; agrees when the minima's mean test loss is at least {nb.TEST_LOSS_FACTOR:g} times the saddle's "
          "training loss", "median ratio test loss at minima / saddle training loss",
          ("50_no_barriers", "50_no_barriers_minima"), nb.below_test_loss, NB_PAGE,
          paper=PAPER_NB["no-barriers.below-test-loss"],
          untested="a results file with the test loss at the minima (column test_loss_minima)",
          headline=Headline(None, "loss", threshold=nb.TEST_LOSS_FACTOR, over_parameterised=True), unit="minimum"),
    Claim("no-barriers.test-loss-flat", NO_BARRIERS, "Section 5, Table 1",
          "The test loss does not rise along the path (at most 1.05x the minima's at the saddle in the paper's table).",
          f"per path; agrees when the test loss at the saddle is at most {nb.TEST_RISE_FACTOR:g} times the minima's",
          "median ratio saddle / minima test loss", ("50_no_barriers", "50_no_barriers_minima"), nb.flat_test_loss,
          NB_PAGE, paper=PAPER_NB["no-barriers.test-loss-flat"],
          untested="a results file with the test loss at the saddle (column test_loss_saddle)",
          headline=Headline(None, "test loss", threshold=nb.TEST_RISE_FACTOR, direction=-1, over_parameterised=True),
          unit="minimum"),
    Claim("no-barriers.small-error-rise", NO_BARRIERS, "Section 5",
          "The test error at the saddle rises by about a point at most (CIFAR-10: 0.5-1.0; CIFAR-100: 1.3-2.9).",
          f"per path; agrees when the saddle's test error is at most {nb.ERROR_RISE_PP[nb.CLASSES]:g} point above the "
          "minima's (the paper's largest rise for 10 classes)", "median rise in test error, points",
          ("50_no_barriers", "50_no_barriers_minima"), nb.small_error_rise, NB_PAGE,
          paper=PAPER_NB["no-barriers.small-error-rise"],
          headline=Headline(None, "test error", threshold=nb.ERROR_RISE_PP[nb.CLASSES], scale="linear", direction=-1,
                            over_parameterised=True),
          unit="minimum"),
    Claim("no-barriers.below-straight-line", NO_BARRIERS, "Section 4",
          "The AutoNEB path's barrier lies far below the straight line's between the same minima.",
          f"per path, both barriers above the higher minimum; agrees when the straight line's is at least "
          f"{nb.STRAIGHT_FACTOR:g} times the path's", "median ratio straight-line / path barrier",
          ("50_no_barriers", "50_no_barriers_minima"), nb.below_straight_line, NB_PAGE,
          paper=PAPER_NB["no-barriers.below-straight-line"],
          headline=Headline(None, "training loss", threshold=nb.STRAIGHT_FACTOR, over_parameterised=True), unit="minimum"),
    Claim("no-barriers.aligned-line", NO_BARRIERS, "Beyond the paper: Entezari et al. 2022, Ainsworth et al. 2023",
          "Once one minimum's hidden units are permuted to match the other's (weight matching), the straight line "
          "between them has no more barrier than the AutoNEB path: what AutoNEB finds is the permutation symmetry.",
          f"per path, both barriers as fractions of the fall from initialisation; agrees when the weight-matched "
          f"straight line's is within {nb.ALIGNED_MARGIN:.1%} of the fall of the AutoNEB saddle",
          "mean gap weight-matched straight line - AutoNEB saddle, fraction of the fall",
          ("50_no_barriers", "50_no_barriers_minima"), nb.aligned_line, NB_PAGE,
          untested="a results file with the barriers after alignment (column weight_matched_fraction)",
          headline=Headline(None, "excess / fall", test="tost", threshold=0.0, scale="linear",
                            margin=nb.ALIGNED_MARGIN, over_parameterised=True),
          unit="minimum"),
    Claim("no-barriers.vanishing-eigenvalue", NO_BARRIERS, "Abstract",
          "Each minimum has at least one vanishing Hessian eigenvalue besides those of trivial invariances.",
          "per minimum; agrees when the data-loss Hessian off the trivial symmetry directions (and off the data-null "
          "directions, along which the outputs on the training set do not move) has an eigenvalue of size at most "
          "the weight decay",
          "share of minima with a vanishing non-trivial eigenvalue",
          ("50_no_barriers_minima",), nb.vanishing_eigenvalue, NB_PAGE,
          paper=PAPER_NB["no-barriers.vanishing-eigenvalue"],
          untested="the exact spectrum of the Hessian off the trivial symmetries at the minima (column "
                   "nontrivial_vanishing of 50_no_barriers_minima.csv), computed for networks of at most "
                   "spectrum_max_params parameters: the capacity sweep's small widths",
          headline=Headline("minima", "Hessian eigenvalues", test="universal", bound=nb.UNIVERSAL_BOUND),
          unit="minimum"),
)


def claim(claim_id: str) -> Claim:
    """The claim with id ``claim_id``; raises ``KeyError`` listing the ids."""
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    raise KeyError(f"no claim {claim_id!r}; choose one of {', '.join(c.id for c in CLAIMS)}")


SHORT_NAMES = {  # claim id -> the few words a page names it by
    "growing.flatter": "grown minima flatter than the fully connected twins'",
    "growing.batch-sharper": "a larger batch gives sharper minima",
    "growing.accuracy-mnist": "grown network more accurate on MNIST-500",
    "growing.accuracy-agnews": "similar accuracy on AG News",
    "growing.flat-generalises": "flatter goes with more accurate",
    "growing.small-much-flatter": "10 hidden units: at least 2.5x flatter",
    "growing.flatter-than-static": "grown flatter than its own graph trained without growth",
    "growing.flatter-than-linear": "grown flatter than its direct map alone",
    "growing.generalises-better": "grown more accurate than twin a and its static graph",
    "growing.head-flatter": "grown head 10x flatter, same accuracy",
    "no-barriers.essentially-flat": "saddles within a small factor of the minima",
    "no-barriers.below-initialisation": "saddles far below the initial loss",
    "no-barriers.below-test-loss": "saddles below the minima's test loss",
    "no-barriers.test-loss-flat": "test loss flat along the paths",
    "no-barriers.small-error-rise": "test error rises by a point at most",
    "no-barriers.below-straight-line": "far below the straight line",
    "no-barriers.vanishing-eigenvalue": "a vanishing eigenvalue beyond the symmetries",
    "no-barriers.aligned-line": "after alignment the straight line is as low as the path",
}
