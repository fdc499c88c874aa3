"""One runner for every search method: budget, workers, observation policy, resume.

The loop keeps every free worker busy: it asks the searcher for a cell (telling it which
cells are pending), records the submission in the run's journal, hands the evaluation to
the backend (:mod:`tnas.search.backends`), and when one comes back tells the searcher and
records the query. With one worker this is the strict ask / tell alternation of a
sequential search. Queries are numbered in the order they finished.

Resume works by replay. Searchers are deterministic given their seed and the answers they
are told, so a resumed run rebuilds the searcher and replays the journal
(:mod:`tnas.search.journal`): it asks again at every recorded submission (checking that
the proposal is the recorded cell), tells the recorded evaluations where they had
finished, and resubmits the evaluations that were in flight. No query is evaluated twice,
and on the simulated backend the finished trajectory is the one an uninterrupted run would
have written. A run directory without a journal (written before parallel search existed)
replays as one worker.

A worker failure (a crashed process, a lost Ray node) is resubmitted up to
``BackendOptions.max_retries`` times and then recorded as a failed query (chance accuracy,
the reason in ``failure``); the search goes on. Bookkeeping (trajectory, incumbent,
progress, summary, run directory) lives in :mod:`tnas.search.bookkeeping`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tnas.errors import RunDirectoryError, SearcherError, TableError
from tnas.oracles import Evaluation, Oracle
from tnas.rundir import RunDirectory, TrajectoryRow
from tnas.search.backends import Backend, BackendOptions, Finished, Job, make_backend
from tnas.search.bookkeeping import (
    Progress,
    Trajectory,
    failed_evaluation,
    prepare_directory,
    proposal_info,
    summarize,
    summary_problem,
)
from tnas.search.config import RunConfig
from tnas.search.journal import JournalWriter, Submission, read_journal
from tnas.search.oracle_setup import search_space
from tnas.search.protocol import Recommender, Searcher
from tnas.space import Cell, SearchSpace

__all__ = ["MAX_CONSECUTIVE_REPEATS", "RunResult", "observed_seed", "run", "summarize"]

logger = logging.getLogger(__name__)

MAX_CONSECUTIVE_REPEATS = 1000
"""A searcher proposing this many evaluated cells in a row is stopped with an error."""


@dataclass(frozen=True)
class RunResult:
    """A finished (or budget-exhausted) run.

    Attributes:
        config: the run's configuration.
        rows: one row per query, in the order the evaluations finished.
        summary: the content of ``summary.json``.
        replayed: how many queries were answered from an earlier, interrupted run.
    """

    config: RunConfig
    rows: tuple[TrajectoryRow, ...]
    summary: dict[str, Any]
    replayed: int


def observed_seed(config: RunConfig, ticket: int, oracle: Oracle, cell: Cell) -> int | None:
    """The training-seed slot to observe for submission ``ticket`` (``None``: the seed mean).

    With ``observe="seed"`` the slot is drawn uniformly among those the oracle holds for
    ``cell``, from a generator keyed by (run seed, ticket), so replays draw the same slot.
    With one worker the ticket is the query number.
    """
    if config.observe == "mean":
        return None
    slots = oracle.seeds(cell, fidelity=config.fidelity)
    if not slots:
        raise TableError(f"{oracle.name} holds no per-seed result for cell {cell.index}")
    rng = np.random.default_rng([config.seed, ticket])
    return int(slots[int(rng.integers(len(slots)))])


def run(
    searcher: Searcher,
    oracle: Oracle,
    config: RunConfig,
    run_dir: str | Path | None = None,
    *,
    run_info: dict[str, Any] | None = None,
    progress: bool = False,
    worker_spec: Any = None,
    backend_options: BackendOptions = BackendOptions(),
    space: SearchSpace | None = None,
) -> RunResult:
    """Drive ``searcher`` against ``oracle`` on ``config.workers`` workers until the budget is spent.

    Args:
        searcher: a fresh searcher built with the generator of ``config.seed``.
        oracle: answers the queries (e.g. a :class:`~tnas.oracles.TableOracle`); the
            simulated backend and a one-worker local run evaluate with it.
        config: budget, fidelity, observation policy, workers and backend.
        run_dir: where to write ``config.json``, ``journal.jsonl``, ``trajectory.csv`` and
            ``summary.json``; an existing directory of the same run is resumed. ``None``
            keeps all in memory.
        run_info: extra facts recorded in ``config.json`` (data source, method settings:
            without ``method_settings`` the registered defaults of ``config.method`` are
            recorded, so a searcher built with other settings should pass its own; a later
            resume compares them with this version's, see
            :mod:`tnas.search.settings_changes`).
        progress: show a progress bar on stderr.
        worker_spec: builds the oracle in a worker process or Ray actor
            (:class:`~tnas.search.oracle_setup.OracleSpec`); needed by ``local`` with
            several workers and by ``ray``.
        backend_options: devices, threads, Ray address, retries.
        space: the cells the run may evaluate (the feasible cells of a constrained run, the
            cells of a partial table); ``None`` computes it from ``config`` and ``oracle``
            (:func:`~tnas.search.oracle_setup.search_space`). A proposal outside it stops the run.

    Raises:
        RunDirectoryError: ``run_dir`` holds another run, or a journal the searcher
            does not reproduce.
        SearcherError: the searcher proposes a pending cell or one outside ``space``, or keeps
            proposing evaluated ones.
    """
    space = space if space is not None else search_space(config, oracle)
    directory = RunDirectory(run_dir) if run_dir is not None else None
    recorded = prepare_directory(directory, config, run_info or {}) if directory else []
    if directory is not None:
        try:
            summary = directory.read_summary()
        except RunDirectoryError:  # only a digest of the trajectory: never a reason to stop
            summary, problem = None, "not a readable JSON object"
        else:
            problem = None if summary is None else summary_problem(summary, recorded)
        if summary is not None and problem is None and summary.get("config") == config.to_dict():
            return RunResult(config, tuple(recorded), summary, replayed=len(recorded))
        if problem is not None:
            logger.warning("%s is damaged (%s); it is written again from the run's trajectory",
                           directory.summary_path, problem)  # fmt: skip
    journal = _usable_journal(read_journal(directory.journal_path), len(recorded)) if directory else []
    if recorded and not journal:  # a run directory from before the journal: one worker, in order
        journal = [Submission(query, row.index, row.seed, 1, query - 1, 0, row.sim_cost_s - row.cost_s)
                   for query, row in enumerate(recorded, start=1)]  # fmt: skip
    backend = make_backend(config, oracle, worker_spec, backend_options)
    search = _Search(searcher, oracle, config, backend, directory, recorded, journal, backend_options, progress,
                     space)  # fmt: skip
    try:
        search.replay(recorded, journal)
        search.loop()
    finally:
        search.close()
        backend.close()
    rows = search.trajectory.rows
    summary = summarize(config, rows, repeats=search.repeats, space=space)
    if directory is not None:
        directory.write_summary(summary)
    return RunResult(config, tuple(rows), summary, replayed=min(len(recorded), len(rows)))


@dataclass
class _Pending:
    cell: Cell
    seed: int | None
    proposal: dict[str, float | None]


class _Search:
    """The state of one run's loop: searcher, backend, pending evaluations, journal."""

    def __init__(self, searcher: Searcher, oracle: Oracle, config: RunConfig, backend: Backend,
                 directory: RunDirectory | None, recorded: list[TrajectoryRow], journal: list[Submission],
                 options: BackendOptions, progress: bool, space: SearchSpace) -> None:  # fmt: skip
        self.searcher, self.oracle, self.config, self.backend = searcher, oracle, config, backend
        self.options, self.space = options, space
        self.trajectory = Trajectory(directory, recorded, space)
        self.journal = JournalWriter(directory.journal_path, journal) if directory else None
        self.progress = Progress(config, progress, done=len(recorded))
        self.pending: dict[int, _Pending] = {}  # ticket -> what is being evaluated
        self.tickets = 0
        self.repeats = 0

    # ------------------------------------------------------------------ searcher calls
    def propose(self) -> Cell:
        """The searcher's next cell; evaluated cells it proposes are answered from the cache."""
        consecutive = 0
        pending = tuple(entry.cell for entry in self.pending.values())
        busy = {cell.index for cell in pending}
        while True:
            start = time.perf_counter()
            cell = self.searcher.ask(pending) if pending else self.searcher.ask()  # one-worker searchers too
            self.trajectory.unbooked_overhead_s += time.perf_counter() - start
            if cell.index in busy:
                raise SearcherError(f"{self.config.method} proposed cell {cell.index}, which is being evaluated")
            if cell not in self.space:
                raise SearcherError(f"{self.config.method} proposed cell {cell.index}, outside the search space "
                                    f"({self.space.description})")  # fmt: skip
            if cell.index not in self.trajectory.history:
                return cell
            self.repeats += 1
            consecutive += 1
            if consecutive > MAX_CONSECUTIVE_REPEATS:
                raise SearcherError(f"{self.config.method} proposed evaluated cells {consecutive} times in a row")
            self._tell(cell, self.trajectory.history[cell.index])

    def _tell(self, cell: Cell, evaluation: Evaluation) -> Cell | None:
        """Tell the searcher; return the cell it would now return (``None``: its incumbent)."""
        start = time.perf_counter()
        self.searcher.tell(cell, evaluation)
        self.trajectory.history[cell.index] = evaluation
        recommended = _recommendation(self.searcher, self.trajectory.history)
        self.trajectory.unbooked_overhead_s += time.perf_counter() - start
        return recommended

    # ------------------------------------------------------------------ replay
    def replay(self, recorded: list[TrajectoryRow], journal: list[Submission]) -> None:
        """Bring the searcher and the backend to where an interrupted run stopped."""
        if not recorded and not journal:
            return
        latest = {submission.ticket: submission for submission in journal}
        first: dict[int, Submission] = {}
        for submission in journal:
            first.setdefault(submission.ticket, submission)
        told = 0
        for ticket in sorted(first):
            submission = first[ticket]
            while told < min(submission.after, len(recorded)):
                self._replay_row(recorded[told])
                told += 1
            cell = self.propose()
            if cell.index != submission.index:
                raise RunDirectoryError(
                    f"cannot resume {self.trajectory_directory()}: submission {ticket} was cell {submission.index}, "
                    f"the searcher now proposes {cell.index} (code or settings changed?)"
                )
            expected_seed = observed_seed(self.config, ticket, self.oracle, cell)
            if submission.seed != expected_seed:
                raise RunDirectoryError(
                    f"cannot resume {self.trajectory_directory()}: its journal says submission {ticket} observes "
                    f"seed slot {submission.seed}, this run observes {expected_seed} (a damaged journal.jsonl?); "
                    "move the run directory away to start the run anew"
                )
            self.pending[ticket] = _Pending(cell, submission.seed, proposal_info(self.searcher))
            self.tickets = ticket
        while told < len(recorded):
            self._replay_row(recorded[told])
            told += 1
        clock = max([row.end_s if row.end_s is not None else row.sim_cost_s for row in recorded]
                    + [submission.start_s for submission in journal])  # fmt: skip
        self.backend.resume_clock(clock)
        for ticket, entry in sorted(self.pending.items()):  # in flight when the run stopped
            submission = latest[ticket]
            job = Job(ticket, entry.cell, self.config.fidelity, entry.seed, attempt=submission.attempt)
            placement = self.backend.submit(job, worker=submission.worker, start_s=submission.start_s)
            if placement != (submission.worker, submission.start_s):
                self._journal(job, placement)

    def _replay_row(self, row: TrajectoryRow) -> None:
        ticket = next((t for t, entry in self.pending.items() if entry.cell.index == row.index), None)
        if ticket is None:
            raise RunDirectoryError(f"cannot resume {self.trajectory_directory()}: query {row.query} (cell "
                                    f"{row.index}) was never submitted according to the journal")  # fmt: skip
        entry = self.pending.pop(ticket)
        self._tell(entry.cell, row.evaluation(self.config.fidelity))
        self.trajectory.add_replayed(row)

    def trajectory_directory(self) -> str:
        return str(self.journal.path.parent) if self.journal else "the run"

    # ------------------------------------------------------------------ live loop
    def loop(self) -> None:
        config, trajectory = self.config, self.trajectory
        max_sim_s = None if config.max_sim_hours is None else config.max_sim_hours * 3600.0
        while True:
            while (self.backend.free_workers() > 0 and len(trajectory.rows) + len(self.pending) < config.budget
                   and (max_sim_s is None or trajectory.sim_cost_s < max_sim_s)):  # fmt: skip
                self._submit_next()
            self.progress.update(trajectory, self.backend.running())
            if self.backend.running() == 0:
                return
            self._finish(self.backend.next_finished())

    def _submit_next(self) -> None:
        cell = self.propose()
        self.tickets += 1
        seed = observed_seed(self.config, self.tickets, self.oracle, cell)
        job = Job(self.tickets, cell, self.config.fidelity, seed)
        self.pending[job.ticket] = _Pending(cell, seed, proposal_info(self.searcher))
        self._journal(job, self.backend.submit(job))

    def _journal(self, job: Job, placement: tuple[int, float]) -> None:
        if self.journal is not None:
            worker, start = placement
            self.journal.append(Submission(job.ticket, job.cell.index, job.seed, job.attempt,
                                           len(self.trajectory.rows), worker, start))  # fmt: skip

    def _finish(self, finished: Finished) -> None:
        job = finished.job
        evaluation = finished.evaluation
        if evaluation is None:
            reason = finished.error or "unknown worker failure"
            if not finished.retried and job.attempt <= self.options.max_retries:
                logger.warning("evaluation of cell #%d failed (%s); resubmitting (attempt %d of %d)",
                               job.cell.index, reason, job.attempt + 1, self.options.max_retries + 1)  # fmt: skip
                retry = replace(job, attempt=job.attempt + 1)
                self._journal(retry, self.backend.submit(retry))
                return
            logger.warning("evaluation of cell #%d failed for good (%s); recorded as a failed query",
                           job.cell.index, reason)  # fmt: skip
            evaluation = failed_evaluation(getattr(self.oracle, "chance_accuracy", 0.0), job.fidelity, job.seed,
                                           finished.end_s - finished.start_s, f"worker failed: {reason}")  # fmt: skip
        entry = self.pending.pop(job.ticket)
        recommended = self._tell(entry.cell, evaluation)
        self.trajectory.add(entry.cell, evaluation, proposal=entry.proposal, recommended=recommended,
                            start_s=finished.start_s, end_s=finished.end_s, worker=finished.worker)  # fmt: skip

    def close(self) -> None:
        self.trajectory.close()
        if self.journal is not None:
            self.journal.close()
        self.progress.close()


def _usable_journal(journal: list[Submission], finished: int) -> list[Submission]:
    """The journal up to the first submission made after more evaluations had finished than
    ``trajectory.csv`` holds (rows lost to a damaged file): the rest is submitted anew."""
    for position, submission in enumerate(journal):
        if submission.after > finished:
            return journal[:position]
    return journal


def _recommendation(searcher: Searcher, history: dict[int, Evaluation]) -> Cell | None:
    """The evaluated cell the searcher would return (``None``: its incumbent).

    Raises:
        SearcherError: it recommends a cell it was never told about.
    """
    if not isinstance(searcher, Recommender):
        return None
    cell = searcher.recommend()
    if cell is not None and cell.index not in history:
        raise SearcherError(f"the searcher recommends cell {cell.index}, which it has not evaluated")
    return cell
