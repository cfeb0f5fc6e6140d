"""Training: the one home of every experiment's optimisation loop (:mod:`.loop`) and the
compiled kernel that runs Table 1's SGD epochs (:mod:`.kernel`); the full-batch finish to a
certified minimum is :mod:`minima.geometry.finish`, beside the certificate it asks."""
from .kernel import SgdKernel, covers
from .loop import (KERNELS, TrainResult, Trainer, TrainingError, choose_kernel, fit, fit_together, loss_and_accuracy,
                   tensor_loss)

__all__ = ['KERNELS', 'SgdKernel', 'TrainResult', 'Trainer', 'TrainingError', 'choose_kernel', 'covers', 'fit', 'fit_together',
           'loss_and_accuracy', 'tensor_loss']
