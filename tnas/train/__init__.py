"""Really training NAS-Bench-201 networks (the real-training oracle is being built).

- :mod:`tnas.train.network`: the NAS-Bench-201 network of a cell;
- :mod:`tnas.train.trainer`: NAS-Bench-201's training protocol, seeded.
"""

from tnas.train.network import NB201Network, NetworkConfig, count_parameters_mb, parameter_count
from tnas.train.trainer import TrainConfig, TrainResult, train_and_evaluate

__all__ = [
    "NB201Network",
    "NetworkConfig",
    "TrainConfig",
    "TrainResult",
    "count_parameters_mb",
    "parameter_count",
    "train_and_evaluate",
]
