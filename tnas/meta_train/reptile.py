"""REPTILE (Nichol, Achiam & Schulman 2018) on the GP's negative log marginal likelihood.

One meta-step: for each of ``tasks_per_step`` sampled sources, start from the current
weights w, take ``inner_steps`` optimizer steps on mini-batches of that source (w -> w'),
then move the weights ``w <- w + epsilon * mean_tasks(w' - w)``. A mini-batch draws a
share of its triples from the source's best ones (see :class:`BatchLoss`).

Numerical failures of a batch (a Cholesky factorisation that fails even with jitter, a
non-finite loss) skip that batch and are counted; training never dies on them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from linear_operator.utils.errors import NanError
from torch import Tensor, nn

from tnas.encoders import cells_to_batch
from tnas.meta_train.data import METAD2A, ContextBank, Triples
from tnas.models.deep_kernel import (
    NUMERICAL_FAILURES,
    DeepKernel,
    FeatureGP,
    negative_log_marginal_likelihood,
)
from tnas.space import Cell


@dataclass
class StepReport:
    """What one meta-step did."""

    losses: list[float]
    skipped: int


def reptile_update(
    parameters: Sequence[nn.Parameter],
    tasks: Sequence[object],
    inner_loop: Callable[[object], None],
    outer_step: float,
) -> None:
    """Apply one REPTILE outer update.

    Args:
        parameters: the meta-learned parameters, updated in place.
        tasks: the tasks of this meta-step.
        inner_loop: adapts ``parameters`` in place to one task (from their current value).
        outer_step: epsilon, the fraction of the way towards the adapted weights.
    """
    start = [parameter.detach().clone() for parameter in parameters]
    moved = [torch.zeros_like(parameter) for parameter in parameters]
    for task in tasks:
        with torch.no_grad():
            for parameter, value in zip(parameters, start):
                parameter.copy_(value)
        inner_loop(task)
        with torch.no_grad():
            for total, parameter, value in zip(moved, parameters, start):
                total += parameter - value
    with torch.no_grad():
        for parameter, value, total in zip(parameters, start, moved):
            parameter.copy_(value + outer_step * total / len(tasks))


class BatchLoss:
    """Negative log marginal likelihood of sampled mini-batches of one source.

    With ``top_fraction > 0`` a batch is not uniform: that share of its rows is drawn from
    the source's best ``top_quantile`` of rows (by target), the rest from the other rows.
    A uniform batch is dominated by the bulk of the space (NAS-Bench-201 accuracies run
    from under 1% to 94%), whereas a search only ever asks the GP to tell good cells apart.
    """

    def __init__(self, kernel: DeepKernel, bank: ContextBank, batch_size: int, device: torch.device, *,
                 top_fraction: float = 0.0, top_quantile: float = 0.1):  # fmt: skip
        self.kernel = kernel
        self.gp = FeatureGP(kernel)
        self.bank = bank
        self.batch_size = batch_size
        self.device = device
        self.top_fraction = top_fraction
        self.top_quantile = top_quantile
        self._strata: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def features(self, source_name: str, cells: np.ndarray, context: np.ndarray) -> Tensor:
        """Deep features of some triples of a source: ``n x d`` float64."""
        if source_name == METAD2A:
            slots, inverse = np.unique(context, return_inverse=True)
            inputs, mask = self.bank.tasks(slots)
            codes = self.kernel.dataset_codes(inputs, mask)[torch.as_tensor(inverse, device=inputs.device)]
        else:
            codes = self.kernel.dataset_code(*self.bank.dataset(source_name))
        batch = cells_to_batch([Cell.from_index(int(index)) for index in cells], device=self.device)
        return self.kernel.embed(batch, codes)

    def sample_rows(self, source: Triples, rng: np.random.Generator) -> np.ndarray:
        """Row indexes of one mini-batch of ``source``: ``min(batch_size, len(source))``."""
        size = min(self.batch_size, len(source))
        if self.top_fraction <= 0:
            return rng.choice(len(source), size=size, replace=False)
        top, rest = self._top_and_rest(source)
        n_top = min(len(top), round(self.top_fraction * size))  # top_fraction < 1: at most size
        n_rest = min(len(rest), size - n_top)
        return np.concatenate([rng.choice(top, n_top, replace=False), rng.choice(rest, n_rest, replace=False)])

    def _top_and_rest(self, source: Triples) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the source's best ``top_quantile`` of targets, and the other rows."""
        if source.name not in self._strata:
            cut = np.quantile(source.targets, 1 - self.top_quantile)
            self._strata[source.name] = np.flatnonzero(source.targets >= cut), np.flatnonzero(source.targets < cut)
        return self._strata[source.name]

    def __call__(self, source: Triples, rng: np.random.Generator) -> Tensor:
        rows = self.sample_rows(source, rng)
        features = self.features(source.name, source.cells[rows], source.context[rows])
        targets = torch.as_tensor(source.targets[rows], dtype=torch.float64, device=self.device)
        return negative_log_marginal_likelihood(self.gp, features, targets)


def make_inner_loop(
    parameters: Sequence[nn.Parameter],
    loss: BatchLoss,
    rng: np.random.Generator,
    *,
    inner_steps: int,
    inner_lr: float,
    report: StepReport,
) -> Callable[[Triples], None]:
    """An inner loop: ``inner_steps`` Adam steps on batches of one source."""

    def inner_loop(source: Triples) -> None:
        optimizer = torch.optim.Adam(parameters, lr=inner_lr)
        for _ in range(inner_steps):
            optimizer.zero_grad(set_to_none=True)
            try:
                value = loss(source, rng)
                if not torch.isfinite(value):
                    raise NanError("non-finite marginal likelihood")
                value.backward()
            except NUMERICAL_FAILURES:
                report.skipped += 1
                continue
            optimizer.step()
            report.losses.append(float(value.detach()))

    return inner_loop
