"""Random sampling and one-edge mutations of cells, driven by explicit generators."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from tnas.space.cell import NUM_CELLS, NUM_EDGES, NUM_OPS, Cell, official_index_order


def neighbours(cell: Cell) -> list[Cell]:
    """The 24 cells that differ from ``cell`` in exactly one edge.

    Ordered by edge (arch-string order), then by operation id.
    """
    result = []
    for edge in range(NUM_EDGES):
        for op in range(NUM_OPS):
            if op != cell.ops[edge]:
                ops = list(cell.ops)
                ops[edge] = op
                result.append(Cell(tuple(ops)))
    return result


def mutate(cell: Cell, rng: np.random.Generator) -> Cell:
    """Change one uniformly chosen edge to a uniformly chosen different operation."""
    edge = int(rng.integers(NUM_EDGES))
    shift = int(rng.integers(1, NUM_OPS))
    ops = list(cell.ops)
    ops[edge] = (ops[edge] + shift) % NUM_OPS
    return Cell(tuple(ops))


def sample_cell(rng: np.random.Generator) -> Cell:
    """One cell drawn uniformly from all 15,625."""
    return Cell.from_code(int(rng.integers(NUM_CELLS)))


def sample_unseen(rng: np.random.Generator, seen: Collection[int]) -> Cell:
    """A cell drawn uniformly from those whose official index is not in ``seen``.

    Raises:
        ValueError: if every cell has been seen.
    """
    if len(seen) >= NUM_CELLS:
        raise ValueError("all 15,625 cells have been seen")
    if len(seen) < NUM_CELLS // 2:  # rejection sampling is cheap while most cells are free
        while True:
            cell = sample_cell(rng)
            if cell.index not in seen:
                return cell
    free = np.setdiff1d(np.arange(NUM_CELLS), np.fromiter(seen, dtype=np.int64))
    return Cell.from_index(int(rng.choice(free)))


def permuted_cells(rng: np.random.Generator) -> list[Cell]:
    """All cells in a uniformly random order (sampling without replacement)."""
    order = official_index_order()
    return [Cell.from_code(order[i]) for i in rng.permutation(NUM_CELLS)]
