"""Text pipeline for AG News and CoLA: a tokeniser and a vocabulary built from a training split.

No pretrained embeddings: ids feed a learned ``nn.EmbeddingBag`` (see ``encode_bag``).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch

TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
PAD, UNK = "<pad>", "<unk>"


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens: letters/digits with an optional apostrophe suffix ("don't")."""
    return TOKEN.findall(text.lower())


@dataclass
class Vocabulary:
    """Token <-> id map; id 0 is padding, id 1 the unknown token."""

    tokens: list[str]

    def __post_init__(self):
        self.index = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1, max_size: int | None = None) -> "Vocabulary":
        """Vocabulary of the training texts: tokens seen at least ``min_freq`` times, most frequent
        first (ties broken alphabetically, so the result does not depend on text order),
        at most ``max_size`` entries including the two special tokens."""
        counts = Counter(token for text in texts for token in tokenize(text))
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max(0, max_size - 2)]
        return cls([PAD, UNK] + ranked)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        unknown = self.index[UNK]
        return [self.index.get(token, unknown) for token in tokenize(text)]

    def encode_bag(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat ids ``(T,)`` and start offsets ``(N,)`` for ``nn.EmbeddingBag(ids, offsets)``.

        An empty text becomes a single ``<unk>`` so every bag is non-empty.
        """
        ids, offsets = [], []
        for text in texts:
            offsets.append(len(ids))
            ids.extend(self.encode(text) or [self.index[UNK]])
        return torch.tensor(ids, dtype=torch.int64), torch.tensor(offsets, dtype=torch.int64)
