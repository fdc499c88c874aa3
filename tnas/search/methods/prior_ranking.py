"""``tnas-prior``: evaluate cells in the order of the meta-learned prior mean, never updating.

The predictor-only transfer of MetaD2A (Lee et al., ICLR 2021): a model meta-learned on
other datasets ranks every cell of the target once, and the search evaluates the ranking
from the top, whatever the evaluations say. It is TNAS without Bayesian optimization: the
same surrogate and the same initial design (TNAS's first ``init_size`` queries are this
method's), but no conditioning on the target's observations. Comparing the two shows what
the feedback loop adds over the meta-learned prior alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tnas.oracles import Evaluation
from tnas.search.protocol import pending_indexes
from tnas.space import FULL_SPACE, NUM_CELLS, Cell, SearchSpace


class PriorRanking:
    """Ask/tell search that proposes the cells by decreasing prior mean (skipping pending ones).

    Args:
        prior: ``15625`` prior means, indexed by official cell index (any monotone scale).
        space: the cells it may propose (the ranking skips the others).
    """

    def __init__(self, prior: Tensor, space: SearchSpace = FULL_SPACE) -> None:
        if prior.shape != (NUM_CELLS,):
            raise ValueError(f"expected one prior mean per cell ({NUM_CELLS}), got shape {tuple(prior.shape)}")
        self._prior = prior
        self._order = [index for index in torch.argsort(prior, descending=True, stable=True).tolist()
                       if index in space]  # fmt: skip
        self._next = 0
        self._told: set[int] = set()
        self.last_info: dict[str, float] = {}

    def ask(self, pending: Sequence[Cell] = ()) -> Cell:
        while self._order[self._next] in self._told:
            self._next += 1
        busy = pending_indexes(pending)
        position = self._next
        while self._order[position] in self._told or self._order[position] in busy:
            position += 1
        index = self._order[position]
        self.last_info = {"prior_mean": float(self._prior[index])}
        return Cell.from_index(index)

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        self._told.add(cell.index)
