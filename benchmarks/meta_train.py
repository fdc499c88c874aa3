"""Meta-training figures, and the K independently meta-trained surrogates the benchmark uses.

Usage::

    python -m benchmarks.meta_train [--surrogates 5] [--members 2] [--variants tnas,tnas-nodata]
                                    [--out DIR] [--jobs 1] [--cold] [--skip-training]

For each excluded dataset (``cifar10-valid``, ``cifar100``, ``imagenet16-120``), each
variant (``tnas``: the default surrogate; ``tnas-nodata``: the same meta-trained without
the dataset encoder) and each surrogate seed ``k < --surrogates``, this meta-trains the
default surrogate ``k`` (``--members`` independent runs with seeds ``k*M .. k*M+M-1``) by
running ``python -m tnas.meta_train`` in fresh processes, into the directory where
``python -m tnas.search`` and ``python -m benchmarks.nb201`` look for it (``--out``, default
``$TNAS_CACHE_DIR/surrogates``). Finished members are skipped, so the command resumes.
``--jobs N`` runs N meta-trainings at once, one thread each (``OMP_NUM_THREADS=1``;
a run's result depends on its thread count, which is recorded); ``--cold`` gives each run
an empty feature cache, so featurisation is timed too.

It then prints, per surrogate, on the excluded dataset (all 15,625 cells, the target's
image sample drawn with seed 0): the wall time of its members, their kept epochs, and how
the surrogate's prior mean (the members' average) ranks the cells: zero-shot Spearman,
whether the best cell is in the top 10, the best cell's rank (0 = first) and the Spearman
among the top 1% of cells; then the spread of the best cell's rank over the surrogates.
Next to it, the same deep kernel **without meta-training** (random weights fitted on 10
random cells).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from tnas import paths
from tnas.cli_common import (
    OneLineErrorParser,
    option_names,
    options_given,
    path_argument,
    positive_int,
    run_command,
)
from tnas.datasets import get_dataset
from tnas.encoders import ImageFeaturizer, cells_to_batch, dataset_inputs
from tnas.errors import ConfigError
from tnas.meta_train import MetaTrainConfig
from tnas.meta_train.checkpoint import is_finished, recorded_epochs
from tnas.meta_train.data import NB201_SOURCES
from tnas.meta_train.ensemble import load_surrogate, member_dir, members_finished, write_ensemble_record
from tnas.meta_train.trainer import unkept_epochs
from tnas.meta_train.validation import prior_figures
from tnas.models import DeepKernel, FeatureGP, negative_log_marginal_likelihood, posterior_mean
from tnas.models.surrogate import features_of_all_cells
from tnas.oracles import NB201Table
from tnas.search.methods.tnas import codes_and_prior
from tnas.search.surrogates import DEFAULT_MEMBERS, default_surrogate_config, default_surrogate_dir
from tnas.space import NUM_CELLS, all_cells

EXCLUSIONS = ("cifar10-valid", "cifar100", "imagenet16-120")
VARIANTS = {"tnas": True, "tnas-nodata": False}
"""Benchmark variant -> whether its surrogates use the dataset encoder."""
PROG = "python -m benchmarks.meta_train"


def member_command(config: MetaTrainConfig, out: Path, data_dir: str | None, keep_epochs: bool = False) -> list[str]:
    """The ``python -m tnas.meta_train`` command of one surrogate (or ensemble member)."""
    command = [sys.executable, "-m", "tnas.meta_train", "--exclude", *config.exclude, "--seed", str(config.seed),
               "--out", str(out), "--no-progress", *(["--keep-epochs"] if keep_epochs else [])]  # fmt: skip
    if not config.kernel.use_dataset:
        command.append("--no-dataset-encoder")
    return command + (["--data-dir", data_dir] if data_dir else [])


def run_meta_training(command: list[str], cold: bool, threads: int | None) -> float:
    """Wall seconds of one meta-training command in a fresh process."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, **({"TNAS_CACHE_DIR": cache} if cold else {}))
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        start = time.perf_counter()
        finished = subprocess.run(command, check=False, env=env, stdout=subprocess.DEVNULL)
        if finished.returncode != 0:  # the member's own error is on stderr above
            raise ConfigError(f"meta-training {command[command.index('--out') + 1]} failed (exit status "
                              f"{finished.returncode}; its error is above)")  # fmt: skip
        return time.perf_counter() - start


