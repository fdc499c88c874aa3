"""Random search: cells drawn uniformly without replacement.

Reference: Li & Talwalkar, "Random Search and Reproducibility for Neural Architecture
Search", UAI 2019; the NAS-Bench-201 paper (Dong & Yang, ICLR 2020) reports it as RS.
"""

from __future__ import annotations

import numpy as np

from tnas.oracles import Evaluation
from tnas.space import Cell, permuted_cells


class RandomSearch:
    """Proposes the cells of one uniformly random permutation of the space, in order."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._order = permuted_cells(rng)
        self._next = 0
        self._seen: set[int] = set()

    def ask(self) -> Cell:
        while self._order[self._next].index in self._seen:
            self._next += 1
        return self._order[self._next]

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        self._seen.add(cell.index)
