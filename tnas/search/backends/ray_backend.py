"""Evaluations as Ray actor tasks, scheduled by Ray on the user's cluster.

One actor per worker (:class:`EvaluationWorker`) builds the run's oracle once, so its
dataset stays loaded between trainings; Ray places it where ``num_cpus`` (threads per
trial) and ``num_gpus`` (``--gpus-per-trial``) are free and hides the other GPUs from it.
Fault handling is Ray's: an actor whose process dies (killed, a lost node) is restarted by
Ray (``max_restarts=-1``) and the evaluation it was running is retried by Ray up to
``max_retries`` times (``max_task_retries``); only when those are spent does the runner
record the query as failed and go on. Nothing here schedules, retries or talks over the
network itself.

``address=None`` starts a Ray instance for this run (one machine); ``"auto"`` or
``HOST:PORT`` joins a running cluster (``ray start --head`` on the head node, ``ray start
--address HOST:PORT`` on the others). Ray is an optional extra: ``pip install 'tnas[ray]'``.
"""

from __future__ import annotations

import time
from typing import Any

from tnas.errors import ConfigError, TnasError
from tnas.search.backends.base import Finished, Job


class EvaluationWorker:
    """A Ray actor: the run's oracle on one worker, built once (see the module docstring)."""

    def __init__(self, spec: Any, threads: int, use_gpu: bool) -> None:
        import torch

        torch.set_num_threads(threads)
        self.oracle = spec.build("cuda" if use_gpu else "cpu")

    def evaluate(self, job: Job) -> Any:
        return self.oracle.evaluate(job.cell, fidelity=job.fidelity, seed=job.seed)


def import_ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise ConfigError(f"--backend ray needs Ray: pip install 'tnas[ray]' ({error})") from None
    return ray


def _check_cluster_holds(resources: dict[str, float], threads: int, gpus_per_trial: float) -> None:
    """Refuse an evaluation the cluster can never schedule (Ray would wait for it forever).

    Raises:
        ConfigError: the cluster's CPUs or GPUs, as Ray reports them, are fewer than one
            evaluation asks for.
    """
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if gpus_per_trial > gpus:
        raise ConfigError(f"--gpus-per-trial {gpus_per_trial:g}: the Ray cluster has {gpus:g} GPU(s), so no evaluation "
                          "could ever start; lower --gpus-per-trial (0 trains on the CPU) or join a cluster with "
                          "GPUs (--ray-address)")  # fmt: skip
    if threads > cpus:
        raise ConfigError(f"--threads-per-worker {threads}: the Ray cluster has {cpus:g} CPU(s), so no evaluation "
                          "could ever start; lower --threads-per-worker or join a larger cluster")  # fmt: skip


class RayBackend:
    """Evaluations on Ray actors (see the module docstring).

    Args:
        spec: builds the oracle on a worker (``spec.build(device)``, picklable).
        workers: actors, i.e. evaluations at once.
        address: ``None`` (a Ray instance for this run), ``"auto"`` or ``HOST:PORT``.
        gpus_per_trial: GPUs Ray reserves for each actor (0: train on the CPU).
        threads: CPU threads (and Ray CPUs) per actor.
        max_retries: retries of an evaluation whose actor died, by Ray.
    """

    def __init__(self, spec: Any, workers: int, *, address: str | None = None, gpus_per_trial: float = 0.0,
                 threads: int = 1, max_retries: int = 2) -> None:  # fmt: skip
        ray = import_ray()
        self._ray = ray
        self.workers = workers
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)  # fmt: skip
            except ConnectionError as error:
                raise ConfigError(f"--ray-address {address}: no Ray cluster there ({error}); start one with "
                                  "`ray start --head`, or leave --ray-address out to start Ray here") from None  # fmt: skip
        _check_cluster_holds(ray.cluster_resources(), threads, gpus_per_trial)
        actor = ray.remote(num_cpus=threads, num_gpus=gpus_per_trial, max_restarts=-1,
                           max_task_retries=max_retries)(EvaluationWorker)  # fmt: skip
        self._actors = [actor.remote(spec, threads, gpus_per_trial > 0) for _ in range(workers)]
        self._max_retries = max_retries
        self._running: dict[Any, tuple[Job, int, float]] = {}  # object ref -> (job, worker, start)
        self._origin = time.monotonic()

    def free_workers(self) -> int:
        return self.workers - len(self._running)

    def running(self) -> int:
        return len(self._running)

    def submit(self, job: Job, *, worker: int | None = None, start_s: float | None = None) -> tuple[int, float]:
        busy = {w for _, w, _ in self._running.values()}
        worker = worker if worker is not None and worker not in busy else min(set(range(self.workers)) - busy)
        start = self.now()
        self._running[self._actors[worker].evaluate.remote(job)] = (job, worker, start)
        return worker, start

    def next_finished(self) -> Finished:
        ready, _ = self._ray.wait(list(self._running), num_returns=1)
        job, worker, start = self._running.pop(ready[0])
        try:
            evaluation = self._ray.get(ready[0])
        except self._ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, TnasError):
                raise error.cause from None  # a user error, not a worker failure
            return Finished(job, worker, start, self.now(), None, error=f"{type(error.cause).__name__}: "
                            f"{error.cause}", retried=True)  # fmt: skip
        except self._ray.exceptions.RayActorError as error:
            reason = str(error).splitlines()[0]
            return Finished(job, worker, start, self.now(), None, retried=True,
                            error=f"Ray worker {worker} died {self._max_retries + 1} times ({reason})")  # fmt: skip
        return Finished(job, worker, start, self.now(), evaluation)

    def now(self) -> float:
        return time.monotonic() - self._origin

    def resume_clock(self, seconds: float) -> None:
        self._origin = time.monotonic() - seconds

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._running.clear()
        if self._owns_ray:
            self._ray.shutdown()
