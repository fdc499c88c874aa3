"""What every backend offers the runner: jobs in, finished evaluations out, and a clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tnas.oracles import Evaluation
from tnas.space import Cell


@dataclass(frozen=True)
class Job:
    """One evaluation to run.

    Attributes:
        ticket: its submission number (see :class:`tnas.search.journal.Submission`).
        cell: the cell to evaluate.
        fidelity: training epochs observed.
        seed: training-seed slot to observe (``None``: the seed mean).
        attempt: 1, or more when resubmitted after a worker failure.
    """

    ticket: int
    cell: Cell
    fidelity: int
    seed: int | None
    attempt: int = 1


@dataclass(frozen=True)
class Finished:
    """A job that came back, with its evaluation or why its worker failed.

    Attributes:
        job: the job.
        worker: the worker that ran it (0-based).
        start_s, end_s: when it started and came back, on the backend's clock.
        evaluation: its evaluation; ``None`` when the worker failed.
        error: why the worker failed (a crashed process, a lost node); ``None`` otherwise.
        retried: whether the backend already retried the job itself (Ray does), so the
            runner records the failure instead of resubmitting.
    """

    job: Job
    worker: int
    start_s: float
    end_s: float
    evaluation: Evaluation | None
    error: str | None = None
    retried: bool = False


class Backend(Protocol):
    """Runs up to ``workers`` jobs at once (see :mod:`tnas.search.backends`)."""

    workers: int
    """How many jobs run at once."""

    def free_workers(self) -> int:
        """How many more jobs can be submitted now."""
        ...

    def running(self) -> int:
        """How many jobs are running."""
        ...

    def submit(self, job: Job, *, worker: int | None = None, start_s: float | None = None) -> tuple[int, float]:
        """Start ``job`` on a free worker; return the worker and the start time.

        ``worker`` and ``start_s`` place a job where a killed run had placed it (only the
        simulated backend honours ``start_s``; the others start it now).
        """
        ...

    def next_finished(self) -> Finished:
        """Wait for the next job to come back (the earliest on the clock)."""
        ...

    def now(self) -> float:
        """The backend's clock in seconds since the run started."""
        ...

    def resume_clock(self, seconds: float) -> None:
        """Continue the clock of a resumed run from ``seconds``."""
        ...

    def close(self) -> None:
        """Stop the workers (running jobs are abandoned; the journal knows them)."""
        ...
