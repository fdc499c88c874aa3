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
- Every NAS-Bench-201 *training* dataset: the mean rank (0 = first) in the prior mean over
  all 15,625 cells of its 10 best cells (``{name}_top10_prior_rank``), what the default
  model selection (``selection="top-cells"``) minimises.

Why that selection: measured on the benchmark's 15 two-member surrogates (30 members, 5
per target and meta-training draw), the rank of the target's best cell in the pair's
prior at the epochs kept by the held-out Spearman was 3 / 3 / 16 in the median draw and 17
/ 29 / 73 in the worst (CIFAR-10 / CIFAR-100 / ImageNet16-120); at the epochs that rank
the *sources'* 10 best cells highest it was 3 / 1 / 21 and 5 / 4 / 38. The held-out
Spearman is dominated by the bulk of poor cells; a search only asks the prior about the
top ones.
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

TOP_CELLS = 10
"""The size of the prior's top in ``best_in_top10``, and how many of a training table's best
cells ``{name}_top10_prior_rank`` averages over."""
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
        f"best_in_top{TOP_CELLS}": float(best in np.argsort(-prior)[:TOP_CELLS]),
        "best_prior_rank": float((prior > prior[best]).sum()),
        "top1pct_spearman": _correlation(spearmanr, prior[top], accuracy[top]),
    }


def top_cells_rank(prior: np.ndarray, accuracy: np.ndarray, count: int = TOP_CELLS) -> float:
    """Mean rank (0 = first; cells with a strictly higher prior mean counted) of the ``count``
    cells of best ``accuracy`` in ``prior`` (both ``15625``-long)."""
    best = np.argsort(-accuracy, kind="stable")[:count]
    ascending = np.sort(prior)
    return float(np.mean(len(prior) - np.searchsorted(ascending, prior[best], side="right")))


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
        for name, accuracy in meta.training_tables.items():
            prior = posterior_mean(loss.gp, features_of_all_cells(loss.kernel, *loss.bank.dataset(name))).cpu().numpy()
            figures[f"{name}_top{TOP_CELLS}_prior_rank"] = top_cells_rank(prior, accuracy)
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


def selection_score(figures: dict[str, float], rule: str = "top-cells") -> float:
    """The figure that picks the best epoch (higher is better); it never looks at an
    excluded dataset.

    ``top-cells``: minus the mean over the NAS-Bench-201 training datasets of
    ``log(1 + rank)``, ``rank`` the mean prior rank of the dataset's 10 best cells (falls
    back to ``spearman`` when no such dataset is trained on). ``spearman``: the mean of the
    MetaD2A held-out Spearman and the held-out-cells Spearman of every NAS-Bench-201 training
    dataset. NaN when no figure is available (the last epoch is kept).
    """
    if rule == "top-cells":
        ranks = [value for key, value in figures.items() if key.endswith(f"_top{TOP_CELLS}_prior_rank")]
        if ranks:
            return float(-np.mean(np.log1p(ranks)))
    keys = [key for key in figures if key == "metad2a_spearman" or key.endswith("_heldout_spearman")]
    values = [figures[key] for key in keys if not np.isnan(figures[key])]
    return float(np.mean(values)) if values else float("nan")


def selection_starts(config_epochs: int, rule: str) -> int:
    """The first epoch that ``rule`` may keep: ``top-cells`` skips the first fifth of the
    epochs (the outer step is largest there, and the top of the prior still moves run to
    run), ``spearman`` none. Earlier epochs are kept in ``model.pt`` only until then."""
    return config_epochs // 5 + 1 if rule == "top-cells" else 1
