"""What every oracle returns and the interface searchers' runs rely on."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Protocol

from tnas.space import Cell

FIDELITIES: tuple[int, ...] = (200, 12)
"""Training epochs a table oracle can answer for (NAS-Bench-201's two schedules)."""


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one query.

    Attributes:
        valid: observed validation accuracy (%), what a search method may use.
        test: test accuracy (%) of the same cell, what a report quotes.
        cost_s: simulated (or real) training seconds the query costs.
        params_mb: parameter count in millions.
        fidelity: training epochs the numbers belong to.
        seed: training-seed slot the validation accuracy comes from; ``None`` for the
            mean over the seeds.
        failure: why the training behind this evaluation failed (real-training oracle);
            the accuracies are then chance level. ``None`` when it succeeded.
    """

    valid: float
    test: float
    cost_s: float
    params_mb: float
    fidelity: int
    seed: int | None
    failure: str | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain-dict form (JSON-ready)."""
        return asdict(self)

    def __post_init__(self) -> None:
        if not math.isfinite(self.valid):
            raise ValueError(f"an evaluation needs a finite validation accuracy, got {self.valid}")


class Oracle(Protocol):
    """Answers queries about cells of one dataset."""

    name: str
    """Task name (e.g. ``cifar100``)."""

    def evaluate(self, cell: Cell, *, fidelity: int, seed: int | None) -> Evaluation:
        """Evaluate ``cell`` at ``fidelity`` epochs; ``seed=None`` asks for the seed mean."""
        ...

    def seeds(self, cell: Cell, *, fidelity: int) -> tuple[int, ...]:
        """Training-seed slots with a per-seed result for ``cell`` (empty: means only)."""
        ...
