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
    """

    def ask(self) -> Cell:
        """The next cell to evaluate."""
        ...

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        """Record the evaluation of ``cell`` (the cell last returned by :meth:`ask`)."""
        ...
