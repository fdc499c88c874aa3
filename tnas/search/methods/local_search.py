"""Local search over the one-edge neighbourhood.

Reference: White, Nolen, Ravi & Savani, "Exploring the Loss Landscape in Neural
Architecture Search", UAI 2021 (and its NASLib implementation): evaluate ``num_init``
random cells, take the best as the current cell, evaluate its whole neighbourhood (the
24 cells one edge away, in random order), and move to the best neighbour if it beats the
current cell. At a local optimum, restart from one random unevaluated cell.
Default ``num_init = 10``.

With several workers, the cells of a random batch and of a neighbourhood are handed out to
free workers as they ask; a free worker that finds every cell of the current step pending
(the step cannot be decided before they finish) evaluates a random unevaluated cell
instead of idling, and the climb uses it like any other observation.

In a constrained search space the random cells are feasible ones and a neighbourhood is
the feasible cells one edge away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tnas.errors import ConfigError
from tnas.oracles import Evaluation
from tnas.search.protocol import pending_indexes
from tnas.space import FULL_SPACE, Cell, SearchSpace


@dataclass(frozen=True)
class LocalSearchConfig:
    """Settings of local search."""

    num_init: int = 10

    def __post_init__(self) -> None:
        if self.num_init < 1:
            raise ConfigError(f"num_init must be positive, got {self.num_init}")


class LocalSearch:
    """Best-improvement hill climbing with random restarts."""

    def __init__(self, rng: np.random.Generator, config: LocalSearchConfig = LocalSearchConfig(),
                 space: SearchSpace = FULL_SPACE) -> None:  # fmt: skip
        self.config = config
        self._rng = rng
        self._space = space
        self._valid: dict[int, float] = {}  # official index -> observed validation accuracy
        self._current: Cell | None = None  # None while a batch of random cells is pending
        self._batch: list[Cell] = []  # random cells of the current (re)start
        self._queue: list[Cell] = []  # neighbours of the current cell still to evaluate
        self._random_to_draw = config.num_init  # random cells of the current (re)start still to propose

    def ask(self, pending: Sequence[Cell] = ()) -> Cell:
        busy = pending_indexes(pending)
        excluded = self._valid.keys() | busy if busy else self._valid.keys()
        while True:
            if self._random_to_draw > 0:
                self._random_to_draw -= 1
                cell = self._space.sample_unseen(self._rng, excluded)
                self._batch.append(cell)
                return cell
            while self._queue:
                cell = self._queue.pop()
                if cell.index not in excluded:
                    return cell
            if self._waiting():  # the step's cells are still being evaluated
                return self._space.sample_unseen(self._rng, excluded)
            self._advance()

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        self._valid[cell.index] = evaluation.valid

    def _waiting(self) -> bool:
        """Whether the current step (random batch or neighbourhood) has cells not yet told."""
        step = self._batch if self._current is None else self._space.neighbours(self._current)
        return any(cell.index not in self._valid for cell in step)

    def _advance(self) -> None:
        """Pick the next current cell once its neighbourhood (or a random batch) is done."""
        if self._current is None:
            self._current = max(self._batch, key=lambda cell: self._valid[cell.index])
        else:
            around = self._space.neighbours(self._current)
            best = max(around, key=lambda cell: self._valid[cell.index]) if around else self._current
            if self._valid[best.index] > self._valid[self._current.index]:
                self._current = best
            else:  # local optimum: restart from one random cell
                self._current = None
                self._batch = []
                self._random_to_draw = 1
                return
        order = self._space.neighbours(self._current)
        self._queue = [order[int(i)] for i in self._rng.permutation(len(order))]
