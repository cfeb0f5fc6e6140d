"""A run of Table 1 in progress: its spec, task and network, the training examples it uses,
the generator that orders its batches (shared by every protocol) and the Hessian data at the
current point; :meth:`Training.measure` gives the end-point fields of a row there."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...core.hessian import HessianOperator
from ...data import TrainTest, batches
from ...geometry.certificate import Certificate, certify
from ...geometry.flatness import measure
from ...growing import GrowingNet, collapsed, direct_share, hidden_part
from ...runs import Spec
from ...train import loss_and_accuracy
from .arms import Network

CONSTANT_TOLERANCE = 1e-6  # logits that vary across inputs by at most this make a constant predictor


@dataclass
class Training:
    """One run in progress: its spec, task and network, the training examples it uses, the
    generator that orders its batches (each protocol goes on with it) and the Hessian data at the
    current point (the network part's inputs on the first ``spec.hessian_subset`` examples)."""

    spec: Spec  # a Table1Run (its module, .run, imports this one)
    task: TrainTest
    network: Network
    x_train: torch.Tensor
    y_train: torch.Tensor
    generator: torch.Generator
    hessian_data: list = None

    def snapshot(self) -> dict:
        """The state a protocol may change (weights of the whole model, the batch generator),
        to :meth:`restore` before the next protocol: every protocol starts from the paper
        protocol's end point."""
        return {"weights": {k: v.clone() for k, v in self.network.full.state_dict().items()},
                "generator": self.generator.get_state(), "hessian_data": self.hessian_data}

    def restore(self, state: dict) -> None:
        with torch.no_grad():
            self.network.full.load_state_dict(state["weights"])
        self.generator.set_state(state["generator"])
        self.hessian_data = state["hessian_data"]

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The network part's inputs for the model's inputs ``x``: for text the embedding's output
        (held at its current value), for images ``x`` itself."""
        self.network.full.eval()
        return self.network.full[0](x).detach() if self.task.vocabulary else x

    def refresh_hessian_data(self) -> None:
        """Recompute the Hessian data at the current point: for text the embedding is held fixed
        and its output is the network's input."""
        features = self.features(self.x_train[:self.spec.hessian_subset])
        self.hessian_data = batches(features, self.y_train[:self.spec.hessian_subset], 1000)

    def direct_map(self, net=None, data: list | None = None) -> dict:
        """The fields of a row that say whether the network part (``net``, default the run's) learnt
        anything on the inputs of ``data`` (default the Hessian data): ``constant`` when it
        predicts one class for every example or its logits vary across them by at most
        :data:`CONSTANT_TOLERANCE`; for a grown network also whether it collapsed onto
        its direct input-output map (:func:`minima.growing.hidden_part`)."""
        net = net if net is not None else self.network.net
        data = data if data is not None else self.hessian_data
        inputs = torch.cat([x for x, _ in data]).to(next(net.parameters()).dtype)
        with torch.no_grad():
            logits = net.eval()(inputs)
        predictions = logits.argmax(1)
        # a network that learnt nothing: one class for every input, or logits that do not depend
        # on the input (a net decayed to theta = 0, whose argmax only breaks ties of rounding)
        spread = float((logits.max(0).values - logits.min(0).values).max())
        constant = {"constant": bool((predictions == predictions[0]).all()) or spread <= CONSTANT_TOLERANCE}
        if not isinstance(net, GrowingNet):
            return constant
        share, effect = hidden_part(net, inputs)
        return {"hidden_share": share, "hidden_effect": effect, "collapsed": collapsed(effect),
                "direct_share": direct_share(net), **constant}

    def hessian(self) -> HessianOperator:
        return HessianOperator(self.network.net, F.cross_entropy, self.hessian_data)

    def measure(self, epochs: list[dict], certificate: Certificate | None = None) -> dict:
        """The end-point fields of a :class:`Table1Row` at the current point after ``epochs``:
        test accuracy, the convergence certificate and the flatness measures (Hessians of the
        network part on the Hessian data); ``certificate``: one already made here (reused)."""
        spec, full = self.spec, self.network.full
        _, test_accuracy = loss_and_accuracy(full, self.task.x_test, self.task.y_test)
        full.eval()
        start = time.perf_counter()
        hessian = self.hessian()
        certificate = certificate or certify(hessian, loss_history=[e["loss"] for e in epochs], rule=spec.rule,
                                             seed=spec.seed)
        values = measure(hessian, spec.measures, seed=spec.seed, blocks="depth", certificate=certificate)
        return {"epochs": epochs[-1]["epoch"], "certificate": certificate, "measures": values,
                "test_accuracy": test_accuracy, "hessian_seconds": time.perf_counter() - start, "curve": list(epochs),
                "objective": certificate.train_loss, "theta_norm": float(hessian.parameters_vector().norm()),
                **self.direct_map()}
