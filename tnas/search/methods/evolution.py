"""Regularized (aging) evolution.

Reference: Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier
Architecture Search", AAAI 2019. Defaults (population 10, tournament sample 3) are those
the NAS-Bench-201 paper used for its REA baseline (Dong & Yang, ICLR 2020).

Each step draws ``sample_size`` members of the population at random, mutates the one
with the best observed validation accuracy on one edge, evaluates the child and appends
it to the population, removing the oldest member. A child that was already evaluated is
mutated again (a repeat would be a wasted query on a table); when all 24 neighbours of
the parent were evaluated, a random unevaluated cell is taken instead.

With several workers this is the asynchronous evolution Real et al. ran (hundreds of
workers): a free worker takes a tournament from the population as it is at that moment
(the evaluations that finished), and its child joins the population when its evaluation
finishes. Until ``population_size`` evaluations have finished, free workers take random
cells. Pending cells are never proposed (a child that is pending is mutated again).

In a constrained search space, random cells are drawn among the feasible ones and an
infeasible child is mutated again, like an evaluated one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from tnas.errors import ConfigError
from tnas.oracles import Evaluation
from tnas.search.protocol import pending_indexes
from tnas.space import FULL_SPACE, Cell, SearchSpace, mutate


@dataclass(frozen=True)
class EvolutionConfig:
    """Settings of regularized evolution."""

    population_size: int = 10
    sample_size: int = 3

    def __post_init__(self) -> None:
        if self.population_size < 1:
            raise ConfigError(f"population_size must be positive, got {self.population_size}")
        if not 1 <= self.sample_size <= self.population_size:
            raise ConfigError(
                f"sample_size must be in 1..population_size ({self.population_size}), got {self.sample_size}"
            )


class RegularizedEvolution:
    """Aging evolution with tournament selection and one-edge mutations."""

    def __init__(self, rng: np.random.Generator, config: EvolutionConfig = EvolutionConfig(),
                 space: SearchSpace = FULL_SPACE) -> None:  # fmt: skip
        self.config = config
        self._rng = rng
        self._space = space
        self._population: deque[tuple[Cell, float]] = deque(maxlen=config.population_size)
        self._seen: set[int] = set()

    def ask(self, pending: Sequence[Cell] = ()) -> Cell:
        excluded: Collection[int] = self._seen | pending_indexes(pending) if pending else self._seen
        if len(self._seen) < self.config.population_size:
            return self._space.sample_unseen(self._rng, excluded)
        picks = self._rng.choice(len(self._population), size=self.config.sample_size, replace=False)
        parent = max((self._population[int(i)] for i in picks), key=lambda member: member[1])[0]
        return self._unseen_child(parent, excluded)

    def _unseen_child(self, parent: Cell, excluded: Collection[int]) -> Cell:
        if all(n.index in excluded for n in self._space.neighbours(parent)):
            return self._space.sample_unseen(self._rng, excluded)
        while True:
            child = mutate(parent, self._rng)
            if child.index not in excluded and child in self._space:
                return child

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        self._seen.add(cell.index)
        self._population.append((cell, evaluation.valid))
