"""Really training NAS-Bench-201 networks, one cell at a time or all of them at once.

- :mod:`tnas.train.network`: the NAS-Bench-201 network of a cell;
- :mod:`tnas.train.trainer`: NAS-Bench-201's training protocol, seeded;
- :mod:`tnas.train.results`: the trainings cache of the real-training oracle;
- :mod:`tnas.train.supernet`: the weight-sharing supernet (a mixed operation per edge);
- :mod:`tnas.train.oneshot`: DARTS-V1, DARTS-V2 and GDAS on that supernet.
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
