"""Weisfeiler-Lehman subtree features of NAS-Bench-201 cells (the graph kernel of NAS-BOWL).

A cell is read as a node-labelled DAG, as NAS-BOWL does (Ru, Wan, Dong & Osborne, ICLR
2021): one node per edge of the cell, labelled with its operation, plus an ``input`` and an
``output`` node; an operation node on edge ``j -> i`` feeds every operation node on an edge
leaving node ``i`` (or the output when ``i`` is the last node) and is fed by the operation
nodes on edges entering node ``j`` (or the input when ``j = 0``). ``none`` edges carry no
signal and are removed, and so is every node that does not lie on an input-to-output path
(the graph is pruned as NAS-BOWL prunes it); a cell whose input never reaches its output
is the two nodes ``input`` and ``output`` alone.

WL subtree relabelling (Shervashidze et al., JMLR 2011): at iteration ``t + 1`` a node's
label is the pair (its label at ``t``, the sorted labels of its predecessors at ``t``),
so after ``h`` iterations a label describes the sub-DAG of depth ``h`` feeding the node.
The feature vector of a cell for ``h`` iterations counts every label of iterations
``0..h``; the WL subtree kernel is the dot product of two such vectors, and NAS-BOWL
normalises it to ``k(x, x') / sqrt(k(x, x) k(x', x'))``, i.e. the dot product of the
unit-length feature vectors (:func:`wl_features` returns them normalised).

Label vocabularies are built over all 15,625 cells, scanned in official index order, so a
feature column means the same thing in every run.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from tnas.space.cell import EDGES, NUM_CELLS, OPERATIONS, Cell

INPUT_LABEL = "input"
OUTPUT_LABEL = "output"
_LAST_NODE = max(to for to, _ in EDGES)

LabelledDAG = tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]
"""A node-labelled DAG: the labels of the nodes and, per node, its predecessors' positions."""


def cell_dag(cell: Cell) -> LabelledDAG:
    """The pruned, node-labelled DAG of ``cell`` (see the module docstring).

    Returns:
        ``(labels, predecessors)``: node 0 is ``input``, the last node ``output``, the
        operation nodes in between in arch-string edge order.
    """
    live = [position for position, op in enumerate(cell.ops) if OPERATIONS[op] != "none"]
    # graph over: "in", one node per live edge, "out"
    nodes = ["in", *live, "out"]
    preds: dict[object, list[object]] = {node: [] for node in nodes}
    for position in live:
        to, source = EDGES[position]
        feeders = ["in"] if source == 0 else [p for p in live if EDGES[p][0] == source]
        preds[position].extend(feeders)
        if to == _LAST_NODE:
            preds["out"].append(position)
    reach_out = _closure("out", preds)
    succs: dict[object, list[object]] = {node: [] for node in nodes}
    for node, sources in preds.items():
        for source in sources:
            succs[source].append(node)
    from_in = _closure("in", succs)
    kept = [node for node in nodes if node in reach_out and node in from_in]
    if "out" not in from_in:  # no input-to-output path
        kept = ["in", "out"]
    position_of = {node: i for i, node in enumerate(kept)}
    labels = tuple(INPUT_LABEL if node == "in" else OUTPUT_LABEL if node == "out"
                   else OPERATIONS[cell.ops[node]] for node in kept)  # type: ignore[index]  # fmt: skip
    predecessors = tuple(tuple(sorted(position_of[p] for p in preds[node] if p in position_of)) for node in kept)
    return labels, predecessors


def _closure(start: object, links: dict[object, list[object]]) -> set[object]:
    """``start`` and every node reached from it along ``links``."""
    seen, frontier = {start}, [start]
    while frontier:
        for node in links[frontier.pop()]:
            if node not in seen:
                seen.add(node)
                frontier.append(node)
    return seen


def wl_labels(dag: LabelledDAG, iterations: int) -> list[list[object]]:
    """The WL labels of every node of ``dag`` at iterations ``0..iterations`` (one list per iteration)."""
    labels, predecessors = dag
    rounds: list[list[object]] = [list(labels)]
    for _ in range(iterations):
        last = rounds[-1]
        rounds.append([(last[node], tuple(sorted(map(str, (last[p] for p in predecessors[node])))))
                       for node in range(len(labels))])  # fmt: skip
    return rounds


def wl_histograms(cells: Sequence[Cell], iterations: int) -> np.ndarray:
    """Unnormalised WL subtree features: label counts of iterations ``0..iterations``.

    The vocabulary is built over ``cells`` in the order given (columns in order of first
    appearance, iteration by iteration).

    Returns:
        A float64 array ``len(cells) x V`` (V: distinct labels over all iterations).
    """
    per_cell = [wl_labels(cell_dag(cell), iterations) for cell in cells]
    columns: dict[tuple[int, object], int] = {}
    for rounds in per_cell:
        for t, labels in enumerate(rounds):
            for label in labels:
                columns.setdefault((t, label), len(columns))
    features = np.zeros((len(cells), len(columns)))
    for row, rounds in enumerate(per_cell):
        for t, labels in enumerate(rounds):
            for label in labels:
                features[row, columns[(t, label)]] += 1.0
    return features


@functools.cache
def wl_features(iterations: int) -> Tensor:
    """Unit-length WL subtree features of all cells, ``15625 x V`` float64, row ``i`` = official index ``i``.

    ``features @ features.T`` is NAS-BOWL's normalised WL kernel with ``h = iterations``
    (V = 102 for h = 1, 4,608 for h = 2). Computed once per process (about 5 s for h = 2)
    and shared: callers index it and must not write into it.
    """
    features = wl_histograms([Cell.from_index(index) for index in range(NUM_CELLS)], iterations)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    return torch.as_tensor(features)


def wl_kernel(first: Cell, second: Cell, iterations: int) -> float:
    """The unnormalised WL subtree kernel of two cells (the dot product of their label counts)."""
    counts = wl_histograms([first, second], iterations)
    return float(counts[0] @ counts[1])
