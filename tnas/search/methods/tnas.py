"""TNAS: Bayesian optimization with the meta-learned deep-kernel GP (Shala et al. 2023).

The surrogate is a :class:`~tnas.models.surrogate.TNASSurrogate` on the target dataset: the
meta-trained deep kernel with the target's dataset code, or an ensemble of such kernels
searched as one GP (the members' average prior mean and kernel, :mod:`tnas.models.ensemble`;
the default surrogate is an ensemble of two). The encoder codes ``[psi(x), phi(D)]`` of all
15,625 cells are computed once (the encoders stay as meta-trained). Before a proposal the
GP is conditioned on every observation; it is fine-tuned on their marginal likelihood for
``finetune_steps`` Adam steps from the meta-trained values (the feature MLP xi, learning
rate ``finetune_feature_lr``, and the GP head: mean calibration, kernel scales, noise;
``finetune_lr``), as FSBO and TNAS adapt the deep kernel to the target task, whenever the
observations have grown by ``refit_growth`` since the last fine-tuning (in between, the
last fit's values are conditioned on all observations). A BoTorch acquisition function then
scores the unevaluated cells among the ``candidate_pool`` of highest prior mean through
``optimize_acqf_discrete``.

Why these settings (measured on the NAS-Bench-201 tables over several meta-training
draws; the README's *Why an ensemble* and *TNAS settings* give the figures):

* fine-tuning xi, not only the head, is what lets the GP move away from the prior where the
  target's observations say so; the head alone walks the prior's ranking (cifar10: median
  11.5 queries to the best cell against 8.5 with xi over ten two-member ensembles);
* 100 steps, because the noise has to come down from its meta-trained value (the kernel's
  misfit over whole source spaces, about 2 accuracy points) to what the target's
  observations show; 50 steps at twice the learning rates searched worse (12.5 on
  cifar10);
* a pool of the prior's 500 best cells: with a handful of near-equal observations, the mean
  on fine-tuned features extrapolates (predicted accuracies of 60% for cells whose prior
  is at the bottom of the space) and the acquisition spent queries on them; inside the
  pool ImageNet16-120's median fell from 30 to 20.5 queries. Keeping the mean frozen at the
  calibrated prior instead made the kernel's fine-tuned features do the damage (several
  ImageNet16-120 searches never found the best cell);
* fine-tuning again only when the observations grew by 10%: as good (ImageNet16-120's worst
  run 46 queries instead of 84) at a fraction of the cost. Starting each fit from the last
  one (``warm_steps``) instead drifted: two of three ImageNet16-120 searches never found
  the best cell;
* Adam steps from the meta-trained values, not a fit to convergence: maximising the
  marginal likelihood of the head fully (L-BFGS-B, tried) drove the kernel's output scale
  to 1e-11 after 14 cifar10 observations, a recalibrated prior mean with no uncertainty.

Evaluations pending (several workers): the proposal comes from the GP fitted to the
finished evaluations, conditioned on the pending cells at its posterior mean (``pending=
"believer"``, kriging believer: the analytic LogEI stays the fast path) or through
BoTorch's ``X_pending`` (``"x_pending"``: qLogNEI / qUCB); see
:mod:`tnas.search.methods.pending`. While fewer than ``init_size`` evaluations have
finished, free workers take the next cells of the initial design's order (the prior's
ranking), so a wide search starts on the prior's best cells. Pending cells are never
proposed.

Constrained search space (``--max-latency-ms`` and the like): the initial design, the
candidate pool and the acquisition's choices hold feasible cells only, so the prior's
trust region is the ``candidate_pool`` best *feasible* cells.

Initial design: the ``init_size`` cells with the highest prior mean (``init="prior"``),
random cells (``init="random"``) or the source tables' best cells (``init="sources"``, the
``zero-shot`` order). Observations are centred on their mean and divided by
the meta-training sources' typical deviation before they reach the GP (see
:class:`TNASSearcher`). With noisy observations (one training seed per query) the search
returns the evaluated cell of best posterior mean (``recommend``) among those whose reading
is within ``recommend_plausible`` noise standard deviations of the best reading.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from botorch.acquisition import (
    AcquisitionFunction,
    LogExpectedImprovement,
    UpperConfidenceBound,
    qLogNoisyExpectedImprovement,
    qUpperConfidenceBound,
)
from botorch.optim import optimize_acqf_discrete
from botorch.sampling import SobolQMCNormalSampler
from gpytorch.mlls import ExactMarginalLogLikelihood
from linear_operator.utils.errors import NanError
from torch import Tensor

from tnas.errors import ConfigError
from tnas.meta_train.checkpoint import CheckpointError
from tnas.models.deep_kernel import NUMERICAL_FAILURES, DeepKernel, expected_jitter, map_codes
from tnas.models.surrogate import TNASSurrogate, all_cell_inputs, encoder_codes_of_all_cells
from tnas.oracles import Evaluation
from tnas.search.methods.pending import PENDING_STRATEGIES, kriging_believer
from tnas.search.protocol import pending_indexes
from tnas.space import FULL_SPACE, NUM_CELLS, Cell, SearchSpace
from tnas.typecheck import check_field_types

ACQUISITIONS = ("logei", "ucb", "ts")
INITS = ("prior", "random", "sources")
RECOMMENDATIONS = ("auto", "posterior", "observed")
PRIOR_MEANS = ("frozen", "features")
QMC_SAMPLES = 512  # base samples of q-batch acquisitions (BoTorch's default)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TNASConfig:
    """Settings of the TNAS searcher.

    Attributes:
        acquisition: ``logei`` (log expected improvement), ``ucb`` (upper confidence
            bound) or ``ts`` (Thompson sampling of independent posterior marginals).
        init: initial design, ``prior`` (top cells of the prior mean), ``random``, or
            ``sources`` (top cells of the source tables' average, the ``zero-shot`` method's
            order; the meta-learned prior still sets the candidate pool and the GP's mean).
        init_size: number of cells of the initial design.
        batch_size: q, cells proposed per acquisition (q > 1 uses qLogNEI or qUCB).
        finetune_steps: Adam steps on the GP's marginal likelihood per query, each time
            from the meta-trained values; 0 keeps the meta-trained GP.
        finetune_lr: learning rate of the GP head (mean calibration, kernel, noise).
        finetune_feature_lr: learning rate of the feature MLP xi; 0 keeps xi as
            meta-trained and fine-tunes only the head.
        feature_patience: ``None`` fine-tunes xi from the first fit; a number P fine-tunes
            only the head until the best observation has not improved for P observations
            in a row (the prior's walk has stalled), and xi too from then on.
        prior_mean: ``frozen``: the GP's mean is the meta-trained prior mean (on the
            meta-trained features), calibrated by an offset and a scale, so fine-tuning xi
            changes only the kernel; ``features``: the meta-trained mean function applied
            to the fine-tuned features (the mean moves with xi).
        candidate_pool: 0 scores every unevaluated cell; a positive N scores only the N
            cells of highest prior mean (the meta-learned prior as a trust region; all
            cells once those are evaluated).
        refit_growth: 0 fine-tunes before every proposal; g > 0 fine-tunes only once the
            observations have grown by a factor ``1 + g`` since the last fine-tuning, and in
            between conditions the last fit's GP on all observations (what BO libraries do
            to amortise hyperparameter fits).
        warm_steps: 0 starts every fit from the meta-trained values (``finetune_steps``
            steps); a positive number starts each fit after the first from the previous
            fit's values and takes this many steps (cheaper per proposal).
        ucb_beta: beta of UCB.
        recommend: the cell the search returns: ``observed`` (the best observed value),
            ``posterior`` (the evaluated cell of best posterior mean, once the initial
            design is done) or ``auto`` (``posterior`` when each observation is one
            training run of several, i.e. noisy; ``observed`` otherwise).
        pending: how evaluations still running shape a proposal: ``believer`` (kriging
            believer) or ``x_pending`` (BoTorch's ``X_pending``).
        source_weight: w in [0, 1]: 0 keeps the meta-learned prior mean; w > 0 adds the
            average of the NAS-Bench-201 tables the surrogate meta-trained on (for a default
            surrogate the ``zero-shot`` order), rescaled to the prior's spread, to the GP's mean: ``(1 - w) prior + w sources`` to start with, both weights then fitted
            with the head. The initial design and the candidate pool follow that mean.
        recommend_plausible: with the ``posterior`` recommendation, only the evaluated cells
            whose own observation is within this many standard deviations of the fitted
            observation noise of the best observation are candidates (``None``: every
            evaluated cell). A guard against a fine-tuned mean that extrapolates: it can
            put a cell observed at 42% above one observed at 47% with a noise of 0.45 points.
    """

    acquisition: str = "logei"
    init: str = "prior"
    init_size: int = 5
    batch_size: int = 1
    finetune_steps: int = 100
    finetune_lr: float = 0.05
    finetune_feature_lr: float = 0.01
    feature_patience: int | None = None
    prior_mean: str = "features"
    candidate_pool: int = 500
    refit_growth: float = 0.1
    warm_steps: int = 0
    ucb_beta: float = 2.0
    recommend: str = "auto"
    pending: str = "believer"
    recommend_plausible: float | None = 3.0
    source_weight: float = 0.0

    def __post_init__(self) -> None:
        check_field_types(self)
        if not 0 <= self.source_weight <= 1:
            raise ConfigError(f"source_weight must be in [0, 1], got {self.source_weight}")
        if self.recommend_plausible is not None and not self.recommend_plausible >= 0:
            raise ConfigError(f"recommend_plausible must be >= 0 (noise standard deviations) or None, "
                              f"got {self.recommend_plausible}")  # fmt: skip
        if self.pending not in PENDING_STRATEGIES:
            raise ConfigError(f"unknown pending strategy {self.pending!r}; choose from {', '.join(PENDING_STRATEGIES)}")
        if not self.refit_growth >= 0:
            raise ConfigError(f"refit_growth must be >= 0, got {self.refit_growth}")
        if self.prior_mean not in PRIOR_MEANS:
            raise ConfigError(f"unknown prior mean {self.prior_mean!r}; choose from {', '.join(PRIOR_MEANS)}")
        if self.recommend not in RECOMMENDATIONS:
            raise ConfigError(f"unknown recommendation {self.recommend!r}; choose from {', '.join(RECOMMENDATIONS)}")
        if self.acquisition not in ACQUISITIONS:
            raise ConfigError(f"unknown acquisition {self.acquisition!r}; choose from {', '.join(ACQUISITIONS)}")
        if self.init not in INITS:
            raise ConfigError(f"unknown initial design {self.init!r}; choose from {', '.join(INITS)}")
        if self.init_size < 1 or self.batch_size < 1 or min(self.finetune_steps, self.warm_steps, self.candidate_pool) < 0:
            raise ConfigError("init_size and batch_size must be >= 1; finetune_steps, warm_steps and candidate_pool >= 0")
        if self.batch_size > NUM_CELLS:
            raise ConfigError(f"batch_size must be at most the {NUM_CELLS} cells of the space, got {self.batch_size}")
        if not self.finetune_lr > 0 or not self.ucb_beta > 0:
            raise ConfigError("finetune_lr and ucb_beta must be positive")
        if not self.finetune_feature_lr >= 0:
            raise ConfigError("finetune_feature_lr must be >= 0 (0 keeps the feature MLP as meta-trained)")
        if self.feature_patience is not None and self.feature_patience < 0:
            raise ConfigError(f"feature_patience must be >= 0 observations or None, got {self.feature_patience}")


def target_scale_of(statistics: dict[str, dict[str, float]]) -> float | None:
    """The mean standard deviation (accuracy points) of a surrogate's meta-training sources."""
    stds = [float(source["std"]) for source in statistics.values() if source.get("std")]
    return float(np.mean(stds)) if stds else None


@torch.no_grad()
def codes_and_prior(kernels: Sequence[DeepKernel], dataset_features: Tensor, dataset_mask: Tensor) -> tuple[Tensor, Tensor]:
    """The encoder codes of all cells on a dataset and the prior mean of every cell.

    Args:
        kernels: one meta-trained kernel, or an ensemble's members.
        dataset_features, dataset_mask: ``1 x n_classes x n_samples x 1280`` and its mask
            (``B x ...``: several datasets whose mean code stands for a target without images).

    Returns:
        ``15625 x M(L + K)`` codes (the members' side by side) and ``15625`` prior means
        (the members' average), both indexed by official cell index.

    Raises:
        CheckpointError: the codes or prior are not finite (weights a file was damaged in,
            finite but far too large), which every later step would only turn into a
            numerical failure.
    """
    codes = [encoder_codes_of_all_cells(kernel.eval(), dataset_features, dataset_mask) for kernel in kernels]
    priors = [kernel.mean_module(map_codes(kernel.feature_map, code)) for kernel, code in zip(kernels, codes)]
    codes_joined, prior = torch.cat(codes, dim=-1), torch.stack(priors).mean(dim=0)
    if not (torch.isfinite(codes_joined).all() and torch.isfinite(prior).all()):
        raise CheckpointError("the meta-trained surrogate gives NaN or infinite codes or prior means on this dataset "
                              "(damaged weights?); meta-train it again")  # fmt: skip
    return codes_joined, prior


def source_term_table(prior: Tensor, source_scores: Tensor) -> Tensor:
    """The source tables' average in the prior mean's units: ``source_scores`` (``15625``)
    centred and scaled to the standard deviation of ``prior`` (``15625``), so that
    ``(1 - w) prior + w table`` blends two orders of equal spread."""
    scores = source_scores.double()
    return (scores - scores.mean()) / scores.std() * prior.double().std()


def blended_prior(prior: Tensor, source_scores: Tensor | None, weight: float) -> tuple[Tensor, Tensor | None]:
    """The prior a search ranks with ``source_weight = weight``: ``(1 - weight) prior + weight
    table`` and the source term's table (:func:`source_term_table`); ``prior`` itself and
    ``None`` when ``weight`` is 0. All ``15625``."""
    if weight == 0:
        return prior, None
    table = source_term_table(prior, source_scores)
    return (1 - weight) * prior + weight * table, table


class IndependentThompsonSampling(AcquisitionFunction):
    """One draw from every candidate's posterior marginal (a cheap Thompson sample).

    The standard normal draws are fixed per cell by the searcher's generator, so that a
    candidate's value does not depend on how the candidates are batched.
    """

    def __init__(self, model: TNASSurrogate, normal_draws: Tensor) -> None:
        super().__init__(model)
        self.normal_draws = normal_draws  # 15625 standard normal values, one per cell

    def forward(self, X: Tensor) -> Tensor:
        posterior = self.model.posterior(X)
        mean, std = posterior.mean.squeeze(-1).squeeze(-1), posterior.variance.clamp_min(0).sqrt().squeeze(-1).squeeze(-1)
        return mean + std * self.normal_draws[X[..., 0, 0].round().long()]


class TNASSearcher:
    """Ask/tell TNAS on one dataset.

    Args:
        kernel: a meta-trained deep kernel, or several (an ensemble: one GP whose prior mean
            and kernel are the members' averages, see :mod:`tnas.models.ensemble`).
        dataset_features: ``1 x n_classes x n_samples x 1280`` encoder inputs of the target
            (``B x ...``: the samples whose mean code stands for a target without images).
        dataset_mask: the matching mask.
        rng: the run's generator.
        config: searcher settings.
        space: the cells it may propose (feasible cells of a constrained run).
        source_order: ``15625`` scores by official index (the source tables' average): the
            initial design of ``init="sources"`` and the source term of ``source_weight``;
            required by those only.
        target_scale: accuracy points per unit of the GP's targets. A meta-trained kernel
            learned its scales and noise on accuracies standardised per dataset (deviations
            of 7 to 12 points), so observations are divided by the same typical deviation
            (:func:`target_scale_of`) and the kernel keeps its meaning. ``None`` divides by
            the observations' own deviation (for kernels without meta-training).

    A fine-tuning whose covariance breaks down (not positive definite, NaN: any of
    :data:`~tnas.models.deep_kernel.NUMERICAL_FAILURES`) goes back to the values of its last
    good step; ``finetune_failures`` counts such fits and each one is logged as a
    warning (logger ``tnas.search.methods.tnas``).
    """

    def __init__(self, kernel: DeepKernel | Sequence[DeepKernel], dataset_features: Tensor, dataset_mask: Tensor,
                 rng: np.random.Generator, config: TNASConfig = TNASConfig(),
                 target_scale: float | None = None, space: SearchSpace = FULL_SPACE,
                 source_order: Tensor | None = None) -> None:  # fmt: skip
        self.config = config
        self.target_scale = target_scale
        members = [kernel] if isinstance(kernel, DeepKernel) else list(kernel)
        self.kernel = members[0].eval() if len(members) == 1 else [member.eval() for member in members]
        self.dataset_features, self.dataset_mask = dataset_features, dataset_mask
        self._rng = rng
        self._codes, self._meta_prior = codes_and_prior(members, dataset_features, dataset_mask)
        needs_sources = config.init == "sources" or config.source_weight > 0
        if needs_sources and (source_order is None or source_order.shape != (NUM_CELLS,)):
            raise ConfigError(f"init='sources' and source_weight > 0 need one source score per cell ({NUM_CELLS})")
        # what the initial design and the pool rank, and the GP's source term (None without one)
        self._prior, self._source_table = blended_prior(self._meta_prior, source_order, config.source_weight)
        ranking = torch.argsort(self._prior, descending=True)  # feature rows are official indexes
        if config.init == "prior":
            order = ranking
        elif config.init == "sources":
            order = torch.argsort(source_order, descending=True, stable=True)
        else:
            order = torch.as_tensor(rng.permutation(NUM_CELLS))
        if not space.is_full:
            allowed = torch.as_tensor(space.mask)
            ranking, order = ranking[allowed[ranking]], order[allowed[order]]
        self._init_order = order.tolist()
        self._choices = all_cell_inputs() if space.is_full else torch.as_tensor(space.indexes).double().unsqueeze(-1)
        pool = torch.sort(ranking[: config.candidate_pool]).values if config.candidate_pool else None
        self._pool = self._choices if pool is None else pool.double().unsqueeze(-1)  # n x 1 cell inputs
        self._observed: dict[int, float] = {}
        self._noisy = False  # whether an observation was a single training seed
        self._queue: list[tuple[Cell, dict[str, float]]] = []
        self._fitted: tuple[int, TNASSurrogate, float, float] | None = None  # (observations, model, y mean, y std)
        self._warm_start: dict[str, Tensor] | None = None  # the last fit's parameters (warm_steps, refit_growth)
        self._fitted_at: int | None = None  # observations at the last fine-tuning
        self._features_on = config.feature_patience is None  # whether fine-tuning moves xi (feature_patience)
        self.finetune_failures = 0  # fine-tunings cut short by a covariance that is not PSD
        self.last_info: dict[str, float] = {}

    @property
    def prior_mean(self) -> Tensor:
        """``15625`` prior means of the meta-learned GP on the target, by official cell index
        (standardised units; the ensemble's average; with ``source_weight`` blended with the
        source term): what the initial design and the candidate pool rank. Read only."""
        return self._prior.detach().clone()

    # ------------------------------------------------------------------ ask / tell
    def ask(self, pending: Sequence[Cell] = ()) -> Cell:
        busy = pending_indexes(pending)
        while self._queue and (self._queue[0][0].index in self._observed or self._queue[0][0].index in busy):
            self._queue.pop(0)
        if not self._queue:
            self._queue = self._initial(busy) if len(self._observed) < self.config.init_size else self._acquire(pending)
        cell, info = self._queue.pop(0)
        self.last_info = info
        return cell

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        self._observed[cell.index] = evaluation.valid
        self._noisy = self._noisy or evaluation.seed is not None

    def recommend(self) -> Cell | None:
        """The evaluated cell of best posterior mean (see ``TNASConfig.recommend``; among the
        plausible ones, ``recommend_plausible``), or ``None`` for the best observed one. The
        fitted GP is kept for the next proposal."""
        policy = self.config.recommend
        if policy == "observed" or (policy == "auto" and not self._noisy) or len(self._observed) < self.config.init_size:
            return None
        model, _, std = self.surrogate()
        inputs = model.train_inputs[0]  # n x 1 cell indexes
        with torch.no_grad():
            means = model.posterior(inputs.unsqueeze(-2)).mean.reshape(-1)
            if self.config.recommend_plausible is not None:
                observed = torch.tensor([self._observed[int(index)] for index in inputs[:, 0].round().long()],
                                        dtype=means.dtype)  # fmt: skip
                noise_sd = std * float(model.likelihood.noise.reshape(-1)[0].sqrt())  # accuracy points
                plausible = observed >= observed.max() - self.config.recommend_plausible * noise_sd
                means = torch.where(plausible, means, torch.full_like(means, -torch.inf))
        return Cell.from_index(int(inputs[int(torch.argmax(means)), 0].round()))

    # ------------------------------------------------------------------ internals
    def _initial(self, busy: frozenset[int]) -> list[tuple[Cell, dict[str, float]]]:
        """The next cells of the initial design's order; with cells pending, at least one more."""
        wanted = max(1, self.config.init_size - len(self._observed) - len(busy))
        picks = [index for index in self._init_order if index not in self._observed and index not in busy][:wanted]
        return [(Cell.from_index(index), {"prior_mean": float(self._prior[index])}) for index in picks]

    def surrogate(self) -> tuple[TNASSurrogate, float, float]:
        """The GP conditioned on all observations (fine-tuned), and the y mean and std.

        Fitted once per set of observations (a recommendation and the next proposal share it).
        """
        if self._fitted is None or self._fitted[0] != len(self._observed):
            self._fitted = (len(self._observed), *self._fit())
        return self._fitted[1:]

    def _fit(self) -> tuple[TNASSurrogate, float, float]:
        indexes = list(self._observed)
        values = np.array([self._observed[i] for i in indexes])
        mean = float(values.mean())
        if self.target_scale is not None:
            std = self.target_scale
        else:
            std = float(values.std()) if len(values) > 1 and values.std() > 0 else 1.0
        train_X = torch.tensor(indexes, dtype=torch.float64).unsqueeze(-1)
        train_Y = torch.as_tensor((values - mean) / std, dtype=torch.float64).unsqueeze(-1)
        prior = self._meta_prior if self.config.prior_mean == "frozen" else None
        model = TNASSurrogate(self.kernel, self.dataset_features, self.dataset_mask, train_X, train_Y,
                              codes_table=self._codes, prior_table=prior, source_table=self._source_table,
                              source_weight=self.config.source_weight)  # fmt: skip
        steps = self.config.finetune_steps
        refit = self._switch_features_on() or self._refit_due(len(indexes))
        if self._warm_start is not None and (self.config.warm_steps or not refit):
            with torch.no_grad():
                for name, parameter in model.named_parameters():
                    parameter.copy_(self._warm_start[name])
            steps = self.config.warm_steps if refit else 0
        if steps:
            self._finetune(model, steps)
        if refit:
            self._fitted_at = len(indexes)
        if self.config.warm_steps or self.config.refit_growth:
            self._warm_start = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
        model.eval()
        return model, mean, std

    def _stalled_for(self) -> int:
        """Observations told since the best one (0 when the last one is the best)."""
        values = list(self._observed.values())
        return len(values) - 1 - int(np.argmax(values)) if values else 0

    def _switch_features_on(self) -> bool:
        """Whether xi's fine-tuning starts with this fit (``feature_patience`` observations
        without a new best); such a fit always takes fine-tuning steps."""
        if self._features_on or self._stalled_for() < self.config.feature_patience:
            return False
        self._features_on = True
        return True

    def _refit_due(self, observations: int) -> bool:
        """Whether this fit takes fine-tuning steps (``refit_growth``), or reuses the last fit's values."""
        if not self.config.refit_growth or self._fitted_at is None:
            return True
        return observations >= (1 + self.config.refit_growth) * self._fitted_at

    def _finetune(self, model: TNASSurrogate, steps: int) -> None:
        """Fit xi and the GP head to the observations (the encoders stay frozen)."""
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        model.train()
        feature_parameters = list(model.feature_map.parameters())
        known = {id(parameter) for parameter in feature_parameters}
        head = [p for p in model.parameters() if p.requires_grad and id(p) not in known]
        groups = [{"params": head, "lr": self.config.finetune_lr}]
        if self.config.finetune_feature_lr > 0 and self._features_on:
            groups.append({"params": feature_parameters, "lr": self.config.finetune_feature_lr})
        else:
            for parameter in feature_parameters:
                parameter.requires_grad_(False)
        optimizer = torch.optim.Adam(groups)
        trained = [parameter for group in groups for parameter in group["params"]]
        last_good: list[Tensor] = []  # the values at which the likelihood was last computed
        for step in range(steps):
            optimizer.zero_grad()
            try:
                loss = -mll(model(*model.train_inputs), model.train_targets)
                if not torch.isfinite(loss):
                    raise NanError("non-finite marginal likelihood")
                loss.backward()
            except NUMERICAL_FAILURES as error:
                # back to the values of the last step whose likelihood was computed; the search
                # goes on, and says so
                with torch.no_grad():
                    for parameter, value in zip(trained, last_good):
                        parameter.copy_(value)
                self.finetune_failures += 1
                logger.warning("TNAS fine-tuning stopped at step %d of %d with %d observations (%s); the GP keeps "
                               "the values of the step before (failure %d of this search)", step, steps,
                               len(model.train_targets), type(error).__name__, self.finetune_failures)  # fmt: skip
                break
            last_good = [parameter.detach().clone() for parameter in trained]
            optimizer.step()

    def _acquisition(self, model: TNASSurrogate, best_f: Tensor, observed: Tensor,
                     pending_X: Tensor | None = None) -> AcquisitionFunction:  # fmt: skip
        """The acquisition on ``model``; with ``pending_X`` a Monte-Carlo one over the pending cells."""
        q = self.config.batch_size
        if self.config.acquisition == "logei":
            if q == 1 and pending_X is None:
                return LogExpectedImprovement(model, best_f=best_f)
            return qLogNoisyExpectedImprovement(model, X_baseline=observed, prune_baseline=False,
                                                sampler=self._qmc_sampler(), X_pending=pending_X)  # fmt: skip
        if self.config.acquisition == "ucb":
            if q == 1 and pending_X is None:
                return UpperConfidenceBound(model, beta=self.config.ucb_beta)
            return qUpperConfidenceBound(model, beta=self.config.ucb_beta, sampler=self._qmc_sampler(),
                                         X_pending=pending_X)  # fmt: skip
        draws = torch.as_tensor(self._rng.standard_normal(NUM_CELLS), dtype=torch.float64)
        return IndependentThompsonSampling(model, draws)

    def _qmc_sampler(self) -> SobolQMCNormalSampler:
        """Quasi-MC base samples of a q-batch acquisition, seeded from the run's generator."""
        return SobolQMCNormalSampler(torch.Size([QMC_SAMPLES]), seed=int(self._rng.integers(2**31)))

    def _acquire(self, pending: Sequence[Cell] = ()) -> list[tuple[Cell, dict[str, float]]]:
        model, mean, std = self.surrogate()
        observed = model.train_inputs[0]
        best_f = model.train_targets.max()
        pending_X = torch.tensor([[float(cell.index)] for cell in pending], dtype=torch.float64) if pending else None
        believe = pending_X is not None and self.config.pending == "believer"
        avoid = observed if pending_X is None else torch.cat([observed, pending_X])
        # q-batch acquisitions factorise joint covariances through gpytorch: the same expected jitter
        with kriging_believer(model, pending_X) if believe else nullcontext(model), expected_jitter():
            acquisition = self._acquisition(model, best_f, observed, None if believe else pending_X)
            q = 1 if self.config.acquisition == "ts" else self.config.batch_size
            unseen = ~torch.isin(self._pool[:, 0], avoid[:, 0])
            choices = self._pool if int(unseen.sum()) >= self.config.batch_size else self._choices
            candidates, values = optimize_acqf_discrete(acquisition, q=q, choices=choices, X_avoid=avoid,
                                                        max_batch_size=NUM_CELLS)  # fmt: skip
            if self.config.acquisition == "ts" and self.config.batch_size > 1:  # more independent draws
                candidates, values = [candidates], [values.reshape(-1)]
                for _ in range(self.config.batch_size - 1):
                    more, value = optimize_acqf_discrete(self._acquisition(model, best_f, observed), q=1,
                                                         choices=choices, X_avoid=torch.cat([avoid, *candidates]),
                                                         max_batch_size=NUM_CELLS)  # fmt: skip
                    candidates.append(more)
                    values.append(value.reshape(-1))
                candidates, values = torch.cat(candidates), torch.cat(values)
            with torch.no_grad():
                posterior = model.posterior(candidates.unsqueeze(-2))
        values = values.reshape(-1)
        proposals = []
        for position, candidate in enumerate(candidates):
            cell = Cell.from_index(int(candidate.item()))
            proposals.append((cell, {
                "acquisition": float(values[min(position, len(values) - 1)]),
                "pred_mean": mean + std * float(posterior.mean[position].squeeze()),
                "pred_std": std * float(posterior.variance[position].clamp_min(0).sqrt().squeeze()),
            }))  # fmt: skip
        return proposals
