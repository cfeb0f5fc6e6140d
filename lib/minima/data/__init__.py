"""Dataset registry: real files under ``MINIMA_DATA``, read by real loaders.

``load(name, split)`` returns a :class:`Dataset` (a ``torch.utils.data.Dataset``)
with its tensors and the metadata a results page needs to say honestly what a
number was computed on: name, description, source files and their md5 sums.

Registered names (see :data:`REGISTRY`):

==============  =====================================================================
``digits``      scikit-learn's embedded UCI digits, 1,797 8x8 images (no files needed)
``mnist``       full MNIST, IDX files under ``$MINIMA_DATA/mnist`` (60k train, 10k test)
``mnist-10k``   the official MNIST *test* set alone, re-split 80/20 (8,000 / 2,000)
``fashion``     full Fashion-MNIST, IDX files under ``$MINIMA_DATA/fashion-mnist`` or Debian's
                ``/usr/share/datasets/fashion-mnist`` (60k train, 10k test)
``fashion-10k`` the official Fashion-MNIST *test* set alone, re-split 80/20 (8,000 / 2,000)
``ag_news``     full AG News, ``train.csv`` and ``test.csv`` under ``$MINIMA_DATA/ag_news``
``ag_news-7600`` the official AG News *test* split alone, re-split 80/20 (6,080 / 1,520)
``cola``        CoLA ``train.tsv`` / ``dev.tsv`` (2-column or 4-column GLUE format)
``cifar10/100`` CIFAR python-pickle releases under ``$MINIMA_DATA/cifar10`` and ``cifar100``
==============  =====================================================================

Every re-split is stratified by class and seeded (:data:`RESPLIT_SEED`), so the
same files always give the same train/test partition.

Errors are :class:`DataError` with a single-line message that names the file and
says what to do.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..core.batching import batch_shares
from .files import DataError, md5sum, read_ag_news_csv, read_cola_tsv, read_idx, require
from .loads import record_load
from .subsets import RESPLIT_SEED, stratified_split, stratified_subset

__all__ = ['DataError', 'Dataset', 'TrainTest', 'batch_shares', 'batches', 'data_root', 'load', 'load_each', 'md5sum', 'stratified_split', 'stratified_subset',
           'train_test']



@dataclass
class Dataset(torch.utils.data.Dataset):
    """A loaded dataset split.

    Attributes:
        inputs: ``(N, ...)`` float tensor in [0, 1] for images, or a list of N strings for text.
        targets: ``(N,)`` int64 class indices in ``range(len(classes))``.
        name, split: registry name and split (``"train"`` or ``"test"``).
        classes: class names, index = class id.
        description: what the dataset is, exactly (used on result pages); the split is separate.
        files: ``{path: md5}`` of every file read (empty for embedded data).
    """

    inputs: torch.Tensor | list
    targets: torch.Tensor
    name: str
    split: str
    classes: list
    description: str
    files: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index):
        return self.inputs[index], self.targets[index]

    @property
    def class_counts(self) -> list[int]:
        return torch.bincount(self.targets, minlength=len(self.classes)).tolist()

    def metadata(self) -> dict:
        """JSON-serialisable description, as recorded in provenance."""
        return {"name": self.name, "split": self.split, "size": len(self),
                "description": self.description, "files": self.files}


PROJECT_DATA = Path(__file__).resolve().parents[3] / "data"


@dataclass
class TrainTest:
    """Training and test tensors of one dataset, ready for an experiment: the one carrier of data
    into Table 1, Table 2's heads and the no-barriers minima.

    ``x_*``: ``(N, ...)`` inputs (images, flat images, padded token ids ``(N, L)`` or encoder
    features ``(N, H)``); ``y_*``: ``(N,)`` int64 classes. ``n_features``: inputs of the network
    part (pixels, or the embedding size when ``vocabulary > 0`` and a learned embedding bag
    feeds it). ``comparable``: it is the paper's dataset (or a re-split of it), so the paper's
    numbers are shown beside ours.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    name: str = ""
    description: str = ""
    n_features: int = 0
    vocabulary: int = 0
    comparable: bool = True

    def digest(self) -> str:
        """sha256 (hex) of the four tensors' bytes: what a run trained and was tested on. Run
        specs carry it, so that a worker that loads other data refuses to run."""
        import hashlib

        digest = hashlib.sha256()
        for tensor in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(str((tensor.dtype, tuple(tensor.shape))).encode())
            digest.update(tensor.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data directory: ``root``, else ``$MINIMA_DATA``, else the project's own ``data/``
    (the small real files shipped with the repository, see ``data/README.md``)."""
    chosen = root if root is not None else os.environ.get("MINIMA_DATA") or PROJECT_DATA
    return Path(chosen).expanduser()


def _mnist_pair(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{images_path}: shape {images.shape} does not match labels {labels.shape} "
                        f"in {labels_path}; expected (N, 28, 28) images and (N,) labels")
    if labels.max(initial=0) > 9:
        raise DataError(f"{labels_path}: unknown label {int(labels.max())} (MNIST labels are 0-9)")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MNIST_HOW = "download the four MNIST IDX files (e.g. from a torchvision MNIST 'raw' folder) into $MINIMA_DATA/mnist/"
DIGIT_CLASSES = [str(d) for d in range(10)]


def _network_reachable(host: str = "ossci-datasets.s3.amazonaws.com", timeout: float = 2.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _torchvision_download(root: Path) -> None:
    """Fetch MNIST's raw IDX files with torchvision into ``root/mnist`` (only when online)."""
    import torchvision

    torchvision.datasets.MNIST(root / "_torchvision", download=True)
    raw = root / "_torchvision" / "MNIST" / "raw"
    (root / "mnist").mkdir(parents=True, exist_ok=True)
    for name in sum(MNIST_FILES.values(), ()):
        source = raw / name if (raw / name).exists() else raw / name[:-3]
        os.replace(source, root / "mnist" / source.name)


def _load_mnist(root: Path, split: str) -> Dataset:
    wanted = MNIST_FILES["train"] + MNIST_FILES["test"]
    try:
        require(root, "mnist", wanted, MNIST_HOW)
    except DataError:
        if not _network_reachable():
            raise
        _torchvision_download(root)
    paths = require(root, "mnist", MNIST_FILES[split], MNIST_HOW)
    x, y = _mnist_pair(*paths)
    return Dataset(x, y, "mnist", split, DIGIT_CLASSES,
                   "MNIST, official 60k training and 10k test sets",
                   {str(p): md5sum(p) for p in paths})


def _test_set_resplit(paths: list[Path], name: str, split: str, classes: list, dataset: str) -> Dataset:
    """An IDX test set (images, labels) alone, re-split 80/20 stratified: split ``split`` of it."""
    x, y = _mnist_pair(*paths)
    train, test = stratified_split(y.numpy())
    index = torch.from_numpy(train if split == "train" else test)
    return Dataset(x[index], y[index], name, split, classes,
                   f"{dataset} (official 10k test set, re-split 80/20 stratified, seed {RESPLIT_SEED})",
                   {str(p): md5sum(p) for p in paths})


def _load_mnist_10k(root: Path, split: str) -> Dataset:
    paths = require(root, "mnist", MNIST_FILES["test"], "copy MNIST's t10k IDX files into $MINIMA_DATA/mnist/")
    return _test_set_resplit(paths, "mnist-10k", split, DIGIT_CLASSES, "MNIST")


FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
FASHION_SYSTEM = Path("/usr/share/datasets")  # where Debian's dataset-fashion-mnist puts fashion-mnist/
FASHION_HOW = ("install Debian's dataset-fashion-mnist, or copy Zalando's four Fashion-MNIST IDX files into "
               "$MINIMA_DATA/fashion-mnist/")


def _fashion_paths(root: Path, names: tuple) -> list[Path]:
    """The Fashion-MNIST files ``names`` under ``root/fashion-mnist``, else under Debian's
    system folder; when neither has them, the error names the data folder."""
    try:
        return require(root, "fashion-mnist", names, FASHION_HOW)
    except DataError as missing_here:
        try:
            return require(FASHION_SYSTEM, "fashion-mnist", names, FASHION_HOW)
        except DataError:
            raise missing_here from None


def _load_fashion(root: Path, split: str) -> Dataset:
    paths = _fashion_paths(root, MNIST_FILES[split])
    x, y = _mnist_pair(*paths)
    return Dataset(x, y, "fashion", split, FASHION_CLASSES,
                   "Fashion-MNIST, official 60k training and 10k test sets", {str(p): md5sum(p) for p in paths})


def _load_fashion_10k(root: Path, split: str) -> Dataset:
    return _test_set_resplit(_fashion_paths(root, MNIST_FILES["test"]), "fashion-10k", split, FASHION_CLASSES,
                             "Fashion-MNIST")


def _load_digits(root: Path, split: str) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    train, test = stratified_split(bunch.target)
    index = torch.from_numpy(train if split == "train" else test)
    return Dataset(x[index], y[index], "digits", split, DIGIT_CLASSES,
                   "UCI handwritten digits, 8x8 (scikit-learn embedded copy, 1,797 images, "
                   f"re-split 80/20 stratified, seed {RESPLIT_SEED})")


AG_NEWS_CLASSES = ["World", "Sports", "Business", "Sci/Tech"]
AG_NEWS_HOW = "download AG News (train.csv, test.csv from the ag_news_csv archive) into $MINIMA_DATA/ag_news/"


def _load_ag_news(root: Path, split: str) -> Dataset:
    (path,) = require(root, "ag_news", [f"{split}.csv"], AG_NEWS_HOW)
    texts, y = read_ag_news_csv(path)
    return Dataset(texts, y, "ag_news", split, AG_NEWS_CLASSES,
                   "AG News, official 120k training and 7,600 test splits",
                   {str(path): md5sum(path)})


def _load_ag_news_7600(root: Path, split: str) -> Dataset:
    (path,) = require(root, "ag_news", ["test.csv"], "copy AG News test.csv into $MINIMA_DATA/ag_news/")
    texts, y = read_ag_news_csv(path)
    train, test = stratified_split(y.numpy())
    index = train if split == "train" else test
    return Dataset([texts[i] for i in index], y[torch.from_numpy(index)], "ag_news-7600", split,
                   AG_NEWS_CLASSES,
                   f"AG News (official 7,600-row test split, re-split 80/20 stratified, seed "
                   f"{RESPLIT_SEED})", {str(path): md5sum(path)})


COLA_CLASSES = ["unacceptable", "acceptable"]
COLA_FILES = {"train": "train.tsv", "test": "dev.tsv"}


def _load_cola(root: Path, split: str) -> Dataset:
    (path,) = require(root, "cola", [COLA_FILES[split]],
                       "download CoLA (GLUE) and put train.tsv and dev.tsv into $MINIMA_DATA/cola/")
    texts, y = read_cola_tsv(path)
    return Dataset(texts, y, "cola", split, COLA_CLASSES,
                   "CoLA (train.tsv for training; dev.tsv as test: in the shipped release CoLA's "
                   "out-of-domain dev set, 516 sentences; GLUE's test labels are private)",
                   {str(path): md5sum(path)})


CIFAR = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{k}" for k in range(1, 6)], ["test_batch"], b"labels",
                "CIFAR-10, official 50k training and 10k test sets", 10),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels",
                 "CIFAR-100, official 50k training and 10k test sets (fine labels)", 100),
}


