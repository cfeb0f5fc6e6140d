"""The claims ledger: verdicts known by construction at the level of clusters, exact p-values
against hand computations, Holm, TOST and Clopper-Pearson, the no-barriers claims in the
paper's terms, collapsed minima, and claims whose evidence is missing."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from minima import claims
from minima.book import ledger as book_ledger
from minima.claims import growing_networks, ledger, no_barriers, stats

NO_FILES = {"40_table1": None, "60_table2": None, "50_no_barriers": None, "50_no_barriers_minima": None}


def table1_results(grown_flatness, twin_flatness=10.0, seeds=(0, 1, 2), verdict="minimum", protocol="regularised",
                   grown_accuracy=0.95, twin_accuracy=0.90, task="MNIST", hidden=500, grown_loss=0.1, twin_loss=0.1,
                   collapsed=False):
    """A synthetic 40_table1.csv: one task and size, growing and twins a, b, c, batches 10 and 100."""
    rows = []
    for seed, model, batch in itertools.product(seeds, ("growing", "a", "b", "c"), (10, 100)):
        grown = model == "growing"
        value = (grown_flatness(seed, batch) if callable(grown_flatness) else grown_flatness) if grown else twin_flatness
        accuracy = grown_accuracy(seed) if callable(grown_accuracy) else grown_accuracy
        rows.append({"task": task, "hidden": hidden, "model": model, "batch": batch, "seed": seed, "protocol": protocol,
                     "verdict": verdict, "rsi": value * (1 + batch / 1000), "elementwise": value, "plain": value,
                     "test_accuracy": accuracy if grown else twin_accuracy,
                     "train_loss": grown_loss if grown else twin_loss, "collapsed": collapsed if grown else None})
    return pd.DataFrame(rows)


def rows_of(claim_id, tables):
    return claims.verdicts({**NO_FILES, **tables}).query("claim == @claim_id")


def headline_of(claim_id, tables):
    return rows_of(claim_id, tables).query("headline").iloc[0]


def test_eighteen_comparisons_from_three_seeds_are_inconclusive():
    """3 seeds x (3 twins x 2 batches): 18 comparisons, all agreeing, are 3 clusters."""
    head = headline_of("growing.flatter", {"40_table1": table1_results(1.0)})
    assert head.n == 18 and head.k == 18 and head.clusters == 3 and head.verdict == "inconclusive"
    assert head.p_value == pytest.approx(1 / 8) and "at least 5" in head.reason
    assert head.clusters_needed >= 8, "2^-m < 0.05 / 17 needs m >= 9 unanimous clusters"
    assert np.isnan(head.ci_low), "no interval from 3 clusters"


def test_six_unanimous_seeds_give_exact_p_one_in_sixty_four_then_holm():
    head = headline_of("growing.flatter", {"40_table1": table1_results(1.0, seeds=range(6))})
    assert head.clusters == 6 and head.p_value == pytest.approx(1 / 64)
    # Holm over the family of every claim: the only tested headline is the smallest p, times 14
    assert head.p_adjusted == pytest.approx(min(1.0, len(claims.CLAIMS) / 64))
    assert head.verdict == "inconclusive", "14/64 > 0.05"
    ten = headline_of("growing.flatter", {"40_table1": table1_results(1.0, seeds=range(10))})
    assert ten.p_adjusted == pytest.approx(len(claims.CLAIMS) / 1024) and ten.verdict == "holds"
    sharper = headline_of("growing.flatter", {"40_table1": table1_results(100.0, seeds=range(10))})
    assert sharper.verdict == "fails" and "opposite" in sharper.reason
    assert ten.effect == pytest.approx(10.0), "the cluster means' median ratio twin / grown"


def test_a_seed_is_one_unit_however_many_comparisons_it_holds():
    # grown flatter at batch 10, sharper at batch 100: each seed's mean log-ratio is 0 (a tie)
    mixed = headline_of("growing.flatter", {"40_table1": table1_results(
        lambda seed, batch: 1.0 if batch == 10 else 100.0, seeds=range(10))})
    assert mixed.k == 30 and mixed.n == 60 and np.isnan(mixed.p_value), "every cluster summary ties at 0"
    leaning = headline_of("growing.flatter", {"40_table1": table1_results(
        lambda seed, batch: 1.0 if batch == 10 else 20.0, seeds=range(10))})
    assert leaning.p_value == pytest.approx(1 / 1024), "each seed's mean log-ratio (log 10 + log 0.5) / 2 > 0"


def test_holm_against_a_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005, float("nan")]
    # sorted 0.005, 0.01, 0.03, 0.04 (and the untested 1) with m = 5: 0.025, 0.04, 0.09, 0.09
    assert np.allclose(stats.holm(p)[:4], [0.04, 0.09, 0.09, 0.025]) and np.isnan(stats.holm(p)[4])


def test_tost_on_a_known_gap():
    gaps = np.array([0.5, -0.3, 0.2, 0.1, -0.1, 0.4])  # mean 0.133, sd 0.294: inside +-2 with room
    p_equivalent, p_outside = stats.tost(gaps, 2.0)
    from scipy.stats import t

    se = gaps.std(ddof=1) / np.sqrt(len(gaps))
    assert p_equivalent == pytest.approx(t.sf((2.0 - gaps.mean()) / se, len(gaps) - 1)) and p_equivalent < 1e-4
    assert p_outside > 0.99
    far = stats.tost(gaps + 5.0, 2.0)
    assert far[0] > 0.99 and far[1] < 1e-4


def test_equivalence_claim_holds_within_the_margin_and_fails_far_outside():
    within = table1_results(1.0, task="AG News", hidden=100, seeds=range(12),
                            grown_accuracy=lambda seed: 0.90 + (0.004 if seed % 2 else -0.004), twin_accuracy=0.90)
    head = headline_of("growing.accuracy-agnews", {"40_table1": within})
    assert head.verdict == "holds" and abs(head.effect) < 0.5
    apart = within.assign(test_accuracy=np.where(within.model == "growing", within.test_accuracy + 0.06, 0.90))
    assert headline_of("growing.accuracy-agnews", {"40_table1": apart}).verdict == "fails"


def test_clopper_pearson_bound_and_the_universal_claim():
    assert stats.clopper_pearson_lower(10, 10) == pytest.approx(0.05 ** (1 / 10))
    assert stats.clopper_pearson_lower(0, 10) == 0.0
    from scipy.stats import binomtest

    assert stats.clopper_pearson_lower(7, 10) == pytest.approx(
        binomtest(7, 10).proportion_ci(confidence_level=0.90, method="exact").low)
    minima = pd.DataFrame({"dataset": "d", "architecture": "mlp-4", "minimum": [str(i) for i in range(30)],
                           "verdict": "minimum", "train_accuracy": 0.99, "nontrivial_vanishing": 1})
    head = headline_of("no-barriers.vanishing-eigenvalue", {"50_no_barriers_minima": minima})
    assert head.effect == 1.0 and head.ci_low == pytest.approx(0.05 ** (1 / 30)) and head.verdict == "holds"
    few = headline_of("no-barriers.vanishing-eigenvalue", {"50_no_barriers_minima": minima[:8]})
    assert few.verdict == "inconclusive" and few.clusters_needed > 8, "8 of 8: the bound is 0.69 < 0.75"


def paths_and_minima(n_minima=6, saddle=0.03, minimum=0.02, initial=2.3, straight=1.0, collapsed=()):
    """A synthetic 50_no_barriers.csv (every pair of ``n_minima`` minima) and its minima file."""
    pairs = list(itertools.combinations(range(n_minima), 2))
    paths = pd.DataFrame({"dataset": "d", "architecture": "mlp-100", "pair": [f"{a}-{b}" for a, b in pairs],
                          "train_loss_start": minimum, "train_loss_end": minimum, "train_loss_saddle": saddle,
                          "straight_barrier": straight, "train_loss_init": initial, "test_loss_minima": 0.3,
                          "test_loss_saddle": 0.305, "test_error_minima": 3.0, "test_error_saddle": 3.4,
                          "verdict_start": "minimum", "verdict_end": "minimum", "path_converged": True,
                          "in_tree": False})
    minima = pd.DataFrame({"dataset": "d", "architecture": "mlp-100", "minimum": [str(i) for i in range(n_minima)],
                           "verdict": "minimum", "train_accuracy": [0.11 if i in collapsed else 0.99
                                                                    for i in range(n_minima)]})
    return {"50_no_barriers": paths, "50_no_barriers_minima": minima}


def test_no_barrier_claims_count_minima_in_the_papers_terms():
    tables = paths_and_minima(n_minima=12)
    for claim_id in ("no-barriers.essentially-flat", "no-barriers.below-initialisation", "no-barriers.below-test-loss",
                     "no-barriers.test-loss-flat", "no-barriers.small-error-rise", "no-barriers.below-straight-line"):
        head = headline_of(claim_id, tables)
        assert head.clusters == 12 and head.n == 66 and head.unit == "minimum", claim_id
        assert head.verdict == "holds", (claim_id, head.reason)
    excess = headline_of("no-barriers.below-initialisation", tables)
    assert excess.effect == pytest.approx(0.01 / 2.28), "excess over the higher minimum / fall from initialisation"
    # the saddle 20x the minima's loss is not "essentially flat" by the paper's 2-16x
    assert headline_of("no-barriers.essentially-flat", paths_and_minima(12, saddle=0.4)).verdict == "fails"
    # the headline reads the over-parameterised networks only: a narrow MLP's paths are detail
    narrow = {name: t.assign(architecture="mlp-8") for name, t in tables.items()}
    rows = rows_of("no-barriers.essentially-flat", narrow)
    assert rows[rows.headline].iloc[0].clusters == 0 and rows[~rows.headline].iloc[0].clusters == 12


def test_a_budget_limited_saddle_is_an_upper_bound_and_leaves_the_claims():
    tables = paths_and_minima(n_minima=6)
    paths = tables["50_no_barriers"]
    paths["saddle_certificate"] = ["budget-limited" if "5" in pair else "converged" for pair in paths.pair]
    head = headline_of("no-barriers.essentially-flat", tables)
    assert head.n == 10 and head.clusters == 5, "the 5 paths of minimum 5 are upper bounds, and it has no other"
    paths["saddle_certificate"] = "none"  # no doubling run: no saddle is certified
    assert headline_of("no-barriers.essentially-flat", tables).clusters == 0


def test_the_aligned_line_claim_is_an_equivalence_of_the_aligned_barrier_and_the_saddle():
    tables = paths_and_minima(n_minima=12)
    paths = tables["50_no_barriers"]
    rng = np.random.default_rng(0)
    paths["excess_fraction"] = 0.01 / 2.28
    paths["weight_matched_fraction"] = paths.excess_fraction + rng.uniform(-0.004, 0.004, len(paths))
    head = headline_of("no-barriers.aligned-line", tables)
    assert head.clusters == 12 and head.verdict == "holds", head.reason
    assert abs(head.effect) < 0.004, "the mean gap, a fraction of the fall"
    paths["weight_matched_fraction"] = paths.excess_fraction + 0.2 + rng.uniform(-0.004, 0.004, len(paths))
    assert headline_of("no-barriers.aligned-line", tables).verdict == "fails", "a barrier remains after alignment"
    # without the aligned barriers (an older file) the claim is untested, not failed
    assert headline_of("no-barriers.aligned-line", paths_and_minima(n_minima=12)).verdict == "not tested here"


def test_a_collapsed_minimum_is_flagged_and_its_paths_leave_the_claims():
    tables = paths_and_minima(n_minima=6, collapsed=(2,))
    assert no_barriers.collapsed_minima(tables["50_no_barriers_minima"]) == {("d", "mlp-100", "2")}
    head = headline_of("no-barriers.essentially-flat", tables)
    assert head.n == 10 and head.clusters == 5, "the 5 paths of minimum 2 are excluded, and the minimum with them"


def test_trend_claim_is_a_sign_test_on_each_seeds_rank_correlation():
    results = table1_results(1.0, seeds=range(6), grown_accuracy=0.95, twin_accuracy=0.90)  # flatter, more accurate
    head = headline_of("growing.flat-generalises", {"40_table1": results})
    assert head.clusters == 6 and head.p_value == pytest.approx(1 / 64) and head.effect < 0


def test_end_points_of_the_papers_protocol_are_tested_uncertified_and_labelled():
    results = table1_results(1.0, protocol="paper", verdict="not converged", seeds=range(6))
    rows = rows_of("growing.flatter", {"40_table1": results})
    robust = rows.reason.str.startswith(ledger.ROBUSTNESS)
    detail = rows[~rows.headline & (rows.measure == "elementwise") & ~robust].iloc[0]
    assert detail.protocol == ledger.END_POINTS and detail.clusters == 6 and detail.p_value == pytest.approx(1 / 64)
    assert rows[rows.headline].iloc[0].verdict == "not tested here", "the headline reads converged minima only"


def test_missing_results_say_what_would_test_the_claim():
    rows = claims.verdicts(NO_FILES)
    assert set(rows.verdict) == {"not tested here"} and len(rows) == len(claims.CLAIMS) and rows.headline.all()
    assert list(rows.columns[:len(claims.COLUMNS)]) == list(claims.COLUMNS)
    assert "CoLA" in rows.set_index("claim").loc["growing.head-flatter"].reason
    paths = paths_and_minima()["50_no_barriers"].drop(columns=["train_loss_init"])
    head = headline_of("no-barriers.below-initialisation", {"50_no_barriers": paths})
    assert head.verdict == "not tested here" and "train_loss_init" in head.reason


def test_the_ledger_is_recomputed_from_the_results_files_alone(tmp_path):
    tables = {"40_table1": table1_results(1.0, seeds=range(10)), **paths_and_minima(12)}
    for name, table in tables.items():
        table.to_csv(tmp_path / f"{name}.csv", index=False)
    direct = claims.verdicts({**NO_FILES, **tables})
    read_back = claims.verdicts(claims.read(tmp_path))
    pd.testing.assert_frame_equal(direct[list(claims.COLUMNS)], read_back[list(claims.COLUMNS)])


def test_the_papers_own_numbers_in_the_claims_terms():
    flatter = claims.claim("growing.flatter").paper("MNIST-500", "rsi")
    assert flatter.startswith("6 of 6 agree"), flatter  # grown 4.45 / 179 against twins 820 to 21,517
    assert claims.claim("growing.batch-sharper").paper("AG News", "rsi").startswith("6 of 6 agree")
    assert claims.claim("growing.flatter").paper("MNIST-500", "elementwise") == ""
    assert claims.claim("growing.accuracy-mnist").paper("MNIST-500", "test accuracy").startswith("6 of 6 agree")
    assert "3.6x" in claims.claim("growing.head-flatter").paper
    ranges = no_barriers.paper_ranges()
    assert "CIFAR-10: 0.4 to 1" in ranges["no-barriers.small-error-rise"]
    assert "CIFAR-10: 2.12 to 19" in ranges["no-barriers.essentially-flat"]
    assert claims.claim("growing.flat-generalises").paper("MNIST-10", "rsi").startswith("Spearman rho")


def test_headline_line_names_verdict_clusters_and_what_would_decide():
    rows = rows_of("growing.flatter", {"40_table1": table1_results(1.0)})
    line = ledger.headline(rows)
    assert line.startswith("**inconclusive** (regularised, elementwise, 3 clusters, adjusted p = ")
    assert "clusters would decide it" in line


def test_ledger_pages_label_link_and_summarise():
    from minima.book import ledger as pages

    verdicts = claims.verdicts({**NO_FILES, "40_table1": table1_results(1.0, seeds=range(10))})
    table = pages.ledger_table(verdicts, headline_rows=True)
    assert len(table) == len(claims.CLAIMS)
    flatter = table.iloc[0]
    assert flatter.ours == '<span class="n">10x</span> <span class="n">[10x, 10x]</span>', flatter.ours
    assert flatter.clusters == "10 (seeds)" and "<b>holds</b>" in flatter.verdict
    assert flatter["adjusted p"] == f'<span class="n">{len(claims.CLAIMS) / 1024:.2g}</span>' and "paper" not in table.columns
    assert 'href="40_table1.html#the-two-claims-counted-twice"' in flatter.evidence
    assert "growing.flatter" not in pages.ledger_html(verdicts) + pages.tests_table().to_html(), "ids are not names"
    box = pages.paper_ours_box(verdicts, ["growing.flatter"])
    assert box.startswith("```{admonition} Paper / ours") and "**holds**" in box
    assert "rsi: paper: 6 of 6 agree" in box  # the paper's number only where it has one
    assert "per scope, not adjusted (MNIST-500, regularised):" in box and "- plain: ours 10x" in box, box
    assert pages.format_effect("growing.accuracy-mnist", 1.234, 0.5, 2.0) == "+1.2 points [+0.5 points, +2 points]"
    assert pages.format_effect("growing.flat-generalises", -0.4, float("nan"), float("nan")) == "rho -0.40"
    assert pages.count_text(verdicts).startswith(f"{len(claims.CLAIMS)} claims: 3 hold, 0 fail")


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


def test_the_landing_screen_says_what_was_reproduced_from_the_files(tmp_path):
    import json

    from minima.book import landing

    results = table1_results(1.0, seeds=range(10)).assign(**{"train examples": 4000})
    verdicts = claims.verdicts({**NO_FILES, "40_table1": results})
    (tmp_path / "40_table1.json").write_text(json.dumps({"datasets": [
        {"split": "train", "size": 4000, "description": "MNIST (official 10k test set, re-split)"}]}))
    text = landing.summary_markdown(verdicts, {**NO_FILES, "40_table1": results}, tmp_path)
    table = text.split("</table>")[0]
    assert table.count("<tr>") == 1 + 3, "a header and one row per experiment"
    assert "grown minima flatter than the fully connected twins'" in table and ">holds<" in table
    assert "4,000 training examples of MNIST;" in table
    assert "MNIST-500 grown:" in table and "(paper 94.8-97.0 %)" in table  # ours beside the paper's accuracy
    assert "not run in this build" in table and "not tested here" in table  # Table 2, no barriers
    assert "What differs from the papers" in text and "Table 1 trains on 4,000 training examples of MNIST" in text
    assert text.count("In short: ") == 1 and "grown networks reach flatter minima than" in text


def test_the_landing_finding_names_the_widths_whose_median_barrier_is_in_the_papers_range():
    from minima.book import landing

    rows = []
    for dataset, shares in (("mnist-10k", {2: 0.5, 8: 0.05, 100: 0.01}), ("fashion-10k", {4: 0.3})):
        for hidden, share in shares.items():
            for pair, spread in enumerate((0.5, 1.0, 1.5)):  # the median path is the middle one
                rows.append({"dataset": dataset, "hidden": float(hidden), "pair": pair, "train_loss_start": 0.1,
                             "train_loss_end": 0.2, "train_loss_init": 2.2, "train_loss_saddle": 0.2 + 2.0 * share * spread})
    sentence = landing.key_finding(claims.verdicts(NO_FILES), {"50_no_barriers": pd.DataFrame(rows)})
    assert "on mnist-10k at widths 8, 100 (of 2, 8, 100)" in sentence, sentence
    assert "on fashion-10k at no width (of 4)" in sentence, sentence


def test_the_head_claim_is_decided_on_the_frozen_regularised_heads_that_learn():
    rows = []
    for protocol, seeds in (("frozen", range(10)), ("fine-tuned", range(3))):
        for seed in seeds:
            for point in ("regularised", "paper (end points)"):
                for head, flatness in (("growing", 1.0), ("reference", 20.0)):
                    # seed 9's grown head does not learn CoLA (MCC 0: the majority class)
                    mcc = 0.0 if (protocol, seed, head) == ("frozen", 9, "growing") else 0.3
                    rows.append({"protocol": protocol, "point": point, "head": head, "seed": seed, "mcc": mcc,
                                 "verdict": "minimum" if point == "regularised" else "not converged",
                                 "rsi": flatness, "plain": flatness, "elementwise": flatness})
    found = rows_of("growing.head-flatter", {"60_table2": pd.DataFrame(rows)})
    head = found[found.headline].iloc[0]
    # the head at MCC 0 is left out: 9 seeds, not 10
    assert head.protocol == "frozen" and head.clusters == 9 and head.verdict == "holds", head.to_dict()
    detail = found[~found.headline & (found.measure == "elementwise")].set_index("protocol")
    assert detail.loc["fine-tuned"].clusters == 3 and detail.loc["fine-tuned"].verdict == "inconclusive"
    # the paper's end points are detail rows of their own, counted uncertified but not without learning
    assert detail.loc["frozen, paper (end points)"].clusters == 9
    assert "protocol=frozen, point=regularised, seed=0" in " ".join(found.evidence)


def test_the_loss_guard_is_directional():
    # the flatter arm (effect > 1: the grown) with a CE 3x lower: the gap may be the loss level
    assert ledger.loss_guard(effect=5.0, loss_ratio=3.0) == "confounded"
    # the flatter arm with the higher CE: the loss level works against the finding
    assert ledger.loss_guard(effect=5.0, loss_ratio=1 / 11) == "against"
    # the twin flatter (effect < 1) with a 3x lower CE of its own: confounded the other way
    assert ledger.loss_guard(effect=0.2, loss_ratio=1 / 3) == "confounded"
    assert ledger.loss_guard(effect=5.0, loss_ratio=1.5) == ""
    assert ledger.loss_guard(effect=5.0, loss_ratio=float("nan")) == ""


def test_a_flatter_grown_net_with_a_much_lower_loss_does_not_hold():
    plain = headline_of("growing.flatter", {"40_table1": table1_results(1.0, seeds=range(10))})
    assert plain.verdict == "holds" and plain.loss_ratio == pytest.approx(1.0)
    lower = headline_of("growing.flatter", {"40_table1": table1_results(1.0, seeds=range(10), grown_loss=0.001,
                                                                        twin_loss=0.1)})
    assert lower.verdict == "confounded by loss" and lower.loss_ratio == pytest.approx(100.0)
    assert "loss level" in lower.reason
    higher = headline_of("growing.flatter", {"40_table1": table1_results(1.0, seeds=range(10), grown_loss=0.5,
                                                                         twin_loss=0.05)})
    assert higher.verdict == "holds" and "works against the finding" in higher.reason


def test_collapsed_grown_networks_are_left_out_of_the_headline():
    results = table1_results(1.0, seeds=range(10), collapsed=True)
    head = headline_of("growing.flatter", {"40_table1": results})
    assert head.clusters == 0 and head.collapsed_left_out == 60 and head.verdict != "holds"
    half = pd.concat([table1_results(1.0, seeds=range(10)),
                      table1_results(1.0, seeds=range(10, 20), collapsed=True)], ignore_index=True)
    head = headline_of("growing.flatter", {"40_table1": half})
    assert head.clusters == 10 and head.collapsed_left_out == 60 and "softmax regression" in head.reason
    rows = rows_of("growing.flatter", {"40_table1": half})
    robust = rows.reason.str.startswith(ledger.ROBUSTNESS)
    detail = rows[~rows.headline & (rows.measure == "elementwise") & ~robust].iloc[0]
    assert "60 of 120 comparisons have a grown network collapsed" in detail.reason


def test_a_twin_that_learnt_nothing_is_not_counted():
    results = table1_results(1.0, seeds=range(10))
    results["constant"] = results.model.eq("c")  # the deep twin decayed to the constant predictor
    head = headline_of("growing.flatter", {"40_table1": results})
    assert head.n == 40 and head.clusters == 10, "the 20 comparisons with twin c are left out"
    assert ledger.loss_guard(effect=1.05, loss_ratio=10.0) == "", "no arm is flatter within 10 %"
    assert ledger.loss_guard(effect=5.0, loss_ratio=0.95) == "", "a CE 5 % apart is no loss gap"


def test_the_matched_loss_robustness_row_is_pooled_uncertified_and_outside_the_family():
    regularised = table1_results(1.0, seeds=range(10))
    matched = table1_results(lambda seed, batch: 20.0, seeds=range(10), protocol="matched-loss", verdict="not converged")
    rows = rows_of("growing.flatter", {"40_table1": pd.concat([regularised, matched], ignore_index=True)})
    robust = rows[rows.reason.str.startswith(ledger.ROBUSTNESS)]
    assert len(robust) == 1 and not robust.headline.iloc[0] and robust.protocol.iloc[0] == "matched-loss"
    row = robust.iloc[0]
    assert row.clusters == 10 and np.isnan(row.p_adjusted), "uncertified points at equal loss count; not adjusted"
    assert row.verdict == "fails" and f"p = {2.0 ** -10:.2g}" in row.reason, "the grown nets are sharper there"
    head = rows[rows.headline].iloc[0]
    assert head.verdict == "holds" and head.protocol == "regularised"
    box = book_ledger.paper_ours_box(rows, ["growing.flatter"])
    assert "robustness row (matched-loss" in box
    alone = rows_of("growing.flatter", {"40_table1": regularised})
    assert "no matched-loss comparisons" in alone[alone.reason.str.startswith(ledger.ROBUSTNESS)].reason.iloc[0]
