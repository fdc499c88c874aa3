"""Random search: cells drawn uniformly without replacement.

Reference: Li & Talwalkar, "Random Search and Reproducibility for Neural Architecture
Search", UAI 2019; the NAS-Bench-201 paper (Dong & Yang, ICLR 2020) reports it as RS.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tnas.oracles import Evaluation
from tnas.search.protocol import pending_indexes
from tnas.space import FULL_SPACE, Cell, SearchSpace


class RandomSearch:
    """Proposes the cells of one uniformly random permutation of the space, in order.

    With evaluations pending it proposes the first cell of the permutation that is neither
    evaluated nor pending: parallel random search is random search. In a constrained
    ``space`` the permutation is that of the feasible cells (rejection sampling).
    """

    def __init__(self, rng: np.random.Generator, space: SearchSpace = FULL_SPACE) -> None:
        self._order = space.permuted(rng)
        self._next = 0
        self._seen: set[int] = set()

    def ask(self, pending: Sequence[Cell] = ()) -> Cell:
        while self._order[self._next].index in self._seen:
            self._next += 1
        busy = pending_indexes(pending)
        position = self._next
        while self._order[position].index in self._seen or self._order[position].index in busy:
            position += 1
        return self._order[position]

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        self._seen.add(cell.index)
