"""Algorithm 1 of Caillon & Cerisara (2021) on the graph alone, in plain arrays.

Neurons form a DAG. Neuron ``i`` computes ``z_i = sum_{j in pi(i)} sigma_j(z_j) w_{j,i}``;
inputs and outputs are linear, hidden neurons apply the activation. The depth ``d(i)`` is
the longest path from an input. The network starts with every input wired to every output
(all of these edges in pi0) and grows by :meth:`Dag.insert`, which is the paper's Algorithm 1
line by line; the weights live in :class:`~minima.growing.network.GrowingNet`, which applies
each :class:`Insertion` to its tensors.

Ids: ``0..n_inputs-1`` are inputs, the next ``n_outputs`` are outputs, inserted neurons
follow in insertion order. Edges are three parallel arrays ``src``, ``dst``, ``pi0``.

Decisions where the paper is silent (listed on the book's Reproduction notes page):

- *pi0 travels with its edge.* A pi0 edge moved by the depth rule (``d(i) > d(new)``) stays in
  pi0 as ``(new, i)``. Read literally, Algorithm 1 would keep a stale ``(j, i)`` and drop the
  edge from pi0; then a later insertion under ``new`` could leave a hidden neuron at the
  outputs' depth, contradicting the paper's Remark 1. With the flag travelling, every
  edge into an output is in pi0 and Remark 1 holds (tested). No stale entries exist.
- *Productive primary parents.* The primary parent is drawn uniformly among neurons with
  ``d(j) < D`` whose insertion hands the new neuron at least one child (equivalently:
  redraw until the new neuron inherits a child). A childless neuron would never affect
  the output, its weights would never train, and it could end at the outputs' depth.
- *Feasible fan-in.* It is also drawn among neurons with at least ``fan_in - 1`` other
  neurons at depth ``<= d(j)``, so the ``fan_in - 1`` extra parents exist; when no neuron
  qualifies, :class:`GrowthError` is raised and the graph is unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class GrowthError(ValueError):
    """An insertion request that cannot be satisfied; the network is left unchanged."""


@dataclass(frozen=True)
class Insertion:
    """What one step of Algorithm 1 did: the new neuron's id and depth, its primary parent
    ``j``, all its parents (``j`` first, then the extra ones sorted) and the children it took
    over from ``j`` (their edges ``(j, i)`` became ``(new, i)``, keeping weight and pi0 flag)."""

    new: int
    primary_parent: int
    parents: np.ndarray
    moved_children: np.ndarray
    depth: int


class Dag:
    """The edge set, the pi0 flags and the depths of a growing network."""

    def __init__(self, n_inputs: int, n_outputs: int):
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        ins, outs = np.arange(n_inputs), n_inputs + np.arange(n_outputs)
        # every (input, output) pair is an edge in pi0
        self._edges = (np.repeat(ins, n_outputs), np.tile(outs, n_inputs), np.ones(n_inputs * n_outputs, bool))
        self._n_edges = n_inputs * n_outputs
        self.depth = np.concatenate([np.zeros(n_inputs, np.int64), np.ones(n_outputs, np.int64)])

    # ------------------------------------------------------------ ids and edges
    @property
    def src(self) -> np.ndarray:
        """Source id of every edge, ``(E,)`` (a view of the edge store)."""
        return self._edges[0][: self._n_edges]

    @property
    def dst(self) -> np.ndarray:
        """Destination id of every edge, ``(E,)``."""
        return self._edges[1][: self._n_edges]

    @property
    def pi0(self) -> np.ndarray:
        """Whether each edge is in pi0, ``(E,)`` bool."""
        return self._edges[2][: self._n_edges]

    @property
    def n(self) -> int:
        return len(self.depth)

    @property
    def input_ids(self) -> np.ndarray:
        return np.arange(self.n_inputs)

    @property
    def output_ids(self) -> np.ndarray:
        return self.n_inputs + np.arange(self.n_outputs)

    @property
    def hidden_ids(self) -> np.ndarray:
        return np.arange(self.n_inputs + self.n_outputs, self.n)

    @property
    def network_depth(self) -> int:
        """``D``, the depth of the outputs (all outputs share it, Remark 1)."""
        return int(self.depth[self.n_inputs])

    def storage_order(self) -> np.ndarray:
        """``(n,)`` ids as the weights are stored: inputs, hidden neurons by increasing depth
        (ties by id), outputs."""
        hidden = self.hidden_ids
        return np.concatenate([self.input_ids, hidden[np.argsort(self.depth[hidden], kind="stable")],
                               self.output_ids])

    # ------------------------------------------------------------ Algorithm 1
    def _handable(self) -> np.ndarray:
        """Per edge (j, i): would it move to a neuron inserted under primary parent j?
        Yes when ``d(i) > d(j) + 1``, or ``d(i) = d(j) + 1`` and ``(j, i)`` is in pi0."""
        depth = self.depth.astype(np.int32)  # half-size temporaries over the whole edge list
        gap = depth[self.dst]
        gap -= depth[self.src]
        return (gap > 1) | ((gap == 1) & self.pi0)

    def eligible_primary_parents(self, fan_in: int, handable: np.ndarray | None = None) -> np.ndarray:
        """Ids that may be drawn as primary parent for an insertion with this fan-in."""
        handable = self._handable() if handable is None else handable
        productive = np.bincount(self.src[handable], minlength=self.n) > 0
        at_or_above = np.searchsorted(np.sort(self.depth), self.depth, side="right")  # #{k: d(k) <= d(j)}
        return np.flatnonzero((self.depth < self.network_depth) & productive & (at_or_above - 1 >= fan_in - 1))

    def insert(self, fan_in: int, generator: torch.Generator) -> Insertion:
        """One step of Algorithm 1 with ``fan_in`` parents.

        Primary parent ``j`` uniform over :meth:`eligible_primary_parents`; the new neuron
        sits at depth ``d(j)+1``; each child ``i`` of ``j`` moves to the new neuron when
        ``d(i) > d(new)``, or ``d(i) = d(new)`` and ``(j,i)`` is in pi0; then ``fan_in - 1``
        extra parents are drawn without replacement among neurons at depth ``<= d(j)``; the
        moved children (at the new neuron's depth) and their descendants deepen.
        """
        if not isinstance(fan_in, (int, np.integer)) or isinstance(fan_in, bool) or fan_in < 1:
            raise GrowthError(f"fan_in must be a positive integer, got {fan_in!r}")
        handable = self._handable()
        candidates = self.eligible_primary_parents(int(fan_in), handable)
        if len(candidates) == 0:
            raise GrowthError(f"fan_in {fan_in} exceeds the eligible parents of every possible primary "
                              f"parent ({int(np.sum(self.depth < self.network_depth))} neurons "
                              "lie above the outputs); lower it")
        j = int(candidates[torch.randint(len(candidates), (1,), generator=generator).item()])
        new, d_new = self.n, int(self.depth[j]) + 1

        moving = np.flatnonzero((self.src == j) & handable)
        children = self.dst[moving]
        same_depth = children[self.depth[children] == d_new]
        self.src[moving] = new  # the pi0 flag travels with the edge

        pool = np.flatnonzero(self.depth <= self.depth[j])
        pool = pool[pool != j]
        pick = torch.randperm(len(pool), generator=generator)[: fan_in - 1].numpy()
        parents = np.concatenate([[j], np.sort(pool[pick])])
        self._append_edges(parents, np.full(len(parents), new), np.arange(len(parents)) == 0)
        self.depth = np.append(self.depth, d_new)
        self._deepen(same_depth, d_new + 1)
        return Insertion(new, j, parents, children, d_new)

    def _append_edges(self, src: np.ndarray, dst: np.ndarray, pi0: np.ndarray) -> None:
        """Append edges in place. The store keeps spare capacity (doubling when full): a fresh
        multi-megabyte array per insertion costs page faults that doubled its time."""
        used, k = self._n_edges, len(src)
        if used + k > len(self._edges[0]):
            self._edges = tuple(np.concatenate([store[:used], np.empty(max(used, k), store.dtype)])
                                for store in self._edges)
        for store, values in zip(self._edges, (src, dst, pi0)):
            store[used: used + k] = values
        self._n_edges = used + k

    def _deepen(self, nodes: np.ndarray, depth: int) -> None:
        """Raise ``nodes`` to at least ``depth`` and propagate to descendants (longest paths)."""
        frontier = nodes[self.depth[nodes] < depth]
        if not len(frontier):
            return
        self.depth[frontier] = depth
        in_frontier = np.zeros(self.n, bool)
        # inputs never move, so only edges out of non-inputs can propagate (a tenth of them
        # in a grown MNIST network): select those once
        from_non_inputs = np.flatnonzero(self.src >= self.n_inputs)
        all_src, all_dst = self.src[from_non_inputs], self.dst[from_non_inputs]
        while len(frontier):
            in_frontier[:] = False
            in_frontier[frontier] = True
            edges = in_frontier[all_src]
            src, dst = all_src[edges], all_dst[edges]
            needed = self.depth[src] + 1
            raise_ = needed > self.depth[dst]
            np.maximum.at(self.depth, dst[raise_], needed[raise_])
            frontier = np.unique(dst[raise_])
