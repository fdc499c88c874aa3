"""What the model-based baselines (GP-BO, BANANAS, NASBOWL) share: their observations, when
they return the evaluated cell of best posterior mean instead of the best observed one, and
the seeded hyperparameter fit of the two GP methods."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import torch
from botorch.exceptions.errors import ModelFittingError
from botorch.fit import fit_gpytorch_mll
from gpytorch.mlls import ExactMarginalLogLikelihood

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


def fit_seeded(mll: ExactMarginalLogLikelihood, rng: np.random.Generator, maxiter: int) -> None:
    """``fit_gpytorch_mll`` with L-BFGS-B capped at ``maxiter`` iterations, its restarts drawn
    from a torch generator seeded from ``rng`` (the caller's torch state is left untouched).

    If every attempt fails BoTorch rolls them back and the model keeps its initial
    hyperparameters.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**63)))
        try:
            fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": maxiter}})
        except ModelFittingError:
            pass


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

    def recommend(self) -> Cell | None:
        """The evaluated cell of best model mean (noisy observations, after the initial
        design), else ``None``: the best observed. The model is kept for the next ask."""
        if not self._recommends_by_model():
            return None
        indexes = list(self._valid)
        return Cell.from_index(indexes[int(np.argmax(self._model_means(indexes)))])

    def _model_means(self, indexes: list[int]) -> np.ndarray:
        """The model's mean accuracy (%) of the cells of official ``indexes`` (length ``len(indexes)``)."""
        raise NotImplementedError

    def _recommends_by_model(self) -> bool:
        """Whether :meth:`recommend` should consult the model now: ``recommend="posterior"``,
        or ``"auto"`` with noisy observations; never during the random initial design."""
        policy = self.config.recommend
        if policy == "observed" or (policy == "auto" and not self._noisy):
            return False
        return len(self._valid) >= self.config.num_init
