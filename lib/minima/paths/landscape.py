"""The graph of minima and the paths between them (Draxler et al. 2018, section 3.2).

Nodes are minima with their energies; an edge is a computed path labelled with its saddle
energy. The minimum spanning tree (MST) of saddle energies gives, for *every* pair of
minima, an upper bound on the lowest saddle between them: the highest edge on their tree
path (the minimax path, an ultrametric). The paper's heuristic picks the next pair to
connect by cutting the tree at its highest edge and connecting an untried pair across the
cut; when every cut has been tried the tree is stable.
"""
from __future__ import annotations

import json
import os

import networkx as nx

from ..core.io import atomic_write


class MinimaGraph:
    """Minima, computed paths, their MST and the pair-suggestion heuristic.

    ``paths[(a, b)]`` holds the compact summary of the final path between ``a`` and ``b``
    (see :meth:`minima.paths.neb.EnergyPath.summary`): saddle energy, dense energies and metrics.
    """

    def __init__(self):
        self.minima: dict[str, float] = {}
        self.paths: dict[tuple[str, str], dict] = {}
        self.tried: set[frozenset] = set()

    # -- building
    def add_minimum(self, key: str, energy: float) -> None:
        self.minima[str(key)] = float(energy)

    def add_path(self, a: str, b: str, summary: dict) -> None:
        """Record the final path between ``a`` and ``b``; ``summary["saddle_energy"]`` is required."""
        a, b = str(a), str(b)
        if a not in self.minima or b not in self.minima or a == b:
            raise ValueError(f"both ends must be distinct known minima, got {a!r}, {b!r}")
        self.paths[tuple(sorted((a, b)))] = summary
        self.tried.add(frozenset((a, b)))

    def saddle(self, a: str, b: str) -> float:
        return float(self.paths[tuple(sorted((str(a), str(b))))]["saddle_energy"])

    # -- the tree
    def graph(self) -> nx.Graph:
        g = nx.Graph()
        g.add_nodes_from((k, {"energy": e}) for k, e in self.minima.items())
        g.add_edges_from((a, b, {"weight": s["saddle_energy"]}) for (a, b), s in self.paths.items())
        return g

    def mst(self) -> nx.Graph:
        """Minimum spanning tree (a forest while the graph is disconnected) of saddle energies."""
        return nx.minimum_spanning_tree(self.graph(), weight="weight", algorithm="kruskal")

    def bound(self, a: str, b: str) -> float:
        """Upper bound on the lowest saddle between ``a`` and ``b``: the highest edge on their
        MST path (``inf`` when no path connects them yet)."""
        tree = self.mst()
        try:
            nodes = nx.shortest_path(tree, str(a), str(b))
        except nx.NetworkXNoPath:
            return float("inf")
        return max((tree[u][v]["weight"] for u, v in zip(nodes[:-1], nodes[1:])), default=float("-inf"))

    def highest_tree_edge(self) -> tuple[str, str]:
        """The MST edge with the highest saddle, as a sorted pair: the barrier that the tree
        says every path between its two sides must cross."""
        tree = self.mst()
        return max((tuple(sorted(edge)) for edge in tree.edges), key=lambda edge: self.saddle(*edge))

    def highest_escape(self) -> tuple[str, float, float]:
        """``(minimum, saddle, saddle / its energy)`` for the minimum whose highest tree edge is
        highest relative to its own energy: the hardest minimum to leave along the tree."""
        tree = self.mst()
        escapes = {n: max(self.saddle(n, m) for m in tree.neighbors(n)) for n in tree.nodes if tree.degree(n)}
        ratios = {n: saddle / self.minima[n] for n, saddle in escapes.items()}
        node = max(ratios, key=ratios.get)
        return node, escapes[node], ratios[node]

    def bounds(self) -> dict[tuple[str, str], float]:
        keys = sorted(self.minima)
        return {(a, b): self.bound(a, b) for i, a in enumerate(keys) for b in keys[i + 1:]}

    def suggest_pair(self) -> tuple[str, str] | None:
        """The next pair to connect, or ``None`` when the tree is stable.

        While the graph is disconnected: an untried pair joining two components (the pair
        with the lowest higher-minimum energy, so that the tree grows through low minima).
        Then: cut the MST at its highest edge not yet exhausted, and pick the untried pair
        across the cut with the lowest higher-minimum energy.
        """
        pairs = self.suggest_pairs(1)
        return pairs[0] if pairs else None

    def suggest_pairs(self, limit: int) -> list[tuple[str, str]]:
        """Up to ``limit`` pairs to connect at once: a round of the heuristic, for an executor
        that relaxes several paths side by side. The choice depends only on the graph, never on
        which paths finish first.

        While the graph is disconnected the round is what :meth:`suggest_pair` would choose
        one after another, each chosen pair counted as joining its two components (that phase
        uses the minima's energies only, so the round equals the sequential choices). Once it
        is connected, one pair per MST edge from the highest down: the pair :meth:`suggest_pair`
        would pick across that edge's cut, skipping cuts that a pair of this round already
        crosses (their new saddle could change the tree).
        """
        pairs: list[tuple[str, str]] = []
        tried = set(self.tried)
        tree = self.mst()
        components = list(nx.connected_components(tree))
        if len(components) > 1:
            label = {node: k for k, comp in enumerate(components) for node in comp}
            while len(pairs) < limit and len(set(label.values())) > 1:
                best = self._best([(a, b) for a in self.minima for b in self.minima
                                   if a < b and label[a] != label[b] and frozenset((a, b)) not in tried])
                if best is None:
                    break
                pairs.append(best)
                tried.add(frozenset(best))
                merged, into = label[best[1]], label[best[0]]
                label = {node: into if k == merged else k for node, k in label.items()}
            return pairs
        for u, v, w in sorted(tree.edges(data="weight"), key=lambda e: (-e[2], tuple(sorted((e[0], e[1]))))):
            if len(pairs) >= limit:
                break
            cut = tree.copy()
            cut.remove_edge(u, v)
            side = nx.node_connected_component(cut, u)
            if any((a in side) != (b in side) for a, b in pairs):
                continue
            across = [(a, b) for a in side for b in self.minima if b not in side]
            untried = [tuple(sorted(p)) for p in across if frozenset(p) not in tried]
            best = self._best(untried)
            if best is not None:
                pairs.append(best)
                tried.add(frozenset(best))
        return pairs

    def mark_tried(self, a: str, b: str) -> None:
        """A pair whose path could not be computed (its run failed): not suggested again."""
        self.tried.add(frozenset((str(a), str(b))))

    def _best(self, pairs):
        if not pairs:
            return None
        return min(pairs, key=lambda p: (max(self.minima[p[0]], self.minima[p[1]]), p))

    # -- persistence
    def to_json(self) -> dict:
        return {"minima": self.minima,
                "paths": [{"a": a, "b": b, **s} for (a, b), s in self.paths.items()],
                "tried": [sorted(p) for p in self.tried]}

    @classmethod
    def from_json(cls, record: dict) -> "MinimaGraph":
        graph = cls()
        for key, energy in record["minima"].items():
            graph.add_minimum(key, energy)
        for path in record["paths"]:
            summary = {k: v for k, v in path.items() if k not in ("a", "b")}
            graph.add_path(path["a"], path["b"], summary)
        graph.tried |= {frozenset(p) for p in record.get("tried", [])}
        return graph

    def save(self, file: str | os.PathLike) -> None:
        """Write atomically (an interrupted exploration resumes from the last complete save)."""
        atomic_write(file, json.dumps(self.to_json()))

    @classmethod
    def load(cls, file: str | os.PathLike) -> "MinimaGraph":
        with open(file, encoding="utf-8") as handle:
            return cls.from_json(json.load(handle))
