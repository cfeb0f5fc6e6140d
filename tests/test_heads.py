"""Head replacement keeps the Hugging Face interface; the grown head reaches the reference size."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

from minima.experiments.heads import GrowingHead, ModelNotFound, ReferenceHead, growth_plan, install_head, reference_parameters, \
    resolve_model


def tiny(kind: str):
    common = dict(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                  max_position_embeddings=40, num_labels=2)
    return RobertaForSequenceClassification(RobertaConfig(**common, pad_token_id=1)) if kind == "roberta" \
        else BertForSequenceClassification(BertConfig(**common))


@pytest.mark.parametrize("kind", ["roberta", "bert"])
@pytest.mark.parametrize("head_kind", ["growing", "reference"])
def test_installed_head_keeps_logits_and_loss(kind, head_kind):
    torch.manual_seed(0)
    model = tiny(kind).eval()
    ids = torch.randint(3, 50, (4, 9))
    labels = torch.tensor([0, 1, 1, 0])
    head = GrowingHead(16, 2, seed=0) if head_kind == "growing" else ReferenceHead(16, 2, seed=0)
    install_head(model, head).eval()
    out = model(input_ids=ids, labels=labels)
    assert out.logits.shape == (4, 2) and out.loss.dim() == 0
    base = getattr(model, model.base_model_prefix)
    features = base(input_ids=ids).last_hidden_state[:, 0]
    assert torch.allclose(out.logits, head(features), atol=1e-6), "the head must read the first token's state"
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(head(features), labels), atol=1e-6)


@pytest.mark.parametrize("hidden, labels", [(16, 2), (384, 2), (1024, 2), (32, 3)])
def test_grown_head_reaches_the_reference_parameter_count_exactly(hidden, labels):
    assert reference_parameters(hidden, labels) == sum(p.numel() for p in ReferenceHead(hidden, labels).parameters())
    fan_ins = growth_plan(hidden, labels)
    assert hidden * labels + labels + sum(f + 1 for f in fan_ins) == reference_parameters(hidden, labels)
    if hidden <= 32:
        head = GrowingHead(hidden, labels, seed=0)
        head.net.grow(len(fan_ins), fan_ins)
        assert head.net.num_parameters() == reference_parameters(hidden, labels)


def test_missing_model_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFound) as error:
        resolve_model("roberta-large-that-is-not-here")
    assert "\n" not in str(error.value) and "pass its folder" in str(error.value)
    path, description = resolve_model("minilm")
    assert "MiniLM" in description and path.endswith("model")


def test_fine_tuning_grows_the_installed_head_to_the_reference_size():
    from minima.experiments import table2

    texts = [f"the cat number {k} sat on the mat" if k % 2 else f"sat the on {k} cat mat" for k in range(48)]
    y = torch.tensor([k % 2 for k in range(48)])
    row = table2.fine_tune("growing", "tiny-random-roberta", texts[:32], y[:32], texts[32:], y[32:], 0,
                           table2.HeadTraining(epochs=3, batch_size=16, lr=1e-4, phases=(0, 1, 2), hessian_subset=32),
                           device="cpu")[0].as_row()  # no finish: the end point only
    assert row["point"] == table2.END_POINTS and row["parameters"] == row["reference parameters"] == reference_parameters(32, 2)
    assert [e["inserted"] for e in row["curve"]] == [11, 11, 10]
    assert 0 <= row["accuracy"] <= 1 and row["rsi"] > 0


@pytest.mark.parametrize("top_layers", [1, 2])
def test_top_layers_on_cached_lower_states_compute_what_the_whole_model_computes(top_layers):
    """The oracle: the full model with the head installed, in eval mode, on the same texts;
    each sentence alone (padded to its own length) and all together (padded to the longest)."""
    from minima.experiments.heads import EncoderTop, encoder_layers, install_head, load_encoder, lower_states

    texts = ["the cat sat on the mat", "a", "colourless green ideas sleep furiously today and then", "he is"]
    model, tokenizer, _ = load_encoder("tiny-random-roberta")
    head = GrowingHead(model.config.hidden_size, 2, seed=0)
    head.net.grow(5, 3)
    top = EncoderTop(model, top_layers, head).eval()
    lower = lower_states(model, tokenizer, texts, top_layers)
    install_head(model, head).eval()
    with torch.no_grad():
        whole = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
        together = top(*lower.batch(torch.arange(len(texts))))
        alone = torch.cat([top(*lower.batch(torch.tensor([i]))) for i in range(len(texts))])
    assert lower.states.shape[:2] == lower.mask.shape and lower.batch(torch.tensor([1]))[0].shape[1] == 3
    assert torch.allclose(together, whole, atol=1e-6) and torch.allclose(alone, whole, atol=1e-5)
    assert top.layers[0] is not encoder_layers(model)[-top_layers]  # a copy: the model stays pretrained


def test_fine_tuning_the_top_layers_trains_them_and_grows_the_head():
    from minima.experiments import table2
    from minima.experiments.heads import encoder_layers, load_encoder, lower_states

    texts = [f"the cat number {k} sat on the mat" if k % 2 else f"sat the on {k} cat mat" for k in range(48)]
    y = torch.tensor([k % 2 for k in range(48)])
    model, tokenizer, _ = load_encoder("tiny-random-roberta")
    before = [p.detach().clone() for p in encoder_layers(model).parameters()]
    train, test = lower_states(model, tokenizer, texts[:32], 1), lower_states(model, tokenizer, texts[32:], 1)
    row = table2.fine_tune_top("growing", model, train, y[:32], test, y[32:], 0,
                               table2.HeadTraining(epochs=3, batch_size=16, lr=1e-3, phases=(0, 1, 2), hessian_subset=32),
                               top_layers=1)[0].as_row()
    assert row["point"] == table2.END_POINTS and row["parameters"] == row["reference parameters"] == reference_parameters(32, 2)
    assert [e["inserted"] for e in row["curve"]] == [11, 11, 10]
    assert all(torch.equal(a, b) for a, b in zip(before, encoder_layers(model).parameters()))
    assert row["curve"][-1]["loss"] < row["curve"][0]["loss"] and row["verdict"] in ("minimum", "not converged", "negative curvature")


class _RecordingEncoding(dict):
    """A tokenizer's output that records where it is moved to."""

    moved: list = []

    def to(self, device):
        self.moved.append(torch.device(device))
        return self