def untrained_figures(exclude: str, data_dir: str | None, seed: int, steps: int = 200) -> dict[str, float]:
    """The deep kernel with random weights, fitted only on 10 random cells of the target."""
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


def surrogate_figures(directory: Path, exclude: str, data_dir: str | None) -> dict[str, float]:
    """How a (possibly ensemble) surrogate's prior mean ranks the excluded dataset's cells."""
    surrogate = load_surrogate(directory)
    accuracy = np.asarray(NB201Table.load(data_dir).column(NB201_SOURCES[exclude]), dtype=np.float64)
    features, mask = dataset_inputs(get_dataset(exclude, data_dir=data_dir), ImageFeaturizer(),
                                    np.random.default_rng(0), surrogate.samples_per_class)  # fmt: skip
    _, prior = codes_and_prior(surrogate.kernels, features[None], mask[None])
    return {**prior_figures(prior.numpy(), accuracy), "epochs": [member.epoch for member in surrogate.members]}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--surrogates", type=positive_int, default=5, help="surrogate seeds 0..K-1 per target (default: 5)")
    parser.add_argument("--members", type=positive_int, default=DEFAULT_MEMBERS,
                        help=f"members per surrogate (default: {DEFAULT_MEMBERS}, the search's default)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--keep-epochs", action="store_true",
                        help="members also keep every epoch's kernel (tnas.meta_train --keep-epochs); refused "
                        "where a finished member did not keep its epochs")
    parser.add_argument("--exclusions", default=",".join(EXCLUSIONS), help="targets to leave out, one at a time")
    parser.add_argument("--out", type=path_argument, default=None, help="root of the surrogates (default: the cache's)")
    parser.add_argument("--jobs", type=positive_int, default=1, help="meta-trainings at once, one thread each (default: 1)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cold", action="store_true", help="time featurisation too (empty feature cache)")
    parser.add_argument("--skip-training", action="store_true", help="only report the surrogates found")
    parser.add_argument("--skip-untrained", action="store_true", help="do not compute the untrained kernel's row")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    variants = [name for name in args.variants.split(",") if name]
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown or not variants:
        parser.error(f"unknown or no variant(s) {unknown} (choose from {', '.join(VARIANTS)})")
    exclusions = [name for name in args.exclusions.split(",") if name]
    if not exclusions or any(name not in EXCLUSIONS for name in exclusions):
        parser.error(f"--exclusions {args.exclusions!r}: choose from {', '.join(EXCLUSIONS)}")
    args.exclusions = ",".join(exclusions)
    training_only = option_names(parser, options_given(parser, args, ["keep_epochs", "jobs", "cold"]))
    if args.skip_training and training_only:
        parser.error(f"{', '.join(training_only)} cannot change a --skip-training run, which trains nothing and "
                     f"only reports the surrogates found; leave {'it' if len(training_only) == 1 else 'them'} out")
    return run_command(PROG, lambda: _run(args, variants))


