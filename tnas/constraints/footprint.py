"""FLOPs and parameters of every cell's network, computed from the cell.

The network is NAS-Bench-201's (:mod:`tnas.train.network`): a 3x3 stem, three stages of N
cells at C, 2C and 4C channels on H, H/2 and H/4 pixels, two residual reductions, global
pooling and a linear classifier. FLOPs count multiply-accumulates of the convolutions and
the classifier plus, for average pooling, one operation per window element of every output
(9 per output of a 3x3 pool; one per input for the global pooling), as NAS-Bench-201's
``get_model_infos`` counter does (batch normalisation and ReLU are not counted), in
millions (MFLOPs) for one image.

Both quantities are sums of a fixed part and one term per edge operation and stage, so
the arrays of all 15,625 cells are computed at once, in a millisecond.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from tnas.errors import ConfigError
from tnas.space import NUM_EDGES, OPERATIONS, official_index_order


@dataclass(frozen=True)
class NetworkGeometry:
    """The input and size of the network whose footprint is counted.

    Attributes:
        resolution: input height and width in pixels (32 for CIFAR, 16 for ImageNet16-120).
        num_classes: outputs of the classifier.
        in_channels: input channels (3 for colour images).
        channels: channels C of the first stage (NAS-Bench-201: 16).
        cells_per_stage: cells N per stage (NAS-Bench-201: 5).
    """

    resolution: int
    num_classes: int
    in_channels: int = 3
    channels: int = 16
    cells_per_stage: int = 5

    def __post_init__(self) -> None:
        if min(self.resolution, self.num_classes, self.in_channels, self.channels, self.cells_per_stage) < 1:
            raise ConfigError(f"network geometry sizes must be positive: {self}")


TASK_GEOMETRY: dict[str, NetworkGeometry] = {
    "cifar10": NetworkGeometry(resolution=32, num_classes=10),
    "cifar10-valid": NetworkGeometry(resolution=32, num_classes=10),
    "cifar100": NetworkGeometry(resolution=32, num_classes=100),
    "imagenet16-120": NetworkGeometry(resolution=16, num_classes=120),
}
"""The networks NAS-Bench-201 trained for its three tasks."""


def _stage_sizes(geometry: NetworkGeometry) -> list[tuple[int, int]]:
    """(channels, pixels per feature map) of the three stages."""
    sizes = []
    side = geometry.resolution
    for stage in range(3):
        sizes.append((geometry.channels * 2**stage, side * side))
        side = (side + 1) // 2  # stride-2 convolution with padding 1
    return sizes


def _per_edge_costs(geometry: NetworkGeometry) -> tuple[np.ndarray, np.ndarray]:
    """FLOPs and parameters one edge adds over the whole network, per operation: two arrays of shape ``(5,)``."""
    flops = np.zeros(len(OPERATIONS))
    params = np.zeros(len(OPERATIONS))
    for width, pixels in _stage_sizes(geometry):
        per_stage = geometry.cells_per_stage
        for op, name in enumerate(OPERATIONS):
            if name == "nor_conv_1x1":
                flops[op] += per_stage * pixels * width * width
                params[op] += per_stage * (width * width + 2 * width)  # conv + BN affine
            elif name == "nor_conv_3x3":
                flops[op] += per_stage * pixels * 9 * width * width
                params[op] += per_stage * (9 * width * width + 2 * width)
            elif name == "avg_pool_3x3":
                flops[op] += per_stage * pixels * 9 * width
    return flops, params


def _fixed_costs(geometry: NetworkGeometry) -> tuple[float, float]:
    """FLOPs and parameters of the stem, the reductions, the head and the classifier."""
    c, k = geometry.channels, geometry.num_classes
    stages = _stage_sizes(geometry)
    flops = stages[0][1] * 9 * geometry.in_channels * c
    params = 9 * geometry.in_channels * c + 2 * c  # stem conv + BN
    for (c_in, _), (c_out, out_pixels) in itertools.pairwise(stages):
        flops += out_pixels * 9 * c_in * c_out  # conv_a, stride 2
        flops += out_pixels * 9 * c_out * c_out  # conv_b
        flops += out_pixels * 4 * c_in  # 2x2 average pooling of the shortcut
        flops += out_pixels * c_in * c_out  # 1x1 shortcut convolution
        params += 9 * c_in * c_out + 2 * c_out + 9 * c_out * c_out + 2 * c_out + c_in * c_out
    last_width, last_pixels = stages[-1]
    flops += last_pixels * last_width  # global average pooling
    params += 2 * last_width  # head BN
    flops += last_width * k + k  # classifier with bias
    params += last_width * k + k
    return float(flops), float(params)


def _ops_by_index() -> np.ndarray:
    """Operation id of each edge of every cell: ``(15625, 6)`` int array, rows by official index."""
    codes = np.asarray(official_index_order(), dtype=np.int64)
    powers = len(OPERATIONS) ** np.arange(NUM_EDGES - 1, -1, -1)  # edge 0 is the most significant digit
    return (codes[:, None] // powers) % len(OPERATIONS)


def flops_m_of_all_cells(geometry: NetworkGeometry) -> np.ndarray:
    """MFLOPs of one image's forward pass for every cell: shape ``(15625,)``, by official index."""
    per_edge, _ = _per_edge_costs(geometry)
    fixed, _ = _fixed_costs(geometry)
    return (fixed + per_edge[_ops_by_index()].sum(axis=1)) / 1e6


def params_mb_of_all_cells(geometry: NetworkGeometry) -> np.ndarray:
    """Parameters in millions for every cell (as built: ``count_parameters_mb``): shape ``(15625,)``."""
    _, per_edge = _per_edge_costs(geometry)
    _, fixed = _fixed_costs(geometry)
    return (fixed + per_edge[_ops_by_index()].sum(axis=1)) / 1e6


