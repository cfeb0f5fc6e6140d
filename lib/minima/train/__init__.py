"""Training: the one home of every experiment's optimisation loop (:mod:`.loop`) and the
compiled kernel that runs Table 1's SGD epochs (:mod:`.kernel`) and the full-batch L-BFGS
finish after SGD (:mod:`.finish`)."""
from .finish import lbfgs_rounds
from .kernel import SgdKernel, covers
from .loop import (KERNELS, TrainResult, Trainer, TrainingError, choose_kernel, fit, fit_together, loss_and_accuracy,
                   tensor_loss)

__all__ = ['KERNELS', 'SgdKernel', 'TrainResult', 'Trainer', 'TrainingError', 'choose_kernel', 'covers', 'fit', 'fit_together',
           'lbfgs_rounds',            'loss_and_accuracy', 'tensor_loss']
