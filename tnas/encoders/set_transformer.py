"""Set Transformer blocks (Lee, Lee, Kim, Kosiorek, Choi & Teh, ICML 2019) with masks.

Shapes follow ``batch x set_size x dim``; a ``mask`` is ``batch x set_size`` with True for
real elements. Masked elements are never attended to, so outputs do not depend on what
padding holds. SAB and ISAB are permutation equivariant, PMA is permutation invariant.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MAB(nn.Module):
    """Multihead attention block: ``H = LN(Q + Att(Q, K, K))``, ``out = LN(H + rFF(H))``."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm_attention = nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.norm_output = nn.LayerNorm(dim)

    def forward(self, queries: Tensor, keys: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """Attend from ``queries`` (``B x n x dim``) to ``keys`` (``B x m x dim``).

        Args:
            key_mask: ``B x m``, True for real keys; every row needs at least one.

        Returns:
            ``B x n x dim``.
        """
        padding = None if key_mask is None else ~key_mask
        attended, _ = self.attention(queries, keys, keys, key_padding_mask=padding, need_weights=False)
        hidden = self.norm_attention(queries + attended)
        return self.norm_output(hidden + self.feed_forward(hidden))


class SAB(nn.Module):
    """Set attention block: self-attention among the elements of a set."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.block = MAB(dim, num_heads)

    def forward(self, elements: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.block(elements, elements, mask)


class ISAB(nn.Module):
    """Induced set attention block: attention through ``num_inducing`` learned points."""

    def __init__(self, dim: int, num_heads: int, num_inducing: int) -> None:
        super().__init__()
        self.inducing = nn.Parameter(torch.randn(1, num_inducing, dim) / dim**0.5)
        self.summarise = MAB(dim, num_heads)
        self.broadcast = MAB(dim, num_heads)

    def forward(self, elements: Tensor, mask: Tensor | None = None) -> Tensor:
        summary = self.summarise(self.inducing.expand(elements.shape[0], -1, -1), elements, mask)
        return self.broadcast(elements, summary)


class PMA(nn.Module):
    """Pooling by multihead attention: ``num_seeds`` learned queries attend to the set."""

    def __init__(self, dim: int, num_heads: int, num_seeds: int = 1) -> None:
        super().__init__()
        self.seeds = nn.Parameter(torch.randn(1, num_seeds, dim) / dim**0.5)
        self.feed_forward = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
        self.block = MAB(dim, num_heads)

    def forward(self, elements: Tensor, mask: Tensor | None = None) -> Tensor:
        """Pool ``B x n x dim`` to ``B x num_seeds x dim``."""
        return self.block(self.seeds.expand(elements.shape[0], -1, -1), self.feed_forward(elements), mask)
