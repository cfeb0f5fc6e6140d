"""Table 2's protocols, by how much of the encoder learns with the head:

- :func:`fine_tune` trains the whole model with the head installed, as the paper does (a GPU
  for RoBERTa-large);
- :func:`fine_tune_top` trains the encoder's top layers with the head on the cached output of
  the frozen layers below (:func:`minima.experiments.heads.lower_states`): the CPU default;
- :func:`run_head` trains the head alone on first-token features computed once
  (:func:`minima.experiments.heads.first_token_features`), the encoder frozen.

Every protocol ends in :func:`~.records.head_rows`: the head at the paper's end point, then
at the certified minimum of its regularised problem."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ...core.device import resolve
from ...data import TrainTest
from ...train import Trainer, fit
from ..heads import EncoderTop, LowerStates, first_token_features, install_head, load_encoder
from .records import Head, HeadRecord, HeadTraining, head_rows, make_head


def run_head(kind: str, features: TrainTest, seed: int, training: HeadTraining,
             measured: bool = True) -> tuple[HeadRecord, ...]:
    """Train one head on frozen encoder features (``x_*``: ``(N, H)``) and measure it
    (:func:`~.records.head_rows`; ``measured=False``: its regularised minimum's scores only)."""
    x_train, y_train, x_test, y_test = features.x_train, features.y_train, features.x_test, features.y_test
    torch.manual_seed(seed)
    head = make_head(kind, x_train.shape[1], features.n_classes, seed, training.phases)
    start = time.perf_counter()
    result = fit(head.module, x_train, y_train, lr=training.lr, batch_size=training.batch_size,
                 max_epochs=training.epochs, target_accuracy=None, generator=torch.Generator().manual_seed(seed),
                 growth=head.growth, optimizer="adamw")
    seconds = time.perf_counter() - start
    return head_rows(head, seed, x_train, y_train, x_test, y_test, result.epochs, seconds, training, "frozen",
                     measured)


def fine_tune(kind: str, model_name: str, texts: list[str], y_train: torch.Tensor, test_texts: list[str],
              y_test: torch.Tensor, seed: int, training: HeadTraining, *, max_length: int = 128, device="auto",
              progress=None) -> tuple[HeadRecord, ...]:
    """The paper's setting: the whole model trained with the head installed (AdamW, constant
    learning rate), the head grown after the given epochs; then measured like :func:`run_head`
    on the fine-tuned encoder's features."""
    device = resolve(device)
    torch.manual_seed(seed)
    model, tokenizer, _ = load_encoder(model_name, labels=int(y_train.max()) + 1, seed=seed)
    hidden = model.config.hidden_size
    head = make_head(kind, hidden, int(y_train.max()) + 1, seed, training.phases)
    install_head(model, head.module)
    model.to(device)

    def step(index):
        enc = tokenizer([texts[i] for i in index], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt").to(device)
        out = model(**enc, labels=y_train[index].to(device))
        return out.loss, int((out.logits.argmax(1).cpu() == y_train[index]).sum())

    history, seconds = _train(model, head, step, len(texts), seed, training, progress)
    model.eval()
    limit = len(texts) if training.finish_rounds else training.hessian_subset  # the finish needs every sentence
    train_features = first_token_features(model, tokenizer, texts[:limit], max_length=max_length).cpu()
    test_features = first_token_features(model, tokenizer, test_texts, max_length=max_length).cpu()
    head.module.cpu().eval()
    return head_rows(head, seed, train_features, y_train[:limit], test_features, y_test, history, seconds, training,
                     "fine-tuned")


def fine_tune_top(kind: str, encoder, lower_train: LowerStates, y_train: torch.Tensor, lower_test: LowerStates,
                  y_test: torch.Tensor, seed: int, training: HeadTraining, *, top_layers: int, device="auto",
                  progress=None) -> tuple[HeadRecord, ...]:
    """The paper's setting on a CPU budget: the encoder's top ``top_layers`` layers are
    fine-tuned with the head installed (AdamW, weight decay 0.01, constant learning rate,
    dropout on), the head grown after the given epochs; the layers below stay pretrained and
    their output (``lower_train``, ``lower_test``: :func:`minima.experiments.heads.lower_states` of
    ``encoder``, kept on the CPU) is reused, each batch moved to ``device``. Measured like
    :func:`run_head` on the fine-tuned features."""
    device = resolve(device)
    torch.manual_seed(seed)
    hidden, labels = encoder.config.hidden_size, int(y_train.max()) + 1
    head = make_head(kind, hidden, labels, seed, training.phases)
    model = EncoderTop(encoder, top_layers, head.module).to(device)

    def step(index):
        states, mask = lower_train.batch(index)
        logits = model(states.to(device), mask.to(device))
        targets = y_train[index].to(device)
        return F.cross_entropy(logits, targets), int((logits.argmax(1) == targets).sum())

    history, seconds = _train(model, head, step, len(y_train), seed, training, progress)
    model.eval()
    limit = len(y_train) if training.finish_rounds else training.hessian_subset  # the finish needs every sentence
    with torch.no_grad():
        train_features = _features(model, lower_train, limit, device)
        test_features = _features(model, lower_test, len(lower_test), device)
    head.module.cpu()
    return head_rows(head, seed, train_features, y_train[:limit], test_features, y_test, history, seconds, training,
                     "fine-tuned")


def _train(model, head: Head, step, n: int, seed: int, training: HeadTraining, progress=None) -> tuple[list[dict], float]:
    """The paper's fine-tuning loop: AdamW (weight decay 0.01, constant ``lr``) over ``n`` examples
    in batches shuffled with ``seed``, dropout on, the grown head (if any) grown at the start of
    the epochs in ``phases``. ``step(index) -> (batch mean loss, correct predictions)``.
    Returns one record per epoch (running loss and accuracy over its batches) and the seconds."""
    trainer = Trainer(model, step, n, lr=training.lr, batch_size=training.batch_size,
                      generator=torch.Generator().manual_seed(seed), optimizer="adamw", growth=head.growth)
    history, start = [], time.perf_counter()
    for _ in range(training.epochs):
        history.append({key: value for key, value in trainer.epoch().items() if key != "seconds"})
        if progress:
            progress(history[-1])
    return history, time.perf_counter() - start


def _features(model: EncoderTop, lower: LowerStates, count: int, device, batch_size: int = 256) -> torch.Tensor:
    """First-token features ``(count, H)`` on the CPU of the first ``count`` sentences through the
    trained top layers (run on ``device``)."""
    index = torch.arange(min(count, len(lower)))
    return torch.cat([model.features(*(t.to(device) for t in lower.batch(part))).cpu() for part in index.split(batch_size)])


PROTOCOLS = ("frozen", "fine-tuned")
