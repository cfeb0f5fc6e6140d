"""Reading the dataset files: one-line errors for missing, truncated or malformed files.

Formats: MNIST's IDX (optionally gzipped), AG News CSV, CoLA TSV (two-column or GLUE's four).
:func:`require` finds files under the data folder and says how to get missing ones;
:func:`md5sum` gives the checksums that provenance records.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import struct
from pathlib import Path
from typing import Sequence

import numpy as np
import torch


class DataError(RuntimeError):
    """A dataset is missing, corrupt or malformed; the message is one line."""


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def require(root: Path, folder: str, names: Sequence[str], how_to_get: str) -> list[Path]:
    """Paths of ``names`` under ``root/folder``; one-line DataError when any is missing.

    A ``.gz`` name is also accepted uncompressed.
    """
    paths, missing = [], []
    for name in names:
        candidates = [root / folder / name]
        if name.endswith(".gz"):
            candidates.append(root / folder / name[:-3])
        found = next((c for c in candidates if c.is_file()), None)
        (paths.append(found) if found else missing.append(str(root / folder / name)))
    if missing:
        raise DataError(
            f"missing {', '.join(missing)}: {how_to_get}; set MINIMA_DATA to the folder that holds "
            f"'{folder}/', or use the embedded dataset 'digits' which works offline")
    return paths


def open_maybe_gzipped(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST format, optionally gzipped) into a uint8 array."""
    try:
        with open_maybe_gzipped(path) as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read ({error}); re-download the file") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: bad IDX magic number {raw[:4].hex() or 'empty'} "
                        "(expected 0000080N, unsigned bytes); the file is corrupt or not IDX")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header; re-download the file")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape)) if ndim else 0
    if len(raw) - header != expected:
        raise DataError(f"{path}: IDX header announces {expected} bytes of data for shape {shape} "
                        f"but the file holds {len(raw) - header}; the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_ag_news_csv(path: Path) -> tuple[list[str], torch.Tensor]:
    """Rows ``"class (1-4)","title","description"`` -> (texts 'title. description', labels 0-3)."""
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as handle:
        for line_number, row in enumerate(csv.reader(handle), start=1):
            if len(row) != 3:
                raise DataError(f"{path}:{line_number}: expected 3 columns (class, title, "
                                f"description), found {len(row)}; the file is not AG News CSV")
            if row[0] not in {"1", "2", "3", "4"}:
                raise DataError(f"{path}:{line_number}: unknown label {row[0]!r} (AG News labels are 1-4)")
            labels.append(int(row[0]) - 1)
            texts.append(f"{row[1]}. {row[2]}".replace("\\n", " ").replace("\\", " "))
    if not labels:
        raise DataError(f"{path}: no rows; the file is empty")
    return texts, torch.tensor(labels, dtype=torch.int64)


def read_cola_tsv(path: Path) -> tuple[list[str], torch.Tensor]:
    """CoLA TSV, either ``sentence<TAB>label`` or GLUE's ``source, label, mark, sentence``."""
    texts, labels = [], []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            columns = line.rstrip("\n").split("\t")
            if columns == [""]:
                continue
            if len(columns) == 2:
                sentence, label = columns
            elif len(columns) == 4:
                _, label, _, sentence = columns
            else:
                raise DataError(f"{path}:{line_number}: expected 2 columns (sentence, label) or 4 "
                                f"(GLUE: source, label, mark, sentence), found {len(columns)}")
            if label not in {"0", "1"}:
                raise DataError(f"{path}:{line_number}: unknown label {label!r} (CoLA labels are 0/1)")
            texts.append(sentence)
            labels.append(int(label))
    if not labels:
        raise DataError(f"{path}: no rows; the file is empty")
    return texts, torch.tensor(labels, dtype=torch.int64)
