"""Dataset encoder phi: a two-stage Set Transformer over image features (MetaD2A style).

Stage 1 summarises the samples of each class (SAB blocks, then PMA), stage 2 summarises
the set of class summaries the same way; a linear layer gives the K-dimensional code. Both
stages are permutation invariant, so the code does not depend on the order of samples
within a class nor on the order of classes. Masks allow classes with fewer samples and
datasets with fewer classes in one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from tnas.encoders.set_transformer import ISAB, PMA, SAB
from tnas.errors import ConfigError


@dataclass(frozen=True)
class DatasetEncoderConfig:
    """Sizes of the dataset encoder.

    Attributes:
        feature_dim: size of one image feature vector (1,280 for EfficientNet-Lite0).
        hidden_dim: width of the Set Transformer blocks.
        code_dim: K, size of the dataset code.
        num_heads: attention heads (must divide ``hidden_dim``).
        num_blocks: SAB (or ISAB) blocks per stage.
        num_inducing: use ISAB with this many inducing points instead of SAB (0: SAB).
    """

    feature_dim: int = 1280
    hidden_dim: int = 64
    code_dim: int = 32
    num_heads: int = 4
    num_blocks: int = 2
    num_inducing: int = 0

    def __post_init__(self) -> None:
        for name in ("feature_dim", "hidden_dim", "code_dim", "num_heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"DatasetEncoderConfig.{name} must be positive, got {getattr(self, name)}")
        if self.num_blocks < 0 or self.num_inducing < 0:
            raise ConfigError("DatasetEncoderConfig.num_blocks and num_inducing must be >= 0")
        if self.hidden_dim % self.num_heads:
            raise ConfigError(f"hidden_dim {self.hidden_dim} is not divisible by num_heads {self.num_heads}")


class _SetStage(nn.Module):
    """Equivariant blocks followed by attention pooling to one vector per set."""

    def __init__(self, config: DatasetEncoderConfig) -> None:
        super().__init__()
        dim, heads = config.hidden_dim, config.num_heads
        self.blocks = nn.ModuleList(
            ISAB(dim, heads, config.num_inducing) if config.num_inducing else SAB(dim, heads)
            for _ in range(config.num_blocks)
        )
        self.pool = PMA(dim, heads, num_seeds=1)

    def forward(self, elements: Tensor, mask: Tensor) -> Tensor:
        """``B x n x dim`` with ``B x n`` mask to ``B x dim``."""
        for block in self.blocks:
            elements = block(elements, mask)
        return self.pool(elements, mask).squeeze(1)


class DatasetEncoder(nn.Module):
    """phi: maps batches of per-class image features to ``code_dim``-dimensional codes."""

    def __init__(self, config: DatasetEncoderConfig = DatasetEncoderConfig()) -> None:
        super().__init__()
        self.config = config
        self.project = nn.Linear(config.feature_dim, config.hidden_dim)
        self.within_class = _SetStage(config)
        self.across_classes = _SetStage(config)
        self.readout = nn.Linear(config.hidden_dim, config.code_dim)

    def forward(self, features: Tensor, sample_mask: Tensor | None = None) -> Tensor:
        """Encode datasets.

        Args:
            features: ``B x n_classes x n_samples x feature_dim``.
            sample_mask: ``B x n_classes x n_samples`` booleans, True for real samples
                (``None``: all real). A class with no real sample is padding.

        Returns:
            ``B x code_dim`` codes.
        """
        batch, classes, samples, _ = features.shape
        if sample_mask is None:
            sample_mask = torch.ones(batch, classes, samples, dtype=torch.bool, device=features.device)
        class_mask = sample_mask.any(dim=2)
        if not bool(class_mask.any(dim=1).all()):
            raise ValueError("every dataset in the batch needs at least one real sample")
        features = features.masked_fill(~sample_mask.unsqueeze(-1), 0.0)
        hidden = self.project(features).reshape(batch * classes, samples, -1)
        # a padded class attends to its (zeroed) padding rather than to nothing (NaN);
        # its summary is masked out in the second stage
        flat_mask = sample_mask.reshape(batch * classes, samples) | ~class_mask.reshape(-1, 1)
        class_codes = self.within_class(hidden, flat_mask).reshape(batch, classes, -1)
        return self.readout(self.across_classes(class_codes, class_mask))


def pad_classes(per_class: Sequence[np.ndarray | Tensor]) -> tuple[Tensor, Tensor]:
    """Stack per-class feature arrays of unequal sizes.

    Args:
        per_class: one ``n_samples_c x feature_dim`` array per class.

    Returns:
        ``features`` (``n_classes x max_samples x feature_dim``, zero padded) and
        ``mask`` (``n_classes x max_samples``, True for real samples).
    """
    if not per_class:
        raise ValueError("a dataset needs at least one class")
    tensors = [torch.as_tensor(np.asarray(block), dtype=torch.float32) for block in per_class]
    longest = max(block.shape[0] for block in tensors)
    features = torch.zeros(len(tensors), longest, tensors[0].shape[1])
    mask = torch.zeros(len(tensors), longest, dtype=torch.bool)
    for row, block in enumerate(tensors):
        features[row, : block.shape[0]] = block
        mask[row, : block.shape[0]] = True
    return features, mask


def stack_datasets(datasets: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Batch several ``(features, mask)`` pairs from :func:`pad_classes` into one.

    Returns:
        ``B x max_classes x max_samples x feature_dim`` features and the matching mask.
    """
    classes = max(features.shape[0] for features, _ in datasets)
    samples = max(features.shape[1] for features, _ in datasets)
    dim = datasets[0][0].shape[2]
    out = torch.zeros(len(datasets), classes, samples, dim)
    out_mask = torch.zeros(len(datasets), classes, samples, dtype=torch.bool)
    for row, (features, mask) in enumerate(datasets):
        out[row, : features.shape[0], : features.shape[1]] = features
        out_mask[row, : mask.shape[0], : mask.shape[1]] = mask
    return out, out_mask