def _load_cifar(name: str, root: Path, split: str) -> Dataset:
    """CIFAR from the python-pickle release under ``$MINIMA_DATA/<name>/``; images in [0, 1]."""
    import pickle

    folder, train_files, test_files, key, description, n_classes = CIFAR[name]
    files = train_files if split == "train" else test_files
    how = f"download the CIFAR python release and unpack '{folder}' into $MINIMA_DATA/{name}/"
    paths = require(root, f"{name}/{folder}", files, how)
    images, labels = [], []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[key], dtype=np.int64))
        except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as error:
            raise DataError(f"{path}: not a CIFAR batch ({type(error).__name__}); re-download it") from None
    y = np.concatenate(labels)
    if y.min(initial=0) < 0 or y.max(initial=0) >= n_classes:
        raise DataError(f"{paths[0]}: unknown label {int(y.max())} (expected 0-{n_classes - 1})")
    x = torch.from_numpy(np.concatenate(images).astype(np.float32) / 255.0)
    return Dataset(x, torch.from_numpy(y), name, split, [str(k) for k in range(n_classes)], description,
                   {str(p): md5sum(p) for p in paths})


REGISTRY: dict[str, Callable[[Path, str], Dataset]] = {
    "digits": _load_digits,
    "mnist": _load_mnist,
    "mnist-10k": _load_mnist_10k,
    "fashion": _load_fashion,
    "fashion-10k": _load_fashion_10k,
    "ag_news": _load_ag_news,
    "ag_news-7600": _load_ag_news_7600,
    "cola": _load_cola,
    "cifar10": lambda root, split: _load_cifar("cifar10", root, split),
    "cifar100": lambda root, split: _load_cifar("cifar100", root, split),
}
SPLITS = ("train", "test")


