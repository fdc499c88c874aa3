"""The NAS-Bench-201 network ("TinyNetwork") for a cell, in plain torch.

Stem (3x3 conv + BN) -> N cells at C channels -> residual reduction block -> N cells at
2C -> reduction -> N cells at 4C -> BN + ReLU -> global average pooling -> linear
classifier, as in NAS-Bench-201 (Dong & Yang, ICLR 2020; defaults C = 16, N = 5). The
operations of a cell:

- ``none``: zero; ``skip_connect``: identity;
- ``nor_conv_1x1`` / ``nor_conv_3x3``: ReLU -> convolution (no bias) -> BatchNorm;
- ``avg_pool_3x3``: 3x3 average pooling, stride 1, padding 1 (padding not counted).

Every intermediate node sums the operations on its incoming edges. Parameter counts
equal the benchmark table's ``params_MB`` for 15,475 of the 15,625 cells (a test checks
all of them). For the other 150 the table is off by exactly one convolution set (a 1x1
or 3x3 conv + BN in each of the 15 cells), more or less; most of them start with
``skip_connect~0`` (node 1 repeats the input). They appear to carry the count of an
isomorphic cell that NAS-Bench-201 trained in their place. We build the cell as written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tnas.errors import ConfigError
from tnas.space import EDGES, Cell


@dataclass(frozen=True)
class NetworkConfig:
    """Size of the network: ``channels`` C of the first stage, ``cells_per_stage`` N."""

    channels: int = 16
    cells_per_stage: int = 5
    num_classes: int = 10
    in_channels: int = 3

    def __post_init__(self) -> None:
        if min(self.channels, self.cells_per_stage, self.num_classes, self.in_channels) < 1:
            raise ConfigError(f"network sizes must be positive: {self}")


class _ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class _Zero(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0)


def build_operation(name: str, channels: int, affine: bool = True) -> nn.Module:
    """The module of operation ``name`` at ``channels`` channels (``B x C x H x W`` in and out).

    ``affine=False`` gives the convolutions' BatchNorm no learned scale and shift (the
    weight-sharing supernet's convention, as in DARTS).
    """
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return _ReLUConvBN(channels, channels, 1, 1, affine)
    if name == "nor_conv_3x3":
        return _ReLUConvBN(channels, channels, 3, 1, affine)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ConfigError(f"unknown operation {name!r}")


class CellModule(nn.Module):
    """One NAS-Bench-201 cell: 4 nodes, 6 edges, node i = sum of ops on edges into it."""

    def __init__(self, cell: Cell, channels: int) -> None:
        super().__init__()
        self.edges = list(EDGES)
        self.ops = nn.ModuleList(build_operation(name, channels) for name in cell.op_names)

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        for target in range(1, 4):
            nodes.append(sum(op(nodes[source]) for op, (to, source) in zip(self.ops, self.edges) if to == target))
        return nodes[-1]


class ResidualReduction(nn.Module):
    """NAS-Bench-201's reduction: a stride-2 basic block with an avg-pool + 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = _ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = _ReLUConvBN(c_out, c_out, 3, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


def macro_skeleton(config: NetworkConfig, make_cell: Callable[[int], nn.Module]
                   ) -> tuple[nn.Module, list[nn.Module], nn.Module, nn.Module]:  # fmt: skip
    """NAS-Bench-201's macro network around the cells ``make_cell(width)`` builds.

    Returns:
        ``(stem, layers, head, classifier)``: the 3x3 stem; N cells at C channels, a
        residual reduction, N cells at 2C, a reduction, N cells at 4C; BN + ReLU + global
        pooling; the linear classifier.
    """
    c, n = config.channels, config.cells_per_stage
    stem = nn.Sequential(nn.Conv2d(config.in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
    layers: list[nn.Module] = []
    for stage, width in enumerate((c, 2 * c, 4 * c)):
        if stage:
            layers.append(ResidualReduction(width // 2, width))
        layers.extend(make_cell(width) for _ in range(n))
    head = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return stem, layers, head, nn.Linear(4 * c, config.num_classes)


class NB201Network(nn.Module):
    """The NAS-Bench-201 network of one cell.

    Input ``B x in_channels x H x W``; output ``B x num_classes`` logits.
    """

    def __init__(self, cell: Cell, config: NetworkConfig = NetworkConfig()) -> None:
        super().__init__()
        self.cell, self.config = cell, config
        self.stem, layers, self.head, self.classifier = macro_skeleton(config, lambda width: CellModule(cell, width))
        self.cells = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.head(self.cells(self.stem(images))))


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters (what NAS-Bench-201's ``params`` counts, in units)."""
    return sum(parameter.numel() for parameter in model.parameters())


def count_parameters_mb(cell: Cell, config: NetworkConfig = NetworkConfig()) -> float:
    """Parameters of the network of ``cell`` in millions (the table's ``params_MB``)."""
    with torch.device("meta"):
        return parameter_count(NB201Network(cell, config)) / 1e6
