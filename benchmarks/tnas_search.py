"""TNAS optimizer overhead: seconds per proposal over a real search.

Usage::

    python -m benchmarks.tnas_search [--dataset cifar100] [--runs 5] [--budget 101]
                                     [--surrogate DIR] [--options '{"warm_steps": 0}']

Runs ``--runs`` TNAS searches (run seeds 0..R-1) on a NAS-Bench-201 table with the
default settings of ``python -m tnas.search`` (or ``--options``, a JSON object of TNAS
settings), through the same runner, and reads the optimizer time of every proposal from
the trajectory (``overhead_s``, the time spent in the searcher's ``ask``, ``tell`` and
``recommend``). It prints the median, 90th percentile and mean, over the runs, of the proposals
made with about 10, 50 and 100 observations (within 2): conditioning on the observations, fine-tuning the
GP, and scoring the candidate cells with the acquisition function. Search quality is
measured by ``python -m benchmarks.nb201``, not here.

The surrogate is the default one for the dataset (``$TNAS_CACHE_DIR/surrogates``, made on
the spot if absent) unless ``--surrogate`` names one. Torch uses its default threads (set
``OMP_NUM_THREADS`` to change them); the figures depend on the machine, so state it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from tnas.cli_common import OneLineErrorParser, positive_int, run_command
from tnas.errors import ConfigError
from tnas.oracles import NB201Table, TableOracle
from tnas.search import RunConfig, make_searcher, run
from tnas.search.cli import default_method_options
from tnas.search.methods import get_method

PROG = "python -m benchmarks.tnas_search"

OBSERVATIONS = (10, 50, 100)
WINDOW = 2
"""A figure at n observations pools the proposals made with n - 2 .. n + 2 (at most n at 100)."""


def proposal_seconds(rows) -> np.ndarray:
    """Optimizer seconds of each proposal: ``[k]`` is the proposal made with ``k`` observations."""
    total = np.array([0.0, *(row.overhead_s for row in rows)])
    return np.diff(total)  # query q's row holds the cumulative time up to its tell and recommendation


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--dataset", default="cifar100")
    parser.add_argument("--runs", type=positive_int, default=5)
    parser.add_argument("--budget", type=positive_int, default=101, help="queries per run (default: 101, so that the "
                        "last proposal is made with 100 observations)")
    parser.add_argument("--surrogate", type=Path, default=None)
    parser.add_argument("--options", default="{}", help="JSON object of TNAS settings to change")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: _run(args))


def _check_options(changed: dict, options: dict, budget: int) -> None:
    """Refuse settings these searches cannot act on (``members`` with ``--surrogate``,
    ``pending`` with one worker, ``ucb_beta`` without ``ucb``...: ``Method.unusable_options``):
    the figures would be printed under settings that did not make them."""
    config = RunConfig(method="tnas", dataset="cifar100", seed=0, budget=budget, fidelity=200, observe="mean",
                       options=options)  # fmt: skip
    unusable = get_method("tnas").unusable_options(config)
    for key in changed:
        if key in unusable:
            raise ConfigError(f"--options {key}: it cannot change these searches ({unusable[key]}); leave it out")


def _run(args: argparse.Namespace) -> int:
    try:
        changed = json.loads(args.options)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--options is not a JSON object: {error}") from None
    if not isinstance(changed, dict):
        raise ConfigError(f"--options must be a JSON object of TNAS settings, got {args.options!r}")
    options = {**default_method_options("tnas"), **changed}
    if args.surrogate is not None:
        options["surrogate"] = str(args.surrogate)
    _check_options(changed, options, args.budget)
    oracle = TableOracle(NB201Table.load(args.data_dir), args.dataset)
    seconds = []
    for seed in range(args.runs):
        config = RunConfig(method="tnas", dataset=args.dataset, seed=seed, budget=args.budget, fidelity=200,
                           observe="mean", options=options)  # fmt: skip
        result = run(make_searcher(config, data_dir=args.data_dir), oracle, config)
        seconds.append(proposal_seconds(result.rows))
        print(f"  run {seed}: {result.summary['overhead_s']:.1f} s in the optimizer", file=sys.stderr, flush=True)
    per_run = np.stack(seconds)  # runs x queries
    figures = {}
    print(f"TNAS optimizer seconds per proposal on {args.dataset} (15,625 candidates, {torch.get_num_threads()} "
          f"threads, {args.runs} runs; settings {json.dumps(changed)}):")  # fmt: skip
    for observed in OBSERVATIONS:
        if observed < per_run.shape[1]:
            window = slice(max(observed - WINDOW, 0), min(observed + WINDOW + 1, per_run.shape[1]))
            values = per_run[:, window].reshape(-1)  # proposals made with observed +- WINDOW observations
            figures[observed] = {"median_s": float(np.median(values)), "p90_s": float(np.percentile(values, 90)),
                                 "mean_s": float(np.mean(values))}  # fmt: skip
            print(f"  {observed:>4} observations: median {figures[observed]['median_s']:.3f} s, "
                  f"p90 {figures[observed]['p90_s']:.3f} s, mean {figures[observed]['mean_s']:.3f} s")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
