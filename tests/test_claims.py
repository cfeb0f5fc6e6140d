"""The claims ledger: verdicts known by construction, p-values against scipy, the rule's
boundaries, and claims whose evidence is missing."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from minima import claims
from minima.claims import growing_networks, ledger, no_barriers, stats


def table1_results(grown_rsi, twin_rsi=10.0, seeds=(0, 1, 2), verdict="minimum", protocol="converged",
                   grown_accuracy=0.95, twin_accuracy=0.90):
    """A synthetic 40_table1.csv: MNIST-500, growing and twins a, b, c, batches 10 and 100."""
    rows = []
    for seed, model, batch in itertools.product(seeds, ("growing", "a", "b", "c"), (10, 100)):
        grown = model == "growing"
        rsi = (grown_rsi(seed, batch) if callable(grown_rsi) else grown_rsi) if grown else twin_rsi
        rows.append({"task": "MNIST", "hidden": 500, "model": model, "batch": batch, "seed": seed, "protocol": protocol,
                     "verdict": verdict, "rsi": rsi * (1 + batch / 1000), "elementwise": rsi,
                     "test_accuracy": grown_accuracy if grown else twin_accuracy})
    return pd.DataFrame(rows)


def flatter_rows(results):
    rows = pd.DataFrame(claims.evaluate(claims.claim("growing.flatter"), {"40_table1": results}))
    return rows.set_index("measure")


def test_all_comparisons_agree_holds_all_oppose_fails():
    agree = flatter_rows(table1_results(grown_rsi=1.0))
    assert list(agree.verdict) == ["holds", "holds"] and (agree.n == 18).all() and (agree.k == 18).all()
    assert agree.loc["elementwise", "effect"] == pytest.approx(10.0), "median ratio twin / grown"
    oppose = flatter_rows(table1_results(grown_rsi=100.0))
    assert list(oppose.verdict) == ["fails", "fails"] and (oppose.k == 0).all()


def test_mixed_comparisons_are_inconclusive():
    # grown flatter at batch 10, sharper at batch 100: 9 of 18 agree
    mixed = flatter_rows(table1_results(grown_rsi=lambda seed, batch: 1.0 if batch == 10 else 100.0))
    assert list(mixed.verdict) == ["inconclusive", "inconclusive"] and (mixed.k == 9).all()
    assert mixed.loc["rsi", "p_value"] == pytest.approx(scipy_stats.binomtest(9, 18, 0.5, alternative="greater").pvalue)


def test_too_few_certified_comparisons_are_inconclusive_however_clear():
    results = table1_results(grown_rsi=1.0)
    results.loc[results.seed > 0, "verdict"] = "not converged"  # 6 comparisons left, then 4
    rows = flatter_rows(results)
    assert list(rows.verdict) == ["holds", "holds"] and (rows.n == 6).all() and (rows.n_all == 18).all()
    results.loc[(results.seed == 0) & results.model.isin(["c"]), "verdict"] = "negative curvature"
    rows = flatter_rows(results)
    assert (rows.n == 4).all() and list(rows.verdict) == ["inconclusive", "inconclusive"], "4 of 4 is p = 1/16"
    assert "at least 5" in rows.reason.iloc[0]


def test_rule_boundaries_and_sign_test_against_scipy():
    for k, n in ((5, 5), (4, 4), (9, 12), (0, 7), (3, 10)):
        support, oppose = stats.sign_test(k, n)
        assert support == pytest.approx(scipy_stats.binomtest(k, n, alternative="greater").pvalue)
        assert oppose == pytest.approx(scipy_stats.binomtest(k, n, alternative="less").pvalue)
    assert stats.decide(*stats.sign_test(5, 5), 5) == "holds"  # 1/32 < 0.05
    assert stats.decide(*stats.sign_test(4, 4), 4) == "inconclusive"
    assert stats.decide(*stats.sign_test(0, 6), 6) == "fails"
    assert stats.decide(*stats.sign_test(4, 6), 6) == "inconclusive"
    assert np.isnan(stats.sign_test(0, 0)[0])


def test_bootstrap_resamples_seeds_not_comparisons():
    values = np.array([1.0, 1.0, 1.0, 5.0, 5.0, 5.0])
    low, high = stats.cluster_bootstrap(np.array([0, 0, 0, 1, 1, 1]), lambda i: float(np.median(values[i])))
    assert low == 1.0 and high == 5.0, "a resample takes whole seeds: the median is 1, 3 or 5"
    assert np.isnan(stats.cluster_bootstrap(np.zeros(6), lambda i: 1.0)[0]), "one seed: no interval"
    again = stats.cluster_bootstrap(np.array([0, 0, 0, 1, 1, 1]), lambda i: float(np.median(values[i])))
    assert again == (low, high), "deterministic"


def test_trend_claim_is_spearman_against_scipy():
    results = table1_results(grown_rsi=1.0)
    rng = np.random.default_rng(0)
    results["test_accuracy"] = 0.9 - 0.001 * results.rsi + rng.normal(0, 1e-4, len(results))
    rows = pd.DataFrame(claims.evaluate(claims.claim("growing.flat-generalises"), {"40_table1": results}))
    rsi = rows[rows.measure == "rsi"].iloc[0]
    expected = scipy_stats.spearmanr(results.rsi, results.test_accuracy, alternative="less")
    assert rsi.effect == pytest.approx(expected.statistic) and rsi.p_value == pytest.approx(expected.pvalue)
    assert rsi.verdict == "holds" and rsi.n == len(results)
    results["test_accuracy"] = 0.5 + 0.001 * results.rsi
    rows = pd.DataFrame(claims.evaluate(claims.claim("growing.flat-generalises"), {"40_table1": results}))
    assert rows[rows.measure == "rsi"].verdict.iloc[0] == "fails"


def test_accuracy_claims_mnist_higher_agnews_similar():
    mnist = table1_results(grown_rsi=1.0, grown_accuracy=0.95, twin_accuracy=0.90)
    rows = pd.DataFrame(claims.evaluate(claims.claim("growing.accuracy-mnist"), {"40_table1": mnist}))
    assert rows.verdict.tolist() == ["holds"] and rows.effect.iloc[0] == pytest.approx(5.0), "points"
    agnews = mnist.assign(task="AG News", hidden=100)
    rows = pd.DataFrame(claims.evaluate(claims.claim("growing.accuracy-agnews"), {"40_table1": agnews}))
    assert rows.verdict.tolist() == ["fails"], "5 points apart is not 'roughly the same'"
    rows = pd.DataFrame(claims.evaluate(claims.claim("growing.accuracy-agnews"),
                                        {"40_table1": agnews.assign(test_accuracy=0.9)}))
    assert rows.verdict.tolist() == ["holds"]


def test_missing_results_say_what_would_test_the_claim():
    rows = claims.verdicts({"40_table1": None, "60_table2": None, "50_no_barriers": None, "50_no_barriers_minima": None})
    assert set(rows.verdict) == {"not tested here"} and len(rows) == len(claims.CLAIMS)
    assert list(rows.columns[:len(claims.COLUMNS)]) == list(claims.COLUMNS)
    head = rows.set_index("claim").loc["growing.head-flatter"]
    assert "CoLA" in head.reason
    paths = pd.DataFrame({"dataset": ["d"], "architecture": ["mlp-2"], "pair": ["0-1"], "train_loss_saddle": [0.1],
                          "straight_barrier": [1.0], "test_error_minima": [3.0], "test_error_saddle": [3.5],
                          "verdict_start": ["minimum"], "verdict_end": ["minimum"], "path_converged": [True]})
    rows = pd.DataFrame(claims.evaluate(claims.claim("no-barriers.below-initialisation"), {"50_no_barriers": paths}))
    assert rows.verdict.tolist() == ["not tested here"] and "train_loss_init" in rows.reason.iloc[0]
    rows = pd.DataFrame(claims.evaluate(claims.claim("no-barriers.small-error-rise"), {"50_no_barriers": paths}))
    assert rows.verdict.tolist() == ["inconclusive"] and rows.n.iloc[0] == 1 and rows.k.iloc[0] == 1


def test_the_papers_own_numbers_in_the_claims_terms():
    flatter = claims.claim("growing.flatter").paper("MNIST-500", "rsi")
    assert flatter.startswith("6 of 6 agree"), flatter  # grown 4.45 / 179 against twins 820 to 21,517
    assert claims.claim("growing.batch-sharper").paper("AG News", "rsi").startswith("6 of 6 agree")
    assert claims.claim("growing.flatter").paper("MNIST-500", "elementwise") == ""
    assert claims.claim("growing.accuracy-mnist").paper("MNIST-500", "test accuracy").startswith("6 of 6 agree")
    assert "3.6x" in claims.claim("growing.head-flatter").paper
    assert "CIFAR-10: 0.4 to 1" in no_barriers.paper_ranges()["no-barriers.small-error-rise"]
    assert claims.claim("growing.flat-generalises").paper("MNIST-10", "rsi").startswith("Spearman rho")


def test_headline_puts_decided_rows_first():
    rows = pd.DataFrame([{"verdict": "inconclusive", "scope": "A", "protocol": "p", "measure": "m"},
                         {"verdict": "holds", "scope": "B", "protocol": "p", "measure": "m"}])
    assert ledger.headline(rows) == "**holds** (B, p, m); **inconclusive** in 1 row"
    assert ledger.headline(rows.iloc[:1]) == "**inconclusive**"


def test_ledger_pages_label_link_and_summarise():
    from minima.book import ledger as pages

    verdicts = claims.verdicts({"40_table1": table1_results(grown_rsi=1.0), "60_table2": None,
                                "50_no_barriers": None, "50_no_barriers_minima": None})
    table = pages.ledger_table(verdicts)
    assert len(table) == len(verdicts) and "raw" not in " ".join(table.columns)
    flatter = table.iloc[0]
    assert flatter.ours == "10x [10x, 10x]" or flatter.ours.startswith("10"), flatter.ours
    assert flatter["agree / certified"] == "18 of 18" and "<b>holds</b>" in flatter.verdict
    assert 'href="40_table1.html#the-two-claims-counted-twice"' in flatter.evidence
    summary = pages.landing_summary(verdicts)
    assert summary.count("\n- ") + summary.startswith("- ") == len(claims.CLAIMS)
    assert "{doc}`generated/90_claims`" in summary
    box = pages.paper_ours_box(verdicts, ["growing.flatter"])
    assert box.startswith("```{admonition} Paper / ours") and "**holds**" in box
    assert "rsi: paper: 6 of 6 agree" in box and "elementwise: ours" in box, "the paper reports no elementwise"
    assert pages.format_effect("growing.accuracy-mnist", 1.234, 0.5, 2.0) == "+1.2 points [+0.5 points, +2 points]"
    assert pages.format_effect("growing.flat-generalises", -0.4, float("nan"), float("nan")) == "rho -0.40"
    assert pages.count_text(verdicts).startswith(f"{len(claims.CLAIMS)} claims in {len(verdicts)} rows")


def test_pages_show_human_labels_and_keep_the_formats():
    from minima.book import tables

    frame = pd.DataFrame({"task": ["MNIST"], "train_loss": [0.000123], "lambda_min": [1e-5], "odd": [1]}).set_index("task")
    shown = tables.styled(frame, {"train_loss": "{:.2e}"}).to_html()
    assert "training loss" in shown and "λmin" in shown and "odd" in shown and "1.23e-04" in shown
    assert "train_loss" not in shown and "lambda_min" not in shown


def test_the_sentence_on_uncertified_points_counts_each_group():
    from minima.book import tables

    frame = pd.DataFrame({"architecture": ["mlp-2"] * 2 + ["mlp-8"] * 3,
                          "verdict": ["minimum", "minimum", "not converged", "negative curvature", "minimum"]})
    assert tables.not_certified(frame, ["architecture"], "minima") == \
        "2 of 5 minima are not certified minima (mlp-8: 2 of 3, negative curvature, not converged)"
    assert tables.not_certified(frame[:2], ["architecture"], "minima") == "all 2 minima are certified minima"
