"""Every number transcribed from the two papers, in one format: pandas tables indexed by
what the paper's rows are keyed by, plus the schedules the papers prescribe.

Caillon & Cerisara (2021), "Growing neural networks achieve flatter minima":
:data:`GROWING_TABLE1` (MNIST and AG News), :data:`GROWING_TABLE2` (CoLA heads on RoBERTa),
:data:`GROWING_INSERTIONS` (when the grown networks get their neurons).
Draxler et al. (2018), "Essentially no barriers in neural network energy landscape":
:data:`NO_BARRIERS_TABLE1` (CIFAR minima and saddles), :data:`AUTONEB_CYCLES`.
"""
from __future__ import annotations

import pandas as pd

from ..paths.neb import AUTONEB_CYCLES  # noqa: F401 (the method's schedule, defined with the method)

# Caillon & Cerisara, Table 1: (task, hidden, model, batch) -> test accuracy (%), spectral norm.
GROWING_TABLE1 = pd.DataFrame([
    ("MNIST", 10, "growing", 10, 84.0, 2.23), ("MNIST", 10, "growing", 100, 77.91, 24.29),
    ("MNIST", 10, "a", 10, 84.03, 38.01), ("MNIST", 10, "a", 100, 77.74, 68.39),
    ("MNIST", 500, "growing", 10, 96.98, 4.45), ("MNIST", 500, "growing", 100, 94.84, 179.01),
    ("MNIST", 500, "a", 10, 87.27, 1030.07), ("MNIST", 500, "a", 100, 66.86, 12111.28),
    ("MNIST", 500, "b", 10, 84.57, 820.54), ("MNIST", 500, "b", 100, 64.17, 21517.66),
    ("MNIST", 500, "c", 10, 84.26, 1253.72), ("MNIST", 500, "c", 100, 74.01, 12893.59),
    ("AG News", 10, "growing", 1, 90.2, 9.83e-5), ("AG News", 10, "growing", 16, 88.2, 3.22),
    ("AG News", 10, "a", 1, 90.1, 7.91e-4), ("AG News", 10, "a", 16, 88.3, 20.83),
    ("AG News", 100, "growing", 1, 90.7, 0.57), ("AG News", 100, "growing", 16, 89.2, 31.31),
    ("AG News", 100, "a", 1, 90.5, 3.43), ("AG News", 100, "a", 16, 89.0, 69.53),
    ("AG News", 100, "b", 1, 90.4, 7.02), ("AG News", 100, "b", 16, 89.0, 60.89),
    ("AG News", 100, "c", 1, 90.5, 3.25), ("AG News", 100, "c", 16, 88.9, 73.28),
], columns=["task", "hidden", "model", "batch", "test_accuracy", "spectral_norm"]).set_index(
    ["task", "hidden", "model", "batch"])

# Caillon & Cerisara, Table 2: head -> "test accuracy", spectral norm. The "accuracy" is very
# likely the Matthews correlation x 100 (68.0 is RoBERTa-large's published CoLA dev MCC).
GROWING_TABLE2 = pd.DataFrame([("growing", 68.2, 1.8945e5), ("reference", 68.0, 6.7778e5)],
                              columns=["head", "test_accuracy", "spectral_norm"]).set_index("head")

# Caillon & Cerisara, section 4: 10 insertion steps of hidden / 10 neurons, every `every` epochs
# from epoch `start` (MNIST-500 every 5 from 10, see the Reproduction notes); Table 2's heads
# grow after epochs 2, 5 and 7 of 10.
GROWING_INSERTIONS = pd.DataFrame([("MNIST", 10, 10, 5), ("MNIST", 500, 5, 10), ("AG News", 10, 10, 5),
                                   ("AG News", 100, 10, 5)],
                                  columns=["task", "hidden", "every", "start"]).set_index(["task", "hidden"])
GROWING_TABLE2_PHASES, GROWING_TABLE2_EPOCHS = (2, 5, 7), 10

# Draxler et al., Table 1 (CIFAR, augmented training): train energy at minima and saddles, their
# factor, test energy at minima and saddles, test error (%) at minima and saddles.
NO_BARRIERS_TABLE1 = pd.DataFrame([
    ("CIFAR-10", "resnet-20", 0.016, 0.034, 2, 0.36, 0.37, 8.5, 8.9),
    ("CIFAR-10", "resnet-32", 0.006, 0.015, 3, 0.36, 0.37, 7.5, 8.1),
    ("CIFAR-10", "resnet-44", 0.003, 0.018, 6, 0.36, 0.36, 7.1, 7.6),
    ("CIFAR-10", "resnet-56", 0.002, 0.017, 8, 0.35, 0.36, 6.9, 7.6),
    ("CIFAR-10", "densenet-40-12", 0.001, 0.019, 6, 0.25, 0.25, 5.6, 6.6),
    ("CIFAR-10", "densenet-100-12-bc", 0.001, 0.009, 16, 0.21, 0.22, 4.9, 5.5),
    ("CIFAR-100", "resnet-20", 0.353, 0.674, 2, 1.42, 1.49, 33.3, 36.2),
    ("CIFAR-100", "resnet-44", 0.075, 0.383, 5, 1.60, 1.61, 30.8, 32.7),
    ("CIFAR-100", "densenet-40-12", 0.010, 0.091, 9, 1.30, 1.32, 26.3, 27.6),
    ("CIFAR-100", "densenet-100-12-bc", 0.005, 0.031, 6, 1.12, 1.15, 23.7, 25.0),
], columns=["dataset", "architecture", "train minima", "train saddles", "factor", "test minima",
            "test saddles", "test error minima %", "test error saddles %"]).set_index(["dataset", "architecture"])
