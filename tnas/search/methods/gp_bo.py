"""GP-BO: Bayesian optimization with a plain GP on the one-hot cell encoding (no meta-learning).

The textbook BO baseline of the TNAS paper's comparison (Shala et al. 2023 compare against
GP-based BO without transfer), built from BoTorch parts: evaluate ``num_init`` random cells;
then, at every query, fit BoTorch's ``SingleTaskGP`` with its defaults (constant mean, RBF
kernel with one lengthscale per dimension under BoTorch's dimension-scaled log-normal
prior, Gaussian likelihood) on the one-hot encodings of the evaluated cells, with outcomes
standardised by the ``Standardize`` outcome transform, by maximising the exact marginal
log likelihood with ``fit_gpytorch_mll`` (L-BFGS-B; BoTorch restarts from prior draws when
a fit fails); then score every unevaluated cell with ``LogExpectedImprovement`` through
``optimize_acqf_discrete`` and propose the best.

The encoding is the 6 edges' operations one-hot, 6 x 5 = 30 binary dimensions (edge-major,
operations in :data:`~tnas.space.OPERATIONS` order); the one-hots of all 15,625 cells are
computed once per searcher. Everything runs in float64.

Recommendation: with noisy observations (one training seed per query) the search returns
the evaluated cell of best posterior mean instead of the luckiest reading (``recommend``);
the fit it needs is the one the next proposal uses.

Evaluations pending (several workers): ``pending="believer"`` (the default) scores the
candidates with LogEI on the GP conditioned on the pending cells at its posterior mean;
``pending="x_pending"`` uses qLogNEI with BoTorch's ``X_pending`` (see
:mod:`tnas.search.methods.pending`). Pending cells are never candidates, and the random
initial design leaves them out. In a constrained search space the candidates and the
initial design are the feasible cells.

Determinism: the only randomness is BoTorch's restarts after a failed fit, which draw new
starting hyperparameters from torch's global generator; the fit runs inside
``torch.random.fork_rng`` seeded from the searcher's generator, so the same seed and the
same answers give the same proposals and the caller's torch state is left untouched.

Cost: each fit starts from BoTorch's initial hyperparameters (``warm_start`` starts it from
the previous fit's instead) and L-BFGS-B stops after ``fit_maxiter`` iterations. With 30
ARD lengthscales, most of them flat directions, an uncapped fit crawls for 1,000+
iterations at 100 observations (measured 2.5 s) for a marginal likelihood within 1% of
what 500 iterations reach (about 1 s). Torch runs on one thread inside the searcher (see
:func:`~tnas.search.methods.threads.single_threaded`), and candidates are scored in
batches of ``ACQUISITION_BATCH`` (GPyTorch expands the training inputs per candidate, so
small batches are faster and bound the memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction, LogExpectedImprovement, qLogNoisyExpectedImprovement
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.optim import optimize_acqf_discrete
from botorch.sampling import SobolQMCNormalSampler
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Tensor

from tnas.errors import ConfigError
from tnas.search.methods.observations import ObservingSearcher, check_recommend_policy, fit_seeded
from tnas.search.methods.pending import PENDING_STRATEGIES, kriging_believer
from tnas.search.methods.threads import single_threaded
from tnas.search.protocol import pending_indexes
from tnas.space import FULL_SPACE, NUM_EDGES, NUM_OPS, Cell, SearchSpace, official_index_order
from tnas.typecheck import check_field_types

ONE_HOT_DIM = NUM_EDGES * NUM_OPS  # 30
ACQUISITION_BATCH = 512


def one_hot(ops: np.ndarray) -> Tensor:
    """One-hot encodings of cells given as operation ids.

    Args:
        ops: integer array ``n x 6`` of operation ids in arch-string edge order.

    Returns:
        A float64 tensor ``n x 30``; entry ``5 * edge + op`` is one.
    """
    eye = np.eye(NUM_OPS)
    return torch.as_tensor(eye[np.asarray(ops)].reshape(len(ops), ONE_HOT_DIM), dtype=torch.float64)


def all_cells_one_hot() -> Tensor:
    """One-hots of all cells, ``15625 x 30`` float64, row ``i`` the cell of official index ``i``."""
    codes = np.asarray(official_index_order())
    powers = NUM_OPS ** np.arange(NUM_EDGES - 1, -1, -1)  # edge 0 is the most significant digit
    return one_hot((codes[:, None] // powers) % NUM_OPS)


def cell_of_one_hot(row: Tensor) -> Cell:
    """The cell whose one-hot (a 30-vector) is ``row``."""
    return Cell(tuple(int(op) for op in row.reshape(NUM_EDGES, NUM_OPS).argmax(dim=-1)))


@dataclass(frozen=True)
class GPBOConfig:
    """Settings of GP-BO.

    Attributes:
        num_init: random cells evaluated before the first model-based proposal.
        fit_maxiter: L-BFGS-B iterations per hyperparameter fit.
        warm_start: start each hyperparameter fit from the previous fit's values.
        recommend: ``auto`` (the evaluated cell of best posterior mean when observations
            are noisy, else the best observed), ``posterior`` or ``observed``.
        pending: how evaluations still running shape a proposal, ``believer`` or
            ``x_pending`` (see :mod:`tnas.search.methods.pending`).
    """

    num_init: int = 10
    fit_maxiter: int = 500
    warm_start: bool = False
    recommend: str = "auto"
    pending: str = "believer"

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.pending not in PENDING_STRATEGIES:
            raise ConfigError(f"pending must be one of {', '.join(PENDING_STRATEGIES)}, got {self.pending!r}")
        check_recommend_policy(self.recommend)
        if self.num_init < 2:
            raise ConfigError(f"num_init must be at least 2 (a GP needs two points), got {self.num_init}")
        if self.fit_maxiter < 1:
            raise ConfigError(f"fit_maxiter must be positive, got {self.fit_maxiter}")


class GPBO(ObservingSearcher):
    """Ask/tell GP-BO with LogEI over all unevaluated cells."""

    def __init__(self, rng: np.random.Generator, config: GPBOConfig = GPBOConfig(),
                 space: SearchSpace = FULL_SPACE) -> None:  # fmt: skip
        super().__init__(rng, config, space)
        self._allowed = torch.as_tensor(space.mask)
        self._choices = all_cells_one_hot()  # 15625 x 30, rows in official index order
        self._hyperparameters: dict[str, Tensor] = {}  # of the last fit, for warm starts
        self._fitted: tuple[int, SingleTaskGP] | None = None  # (observations, model)

    def ask(self, pending: Sequence[Cell] = ()) -> Cell:
        busy = pending_indexes(pending)
        if (first := self._initial_design_cell(busy)) is not None:
            return first
        free = self._allowed.clone()
        free[list(self._valid)] = False
        free[list(busy)] = False
        pending_x = self._choices[[cell.index for cell in pending]] if pending else None
        with single_threaded():
            model = self.model()
            believe = pending_x is not None and self.config.pending == "believer"
            with kriging_believer(model, pending_x) if believe else nullcontext(model):
                acquisition = self._acquisition(model, pending_x if not believe else None)
                candidate, value = optimize_acqf_discrete(acquisition, q=1, choices=self._choices[free],
                                                          max_batch_size=ACQUISITION_BATCH)  # fmt: skip
                with torch.no_grad():
                    posterior = model.posterior(candidate)
        self.last_info = {
            "acquisition": float(value.reshape(-1)[0]),  # log EI
            "pred_mean": float(posterior.mean.squeeze()),
            "pred_std": float(posterior.variance.clamp_min(0).sqrt().squeeze()),
        }
        return cell_of_one_hot(candidate[0])

    def _acquisition(self, model: SingleTaskGP, pending_x: Tensor | None) -> AcquisitionFunction:
        """LogEI; with ``pending_x`` (``p x 30``), qLogNEI integrating over the pending cells."""
        if pending_x is None:
            return LogExpectedImprovement(model, best_f=max(self._valid.values()))
        sampler = SobolQMCNormalSampler(torch.Size([512]), seed=int(self._rng.integers(2**31)))
        baseline = self._choices[list(self._valid)]
        return qLogNoisyExpectedImprovement(model, X_baseline=baseline, X_pending=pending_x, sampler=sampler,
                                            prune_baseline=False)  # fmt: skip

    def _model_means(self, indexes: list[int]) -> np.ndarray:
        with single_threaded():
            model = self.model()  # fitting needs gradients: outside no_grad
            with torch.no_grad():
                return model.posterior(self._choices[indexes]).mean.reshape(-1).numpy()

    def model(self) -> SingleTaskGP:
        """:meth:`fit`, once per set of observations (shared by a recommendation and the next ask)."""
        if self._fitted is None or self._fitted[0] != len(self._valid):
            self._fitted = (len(self._valid), self.fit())
        return self._fitted[1]

    def fit(self) -> SingleTaskGP:
        """The GP fitted to every observation (posterior in accuracy %, via ``Standardize``)."""
        indexes = list(self._valid)
        train_x = self._choices[indexes]  # n x 30
        train_y = torch.tensor([self._valid[i] for i in indexes], dtype=torch.float64).unsqueeze(-1)  # n x 1
        model = SingleTaskGP(train_x, train_y, outcome_transform=Standardize(m=1))
        if self.config.warm_start and self._hyperparameters:
            with torch.no_grad():
                for name, parameter in model.named_parameters():
                    parameter.copy_(self._hyperparameters[name])
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        fit_seeded(mll, self._rng, self.config.fit_maxiter)
        self._hyperparameters = {name: p.detach().clone() for name, p in model.named_parameters()}
        return model.eval()
