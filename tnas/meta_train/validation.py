"""Validation figures of a deep kernel, computed after every epoch.

- MetaD2A's held-out records: Pearson and Spearman correlation between the GP's prior
  mean and the records' accuracies.
- The held-out 5% of cells of every NAS-Bench-201 training dataset: Spearman of the prior
  mean (``{name}_heldout_spearman``).
- Every excluded NAS-Bench-201 dataset (encoded from its images; its accuracies are used
  here only): Spearman over all 15,625 cells of the prior mean (zero-shot) and of the
  posterior mean after conditioning on ``conditioning_cells`` random cells of that dataset
  (their accuracies standardised by their own mean and deviation, as a search would),
  whether the dataset's best cell is in the prior mean's top 10, the best cell's rank in
  the prior mean (0 = first), and the Spearman of the prior mean among the top 1% of
  cells by accuracy (where a search spends its queries).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from tnas.meta_train.data import METAD2A, MetaDataset
from tnas.meta_train.reptile import BatchLoss
from tnas.models.deep_kernel import posterior_mean
from tnas.models.surrogate import features_of_all_cells
from tnas.space import NUM_CELLS

TOP_K = 10
TOP_SHARE = 0.01
"""The share of best cells (by accuracy) that ``{name}_top1pct_spearman`` is computed on."""


def _correlation(function, x: np.ndarray, y: np.ndarray) -> float:
    if np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(function(x, y)[0])


def prior_figures(prior: np.ndarray, accuracy: np.ndarray) -> dict[str, float]:
    """How a prior mean ranks the cells of a dataset (both ``15625``-long)."""
    best = int(np.argmax(accuracy))
    top = accuracy >= np.quantile(accuracy, 1 - TOP_SHARE)
    return {
        "prior_spearman": _correlation(spearmanr, prior, accuracy),
        f"best_in_top{TOP_K}": float(best in np.argsort(-prior)[:TOP_K]),
        "best_prior_rank": float((prior > prior[best]).sum()),
        "top1pct_spearman": _correlation(spearmanr, prior[top], accuracy[top]),
    }


@torch.no_grad()
def validate(loss: BatchLoss, meta: MetaDataset, *, seed: int, conditioning_cells: int = 10) -> dict[str, float]:
    """All validation figures of the current kernel, keyed by metrics.csv column."""
    kernel = loss.kernel
    was_training = kernel.training
    kernel.eval()
    figures: dict[str, float] = {}
    try:
        if meta.metad2a_valid is not None:
            held_out = meta.metad2a_valid
            features = loss.features(METAD2A, held_out.cells, held_out.context)
            prior = posterior_mean(loss.gp, features).cpu().numpy()
            figures["metad2a_pearson"] = _correlation(pearsonr, prior, held_out.raw)
            figures["metad2a_spearman"] = _correlation(spearmanr, prior, held_out.raw)
        for held in meta.heldout:
            prior = posterior_mean(loss.gp, loss.features(held.name, held.cells, held.context)).cpu().numpy()
            figures[f"{held.name}_heldout_spearman"] = _correlation(spearmanr, prior, held.raw)
        for name, accuracy in meta.excluded.items():
            features = features_of_all_cells(loss.kernel, *loss.bank.dataset(name))
            prior = posterior_mean(loss.gp, features).cpu().numpy()
            figures.update({f"{name}_{key}": value for key, value in prior_figures(prior, accuracy).items()})
            rng = np.random.default_rng([seed, 10])
            chosen = rng.choice(NUM_CELLS, size=conditioning_cells, replace=False)
            observed = accuracy[chosen]
            targets = torch.as_tensor((observed - observed.mean()) / observed.std(), dtype=torch.float64,
                                      device=features.device)  # fmt: skip
            posterior = posterior_mean(loss.gp, features, features[chosen], targets).cpu().numpy()
            figures[f"{name}_post{conditioning_cells}_spearman"] = _correlation(spearmanr, posterior, accuracy)
    finally:
        kernel.train(was_training)
    return figures


def selection_score(figures: dict[str, float]) -> float:
    """The figure that picks the best epoch; it never looks at an excluded dataset.

    The mean of the MetaD2A held-out Spearman and the held-out-cells Spearman of every
    NAS-Bench-201 training dataset (NaN when none is available: the last epoch is kept).
    """
    keys = [key for key in figures if key == "metad2a_spearman" or key.endswith("_heldout_spearman")]
    values = [figures[key] for key in keys if not np.isnan(figures[key])]
    return float(np.mean(values)) if values else float("nan")