def test_features_move_the_tokenizer_tensors_to_the_model_device():
    from minima.experiments.heads import first_token_features

    model = tiny("bert").eval()
    _RecordingEncoding.moved = []

    def tokenizer(texts, **kwargs):
        return _RecordingEncoding(input_ids=torch.randint(3, 50, (len(texts), 7)))

    features = first_token_features(model, tokenizer, ["a", "b", "c"], batch_size=2)
    assert features.shape == (3, 16)
    assert _RecordingEncoding.moved == [torch.device("cpu")] * 2, "inputs must follow the model's device"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_features_on_cuda():
    from minima.experiments.heads import first_token_features, load_encoder

    model, tokenizer, _ = load_encoder("tiny-random-roberta")
    features = first_token_features(model.cuda(), tokenizer, ["a short sentence", "another one"])
    assert features.is_cuda and features.shape == (2, 32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_fine_tuning_the_top_layers_runs_on_cuda():
    """Every tensor follows the model to the GPU (a mismatch raises); dropout draws from another
    generator there, so the two runs agree in shape, not in value."""
    from minima.experiments import table2
    from minima.experiments.heads import load_encoder, lower_states

    texts = [f"the cat number {k} sat on the mat" if k % 2 else f"sat the on {k} cat mat" for k in range(48)]
    y = torch.tensor([k % 2 for k in range(48)])
    model, tokenizer, _ = load_encoder("tiny-random-roberta")
    train, test = lower_states(model, tokenizer, texts[:32], 1), lower_states(model, tokenizer, texts[32:], 1)
    training = table2.HeadTraining(epochs=2, batch_size=16, lr=1e-3, phases=(0, 1), hessian_subset=32)
    rows = {device: table2.fine_tune_top("growing", model, train, y[:32], test, y[32:], 0, training, top_layers=1,
                                         device=device)[0].as_row()
            for device in ("cpu", "cuda")}
    assert rows["cuda"]["parameters"] == rows["cpu"]["parameters"] == reference_parameters(32, 2)
    assert all(math.isfinite(rows["cuda"][key]) for key in ("accuracy", "rsi", "lambda_max"))


def _noisy_features(n: int = 1000, width: int = 16):
    from minima.data import TrainTest

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, width, generator=g)
    flip = torch.rand(n, generator=g) < 0.2  # noisy labels: a head cannot fit them all
    y = ((x[:, 0] + 0.5 * x[:, 1] > 0) ^ flip).long()
    cut = int(0.8 * n)
    return TrainTest(x[:cut], y[:cut], x[cut:], y[cut:], 2)


