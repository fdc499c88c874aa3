"""What runs a search's evaluations: ``--backend simulated|local|ray`` (see each module).

All three offer the runner the same interface (:class:`~tnas.search.backends.base.Backend`):
submit a job to a free worker, wait for the next one to come back, read the clock. The
runner, the journal and resume are the same for all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tnas.errors import ConfigError
from tnas.oracles import Oracle
from tnas.search.backends.base import Backend, Finished, Job
from tnas.search.config import RunConfig

__all__ = ["Backend", "BackendOptions", "Finished", "Job", "make_backend"]


@dataclass(frozen=True)
class BackendOptions:
    """Settings of a backend that do not change a run's answers (given at run time).

    Attributes:
        devices: local backend: one device per worker, cycled (``cuda:0,cuda:1``).
        device: the device of every local worker without ``devices``.
        threads: torch threads per worker (local, ray); ``None``: cores split between workers
            (local), 1 (ray).
        ray_address: ``None`` starts Ray for this run; ``auto`` or ``HOST:PORT`` joins a cluster.
        gpus_per_trial: GPUs Ray reserves per evaluation.
        max_retries: resubmissions (local) or Ray retries (ray) of an evaluation whose
            worker failed, before it is recorded as a failed query.
    """

    devices: tuple[str, ...] | None = None
    device: str | None = None
    threads: int | None = None
    ray_address: str | None = None
    gpus_per_trial: float = 0.0
    max_retries: int = 2

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads-per-worker must be positive, got {self.threads}")
        if not 0 <= self.gpus_per_trial < math.inf or self.max_retries < 0:
            raise ConfigError(f"--gpus-per-trial must be a finite number >= 0 (got {self.gpus_per_trial}) and "
                              f"--max-retries a count >= 0 (got {self.max_retries})")  # fmt: skip


def make_backend(config: RunConfig, oracle: Oracle, spec: Any, options: BackendOptions = BackendOptions()) -> Backend:
    """The backend of ``config`` with ``config.workers`` workers.

    Args:
        oracle: the run's oracle in this process (the simulated backend and a one-worker
            local run use it).
        spec: what builds the oracle in a worker process or actor (``spec.build(device)``).
    """
    kind = config.resolved_backend
    if kind == "simulated":
        from tnas.search.backends.simulated import SimulatedBackend

        return SimulatedBackend(oracle, config.workers)
    if kind == "local":
        from tnas.search.backends.local import LocalBackend

        return LocalBackend(oracle, spec, config.workers, devices=options.devices, default_device=options.device,
                            threads=options.threads)  # fmt: skip
    from tnas.search.backends.ray_backend import RayBackend

    return RayBackend(spec, config.workers, address=options.ray_address, gpus_per_trial=options.gpus_per_trial,
                      threads=options.threads or 1, max_retries=options.max_retries)  # fmt: skip
