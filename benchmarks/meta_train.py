"""Meta-training figures: wall time and validation of the default configuration.

Usage::

    python -m benchmarks.meta_train [--out runs/bench-meta] [--data-dir DIR] [--cold]

For each of ``--exclude cifar10-valid``, ``cifar100`` and ``imagenet16-120`` this runs
``python -m tnas.meta_train`` with the default configuration in a fresh process (``--cold``:
with an empty feature cache, so featurisation is timed too), then prints the figures of
the kept epoch (``model.pt``) on the excluded dataset: zero-shot Spearman of the prior
mean over all 15,625 cells, Spearman of the posterior mean after conditioning on 10
random cells, whether the best cell is in the prior's top 10, the best cell's rank in the
prior (0 = first), the Spearman of the prior among the top 1% of cells (where a search
spends its queries) and MetaD2A held-out correlations.

Next to it, the same deep kernel **without meta-training**: random weights, all of them
(encoders, MLP, mean, kernel, noise) fitted by 200 Adam steps on the marginal likelihood
of the same 10 cells, then the same figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from tnas.datasets import get_dataset
from tnas.encoders import ImageFeaturizer, cells_to_batch, dataset_inputs
from tnas.meta_train import MetaTrainConfig, load_model
from tnas.meta_train.data import NB201_SOURCES
from tnas.meta_train.validation import TOP_K, prior_figures
from tnas.models import DeepKernel, FeatureGP, negative_log_marginal_likelihood, posterior_mean
from tnas.models.surrogate import features_of_all_cells
from tnas.oracles import NB201Table
from tnas.space import NUM_CELLS, all_cells

EXCLUSIONS = ("cifar10-valid", "cifar100", "imagenet16-120")


def run_meta_training(exclude: str, out: Path, data_dir: str | None, cold: bool) -> float:
    """Wall seconds of one ``python -m tnas.meta_train`` run."""
    command = [sys.executable, "-m", "tnas.meta_train", "--exclude", exclude, "--out", str(out), "--no-progress"]
    if data_dir:
        command += ["--data-dir", data_dir]
    with tempfile.TemporaryDirectory() as cache:
        import os

        env = dict(os.environ, **({"TNAS_CACHE_DIR": cache} if cold else {}))
        start = time.perf_counter()
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def untrained_figures(exclude: str, data_dir: str | None, seed: int, steps: int = 200) -> dict[str, float]:
    """The deep kernel with random weights, fitted only on the 10 conditioning cells."""
    config = MetaTrainConfig(exclude=(exclude,), seed=seed)
    accuracy = np.asarray(NB201Table.load(data_dir).column(NB201_SOURCES[exclude]), dtype=np.float64)
    rng = np.random.default_rng([seed, 2023])
    features, mask = dataset_inputs(get_dataset(exclude, data_dir=data_dir), ImageFeaturizer(), rng,
                                    config.samples_per_class)  # fmt: skip
    torch.manual_seed(seed)
    kernel = DeepKernel(config.kernel)
    gp = FeatureGP(kernel)
    chosen = np.random.default_rng([seed, 10]).choice(NUM_CELLS, size=config.conditioning_cells, replace=False)
    observed = accuracy[chosen]
    targets = torch.as_tensor((observed - observed.mean()) / observed.std(), dtype=torch.float64)
    batch = cells_to_batch([all_cells()[i] for i in chosen])
    optimizer = torch.optim.Adam(kernel.parameters(), lr=0.01)
    for _ in range(steps):
        optimizer.zero_grad()
        codes = kernel.dataset_codes(features[None], mask[None])
        negative_log_marginal_likelihood(gp, kernel.embed(batch, codes), targets).backward()
        optimizer.step()
    kernel.eval()
    with torch.no_grad():
        everything = features_of_all_cells(kernel, features[None], mask[None])
        prior = posterior_mean(gp, everything).numpy()
        posterior = posterior_mean(gp, everything, everything[chosen], targets).numpy()
    return {**prior_figures(prior, accuracy), "post10_spearman": float(spearmanr(posterior, accuracy)[0])}


def _ranking(figures: dict[str, float]) -> str:
    """The ranking columns of one row: prior and post-10 Spearman, best cell, top 1%."""
    rank = figures.get("best_prior_rank", float("nan"))
    return (f"{figures['prior_spearman']:>11.3f}{figures['post10_spearman']:>12.3f}"
            f"{int(figures[f'best_in_top{TOP_K}']):>12}{rank:>11.0f}{figures.get('top1pct_spearman', float('nan')):>11.3f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.meta_train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("runs/bench-meta"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cold", action="store_true", help="time featurisation too (empty feature cache)")
    parser.add_argument("--skip-training", action="store_true", help="report existing runs in --out")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    results = {}
    for exclude in EXCLUSIONS:
        out = args.out / f"no-{exclude}"
        seconds = None if args.skip_training else run_meta_training(exclude, out, args.data_dir, args.cold)
        model = load_model(out)
        figures = {key.removeprefix(f"{exclude}_"): value for key, value in model.validation.items()}
        results[exclude] = {"seconds": seconds, "epoch": model.epoch, "meta": figures,
                            "untrained": untrained_figures(exclude, args.data_dir, seed=0)}  # fmt: skip

    print("Default meta-training, 2 CPU cores; figures on the excluded dataset (all 15,625 cells):")
    print(f"  {'excluded':<16}{'time':>8}{'epoch':>7}{'prior rho':>11}{'post10 rho':>12}{'best@top10':>12}"
          f"{'best rank':>11}{'top1% rho':>11}{'MetaD2A r/rho':>16}")  # fmt: skip
    for exclude, result in results.items():
        meta = result["meta"]
        time_text = f"{result['seconds']:.0f}s" if result["seconds"] is not None else "-"
        print(f"  {exclude:<16}{time_text:>8}{result['epoch']:>7}{_ranking(meta)}"
              f"{meta['metad2a_pearson']:>8.3f}/{meta['metad2a_spearman']:.3f}")  # fmt: skip
    print("\nSame kernel without meta-training (random weights, fitted on the 10 conditioning cells):")
    for exclude, result in results.items():
        print(f"  {exclude:<16}{'':>15}{_ranking(result['untrained'])}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
