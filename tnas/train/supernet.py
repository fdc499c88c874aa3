"""The NAS-Bench-201 weight-sharing supernet: every edge a mixed operation over the five candidates.

The network is :class:`~tnas.train.network.NB201Network`'s (stem, three stages of N cells
with residual reductions, head, classifier), built from the same operations
(:func:`~tnas.train.network.build_operation`), except that each of a cell's six edges holds
all five operations and the convolutions' BatchNorm has no affine parameters (DARTS's
convention for a supernet; the NAS-Bench-201 paper's search code does the same). All
cells share one set of architecture weights, a ``6 x 5`` matrix (edges in arch-string
order, operations in :data:`~tnas.space.OPERATIONS` order), as in NAS-Bench-201's
one-shot experiments.

Two ways to mix an edge:

- **soft** (DARTS): ``weights`` is ``6 x 5``, each row summing to one (a softmax of the
  architecture logits); an edge outputs ``sum_o weights[e, o] * op_o(x)``.
- **hard** (GDAS): ``weights`` is ``6 x 5`` one-hot in value (a straight-through Gumbel
  sample) and ``chosen`` holds the sampled operation of each edge; an edge computes only
  ``op_chosen(x)`` and outputs ``weights[e, chosen] * op_chosen(x) + sum_{o != chosen}
  weights[e, o]`` (the other terms are zero in value and carry the gradient to every
  weight, as the GDAS code does).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tnas.space import EDGES, NUM_EDGES, NUM_OPS, OPERATIONS, Cell
from tnas.train.network import NetworkConfig, build_operation, macro_skeleton


class MixedOperation(nn.Module):
    """The five candidate operations of one edge (``B x C x H x W`` in and out)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(build_operation(name, channels, affine=False) for name in OPERATIONS)

    def forward(self, x: Tensor, weights: Tensor, chosen: int | None = None) -> Tensor:
        """The edge's output for ``weights`` (5, soft) or, with ``chosen``, the hard mix (one op run)."""
        if chosen is None:
            return sum(weight * op(x) for weight, op in zip(weights, self.ops))  # type: ignore[return-value]
        others = weights.sum() - weights[chosen]  # zero in value
        return weights[chosen] * self.ops[chosen](x) + others


class SuperCell(nn.Module):
    """One NAS-Bench-201 cell whose six edges are :class:`MixedOperation`\\ s."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(MixedOperation(channels) for _ in EDGES)

    def forward(self, x: Tensor, weights: Tensor, chosen: tuple[int, ...] | None = None) -> Tensor:
        nodes = [x]
        for target in range(1, 4):
            nodes.append(sum(
                edge(nodes[source], weights[position], None if chosen is None else chosen[position])
                for position, (edge, (to, source)) in enumerate(zip(self.edges, EDGES)) if to == target
            ))  # fmt: skip
        return nodes[-1]


class SuperNetwork(nn.Module):
    """The NAS-Bench-201 supernet: ``B x in_channels x H x W`` images to ``B x num_classes`` logits."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.stem, layers, self.head, self.classifier = macro_skeleton(config, SuperCell)
        self.layers = nn.ModuleList(layers)

    def forward(self, images: Tensor, weights: Tensor, chosen: tuple[int, ...] | None = None) -> Tensor:
        """Logits for ``weights`` (``6 x 5``: soft mixing, or one-hot with ``chosen``, 6 op ids)."""
        hidden = self.stem(images)
        for layer in self.layers:
            hidden = layer(hidden, weights, chosen) if isinstance(layer, SuperCell) else layer(hidden)
        return self.classifier(self.head(hidden))


def derive_cell(logits: Tensor) -> Cell:
    """The derived cell: the operation of largest architecture weight on every edge (``logits``: 6 x 5)."""
    if logits.shape != (NUM_EDGES, NUM_OPS):
        raise ValueError(f"architecture weights must be {NUM_EDGES} x {NUM_OPS}, got {tuple(logits.shape)}")
    return Cell(tuple(int(op) for op in torch.argmax(logits, dim=-1)))


def gumbel_sample(logits: Tensor, tau: float, generator: torch.Generator) -> tuple[Tensor, tuple[int, ...]]:
    """GDAS's straight-through Gumbel-softmax sample of one operation per edge.

    Args:
        logits: ``6 x 5`` architecture logits.
        tau: the softmax temperature.

    Returns:
        ``(weights, chosen)``: ``6 x 5`` weights, one-hot in value, whose gradient is that
        of the tempered softmax of ``(logits + Gumbel noise) / tau``; the chosen operation
        of each edge. Draws are repeated until every weight is finite, as GDAS does.
    """
    while True:
        exponential = torch.empty(logits.shape, dtype=logits.dtype).exponential_(generator=generator)
        gumbels = -exponential.log().to(logits.device)  # Gumbel(0, 1) draws
        soft = torch.softmax((logits.log_softmax(dim=-1) + gumbels) / tau, dim=-1)
        if torch.isfinite(soft).all():
            break
    index = soft.argmax(dim=-1)
    hard = torch.zeros_like(soft).scatter_(-1, index.unsqueeze(-1), 1.0)
    return hard - soft.detach() + soft, tuple(int(op) for op in index)
