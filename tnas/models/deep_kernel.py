"""TNAS's deep kernel: k((x, D), (x', D')) = k_base(xi([psi(x), phi(D)]), xi([psi(x'), phi(D')])).

psi is the architecture encoder, phi the dataset encoder, xi an MLP; k_base a standard
kernel with an output scale (Matern 5/2 by default). With a mean function and a Gaussian
likelihood they form an exact GP whose every weight is learned from the marginal
likelihood (TNAS, Shala et al. 2023, Eq. 3). Encoders run in float32; the GP arithmetic
(mean, kernel, likelihood, Cholesky) runs in float64.

The mean is a learned linear function of the deep features by default, so that the GP
has an informative *prior* on a new dataset (used for zero-shot ranking and the initial
design of the search). ``mean="constant"`` gives the plain constant-mean GP of FSBO.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import gpytorch
import torch
from gpytorch.constraints import GreaterThan
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import MaternKernel, RBFKernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.means import ConstantMean, LinearMean
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.models import ExactGP
from linear_operator.utils.cholesky import psd_safe_cholesky
from linear_operator.utils.errors import NanError, NotPSDError
from linear_operator.utils.warnings import NumericalWarning
from torch import Tensor, nn

from tnas.encoders import ArchEncoder, ArchEncoderConfig, DatasetEncoder, DatasetEncoderConfig
from tnas.errors import ConfigError

KERNELS = ("matern52", "matern32", "rbf")
NUMERICAL_FAILURES = (NotPSDError, NanError, torch.linalg.LinAlgError)
"""What a GP's marginal likelihood raises when its covariance breaks down (not positive
definite after jitter, NaN entries, a failed factorisation): meta-training skips the batch,
a search's fine-tuning keeps its last good values."""
MEANS = ("learned", "constant")
CHOLESKY_RELATIVE_JITTER = 1e-8
"""First jitter added to a covariance whose Cholesky factorisation fails, relative to the
mean of its diagonal (the GP runs on standardised targets, so the diagonal is the kernel's
output scale plus the noise); gpytorch's ``psd_safe_cholesky`` multiplies it by 10 per try.
Its ``NumericalWarning`` per jitter is not passed on: near-duplicate cells (pending cells
believed at their posterior mean, neighbours with equal codes) are expected there, and a
covariance that jitter cannot mend raises ``NotPSDError``, which the callers count."""
CHOLESKY_JITTER_TRIES = 5
"""How many growing jitters ``psd_safe_cholesky`` tries before it raises ``NotPSDError``."""


