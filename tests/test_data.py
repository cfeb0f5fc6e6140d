"""The dataset registry on the real files and on tiny files written here, malformed ones included."""
from __future__ import annotations

import gzip
from pathlib import Path
import struct

import numpy as np
import pytest
import torch

from minima import data
from minima.book import provenance


def one_line(error: Exception) -> str:
    message = str(error)
    assert "\n" not in message and message, f"error message must be one line: {message!r}"
    return message


# ---------------------------------------------------------------- real files

def test_md5_of_real_files_match_the_published_list(real_data):
    for line in (real_data / "MD5SUMS").read_text().splitlines():
        md5, name = line.split()
        assert data.md5sum(real_data / name) == md5, name


def test_mnist_10k_is_a_stratified_deterministic_resplit(real_data):
    train, test = data.load("mnist-10k", "train", real_data), data.load("mnist-10k", "test", real_data)
    assert train.inputs.shape == (8000, 1, 28, 28) and test.inputs.shape == (2000, 1, 28, 28)
    assert train.inputs.dtype == torch.float32 and 0 <= train.inputs.min() and train.inputs.max() <= 1
    # The official test set has 980 zeros, 1135 ones, ... : counts add up per class.
    total = np.add(train.class_counts, test.class_counts)
    assert total.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert all(abs(t / (t + s) - 0.8) < 0.002 for t, s in zip(train.class_counts, test.class_counts))
    again = data.load("mnist-10k", "train", real_data)
    assert torch.equal(again.inputs, train.inputs) and torch.equal(again.targets, train.targets)
    assert "re-split" in train.description and "10k test" in train.description
    assert set(train.files.values()) == {"9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"}


def test_ag_news_7600_resplit_is_balanced(real_data):
    train, test = data.load("ag_news-7600", "train", real_data), data.load("ag_news-7600", "test", real_data)
    assert train.class_counts == [1520] * 4 and test.class_counts == [380] * 4
    assert isinstance(train.inputs[0], str) and len(train.inputs) == 6080
    assert train.classes == ["World", "Sports", "Business", "Sci/Tech"]


def test_cola_train_and_dev(real_data):
    train, test = data.load("cola", "train", real_data), data.load("cola", "test", real_data)
    assert len(train) == 8551 and len(test) == 516
    assert set(train.targets.tolist()) == {0, 1}
    assert train.class_counts[1] > train.class_counts[0]  # CoLA is ~70 % acceptable


def test_digits_is_embedded_and_needs_no_files(tmp_path):
    train, test = data.load("digits", "train", tmp_path), data.load("digits", "test", tmp_path)
    assert len(train) + len(test) == 1797 and train.inputs.shape[1:] == (1, 8, 8)
    assert train.files == {}


def test_full_datasets_missing_here_give_one_line_with_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_network_reachable", lambda *a, **k: False)
    for name in ("mnist", "ag_news", "mnist-10k", "cola"):
        with pytest.raises(data.DataError) as error:
            data.load(name, "train", tmp_path)
        message = one_line(error.value)
        assert str(tmp_path) in message and "MINIMA_DATA" in message and "digits" in message


def test_minima_data_variable_is_the_default_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIMA_DATA", str(tmp_path))
    assert data.data_root() == tmp_path
    with pytest.raises(data.DataError, match=str(tmp_path)):
        data.load("cola")


