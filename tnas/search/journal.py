"""The journal of a run: every evaluation submitted to a worker, in submission order.

``journal.jsonl`` holds one JSON object per line (a :class:`Submission`): the submission
number (``ticket``), the cell, the training-seed slot observed, the attempt (a worker
failure resubmits the same ticket), how many evaluations had finished when it was
submitted (``after``), and where and when it started (``worker``, ``start_s``).
``trajectory.csv`` records the evaluations that finished, in the order they finished;
together they say exactly what a killed run had submitted, finished and left in flight.

A resumed run replays them (:mod:`tnas.search.runner`): it asks the searcher again in the
journal's order, tells it the finished evaluations at the points they had finished,
resubmits the evaluations that were in flight (on the ``simulated`` backend at their
recorded worker and start, so the resumed trajectory is the uninterrupted one) and never
evaluates a finished cell again.

Each line is appended in one write and flushed to the operating system before the evaluation is handed to
its worker; a killed run leaves at most a partial last line, which the reader skips and
the writer cuts off before it appends.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from tnas.errors import RunDirectoryError
from tnas.io import atomic_write_text, parse_json
from tnas.typecheck import is_finite_number, is_integer


@dataclass(frozen=True)
class Submission:
    """One evaluation handed to a worker.

    Attributes:
        ticket: submission number, 1-based (a resubmission keeps its ticket).
        index: official index of the cell.
        seed: training-seed slot observed (``None``: the seed mean).
        attempt: 1 for the first submission, more after a worker failure.
        after: evaluations finished when it was submitted.
        worker: the worker it went to (0-based).
        start_s: when it started, on the run's clock (seconds).
    """

    ticket: int
    index: int
    seed: int | None
    attempt: int
    after: int
    worker: int
    start_s: float


def _check_types(submission: Submission) -> None:
    """Raises ``TypeError`` unless every field holds what it should (integers, a seed slot
    or null, a finite start time)."""
    if not all(is_integer(getattr(submission, name)) for name in ("ticket", "index", "attempt", "after", "worker")):
        raise TypeError("integer fields hold other values")
    if submission.seed is not None and not is_integer(submission.seed):
        raise TypeError(f"seed is {submission.seed!r}, not a seed slot or null")
    start = submission.start_s
    if not is_finite_number(start) or start < 0:
        raise TypeError(f"start_s is {start!r}, not a time in seconds")


def read_journal(path: Path) -> list[Submission]:
    """All complete lines of the journal at ``path`` (none if it does not exist); read only.

    Raises:
        RunDirectoryError: a line that is not a submission.
    """
    if not path.is_file():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise RunDirectoryError(f"{path} is unreadable ({error}); move {path.parent} away to start anew") from None
    if text and not text.endswith("\n"):  # killed in the middle of a write
        text = text[: text.rfind("\n") + 1]
    submissions = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            data = parse_json(line)
            submission = Submission(**data)
            _check_types(submission)
        except (ValueError, TypeError) as error:
            raise RunDirectoryError(f"{path}:{number} is not a journal line ({error}); move {path.parent} "
                                    "away to start the run anew") from None  # fmt: skip
        submissions.append(submission)
    return submissions


class JournalWriter:
    """Appends submissions to a journal (see the module docstring)."""

    def __init__(self, path: Path, existing: list[Submission]) -> None:
        self.path = path
        text = "".join(_line(submission) for submission in existing)
        if not path.is_file() or path.read_text() != text:
            atomic_write_text(path, text)  # drop a partial last line before appending
        self._file: IO[str] = open(path, "a")  # noqa: SIM115 - kept open for the run, closed by close()

    def append(self, submission: Submission) -> None:
        self._file.write(_line(submission))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _line(submission: Submission) -> str:
    return json.dumps(asdict(submission)) + "\n"
