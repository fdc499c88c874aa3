"""What the model-based baselines (GP-BO, BANANAS, NASBOWL) share: their observations and when
they return the evaluated cell of best posterior mean instead of the best observed one."""

from __future__ import annotations

from typing import Any

from tnas.errors import ConfigError
from tnas.oracles import Evaluation
from tnas.space import Cell

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

    config: Any
    _valid: dict[int, float]
    _noisy: bool

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