def load(name: str, split: str = "train", root: str | os.PathLike | None = None) -> Dataset:
    """Load split ``split`` (``"train"``/``"test"``) of the registered dataset ``name``.

    Files are looked up under ``root`` (default ``$MINIMA_DATA``, else the project's ``data/``).
    Raises :class:`DataError` (one line) for unknown names, missing or malformed files.
    The load is recorded in the provenance file when the runner asked for one.
    """
    if name not in REGISTRY:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(REGISTRY)}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} for {name}; choose 'train' or 'test'")
    dataset = REGISTRY[name](data_root(root), split)
    record_load(dataset.metadata())
    return dataset



def train_test(name: str, root: str | os.PathLike | None = None) -> TrainTest:
    """Both splits of the registered image dataset ``name`` as one :class:`TrainTest`, inputs as
    loaded (``(N, C, H, W)``), ``n_features`` the pixels of one image."""
    train, test = load(name, "train", root), load(name, "test", root)
    return TrainTest(train.inputs, train.targets, test.inputs, test.targets, len(train.classes), name,
                     train.description, n_features=train.inputs[0].numel())


def load_each(names, load_one: Callable[[str], object]) -> dict:
    """``{name: load_one(name)}`` for every name whose data is present. Each missing one is
    named with the reason, on the page (the rest of it still runs); when none is present the
    :class:`DataError` stops the page, which then says what to provide."""
    loaded, missing = {}, {}
    for name in names:
        try:
            loaded[name] = load_one(name)
        except DataError as error:
            missing[name] = str(error)
    if not loaded:
        raise DataError("; ".join(missing.values()))
    for name, reason in missing.items():
        print(f"{name}: not run here. {reason}")
    return loaded


def batches(inputs, targets, batch_size: int) -> list[tuple]:
    """Consecutive ``(inputs, targets)`` batches (the last may be smaller); no shuffling."""
    return [(inputs[i: i + batch_size], targets[i: i + batch_size]) for i in range(0, len(targets), batch_size)]
