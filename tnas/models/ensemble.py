"""Several meta-trained deep kernels as one GP: the average of the members' GPs.

How fast a search finds a dataset's best cells depends on how the meta-learned prior ranks
them, and that ranking moves a lot from one meta-training run to the next (another seed,
another thread count). The members of an ensemble are independent meta-training runs, and
the ensemble GP is

    f(x) = mean_j f_j(x),   m(x) = mean_j m_j(x),   k(x, x') = mean_j k_j(x, x'),

with ``f_j`` the GP of member ``j`` on its own deep features ``xi_j([psi_j(x), phi_j(D)])``.
Its prior mean is the average of the members' prior means (the ranking that starts the
search) and its kernel the average of theirs (a sum of kernels is a kernel), so the prior
variance is the members' typical one. It stays one exact GP: conditioning on the target's
observations costs one Cholesky factor, and fine-tuning adapts every member's feature MLP
and kernel scales, one shared noise and one calibration of the mean.

Inputs of the parts below are the members' encoder codes side by side, ``n x (M * C)``
(``C = L + K`` per member), and their deep features side by side,
``n x (M * d)``; each member's modules act on its own slice (gpytorch's ``active_dims``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from gpytorch.kernels import AdditiveKernel, Kernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.means import Mean
from torch import Tensor, nn

from tnas.models.deep_kernel import DeepKernel


class MemberFeatures(nn.Module):
    """Each member's feature MLP xi_j on its slice of the codes: ``n x (M * C)`` to ``n x (M * d)``."""

    def __init__(self, feature_maps: Sequence[nn.Module], code_dim: int) -> None:
        super().__init__()
        self.members = nn.ModuleList(feature_maps)
        self.code_dim = code_dim

    def forward(self, codes: Tensor) -> Tensor:
        width = self.code_dim
        return torch.cat([xi(codes[..., j * width : (j + 1) * width]) for j, xi in enumerate(self.members)], dim=-1)


class MemberMean(Mean):
    """The average of the members' mean functions, each on its slice of the features."""

    def __init__(self, means: Sequence[Mean], feature_dim: int) -> None:
        super().__init__()
        self.members = nn.ModuleList(means)
        self.feature_dim = feature_dim

    def forward(self, x: Tensor) -> Tensor:
        width = self.feature_dim
        values = [mean(x[..., j * width : (j + 1) * width]) for j, mean in enumerate(self.members)]
        return torch.stack(values).mean(dim=0)


def _on_slice(covar: ScaleKernel, dims: Tensor, weight: float) -> ScaleKernel:
    """A copy of a member's ``ScaleKernel`` acting on ``dims``, its output scale times ``weight``."""
    scaled = copy.deepcopy(covar)
    scaled.active_dims = dims  # a buffer of every gpytorch kernel; ScaleKernel applies it before its base
    scaled.outputscale = covar.outputscale.detach() * weight
    return scaled


def ensemble_parts(kernels: Sequence[DeepKernel]) -> tuple[nn.Module, Mean, Kernel, GaussianLikelihood]:
    """Trainable copies of the ensemble GP's parts: feature map, mean, kernel, likelihood.

    Raises:
        ValueError: fewer than two members, or members of different shapes.
    """
    if len(kernels) < 2:
        raise ValueError("an ensemble needs at least two meta-trained kernels")
    configs = {(k.config.arch.code_dim + k.config.dataset.code_dim, k.config.feature_dim) for k in kernels}
    if len(configs) != 1:
        raise ValueError("the members of an ensemble must have the same code and feature sizes")
    (code_dim, feature_dim), count = next(iter(configs)), len(kernels)
    features = MemberFeatures([copy.deepcopy(k.feature_map) for k in kernels], code_dim)
    mean = MemberMean([copy.deepcopy(k.mean_module) for k in kernels], feature_dim)
    covar = AdditiveKernel(*(
        _on_slice(k.covar_module, torch.arange(j * feature_dim, (j + 1) * feature_dim), 1.0 / count)
        for j, k in enumerate(kernels)
    ))  # fmt: skip
    likelihood = copy.deepcopy(kernels[0].likelihood)
    likelihood.noise = torch.stack([k.likelihood.noise.detach() for k in kernels]).mean(dim=0)
    return features, mean, covar, likelihood
