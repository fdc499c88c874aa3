"""The cells a run may propose: all of NAS-Bench-201, or the subset that meets its constraints.

A run's search space is the full cell space unless the run is constrained (a latency,
parameter or FLOPs limit, :mod:`tnas.constraints`) or its table is partial (a user table
that holds only some cells). Every search method draws from its :class:`SearchSpace` and
the runner refuses a proposal outside it, so a constrained search never spends a query on
a cell that could not be deployed (known constraints, as the hardware-aware NAS literature
treats latency tables).

On the full space every helper consumes the generator exactly as the plain functions of
:mod:`tnas.space.moves` do, so unconstrained runs keep their trajectories bit for bit.
"""

from __future__ import annotations

import operator
from collections.abc import Collection, Mapping

import numpy as np

from tnas.space.cell import NUM_CELLS, Cell
from tnas.space.moves import neighbours, permuted_cells, sample_unseen


class SearchSpace:
    """A set of NAS-Bench-201 cells, by official index.

    Args:
        allowed: boolean mask of shape ``(15625,)`` by official index; ``None`` is every cell.
        description: what restricts the space, for messages (e.g. ``"latency <= 5 ms on fpga"``).
        quantities: per-cell arrays (shape ``(15625,)``) of the constrained quantities, by
            name (``latency_ms``, ``params_mb``, ``flops_m``), recorded with each query.

    Raises:
        ValueError: a mask of another shape, or one that allows no cell.
    """

    def __init__(self, allowed: np.ndarray | None = None, *, description: str = "",
                 quantities: Mapping[str, np.ndarray] | None = None) -> None:  # fmt: skip
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (NUM_CELLS,):
                raise ValueError(f"a search space mask has one entry per cell ({NUM_CELLS}), got {allowed.shape}")
            if allowed.all():
                allowed = None
        if allowed is not None:
            allowed = allowed.copy()
            allowed.setflags(write=False)
            if not allowed.any():
                raise ValueError(f"no cell meets {description or 'the search space restrictions'}")
        self._allowed = allowed
        self._indexes = np.flatnonzero(allowed) if allowed is not None else None
        self.description = description
        self.quantities = dict(quantities or {})

    @property
    def is_full(self) -> bool:
        """Whether every cell is allowed."""
        return self._allowed is None

    @property
    def mask(self) -> np.ndarray:
        """Boolean mask of shape ``(15625,)`` by official index (a fresh array)."""
        return np.ones(NUM_CELLS, dtype=bool) if self._allowed is None else self._allowed.copy()

    @property
    def indexes(self) -> np.ndarray:
        """Official indexes of the allowed cells, ascending (int64, shape ``(size,)``)."""
        return np.arange(NUM_CELLS) if self._indexes is None else self._indexes

    def __len__(self) -> int:
        return NUM_CELLS if self._indexes is None else len(self._indexes)

    def __contains__(self, cell: Cell | int) -> bool:
        if self._allowed is None:
            return True
        return bool(self._allowed[cell.index if isinstance(cell, Cell) else operator.index(cell)])

    def sample_unseen(self, rng: np.random.Generator, excluded: Collection[int]) -> Cell:
        """A cell drawn uniformly from the allowed cells whose index is not in ``excluded``.

        Raises:
            ValueError: every allowed cell is excluded.
        """
        if self._indexes is None:
            return sample_unseen(rng, excluded)
        free = self._indexes
        if excluded:
            free = free[~np.isin(free, np.fromiter(excluded, dtype=np.int64, count=len(excluded)))]
        if not free.size:
            raise ValueError(f"every cell of the search space ({len(self)} cells) has been seen")
        return Cell.from_index(int(free[int(rng.integers(free.size))]))

    def permuted(self, rng: np.random.Generator) -> list[Cell]:
        """The allowed cells in a uniformly random order (one permutation of all cells, filtered)."""
        order = permuted_cells(rng)
        return order if self._allowed is None else [cell for cell in order if self._allowed[cell.index]]

    def neighbours(self, cell: Cell) -> list[Cell]:
        """The allowed cells one edge away from ``cell``, in :func:`~tnas.space.neighbours` order."""
        around = neighbours(cell)
        return around if self._allowed is None else [n for n in around if self._allowed[n.index]]

    def quantities_of(self, cell: Cell) -> dict[str, float]:
        """The constrained quantities of ``cell`` (empty for an unconstrained space)."""
        return {name: float(values[cell.index]) for name, values in self.quantities.items()}


FULL_SPACE = SearchSpace()
"""All 15,625 cells: the space of an unconstrained run."""