@contextmanager
def expected_jitter() -> Iterator[None]:
    """Hide linear_operator's ``NumericalWarning`` per added jitter inside the block (see
    :data:`CHOLESKY_RELATIVE_JITTER`: near-duplicate cells make it expected); failures still raise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        yield


@dataclass(frozen=True)
class DeepKernelConfig:
    """Architecture of the deep-kernel GP.

    Attributes:
        arch: sizes of the architecture encoder psi.
        dataset: sizes of the dataset encoder phi.
        widths: widths of the MLP xi; the last one is the dimension the base kernel sees.
        kernel: base kernel on xi's output (``matern52``, ``matern32`` or ``rbf``).
        mean: ``learned`` (linear in xi's output) or ``constant``.
        use_dataset: ``False`` zeroes the dataset code (the no-dataset-encoder ablation).
        min_noise: lower bound of the likelihood's noise variance (standardised units).
    """

    arch: ArchEncoderConfig = field(default_factory=ArchEncoderConfig)
    dataset: DatasetEncoderConfig = field(default_factory=DatasetEncoderConfig)
    widths: tuple[int, ...] = (64, 32)
    kernel: str = "matern52"
    mean: str = "learned"
    use_dataset: bool = True
    min_noise: float = 1e-4

    def __post_init__(self) -> None:
        if not self.widths or any(width < 1 for width in self.widths):
            raise ConfigError(f"widths must be positive integers, got {self.widths}")
        if self.kernel not in KERNELS:
            raise ConfigError(f"kernel must be one of {', '.join(KERNELS)}, got {self.kernel!r}")
        if self.mean not in MEANS:
            raise ConfigError(f"mean must be one of {', '.join(MEANS)}, got {self.mean!r}")
        if not self.min_noise > 0:
            raise ConfigError(f"min_noise must be positive, got {self.min_noise}")

    @property
    def feature_dim(self) -> int:
        return self.widths[-1]


def map_codes(feature_map: nn.Module, codes: Tensor) -> Tensor:
    """xi of encoder codes ``[psi(x), phi(D)]``: ``n x (L + K)`` to ``n x d`` float64.

    The codes follow xi's dtype: a copy of xi inside a BoTorch model may have been moved to
    float64 by an acquisition function (``AcquisitionFunction.to``)."""
    dtype = next(feature_map.parameters()).dtype
    return feature_map(codes.to(dtype)).double()


def _base_kernel(name: str) -> gpytorch.kernels.Kernel:
    if name == "rbf":
        return RBFKernel()
    return MaternKernel(nu=2.5 if name == "matern52" else 1.5)


class DeepKernel(nn.Module):
    """All learned parts of TNAS's surrogate: psi, phi, xi, mean, kernel and noise."""

    def __init__(self, config: DeepKernelConfig = DeepKernelConfig()) -> None:
        super().__init__()
        self.config = config
        self.arch_encoder = ArchEncoder(config.arch)
        self.dataset_encoder = DatasetEncoder(config.dataset)
        layers: list[nn.Module] = []
        width_in = config.arch.code_dim + config.dataset.code_dim
        for position, width in enumerate(config.widths):
            layers.append(nn.Linear(width_in, width))
            if position < len(config.widths) - 1:
                layers.append(nn.ReLU())
            width_in = width
        self.feature_map = nn.Sequential(*layers)
        self.mean_module = LinearMean(config.feature_dim) if config.mean == "learned" else ConstantMean()
        self.covar_module = ScaleKernel(_base_kernel(config.kernel))
        self.likelihood = GaussianLikelihood(noise_constraint=GreaterThan(config.min_noise))
        for module in (self.mean_module, self.covar_module, self.likelihood):
            module.double()

    def dataset_codes(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        """phi of a batch of datasets: ``B x K`` (zeros when ``use_dataset`` is off).

        Args:
            features: ``B x n_classes x n_samples x feature_dim`` image features.
            mask: ``B x n_classes x n_samples``, True for real samples.
        """
        codes = self.dataset_encoder(features, mask)
        return codes if self.config.use_dataset else torch.zeros_like(codes)

    def dataset_code(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        """phi of one dataset: ``1 x K``. Given ``B > 1`` datasets (``B x n_classes x n_samples x
        feature_dim``), the mean of their codes, which stands for a dataset without images."""
        return self.dataset_codes(features, mask).mean(dim=0, keepdim=True)

    def features(self, arch_codes: Tensor, dataset_codes: Tensor) -> Tensor:
        """xi([psi, phi]): ``n x L`` and ``n x K`` codes to ``n x d`` float64 features."""
        return map_codes(self.feature_map, torch.cat([arch_codes, dataset_codes], dim=-1))

    def embed(self, cell_batch, dataset_codes: Tensor) -> Tensor:
        """Deep features of cells in dataset contexts.

        Args:
            cell_batch: torch-geometric ``Batch`` of ``n`` cell DAGs (see
                :func:`tnas.encoders.cells_to_batch`).
            dataset_codes: ``n x K`` (or ``1 x K``, broadcast to every cell).

        Returns:
            ``n x d`` float64 features.
        """
        arch_codes = self.arch_encoder(cell_batch)
        return self.features(arch_codes, dataset_codes.expand(arch_codes.shape[0], -1))


class FeatureGP(ExactGP):
    """An exact GP over precomputed deep features, sharing the kernel's GP modules."""

    def __init__(self, kernel: DeepKernel) -> None:
        super().__init__(None, None, kernel.likelihood)
        self.mean_module = kernel.mean_module
        self.covar_module = kernel.covar_module

    def forward(self, features: Tensor) -> MultivariateNormal:
        return MultivariateNormal(self.mean_module(features), self.covar_module(features))


def negative_log_marginal_likelihood(gp: FeatureGP, features: Tensor, targets: Tensor) -> Tensor:
    """Exact GP negative log marginal likelihood of a batch, divided by its size.

    Args:
        features: ``n x d`` float64 deep features.
        targets: ``n`` float64 standardised targets.
    """
    gp.set_train_data(features, targets, strict=False)
    gp.train()
    mll = ExactMarginalLogLikelihood(gp.likelihood, gp)
    return -mll(gp(features), targets)


def predictive_moments(mean_module, covar_module, noise: Tensor, train_features: Tensor, train_targets: Tensor,
                       features: Tensor, *, variance: bool = True, train_mean: Tensor | None = None,
                       test_mean: Tensor | None = None) -> tuple[Tensor, Tensor | None]:  # fmt: skip
    """Posterior mean and (marginal) variance of an exact GP, computed directly.

    ``m(X*) + K(X*, X) (K(X, X) + noise I)^-1 (y - m(X))`` and
    ``k(x*, x*) - K(x*, X) (K(X, X) + noise I)^-1 K(X, x*)``, with no test-test covariance:
    all 15,625 cells cost one ``N x n`` kernel block.

    Args:
        train_features: ``n x d``; train_targets: ``n``; features: ``N x d`` (float64).
        train_mean, test_mean: the prior mean at the training points (``n``) and at the
            test points (``N``), when it is not ``mean_module`` of the features.

    Returns:
        ``N`` means and ``N`` variances (``None`` unless ``variance``).
    """
    covariance = covar_module(train_features).to_dense()
    covariance = covariance + noise * torch.eye(len(train_targets), dtype=covariance.dtype, device=covariance.device)
    factor, info = torch.linalg.cholesky_ex(covariance)
    if info.any():  # near-duplicate cells (e.g. pending ones believed at their mean): jitter is the remedy
        jitter = CHOLESKY_RELATIVE_JITTER * covariance.diagonal().mean().item()
        with expected_jitter():
            factor = psd_safe_cholesky(covariance, jitter=jitter, max_tries=CHOLESKY_JITTER_TRIES)
    train_mean = mean_module(train_features) if train_mean is None else train_mean
    test_mean = mean_module(features) if test_mean is None else test_mean
    residual = (train_targets - train_mean).unsqueeze(-1)
    cross = covar_module(features, train_features).to_dense()
    mean = test_mean + (cross @ torch.cholesky_solve(residual, factor)).squeeze(-1)
    if not variance:
        return mean, None
    solved = torch.linalg.solve_triangular(factor, cross.transpose(-1, -2), upper=False)
    prior_variance = covar_module(features, diag=True)
    return mean, (prior_variance - solved.pow(2).sum(dim=-2)).clamp_min(1e-12)


@torch.no_grad()
def posterior_mean(gp: FeatureGP, features: Tensor, train_features: Tensor | None = None,
                   train_targets: Tensor | None = None) -> Tensor:  # fmt: skip
    """Mean of the GP at ``features`` (``N x d``): the prior mean, or the posterior mean
    given ``n`` observed points (see :func:`predictive_moments`)."""
    if train_features is None or train_targets is None or len(train_targets) == 0:
        return gp.mean_module(features)
    noise = gp.likelihood.noise.squeeze()
    return predictive_moments(gp.mean_module, gp.covar_module, noise, train_features, train_targets, features,
                              variance=False)[0]  # fmt: skip
