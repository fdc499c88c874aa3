"""The ask/tell interface every search method implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tnas.oracles import Evaluation
from tnas.space import Cell


@runtime_checkable
class Searcher(Protocol):
    """A search method, driven by :func:`tnas.search.run`.

    The runner calls ``ask()`` for the next cell to evaluate and ``tell()`` with its
    evaluation, strictly alternating. A searcher draws randomness only from the generator
    it was built with, so that the same seed and the same answers give the same proposals
    (that is what makes runs resumable by replay). A searcher should not propose a cell it
    was already told about; if it does, the runner answers from its cache without
    counting a query.

    A searcher may also say which cell it would *return* now (:class:`Recommender`); one
    that does not returns its incumbent, the cell with the best observed validation
    accuracy.
    """

    def ask(self) -> Cell:
        """The next cell to evaluate."""
        ...

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        """Record the evaluation of ``cell`` (the cell last returned by :meth:`ask`)."""
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
