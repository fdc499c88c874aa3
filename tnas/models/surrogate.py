"""The deep-kernel GP as a BoTorch model over the cells of one dataset.

Inputs are official cell indexes as a 1-d float64 input (``... x n x 1``); the dataset
the cells are evaluated on is held by the model (its encoder inputs), so that
``optimize_acqf_discrete(acq, q, choices=all_cell_inputs())`` scores all 15,625 cells.

In eval mode without gradients (how BoTorch scores candidates), the deep features of all
cells are computed once and looked up; they are recomputed after any training step
(``model.train()`` clears them). Targets are expected standardised.
"""

from __future__ import annotations

import torch
from botorch.models.gpytorch import GPyTorchModel
from gpytorch.distributions import MultivariateNormal
from gpytorch.models import ExactGP
from torch import Tensor

from tnas.encoders import cells_to_batch
from tnas.models.deep_kernel import DeepKernel
from tnas.space import NUM_CELLS, Cell, all_cells


def all_cell_inputs(device: torch.device | str | None = None) -> Tensor:
    """The 15,625 cells as model inputs: ``15625 x 1`` float64 official indexes."""
    return torch.arange(NUM_CELLS, dtype=torch.float64, device=device).unsqueeze(-1)


def cell_inputs(cells: list[Cell], device: torch.device | str | None = None) -> Tensor:
    """Model inputs of some cells: ``n x 1`` float64."""
    return torch.tensor([[float(cell.index)] for cell in cells], dtype=torch.float64, device=device)


class TNASSurrogate(ExactGP, GPyTorchModel):
    """TNAS's meta-learned GP on one dataset, usable by any BoTorch acquisition function.

    Args:
        kernel: a (meta-trained) deep kernel; its modules are shared, not copied.
        dataset_features: ``1 x n_classes x n_samples x 1280`` encoder inputs of the dataset.
        dataset_mask: ``1 x n_classes x n_samples`` mask of real samples.
        train_X: ``n x 1`` float64 cell indexes observed so far.
        train_Y: ``n x 1`` float64 standardised observations.
    """

    _num_outputs = 1

    def __init__(self, kernel: DeepKernel, dataset_features: Tensor, dataset_mask: Tensor,
                 train_X: Tensor, train_Y: Tensor) -> None:  # fmt: skip
        self._validate_tensor_args(X=train_X, Y=train_Y)
        super().__init__(train_X, train_Y.squeeze(-1), kernel.likelihood)
        self.kernel = kernel
        self.mean_module = kernel.mean_module
        self.covar_module = kernel.covar_module
        self.register_buffer("dataset_features", dataset_features)
        self.register_buffer("dataset_mask", dataset_mask)
        self._all_features: Tensor | None = None
        self.to(train_X)

    def train(self, mode: bool = True) -> TNASSurrogate:
        if mode:
            self._all_features = None  # weights may change: cached features go stale
        return super().train(mode)

    def dataset_code(self) -> Tensor:
        """phi of the model's dataset: ``1 x K``."""
        return self.kernel.dataset_codes(self.dataset_features, self.dataset_mask)

    def cell_features(self, indexes: Tensor) -> Tensor:
        """Deep features of cells given by index: ``indexes.shape x d`` float64."""
        if not self.training and not torch.is_grad_enabled():
            return self.all_features()[indexes]
        unique, inverse = torch.unique(indexes.reshape(-1), return_inverse=True)
        batch = cells_to_batch([Cell.from_index(int(i)) for i in unique], device=self.dataset_features.device)
        features = self.kernel.embed(batch, self.dataset_code())
        return features[inverse].reshape(*indexes.shape, -1)

    def all_features(self) -> Tensor:
        """Deep features of all 15,625 cells (cached in eval mode): ``15625 x d``."""
        if self._all_features is None or self.training:
            with torch.no_grad():
                batch = cells_to_batch(all_cells(), device=self.dataset_features.device)
                features = self.kernel.embed(batch, self.dataset_code())
            if self.training:
                return features
            self._all_features = features
        return self._all_features

    def forward(self, X: Tensor) -> MultivariateNormal:
        features = self.cell_features(X[..., 0].round().long())
        return MultivariateNormal(self.mean_module(features), self.covar_module(features))

    @torch.no_grad()
    def prior_mean(self) -> Tensor:
        """The GP's prior mean of every cell, before any observation: ``15625``."""
        return self.mean_module(self.all_features())
