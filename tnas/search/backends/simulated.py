"""N virtual workers on a simulated clock: parallel search on a table in seconds.

The reference is syne-tune's simulator backend (``SimulatorBackend`` with a blackbox
repository): an evaluation submitted at clock time ``t`` on a free worker finishes at
``t + cost_s``, its recorded training time, and the runner is told evaluations in the order
of their finishing times (ties by submission). The evaluation itself is looked up at
submission (a table answers at once). The optimizer's own time does not advance the clock,
so a run is deterministic and independent of the machine; the run's ``overhead_s`` reports
that time separately.
"""

from __future__ import annotations

from dataclasses import dataclass

from tnas.errors import SearcherError
from tnas.oracles import Evaluation, Oracle
from tnas.search.backends.base import Finished, Job


@dataclass(frozen=True)
class _Running:
    job: Job
    start_s: float
    end_s: float
    evaluation: Evaluation


class SimulatedBackend:
    """Virtual workers answering from ``oracle`` on a clock advanced by each query's cost."""

    def __init__(self, oracle: Oracle, workers: int) -> None:
        self.oracle = oracle
        self.workers = workers
        self._clock = 0.0
        self._running: dict[int, _Running] = {}  # worker -> its job

    def free_workers(self) -> int:
        return self.workers - len(self._running)

    def running(self) -> int:
        return len(self._running)

    def submit(self, job: Job, *, worker: int | None = None, start_s: float | None = None) -> tuple[int, float]:
        if worker is None:
            worker = min(set(range(self.workers)) - set(self._running))
        if worker in self._running or not 0 <= worker < self.workers:
            raise SearcherError(f"simulated worker {worker} is busy or does not exist")
        start = self._clock if start_s is None else start_s
        evaluation = self.oracle.evaluate(job.cell, fidelity=job.fidelity, seed=job.seed)
        self._running[worker] = _Running(job, start, start + evaluation.cost_s, evaluation)
        return worker, start

    def next_finished(self) -> Finished:
        worker = min(self._running, key=lambda w: (self._running[w].end_s, self._running[w].job.ticket))
        done = self._running.pop(worker)
        self._clock = max(self._clock, done.end_s)
        return Finished(done.job, worker, done.start_s, done.end_s, done.evaluation)

    def now(self) -> float:
        return self._clock

    def resume_clock(self, seconds: float) -> None:
        self._clock = seconds

    def close(self) -> None:
        self._running.clear()
