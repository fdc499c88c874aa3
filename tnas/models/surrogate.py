"""The deep-kernel GP as a BoTorch model over the cells of one dataset.

Inputs are official cell indexes as a 1-d float64 input (``... x n x 1``); the dataset
the cells are evaluated on is held by the model (its encoder inputs), so that
``optimize_acqf_discrete(acq, q, choices=all_cell_inputs())`` scores all 15,625 cells.

In eval mode without gradients (how BoTorch scores candidates), the deep features of all
cells are computed once and looked up; they are recomputed after any training step
(``model.train()`` clears them). With ``codes_table`` (the encoder codes of all cells,
:func:`encoder_codes_of_all_cells`) the encoders are frozen and the model owns a copy of
the feature MLP xi: fine-tuning then adapts xi and the GP head (mean calibration, kernel
scales, noise) at the cost of an MLP pass, which is what the TNAS searcher does between
queries; xi's parameters can be frozen too (``requires_grad_(False)``) to adapt only the
head.

The model owns copies of the kernel's GP head (mean, kernel, likelihood), so fine-tuning
it never changes the meta-trained kernel; the mean is wrapped in a calibration
``offset + scale * mean`` (offset 0, scale 1 to start) that fine-tuning fits to the new
dataset's scale. Targets are expected standardised.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import gpytorch
import torch
from botorch.exceptions.errors import BotorchTensorDimensionError, InputDataError
from botorch.models.gpytorch import GPyTorchModel
from botorch.posteriors.gpytorch import GPyTorchPosterior
from gpytorch.constraints import Positive
from gpytorch.distributions import MultivariateNormal
from gpytorch.means import Mean
from gpytorch.models import ExactGP
from linear_operator.operators import DiagLinearOperator
from torch import Tensor

from tnas.encoders import cells_to_batch
from tnas.models.deep_kernel import DeepKernel, map_codes, predictive_moments
from tnas.models.ensemble import ensemble_parts
from tnas.space import NUM_CELLS, Cell, all_cells


def all_cell_inputs(device: torch.device | str | None = None) -> Tensor:
    """The 15,625 cells as model inputs: ``15625 x 1`` float64 official indexes."""
    return torch.arange(NUM_CELLS, dtype=torch.float64, device=device).unsqueeze(-1)


def cell_inputs(cells: list[Cell], device: torch.device | str | None = None) -> Tensor:
    """Model inputs of some cells: ``n x 1`` float64."""
    return torch.tensor([[float(cell.index)] for cell in cells], dtype=torch.float64, device=device)


class CalibratedMean(Mean):
    """``offset + scale * base(x)`` with the base mean frozen and ``scale > 0``."""

    def __init__(self, base: Mean) -> None:
        super().__init__()
        self.base = base
        for parameter in self.base.parameters():
            parameter.requires_grad_(False)
        self.register_parameter("offset", torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)))
        self.register_parameter("raw_scale", torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)))
        self.register_constraint("raw_scale", Positive())
        self.initialize(scale=torch.ones(1, dtype=torch.float64))

    @property
    def scale(self) -> Tensor:
        return self.raw_scale_constraint.transform(self.raw_scale)

    @scale.setter
    def scale(self, value: Tensor) -> None:
        self.initialize(raw_scale=self.raw_scale_constraint.inverse_transform(value))

    def forward(self, x: Tensor) -> Tensor:
        return self.offset + self.scale * self.base(x)


class SourceTerm(gpytorch.Module):
    """``weight * table[index]``: a frozen per-cell score (the source tables' average, in
    the prior mean's units) added to the GP's mean with a fitted weight ``> 0``.

    ``forward`` takes ``...`` official cell indexes (long) and returns ``...`` values (a
    plain module: gpytorch's ``Mean`` would add a dimension to 1-d inputs).
    """

    def __init__(self, table: Tensor, weight: float) -> None:
        super().__init__()
        self.register_buffer("table", table.detach().double())
        self.register_parameter("raw_weight", torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)))
        self.register_constraint("raw_weight", Positive())
        start = torch.tensor([max(weight, 1e-4)], dtype=torch.float64)  # the weight stays positive
        self.initialize(raw_weight=self.raw_weight_constraint.inverse_transform(start))

    @property
    def weight(self) -> Tensor:
        return self.raw_weight_constraint.transform(self.raw_weight)

    def forward(self, indexes: Tensor) -> Tensor:
        return self.weight * self.table[indexes]


class PriorValues(Mean):
    """The identity on precomputed prior means: ``... x 1`` inputs to ``...`` values."""

    def forward(self, x: Tensor) -> Tensor:
        return x[..., 0]


def _check_training_data(train_X: Tensor, train_Y: Tensor) -> None:
    """BoTorch's tensor conventions for this model: ``train_X`` and ``train_Y`` both
    ``n x 1`` (cell indexes, observations; ``n`` may be 0), of one dtype.

    Raises:
        BotorchTensorDimensionError: other shapes (e.g. ``train_Y`` without its output
            dimension).
        InputDataError: the dtypes differ.
    """
    if train_X.dim() != 2 or train_X.shape[-1] != 1 or train_Y.shape != train_X.shape:
        raise BotorchTensorDimensionError(
            f"train_X and train_Y must both be n x 1 (cell indexes, observations); "
            f"got {tuple(train_X.shape)} and {tuple(train_Y.shape)}"
        )
    if train_X.dtype != train_Y.dtype:
        raise InputDataError(f"train_X and train_Y must share a dtype; got {train_X.dtype} and {train_Y.dtype}")


class TNASSurrogate(ExactGP, GPyTorchModel):
    """TNAS's meta-learned GP on one dataset, usable by any BoTorch acquisition function.

    Args:
        kernel: a (meta-trained) deep kernel, whose modules are shared, not copied; or
            several, an ensemble (:mod:`tnas.models.ensemble`, needs ``codes_table``).
        dataset_features: ``1 x n_classes x n_samples x 1280`` encoder inputs of the dataset
            (``B x ...``: several datasets whose mean code stands for a target without images).
        dataset_mask: ``1 x n_classes x n_samples`` mask of real samples.
        train_X: ``n x 1`` float64 cell indexes observed so far.
        train_Y: ``n x 1`` float64 standardised observations.
        codes_table: optional frozen ``15625 x (L + K)`` encoder codes ``[psi(x), phi(D)]`` of
            all cells on the dataset (an ensemble's members side by side, ``15625 x M(L + K)``);
            the model then trains its own copy of xi on them.
        prior_table: optional frozen ``15625`` prior means (the meta-trained mean on the
            meta-trained features; an ensemble's average). The GP's mean is then
            ``offset + scale * prior_table[x]``, whatever fine-tuning does to xi, which then
            shapes only the kernel: a mean linear in fine-tuned features extrapolates
            wildly away from a handful of observations (see :mod:`tnas.search.methods.tnas`).
        source_table: optional frozen ``15625`` per-cell scores (the source tables' average
            in the prior mean's units, :func:`tnas.search.methods.tnas.source_term_table`)
            added to the mean with a fitted weight: the mean becomes
            ``offset + scale * prior(x) + source_weight * source_table[x]``.
        source_weight: the starting ``source_weight``, and ``1 - source_weight`` the
            starting ``scale`` (each at least 1e-4: both stay positive); fine-tuning fits
            both.
    """

    _num_outputs = 1

    def __init__(self, kernel: DeepKernel | Sequence[DeepKernel], dataset_features: Tensor, dataset_mask: Tensor,
                 train_X: Tensor, train_Y: Tensor, *, codes_table: Tensor | None = None,
                 prior_table: Tensor | None = None, source_table: Tensor | None = None,
                 source_weight: float = 0.0) -> None:  # fmt: skip
        _check_training_data(train_X, train_Y)
        members = [kernel] if isinstance(kernel, DeepKernel) else list(kernel)
        if len(members) > 1 and codes_table is None:
            raise ValueError("an ensemble of kernels needs the encoder codes of all cells (codes_table)")
        if len(members) > 1:
            feature_map, mean, covar, likelihood = ensemble_parts(members)
        else:
            feature_map, mean = copy.deepcopy(members[0].feature_map), copy.deepcopy(members[0].mean_module)
            covar, likelihood = copy.deepcopy(members[0].covar_module), copy.deepcopy(members[0].likelihood)
        super().__init__(train_X, train_Y.squeeze(-1), likelihood)
        self.feature_map: torch.nn.Module | None = None
        if codes_table is None:
            self.kernel = members[0]  # a submodule: training the model trains the deep kernel
        else:  # frozen encoders: keep the shared kernel out of the module tree, so that nothing
            object.__setattr__(self, "kernel", members[0])  # done to this model (.to, .double) reaches it
            self.feature_map = feature_map
        self.mean_module = CalibratedMean(mean if prior_table is None else PriorValues())
        self.source_mean: SourceTerm | None = None
        if source_table is not None:
            self.mean_module.scale = torch.tensor([max(1.0 - source_weight, 1e-4)], dtype=torch.float64)
            self.source_mean = SourceTerm(source_table, source_weight)
        self.covar_module = covar
        self.register_buffer("dataset_features", dataset_features)
        self.register_buffer("dataset_mask", dataset_mask)
        self._codes: Tensor | None = codes_table.detach() if codes_table is not None else None
        self._prior: Tensor | None = prior_table.detach().double().unsqueeze(-1) if prior_table is not None else None
        self._all_features: Tensor | None = None

    def train(self, mode: bool = True) -> TNASSurrogate:
        if mode:
            self._all_features = None  # weights may change: cached features go stale
        return super().train(mode)

    def dataset_code(self) -> Tensor:
        """phi of the model's dataset: ``1 x K`` (the mean code when several datasets stand for it)."""
        return self.kernel.dataset_code(self.dataset_features, self.dataset_mask)

    def cell_features(self, indexes: Tensor) -> Tensor:
        """Deep features of cells given by index: ``indexes.shape x d`` float64."""
        if not self.training and not torch.is_grad_enabled():
            return self.all_features()[indexes]
        if self._codes is not None:
            return self._map(self._codes[indexes])
        unique, inverse = torch.unique(indexes.reshape(-1), return_inverse=True)
        batch = cells_to_batch([Cell.from_index(int(i)) for i in unique], device=self.dataset_features.device)
        features = self.kernel.embed(batch, self.dataset_code())
        return features[inverse].reshape(*indexes.shape, -1)

    def all_features(self) -> Tensor:
        """Deep features of all 15,625 cells (cached in eval mode): ``15625 x d``."""
        if self._all_features is None or self.training:
            with torch.no_grad():
                if self._codes is not None:
                    features = self._map(self._codes)
                else:
                    batch = cells_to_batch(all_cells(), device=self.dataset_features.device)
                    features = self.kernel.embed(batch, self.dataset_code())
            if self.training:
                return features
            self._all_features = features
        return self._all_features

    def _map(self, codes: Tensor) -> Tensor:
        """The model's xi of encoder codes: ``n x (L + K)`` to ``n x d`` float64."""
        return map_codes(self.feature_map, codes)

    def _mean(self, indexes: Tensor, features: Tensor) -> Tensor:
        """The GP's prior mean of cells given by index (and their features)."""
        mean = self.mean_module(features if self._prior is None else self._prior[indexes])
        return mean if self.source_mean is None else mean + self.source_mean(indexes)

    def forward(self, X: Tensor) -> MultivariateNormal:
        indexes = X[..., 0].round().long()
        features = self.cell_features(indexes)
        return MultivariateNormal(self._mean(indexes, features), self.covar_module(features))

    def posterior(self, X: Tensor, output_indices=None, observation_noise=False, posterior_transform=None,
                  **kwargs):  # fmt: skip
        """BoTorch posterior; ``batch x 1 x 1`` inputs (one cell per batch, how
        ``optimize_acqf_discrete`` scores q = 1 candidates) take a fast path.

        The fast path evaluates all cells as one non-batched set and keeps only each
        cell's mean and variance, instead of a joint (observations + cell) covariance per
        batch element: the same marginals at a fraction of the cost.
        """
        fast = (X.dim() >= 3 and X.shape[-2] == 1 and not observation_noise and posterior_transform is None
                and output_indices is None and not kwargs)  # fmt: skip
        if not fast:
            return super().posterior(X, output_indices=output_indices, observation_noise=observation_noise,
                                     posterior_transform=posterior_transform, **kwargs)  # fmt: skip
        self.eval()
        indexes = X[..., 0, 0].round().long().reshape(-1)
        train_indexes = self.train_inputs[0][..., 0].round().long()
        features, train_features = self.cell_features(indexes), self.cell_features(train_indexes)
        mean, variance = predictive_moments(self.mean_module, self.covar_module, self.likelihood.noise.squeeze(),
                                            train_features, self.train_targets, features,
                                            train_mean=self._mean(train_indexes, train_features),
                                            test_mean=self._mean(indexes, features))  # fmt: skip
        batch_shape = X.shape[:-2]
        return GPyTorchPosterior(
            MultivariateNormal(mean.reshape(*batch_shape, 1), DiagLinearOperator(variance.reshape(*batch_shape, 1)))
        )

    @torch.no_grad()
    def prior_mean(self) -> Tensor:
        """The GP's (calibrated) prior mean of every cell: ``15625``."""
        return self._mean(torch.arange(NUM_CELLS, device=self.dataset_features.device), self.all_features())


@torch.no_grad()
def encoder_codes_of_all_cells(kernel: DeepKernel, dataset_features: Tensor, dataset_mask: Tensor) -> Tensor:
    """xi's inputs ``[psi(x), phi(D)]`` for all 15,625 cells on one dataset: ``15625 x (L + K)``.

    ``dataset_features`` is ``B x n_classes x n_samples x 1280``: one dataset (``B = 1``), or
    several whose codes' mean stands for a target without images.
    """
    kernel.eval()
    dataset_codes = kernel.dataset_code(dataset_features, dataset_mask)
    arch_codes = kernel.arch_encoder(cells_to_batch(all_cells(), device=dataset_features.device))
    return torch.cat([arch_codes, dataset_codes.expand(arch_codes.shape[0], -1)], dim=-1)


@torch.no_grad()
def features_of_all_cells(kernel: DeepKernel, dataset_features: Tensor, dataset_mask: Tensor) -> Tensor:
    """Deep features of all 15,625 cells on one dataset: ``15625 x d`` float64."""
    return map_codes(kernel.feature_map, encoder_codes_of_all_cells(kernel, dataset_features, dataset_mask))
