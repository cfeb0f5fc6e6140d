"""Tokeniser and vocabulary built from a training split."""
import torch

from minima.data.text import Vocabulary, tokenize


def test_tokenize_lowercases_and_keeps_contractions():
    assert tokenize("Don't STOP, 3 times!") == ["don't", "stop", "3", "times"]


def test_vocabulary_order_is_frequency_then_alphabet_and_independent_of_row_order():
    texts = ["b a a", "c b a"]
    vocab = Vocabulary.build(texts)
    assert vocab.tokens == ["<pad>", "<unk>", "a", "b", "c"]
    assert Vocabulary.build(texts[::-1]).tokens == vocab.tokens
    assert Vocabulary.build(texts, min_freq=2).tokens == ["<pad>", "<unk>", "a", "b"]
    assert Vocabulary.build(texts, max_size=3).tokens == ["<pad>", "<unk>", "a"]


def test_encode_bag_offsets_and_unknowns():
    vocab = Vocabulary.build(["a b"])
    ids, offsets = vocab.encode_bag(["a zzz", "", "b"])
    assert ids.tolist() == [2, 1, 1, 3] and offsets.tolist() == [0, 2, 3]
    bag = torch.nn.EmbeddingBag(len(vocab), 4, mode="mean")
    assert bag(ids, offsets).shape == (3, 4)
