"""What the model-based baselines (GP-BO, BANANAS, NASBOWL) share: their observations and when
they return the evaluated cell of best posterior mean instead of the best observed one."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from tnas.errors import ConfigError
from tnas.oracles import Evaluation
from tnas.space import FULL_SPACE, Cell, SearchSpace

RECOMMEND_POLICIES = ("auto", "posterior", "observed")
"""``auto``: the evaluated cell of best posterior mean when observations are noisy, else the
best observed; ``posterior``: always the former; ``observed``: always the latter."""


def check_recommend_policy(value: str) -> None:
    """Raise :class:`~tnas.errors.ConfigError` unless ``value`` is one of :data:`RECOMMEND_POLICIES`."""
    if value not in RECOMMEND_POLICIES:
        raise ConfigError(f"recommend must be auto, posterior or observed, got {value!r}")


class ObservingSearcher:
    """Keeps ``_valid`` (official index -> observed validation accuracy) and ``_noisy`` (any
    observation of one training seed); ``config`` needs ``recommend`` and ``num_init``."""

    def __init__(self, rng: np.random.Generator, config: Any, space: SearchSpace = FULL_SPACE) -> None:
        self.config = config
        self._rng = rng
        self._space = space
        self._valid: dict[int, float] = {}
        self._noisy = False
        self.last_info: dict[str, float] = {}

    def _initial_design_cell(self, busy: Collection[int]) -> Cell | None:
        """A random feasible cell, neither evaluated nor pending, while the random initial design
        of ``config.num_init`` cells lasts; ``None`` once the model takes over."""
        if len(self._valid) >= self.config.num_init:
            return None
        self.last_info = {}
        return self._space.sample_unseen(self._rng, self._valid.keys() | busy if busy else self._valid.keys())

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        self._valid[cell.index] = evaluation.valid
        self._noisy = self._noisy or evaluation.seed is not None

    def _recommends_by_model(self) -> bool:
        """Whether :meth:`recommend` should consult the model now: ``recommend="posterior"``,
        or ``"auto"`` with noisy observations; never during the random initial design."""
        policy = self.config.recommend
        if policy == "observed" or (policy == "auto" and not self._noisy):
            return False
        return len(self._valid) >= self.config.num_init
