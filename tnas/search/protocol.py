"""The ask/tell interface every search method implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from tnas.oracles import Evaluation
from tnas.space import Cell


@runtime_checkable
class Searcher(Protocol):
    """A search method, driven by :func:`tnas.search.run`.

    The runner calls ``ask(pending)`` for the next cell to evaluate and ``tell()`` with its
    evaluation. With one worker they strictly alternate and ``pending`` is empty. With
    several workers (``--workers N``) the runner asks whenever a worker is free, passing the
    cells whose evaluations are still running, in the order they were submitted, and tells
    evaluations in the order they finish, which need not be the order they were asked.

    A searcher must never propose a pending cell (the runner stops the run with a
    :class:`~tnas.errors.SearcherError` if it does), and should not propose a cell it was
    already told about; if it does, the runner answers from its cache without counting a
    query. How each method uses the pending cells beyond avoiding them (kriging believer,
    random cells while a neighbourhood is being evaluated...) is documented with the method.
    The runner calls ``ask()`` without an argument when nothing is pending, so a searcher
    written for one worker (``def ask(self)``) keeps working there.

    A constrained run (latency, parameter or FLOPs limits) or one on a partial table has a
    :class:`~tnas.space.SearchSpace` smaller than the 15,625 cells; the method's builder
    receives it (``SearchContext.space``) and the searcher proposes only its cells (the
    runner stops the run with a :class:`~tnas.errors.SearcherError` otherwise).

    A searcher draws randomness only from the generator it was built with, so that the same
    seed and the same answers in the same order give the same proposals (that is what makes
    runs resumable by replay).

    A searcher may also say which cell it would *return* now (:class:`Recommender`); one
    that does not returns its incumbent, the cell with the best observed validation
    accuracy.
    """

    def ask(self, pending: Sequence[Cell] = ()) -> Cell:
        """The next cell to evaluate, neither evaluated nor among ``pending`` (cells being evaluated)."""
        ...

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        """Record the evaluation of ``cell``, a cell returned by :meth:`ask` (or, for a cached
        repeat, one told before)."""
        ...


@runtime_checkable
class Recommender(Protocol):
    """A searcher that may return another cell than its best observed one.

    With noisy observations (one training run per query) the best observed value is the
    luckiest reading, so a model-based method returns the evaluated cell with the best
    posterior mean instead. The runner calls :meth:`recommend` after every ``tell`` and
    records the answer in ``trajectory.csv`` (``recommended_index``); it is called during
    a resumed run's replay too, so it may fit a model (and cache it for the next ``ask``)
    as long as it draws from the generator in the same order either way.
    """

    def recommend(self) -> Cell | None:
        """The evaluated cell the method would return now; ``None`` means its incumbent."""
        ...


def pending_indexes(pending: Sequence[Cell]) -> frozenset[int]:
    """The official indexes of the cells being evaluated (what ``ask`` must not propose)."""
    return frozenset(cell.index for cell in pending)
