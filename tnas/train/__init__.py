"""Really training NAS-Bench-201 networks (the real-training oracle is being built)."""

from tnas.train.network import NB201Network, NetworkConfig, count_parameters_mb, parameter_count

__all__ = ["NB201Network", "NetworkConfig", "count_parameters_mb", "parameter_count"]