def _run(args: argparse.Namespace, variants: list[str]) -> int:
    root = args.out or paths.cache_dir() / "surrogates"

    plan = []  # (variant, exclude, k, directory)
    for variant in variants:
        for exclude in args.exclusions.split(","):
            for k in range(args.surrogates):
                directory = root / default_surrogate_dir(exclude, seed=k, members=args.members,
                                                         use_dataset=VARIANTS[variant]).name  # fmt: skip
                plan.append((variant, exclude, k, directory))
    seconds: dict[str, float] = {}
    if not args.skip_training:
        jobs, unkept = [], []
        for variant, exclude, k, directory in plan:
            config = default_surrogate_config(exclude, seed=k, members=args.members, use_dataset=VARIANTS[variant])
            for j in range(args.members):  # each member its own job, so that members parallelise
                directory_j = member_dir(directory, j, args.members)
                if not is_finished(directory_j):
                    member = replace(config, seed=config.seed + j)
                    jobs.append((str(directory_j), member_command(member, directory_j, args.data_dir, args.keep_epochs)))
                elif args.keep_epochs and unkept_epochs(directory_j, recorded_epochs(directory_j)):
                    unkept.append(directory_j)
        if unkept:  # finished members are skipped: --keep-epochs could not keep their epochs
            raise ConfigError(
                f"--keep-epochs cannot change {len(unkept)} finished member(s) ({unkept[0]}"
                f"{', ...' if len(unkept) > 1 else ''}): they were meta-trained without keeping their epochs' "
                "kernels, which cannot be recovered without training again; give a new --out to meta-train them "
                "with --keep-epochs, or leave --keep-epochs out"
            )
        threads = 1 if args.jobs > 1 else None
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {name: pool.submit(run_meta_training, command, args.cold, threads) for name, command in jobs}
            for name, future in futures.items():
                seconds[name] = future.result()
                print(f"  meta-trained {name} in {seconds[name]:.0f} s", file=sys.stderr, flush=True)
    for variant, exclude, k, directory in plan:  # the ensemble record, once all its members exist
        if args.members > 1 and members_finished(directory, args.members):
            write_ensemble_record(directory, default_surrogate_config(
                exclude, seed=k, members=args.members, use_dataset=VARIANTS[variant]), args.members)  # fmt: skip

    results: dict = {}
    for variant, exclude, k, directory in plan:
        figures = surrogate_figures(directory, exclude, args.data_dir)
        member_dirs = [member_dir(directory, j, args.members) for j in range(args.members)]
        figures["seconds"] = [seconds.get(str(d)) for d in member_dirs]
        results.setdefault(variant, {}).setdefault(exclude, {})[k] = figures
    print(f"Default surrogates ({args.members} member(s) each), prior mean on the excluded dataset "
          "(all 15,625 cells, image sample seed 0):")  # fmt: skip
    print(f"  {'variant':<13}{'excluded':<16}{'k':>3}{'seconds':>16}{'epochs':>14}{'prior rho':>11}"
          f"{'best@top10':>12}{'best rank':>11}{'top1% rho':>11}")  # fmt: skip
    for variant, by_exclude in results.items():
        for exclude, by_k in by_exclude.items():
            for k, f in by_k.items():
                times = "/".join(f"{s:.0f}" if s else "-" for s in f["seconds"])
                epochs = "/".join(str(e) for e in f["epochs"])
                print(f"  {variant:<13}{exclude:<16}{k:>3}{times:>16}{epochs:>14}{f['prior_spearman']:>11.3f}"
                      f"{int(f['best_in_top10']):>12}{f['best_prior_rank']:>11.0f}{f['top1pct_spearman']:>11.3f}")
            ranks = sorted(f["best_prior_rank"] for f in by_k.values())
            print(f"  {'':<13}{exclude:<16}best cell's rank over the surrogates: best {ranks[0]:.0f}, "
                  f"median {np.median(ranks):.0f}, worst {ranks[-1]:.0f}")
    if not args.skip_untrained:
        print("\nSame kernel without meta-training (random weights, fitted on 10 random cells):")
        for exclude in args.exclusions.split(","):
            f = untrained_figures(exclude, args.data_dir, seed=0)
            results.setdefault("untrained", {})[exclude] = f
            print(f"  {exclude:<16} prior rho {f['prior_spearman']:.3f}, best rank {f['best_prior_rank']:.0f}, "
                  f"top1% rho {f['top1pct_spearman']:.3f}, after 10 cells rho {f['post10_spearman']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