def test_without_minima_data_the_shipped_files_are_found_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv("MINIMA_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data.data_root() == data.PROJECT_DATA and data.PROJECT_DATA.is_dir()
    test = data.load("mnist-10k", "test")
    assert len(test) == 2000 and all(path.startswith(str(data.PROJECT_DATA)) for path in test.files)
    assert len(data.load("cola", "test")) == 516 and len(data.load("ag_news-7600", "test")) == 1520


def test_unknown_name_and_split(tmp_path):
    with pytest.raises(data.DataError, match="choose one of digits, mnist"):
        data.load("cifar11")
    with pytest.raises(data.DataError, match="unknown split"):
        data.load("digits", "validation")


# ---------------------------------------------------------------- tiny files written here

def write_idx(path, array: np.ndarray, magic_type: int = 0x08, compress: bool = True):
    header = bytes([0, 0, magic_type, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(payload)


def tiny_mnist(root, n=20, labels=None):
    (root / "mnist").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    write_idx(root / "mnist" / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
    write_idx(root / "mnist" / "t10k-labels-idx1-ubyte.gz", np.arange(n) % 10 if labels is None else labels)


def test_tiny_idx_round_trip_uncompressed_accepted(tmp_path):
    (tmp_path / "mnist").mkdir()
    images = np.random.default_rng(1).integers(0, 256, (30, 28, 28))
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte", images, compress=False)
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", np.arange(30) % 10, compress=False)
    train, test = data.load("mnist-10k", "train", tmp_path), data.load("mnist-10k", "test", tmp_path)
    assert len(train) == 20 and len(test) == 10  # 3 per class: round(2.4) = 2 train each
    recovered = torch.cat([train.inputs, test.inputs])[:, 0] * 255
    assert sorted(recovered.round().sum(dim=(1, 2)).tolist()) == sorted(images.sum(axis=(1, 2)).astype(float).tolist())


def test_bad_idx_magic(tmp_path):
    tiny_mnist(tmp_path)
    with gzip.open(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(b"\x12\x34\x56\x78" + bytes(100))
    with pytest.raises(data.DataError) as error:
        data.load("mnist-10k", "train", tmp_path)
    assert "t10k-images-idx3-ubyte.gz" in one_line(error.value) and "magic" in str(error.value)


def test_truncated_idx(tmp_path):
    tiny_mnist(tmp_path)
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    raw = gzip.open(path).read()
    gzip.open(path, "wb").write(raw[:-50])
    with pytest.raises(data.DataError) as error:
        data.load("mnist-10k", "test", tmp_path)
    assert "truncated" in one_line(error.value)


def test_not_gzip_at_all(tmp_path):
    tiny_mnist(tmp_path)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"this is not gzip")
    with pytest.raises(data.DataError) as error:
        data.load("mnist-10k", "test", tmp_path)
    assert "t10k-labels-idx1-ubyte.gz" in one_line(error.value)


def test_unknown_mnist_label(tmp_path):
    tiny_mnist(tmp_path, labels=np.full(20, 11))
    with pytest.raises(data.DataError) as error:
        data.load("mnist-10k", "train", tmp_path)
    assert "unknown label 11" in one_line(error.value)


def write_text(root, folder, name, text):
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / name).write_text(text, encoding="utf-8")


def test_ag_news_rows(tmp_path):
    rows = "".join(f'"{c}","Title {i}","Body \\\\ text {i}"\n' for i, c in enumerate([1, 2, 3, 4] * 5))
    write_text(tmp_path, "ag_news", "test.csv", rows)
    train = data.load("ag_news-7600", "train", tmp_path)
    assert train.class_counts == [4, 4, 4, 4] and train.inputs[0].startswith("Title")
    write_text(tmp_path, "ag_news", "test.csv", '"1","only two columns"\n')
    with pytest.raises(data.DataError) as error:
        data.load("ag_news-7600", "train", tmp_path)
    assert "test.csv:1" in one_line(error.value) and "3 columns" in str(error.value)
    write_text(tmp_path, "ag_news", "test.csv", '"1","a","b"\n"7","c","d"\n')
    with pytest.raises(data.DataError) as error:
        data.load("ag_news-7600", "train", tmp_path)
    assert "test.csv:2" in one_line(error.value) and "unknown label '7'" in str(error.value)


def test_cola_two_and_four_columns(tmp_path):
    write_text(tmp_path, "cola", "train.tsv", "the cat sat .\t1\ncat the sat .\t0\n")
    write_text(tmp_path, "cola", "dev.tsv", "gj04\t1\t\tThe cat sat.\ngj04\t0\t*\tCat the sat.\n")
    train, test = data.load("cola", "train", tmp_path), data.load("cola", "test", tmp_path)
    assert train.inputs == ["the cat sat .", "cat the sat ."] and train.targets.tolist() == [1, 0]
    assert test.inputs == ["The cat sat.", "Cat the sat."] and test.targets.tolist() == [1, 0]
    write_text(tmp_path, "cola", "train.tsv", "a\tb\tc\n")
    with pytest.raises(data.DataError) as error:
        data.load("cola", "train", tmp_path)
    assert "train.tsv:1" in one_line(error.value)
    write_text(tmp_path, "cola", "train.tsv", "fine sentence\tyes\n")
    with pytest.raises(data.DataError, match="unknown label 'yes'"):
        data.load("cola", "train", tmp_path)


def test_empty_file(tmp_path):
    write_text(tmp_path, "cola", "dev.tsv", "")
    with pytest.raises(data.DataError, match="empty"):
        data.load("cola", "test", tmp_path)


def test_provenance_records_every_load(tmp_path, monkeypatch):
    log = tmp_path / "loads.jsonl"
    monkeypatch.setenv(provenance.ENV, str(log))
    data.load("digits", "train")
    data.load("digits", "test")
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and '"split": "test"' in lines[1]


def test_cifar_pickles_written_here(tmp_path):
    import pickle

    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 9]}
        (folder / name).write_bytes(pickle.dumps(batch))
    train = data.load("cifar10", "train", tmp_path)
    assert train.inputs.shape == (20, 3, 32, 32) and train.class_counts[9] == 5
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(data.DataError) as error:
        data.load("cifar10", "test", tmp_path)
    assert "test_batch" in one_line(error.value)


def test_fashion_10k_ships_and_is_resplit_like_mnist_10k():
    train, test = data.load("fashion-10k", "train", data.PROJECT_DATA), data.load("fashion-10k", "test", data.PROJECT_DATA)
    assert (len(train), len(test)) == (8000, 2000)
    assert train.class_counts == [800] * 10 and test.class_counts == [200] * 10
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    assert "Fashion-MNIST (official 10k test set" in train.description
    assert {data.md5sum(Path(p)) for p in train.files} == {"f78720b4224f21cce2f2ccf2d7a94c9a",
                                                          "0d30e22e447f3c33dab9ed536400ac01"}
    mnist = data.load("mnist-10k", "train", data.PROJECT_DATA)  # another dataset, not a copy of MNIST's
    assert not torch.equal(train.inputs[:10], mnist.inputs[:10])


def test_fashion_found_in_the_system_folder_when_the_data_folder_lacks_it(tmp_path, monkeypatch):
    system = tmp_path / "system"
    (system / "fashion-mnist").mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (system / "fashion-mnist" / name).write_bytes((data.PROJECT_DATA / "fashion-mnist" / name).read_bytes())
    monkeypatch.setattr(data, "FASHION_SYSTEM", system)
    assert len(data.load("fashion-10k", "test", tmp_path / "empty")) == 2000
    with pytest.raises(data.DataError) as error:  # the full set is not there: the data folder is named
        data.load("fashion", "train", tmp_path / "empty")
    assert str(tmp_path / "empty") in one_line(error.value) and "dataset-fashion-mnist" in str(error.value)
