"""``zero-shot``: transfer without learning, the reference a meta-learned prior must beat.

The cells are evaluated in the order of their mean standardised validation accuracy over
the *source* tables, the NAS-Bench-201 datasets TNAS meta-trains on for this target (every
shipped table but the target's own: without ``cifar10-valid`` for ``cifar10``), and the
order is never updated on the target's observations. It is the simplest zero-shot
transfer (cf. the portfolio of best source configurations of Wistuba et al. 2015 and
syne-tune's ``ZeroShotTransfer``; Feurer et al. 2015 warm-start BO with the best source
configurations): no model, no image sample, no meta-training. Set beside ``tnas-prior``
(the meta-learned prior's order) it shows what meta-learning adds over the raw sources,
and beside ``tnas`` what both the learned prior and Bayesian optimization add.

The sources are 200-epoch seed-mean validation accuracies, whatever the search's fidelity
(TNAS also meta-trains on 200-epoch data). A constrained search walks the order restricted
to the feasible cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from tnas.oracles import NB201Table, TableOracle
from tnas.search.methods.prior_ranking import PriorRanking
from tnas.space import FULL_SPACE, SearchSpace

SOURCE_FIDELITY = 200


def zero_shot_sources(target: str) -> tuple[str, ...]:
    """The NAS-Bench-201 source tables for a search on ``target``: all but the one holding
    the target's data (``cifar10`` observes ``cifar10-valid``'s runs), as TNAS's default
    surrogate excludes it."""
    from tnas.meta_train.data import NB201_SOURCES  # these modules import the encoders
    from tnas.search.surrogates import META_TRAIN_SOURCE

    own = META_TRAIN_SOURCE.get(target, target)
    return tuple(name for name in NB201_SOURCES if name != own)


def source_average(table: NB201Table, sources: Sequence[str]) -> np.ndarray:
    """Mean over ``sources`` of each cell's standardised seed-mean validation accuracy
    (200 epochs), shape ``(15625,)`` by official index.

    A cell a source leaves empty (a partial table) is averaged over the other sources; a
    cell no source holds gets the lowest average, so that an order walks it last.
    """
    values = [TableOracle(table, source).valid_values(SOURCE_FIDELITY) for source in sources]
    if not any(np.isnan(value).any() for value in values):  # full tables
        return np.mean([(value - value.mean()) / value.std() for value in values], axis=0)
    standardised = np.array([(value - np.nanmean(value)) / np.nanstd(value) for value in values])
    held = ~np.isnan(standardised)
    counts = held.sum(axis=0)
    average = np.where(held, standardised, 0.0).sum(axis=0) / np.maximum(counts, 1)
    return np.where(counts > 0, average, average[counts > 0].min())


def zero_shot_scores(table: NB201Table, target: str) -> torch.Tensor:
    """``15625`` scores of the zero-shot order for ``target``: the source average of its
    :func:`zero_shot_sources` (what ``zero-shot`` walks and TNAS's ``init="sources"`` starts from)."""
    return torch.as_tensor(source_average(table, zero_shot_sources(target)))


def zero_shot_search(table: NB201Table, target: str, space: SearchSpace = FULL_SPACE) -> PriorRanking:
    """The ``zero-shot`` searcher for ``target``: the cells of ``space`` by decreasing source
    average (its ``last_info`` records each proposal's average as ``prior_mean``)."""
    return PriorRanking(zero_shot_scores(table, target), space)
