"""Local search over the one-edge neighbourhood.

Reference: White, Nolen, Ravi & Savani, "Exploring the Loss Landscape in Neural
Architecture Search", UAI 2021 (and its NASLib implementation): evaluate ``num_init``
random cells, take the best as the current cell, evaluate its whole neighbourhood (the
24 cells one edge away, in random order), and move to the best neighbour if it beats the
current cell. At a local optimum, restart from one random unevaluated cell.
Default ``num_init = 10``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tnas.errors import ConfigError
from tnas.oracles import Evaluation
from tnas.space import Cell, neighbours, sample_unseen


@dataclass(frozen=True)
class LocalSearchConfig:
    """Settings of local search."""

    num_init: int = 10

    def __post_init__(self) -> None:
        if self.num_init < 1:
            raise ConfigError(f"num_init must be positive, got {self.num_init}")


class LocalSearch:
    """Best-improvement hill climbing with random restarts."""

    def __init__(self, rng: np.random.Generator, config: LocalSearchConfig = LocalSearchConfig()) -> None:
        self.config = config
        self._rng = rng
        self._valid: dict[int, float] = {}  # official index -> observed validation accuracy
        self._current: Cell | None = None  # None while a batch of random cells is pending
        self._batch: list[Cell] = []  # random cells of the current (re)start
        self._queue: list[Cell] = []  # neighbours of the current cell still to evaluate
        self._pending_random = config.num_init  # random cells still to evaluate

    def ask(self) -> Cell:
        while True:
            if self._pending_random > 0:
                return sample_unseen(self._rng, self._valid.keys())
            while self._queue:
                cell = self._queue.pop()
                if cell.index not in self._valid:
                    return cell
            self._advance()

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        self._valid[cell.index] = evaluation.valid
        if self._pending_random > 0:
            self._pending_random -= 1
            self._batch.append(cell)

    def _advance(self) -> None:
        """Pick the next current cell once its neighbourhood (or a random batch) is done."""
        if self._current is None:
            self._current = max(self._batch, key=lambda cell: self._valid[cell.index])
        else:
            best = max(neighbours(self._current), key=lambda cell: self._valid[cell.index])
            if self._valid[best.index] > self._valid[self._current.index]:
                self._current = best
            else:  # local optimum: restart from one random cell
                self._current = None
                self._batch = []
                self._pending_random = 1
                return
        order = neighbours(self._current)
        self._queue = [order[int(i)] for i in self._rng.permutation(len(order))]
