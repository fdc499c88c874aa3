"""Surrogate models: TNAS's deep-kernel GP."""

from tnas.models.deep_kernel import (
    DeepKernel,
    DeepKernelConfig,
    FeatureGP,
    negative_log_marginal_likelihood,
    posterior_mean,
)

__all__ = ["DeepKernel", "DeepKernelConfig", "FeatureGP", "negative_log_marginal_likelihood", "posterior_mean"]