@pytest.mark.parametrize("kind", ["growing", "reference"])
def test_frozen_heads_are_measured_at_the_end_point_then_at_a_certified_regularised_minimum(kind):
    """Two epochs of AdamW leave a head short of a minimum: its end point is measured as the
    paper did, uncertified; the float64 L-BFGS finish on CE + lambda/2 |theta|^2 (encoder fixed,
    dropout off) must certify a minimum there, whose gradient of that objective vanishes."""
    from minima.experiments import table2
    from minima.geometry.finish import Objective
    from minima.train import fit

    features = _noisy_features()
    decay = 1e-2
    training = table2.HeadTraining(epochs=2, batch_size=16, lr=1e-3, phases=(0, 1), hessian_subset=800,
                                   finish_rounds=30, finish_weight_decay=decay)
    end, finished = table2.run_head(kind, features, 0, training)
    assert (end.point, finished.point) == (table2.END_POINTS, table2.REGULARISED)
    assert end.finish == "none" and end.weight_decay == 0 and finished.weight_decay == decay
    assert finished.certificate.verdict == "minimum", finished.certificate
    assert finished.finish.startswith("L-BFGS") and finished.stability < 0.01
    assert finished.protocol == end.protocol == "frozen" and finished.parameters == reference_parameters(16, 2)
    row = finished.as_row()
    assert set(table2.RESULT_COLUMNS) <= set(row) and row["mcc_low"] <= row["mcc"] <= row["mcc_high"]
    assert (row["collapsed"] is None) == (kind == "reference")
    # the oracle: rebuild the head, train it the same way, finish it by hand; the gradient of the
    # regularised objective at the finished point is zero (to the certificate's tolerance)
    torch.manual_seed(0)  # as run_head: the global generator before the head is built (dropout)
    head = table2.make_head(kind, 16, 2, 0, training.phases)
    fit(head.module, features.x_train, features.y_train, lr=training.lr, batch_size=16, max_epochs=2,
        target_accuracy=None, generator=torch.Generator().manual_seed(0), growth=head.growth, optimizer="adamw")
    net, objective, done = table2.finish_head(head, features.x_train, features.y_train, training, 0)
    assert done.losses == list(finished.finish_losses)[:len(done.losses)]  # then the stability round's
    for p in objective.parameters:
        p.grad = None
    Objective(net, features.x_train.double(), features.y_train, weight_decay=decay).value_and_grad()
    gradient = torch.cat([p.grad.flatten() for p in objective.parameters]).norm()
    assert gradient < 1e-4, gradient


