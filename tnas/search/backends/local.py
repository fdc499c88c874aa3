"""N worker processes on this machine, each with its own device and CPU threads.

Each worker is a one-process :class:`concurrent.futures.ProcessPoolExecutor` (``spawn``
start method: safe with CUDA and threads) that builds the run's oracle once, so its dataset
stays loaded between trainings, on its device (``--devices cuda:0,cuda:1``: worker ``i``
takes device ``i mod len``) and with ``threads`` torch threads (by default the machine's
cores split between the workers). A worker process that dies (killed, out of host memory)
breaks only its own executor: the job comes back as a worker failure, which the runner
retries a bounded number of times, and the worker is started again. Closing the backend
(end of the run, an error, Ctrl-C) terminates the worker processes, and a worker whose run
process was killed (``kill -9``) ends itself within a second.

With one worker and no ``--devices`` the evaluations run in this process, as before
parallel search existed (progress bars of each training included).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from tnas.errors import TnasError
from tnas.oracles import Evaluation, Oracle
from tnas.search.backends.base import Finished, Job

_WORKER: dict[str, Any] = {}  # inside a worker process only: its oracle


def _start_worker(spec: Any, device: str | None, threads: int) -> None:
    """Initializer of a worker process: set its threads, build its oracle once, and end the
    process if the run's process dies (``kill -9`` leaves no training running on its own)."""
    import torch

    torch.set_num_threads(threads)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    _WORKER["oracle"] = spec.build(device)


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _evaluate(job: Job) -> Evaluation:
    return _WORKER["oracle"].evaluate(job.cell, fidelity=job.fidelity, seed=job.seed)


@dataclass
class _Slot:
    pool: ProcessPoolExecutor
    pid: int
    job: Job | None = None
    future: Future[Evaluation] | None = None
    start_s: float = 0.0


class LocalBackend:
    """Evaluations in worker processes of this machine (see the module docstring).

    Args:
        oracle: the run's oracle, used in this process when there is one worker and no devices.
        spec: builds the oracle in a worker (``spec.build(device) -> Oracle``, picklable).
        workers: worker processes.
        devices: one device per worker, cycled (``None``: ``default_device`` for all).
        default_device: the device of every worker without ``devices``.
        threads: torch threads per worker (default: the machine's cores split between them).
    """

    def __init__(self, oracle: Oracle, spec: Any, workers: int, *, devices: tuple[str, ...] | None = None,
                 default_device: str | None = None, threads: int | None = None) -> None:  # fmt: skip
        self.workers = workers
        self._oracle = oracle
        self._spec = spec
        self._inline = workers == 1 and not devices
        self._devices = [devices[i % len(devices)] if devices else default_device for i in range(workers)]
        self._threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self._origin = time.monotonic()
        self._slots: dict[int, _Slot] = {}
        self._inline_job: tuple[Job, float] | None = None

    # ------------------------------------------------------------------ backend
    def free_workers(self) -> int:
        return self.workers - self.running()

    def running(self) -> int:
        if self._inline:
            return int(self._inline_job is not None)
        return sum(slot.job is not None for slot in self._slots.values())

    def submit(self, job: Job, *, worker: int | None = None, start_s: float | None = None) -> tuple[int, float]:
        start = self.now()
        if self._inline:
            self._inline_job = (job, start)
            return 0, start
        busy = {w for w, slot in self._slots.items() if slot.job is not None}
        worker = worker if worker is not None and worker not in busy else min(set(range(self.workers)) - busy)
        slot = self._slot(worker)
        slot.job, slot.future, slot.start_s = job, slot.pool.submit(_evaluate, job), start
        return worker, start

    def next_finished(self) -> Finished:
        if self._inline:
            assert self._inline_job is not None, "next_finished with nothing running"
            job, start = self._inline_job
            self._inline_job = None
            evaluation = self._oracle.evaluate(job.cell, fidelity=job.fidelity, seed=job.seed)
            return Finished(job, 0, start, self.now(), evaluation)
        running = {slot.future: worker for worker, slot in self._slots.items() if slot.future is not None}
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        worker = min((running[future] for future in done), key=lambda w: self._slots[w].job.ticket)  # type: ignore[union-attr]
        slot = self._slots[worker]
        job, future, start = slot.job, slot.future, slot.start_s
        slot.job = slot.future = None
        assert job is not None and future is not None
        try:
            evaluation = future.result()
        except BrokenProcessPool:
            self._restart(worker)
            return Finished(job, worker, start, self.now(), None, error=f"worker process {worker} died")
        except TnasError:
            raise  # a user error (bad data, bad settings) is not a worker failure
        except Exception as error:  # noqa: BLE001 - anything else a worker raises is its failure
            return Finished(job, worker, start, self.now(), None, error=f"{type(error).__name__}: {error}")
        return Finished(job, worker, start, self.now(), evaluation)

    def now(self) -> float:
        return time.monotonic() - self._origin

    def resume_clock(self, seconds: float) -> None:
        self._origin = time.monotonic() - seconds

    def close(self) -> None:
        for worker in list(self._slots):
            self._stop(worker)

    # ------------------------------------------------------------------ workers
    def _slot(self, worker: int) -> _Slot:
        if worker not in self._slots:
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_start_worker,
                                       initargs=(self._spec, self._devices[worker], self._threads))  # fmt: skip
            self._slots[worker] = _Slot(pool, pid=pool.submit(os.getpid).result())
        return self._slots[worker]

    def _stop(self, worker: int) -> None:
        slot = self._slots.pop(worker)
        if slot.job is not None:  # a training still running: end it
            try:
                os.kill(slot.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        slot.pool.shutdown(wait=False, cancel_futures=True)

    def _restart(self, worker: int) -> None:
        self._stop(worker)
        self._slot(worker)
