"""NASBOWL: BO with a Weisfeiler-Lehman graph-kernel GP (Ru, Wan, Dong & Osborne, ICLR 2021).

Loop: evaluate ``num_init`` random cells; then, at every query, fit a GP whose kernel is
the normalised WL subtree kernel on the cells' labelled DAGs (:mod:`tnas.space.wl`), build
a pool of candidates by mutating the best evaluated cells and drawing random ones, score
the pool with expected improvement and propose its best candidate.

Settings and where they come from (the authors' ``nasbowl`` code, NAS-Bench-201 runs):

- Kernel: WL subtree kernel, normalised, with the number of WL iterations ``h`` chosen
  at every fit from ``wl_iterations = (1, 2)`` by the larger log marginal likelihood (their
  ``wl_subtree_candidates=(1, 2)``; plain subtree features, not the optimal-assignment
  variant, on NAS-Bench-201). The normalised kernel is a dot product of unit-length
  feature vectors, so the GP is BoTorch's ``SingleTaskGP`` with gpytorch's
  ``LinearKernel`` (its variance is the output scale) on those vectors; outcomes
  standardised (``Standardize``), hyperparameters by ``fit_gpytorch_mll``, the noise
  variance capped at ``max_noise = 0.01`` of the standardised outcomes (their
  ``--maximum_noise 0.01``).
- Candidates: a pool of ``pool_size = 100`` cells, half of them one-edit mutations of the
  ``num_parents = 10`` best evaluated cells (an equal share per parent, as their
  ``mutation(n_best=10, n_mutate=pool_size // 2)``), the rest drawn at random; evaluated,
  pending, infeasible and repeated cells are left out.
- Acquisition: expected improvement over the best observation (their default ``EI``), as
  BoTorch's ``LogExpectedImprovement`` through ``optimize_acqf_discrete``.
- Deviations: ``num_init = 10`` random cells, as GP-BO and BANANAS here (the authors'
  script defaults to 30), and one proposal per fit (their batch is 5 by the GP's own
  Kriging-believer-like top-n; one query per fit is the sequential setting of this grid).

Recommendation, pending evaluations and determinism follow GP-BO
(:mod:`tnas.search.methods.gp_bo`): under noisy observations the search returns the
evaluated cell of best posterior mean; pending cells are conditioned on at the posterior
mean (kriging believer) and never proposed; the fits run inside ``torch.random.fork_rng``
seeded from the searcher's generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from botorch.acquisition import LogExpectedImprovement
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.optim import optimize_acqf_discrete
from gpytorch.constraints import Interval
from gpytorch.kernels import Kernel, LinearKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Tensor

from tnas.errors import ConfigError
from tnas.search.methods.observations import ObservingSearcher, check_recommend_policy, fit_seeded
from tnas.search.methods.pending import kriging_believer
from tnas.search.methods.threads import single_threaded
from tnas.search.protocol import pending_indexes
from tnas.space import FULL_SPACE, Cell, SearchSpace
from tnas.space.wl import wl_features

MIN_NOISE = 1e-6


class WLKernel(LinearKernel):
    """gpytorch's ``LinearKernel`` on unit WL feature vectors, predicting in observation space.

    ``LinearKernel`` predicts through the features (a ``V x V`` Cholesky factor, V = 4,608
    WL labels for h = 2: half a minute per proposal); with at most a few hundred
    observations the exact ``n x n`` strategy of every other kernel is much faster and
    gives the same posterior.
    """

    def prediction_strategy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return Kernel.prediction_strategy(self, *args, **kwargs)


@dataclass(frozen=True)
class NASBOWLConfig:
    """Settings of NASBOWL (see the module docstring for their sources).

    Attributes:
        num_init: random cells evaluated before the first model-based proposal.
        pool_size: candidates scored per query.
        num_parents: best evaluated cells mutated for half of the pool.
        wl_iterations: WL iteration counts ``h`` tried at every fit (the best marginal
            likelihood wins).
        max_noise: upper bound of the GP's noise variance (standardised outcomes).
        fit_maxiter: L-BFGS-B iterations per hyperparameter fit.
        recommend: ``auto`` (the evaluated cell of best posterior mean when observations
            are noisy, else the best observed), ``posterior`` or ``observed``.
    """

    num_init: int = 10
    pool_size: int = 100
    num_parents: int = 10
    wl_iterations: tuple[int, ...] = (1, 2)
    max_noise: float = 0.01
    fit_maxiter: int = 500
    recommend: str = "auto"

    def __post_init__(self) -> None:
        check_recommend_policy(self.recommend)
        if self.num_init < 2:
            raise ConfigError(f"num_init must be at least 2 (a GP needs two points), got {self.num_init}")
        if min(self.pool_size, self.num_parents, self.fit_maxiter) < 1:
            raise ConfigError("pool_size, num_parents and fit_maxiter must be positive")
        if not self.wl_iterations or min(self.wl_iterations) < 0:
            raise ConfigError(f"wl_iterations must be non-negative counts, got {self.wl_iterations}")
        if not self.max_noise > MIN_NOISE:
            raise ConfigError(f"max_noise must exceed {MIN_NOISE}, got {self.max_noise}")


class NASBOWL(ObservingSearcher):
    """Ask/tell NASBOWL: WL-kernel GP, EI over a pool of mutations and random cells."""

    def __init__(self, rng: np.random.Generator, config: NASBOWLConfig = NASBOWLConfig(),
                 space: SearchSpace = FULL_SPACE) -> None:  # fmt: skip
        super().__init__(rng, config, space)
        self._fitted: tuple[int, int, SingleTaskGP] | None = None  # (observations, h, model)

    @property
    def chosen_iterations(self) -> int | None:
        """The WL iterations ``h`` of the last fit (``None`` before the first)."""
        return None if self._fitted is None else self._fitted[1]

    def ask(self, pending: Sequence[Cell] = ()) -> Cell:
        busy = pending_indexes(pending)
        if (first := self._initial_design_cell(busy)) is not None:
            return first
        pool = self.candidates(busy)
        with single_threaded():
            model = self.model()
            features = self._features()
            pending_x = features[[cell.index for cell in pending]] if pending else None
            with kriging_believer(model, pending_x) if pending_x is not None else nullcontext(model):
                acquisition = LogExpectedImprovement(model, best_f=max(self._valid.values()))
                choices = features[[cell.index for cell in pool]]
                candidate, value = optimize_acqf_discrete(acquisition, q=1, choices=choices)
                with torch.no_grad():
                    posterior = model.posterior(candidate)
        row = int(torch.nonzero((choices == candidate).all(dim=1))[0])
        self.last_info = {
            "acquisition": float(value.reshape(-1)[0]),  # log EI
            "pred_mean": float(posterior.mean.squeeze()),
            "pred_std": float(posterior.variance.clamp_min(0).sqrt().squeeze()),
            "wl_iterations": float(self._fitted[1]),  # type: ignore[index]
        }
        return pool[row]

    def _model_means(self, indexes: list[int]) -> np.ndarray:
        with single_threaded():
            model = self.model()
            with torch.no_grad():
                return model.posterior(self._features()[indexes]).mean.reshape(-1).numpy()

    def _features(self) -> Tensor:
        """The WL features (all cells) of the last fit's iteration count."""
        return wl_features(self._fitted[1])  # type: ignore[index]

    def candidates(self, busy: frozenset[int] = frozenset()) -> list[Cell]:
        """The pool: one-edit mutations of the best evaluated cells, then random cells.

        Evaluated, pending and infeasible cells and repeats are left out; the mutations
        take ``pool_size // 2`` places (an equal share per parent), random cells the rest.
        """
        config = self.config
        taken = self._valid.keys() | busy
        pool: dict[int, Cell] = {}
        parents = sorted(self._valid, key=lambda i: (-self._valid[i], i))[: config.num_parents]
        share = max(1, (config.pool_size // 2) // len(parents))
        for index in parents:
            around = [cell for cell in self._space.neighbours(Cell.from_index(index))
                      if cell.index not in taken and cell.index not in pool]  # fmt: skip
            for position in self._rng.permutation(len(around))[:share]:
                pool[around[int(position)].index] = around[int(position)]
        free = len(self._space) - len(taken)
        while len(pool) < min(config.pool_size, free):
            cell = self._space.sample_unseen(self._rng, taken | pool.keys())
            pool[cell.index] = cell
        return list(pool.values())

    def model(self) -> SingleTaskGP:
        """The GP of the best WL iteration count, fitted once per set of observations."""
        if self._fitted is None or self._fitted[0] != len(self._valid):
            fits = [(self._fit(h), h) for h in self.config.wl_iterations]
            (_, model), h = max(fits, key=lambda fit: fit[0][0])
            self._fitted = (len(self._valid), h, model)
        return self._fitted[2]

    def _fit(self, iterations: int) -> tuple[float, SingleTaskGP]:
        """The GP on ``iterations``-round WL features and its log marginal likelihood per observation."""
        indexes = list(self._valid)
        train_x = wl_features(iterations)[indexes]  # n x V, unit rows
        train_y = torch.tensor([self._valid[i] for i in indexes], dtype=torch.float64).unsqueeze(-1)  # n x 1
        likelihood = GaussianLikelihood(noise_constraint=Interval(MIN_NOISE, self.config.max_noise))
        model = SingleTaskGP(train_x, train_y, likelihood=likelihood, covar_module=WLKernel(),
                             outcome_transform=Standardize(m=1))  # fmt: skip
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        fit_seeded(mll, self._rng, self.config.fit_maxiter)
        model.train()
        with torch.no_grad():
            score = float(mll(model(*model.train_inputs), model.train_targets))
        return score, model.eval()