def test_mcc_interval_brackets_sklearns_mcc_and_matches_it_on_each_resample():
    from sklearn.metrics import matthews_corrcoef

    from minima.experiments.table2 import mcc_interval

    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.7
    good = np.where(rng.random(500) < 0.8, y, ~y)  # 80 % right: a clearly positive MCC
    low, high = mcc_interval(y, good, seed=1)
    assert low < matthews_corrcoef(y, good) < high and low > 0
    assert mcc_interval(y, good, seed=1) == (low, high)  # seeded
    # a resample's value is sklearn's MCC on the resampled sentences (the same seeded draw)
    index = np.random.default_rng(3).integers(0, 500, size=(1, 500))[0]
    assert mcc_interval(y, good, seed=3, resamples=1)[0] == pytest.approx(matthews_corrcoef(y[index], good[index]))
    lo, hi = mcc_interval(y, y, resamples=50)
    assert lo == hi == 1.0
    constant = mcc_interval(y, np.ones(500, bool), resamples=50)  # the majority class: MCC 0 everywhere
    assert constant == (0.0, 0.0)


def test_lambda_is_chosen_by_held_out_mcc_and_the_grid_widens_at_an_edge(monkeypatch):
    from types import SimpleNamespace

    from minima.experiments import table2
    from minima.experiments.table2 import regularisation

    asked = []

    def fake_run_heads(specs, executor=None, cache=None):
        asked.append([s.training.finish_weight_decay for s in specs])
        assert all(s.validation and s.kind == "reference" and s.seed == 0 for s in specs)
        # held-out MCC rises with lambda up to 1, then falls
        return [(SimpleNamespace(point=table2.REGULARISED, mcc=1 - abs(np.log10(s.training.finish_weight_decay)) / 10,
                                 accuracy=0.7, certificate=SimpleNamespace(verdict="minimum", train_loss=0.4)),)
                for s in specs]

    monkeypatch.setattr(regularisation, "run_heads", fake_run_heads)
    setup = table2.Table2Setup("tiny-random-roberta", 0, 32, 0, 2, "digest")
    settings = table2.Settings("tiny-random-roberta", 0, 32, 0, (0,),
                               table2.HeadTraining(2, 16, 1e-3, (0,), 100, finish_rounds=5))
    chosen, rows = regularisation.choose(setup, settings, [1e-3, 1e-2, 1e-1])
    assert asked == [[1e-3, 1e-2, 1e-1], [1.0], [10.0]] and chosen == 1.0
    assert [r["weight_decay"] for r in rows] == [1e-3, 1e-2, 1e-1, 1.0, 10.0]
    assert [r["chosen"] for r in rows] == [False, False, False, True, False]
    with pytest.raises(ValueError, match="frozen encoder"):
        regularisation.choose(table2.Table2Setup("tiny-random-roberta", 1, 32, 0, 2, "digest"), settings, [1e-2])


def test_protocol_settings_give_each_protocol_its_seeds_and_schedule():
    from minima.experiments import table2

    p = dict(model="tiny-random-roberta", protocols=["frozen", "fine-tuned"], frozen_seeds=[0, 1, 2], frozen_epochs=10,
             frozen_lr=1e-3, frozen_phases=[2, 5, 7], trainable_layers=1, seeds=[0], epochs=5, lr=1e-4,
             phases=[1, 2, 3], batch_size=16, finish_rounds=40, hessian_subset=2000, max_length=128, train_limit=0)
    chosen = table2.protocol_settings(p)
    assert list(chosen) == ["frozen", "fine-tuned"]
    assert chosen["frozen"].trainable_layers == 0 and chosen["frozen"].seeds == (0, 1, 2)
    assert chosen["frozen"].training.phases == (2, 5, 7) and chosen["frozen"].training.finish_rounds == 40
    assert chosen["fine-tuned"].trainable_layers == 1 and chosen["fine-tuned"].training.epochs == 5
    with pytest.raises(ValueError, match="trainable_layers > 0"):
        table2.protocol_settings({**p, "trainable_layers": 0})
    with pytest.raises(ValueError, match="unknown protocols"):
        table2.protocol_settings({**p, "protocols": ["frozen", "thawed"]})
