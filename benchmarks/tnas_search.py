"""TNAS search figures: optimizer overhead, and search quality next to RS, RE and LS.

Usage::

    python -m benchmarks.tnas_search --surrogates DIR [--seeds 10] [--budget 100]
                                      [--observe mean seed] [--json FILE]

``DIR`` holds surrogates meta-trained without each target (``no-cifar10-valid``,
``no-cifar100``, ``no-imagenet16-120``, as ``python -m benchmarks.meta_train`` writes
them); the ``cifar10`` task uses ``no-cifar10-valid`` (its observations are cifar10-valid's).

1. Overhead per iteration (conditioning, fine-tuning, LogEI over all unevaluated
   cells) with 10, 50 and 100 observations on CIFAR-100: median and 90th percentile over
   ``--repeats`` random observation sets.
2. Protocol: 200-epoch table, the method observes validation accuracy (``mean``: seed
   mean; ``seed``: one training seed per query), the report quotes the test accuracy of
   its incumbent (best observed validation). Per dataset and method: queries until the
   incumbent is the task's best cell by seed-mean validation (median, max, how many seeds
   got there within the budget), and the incumbent's test accuracy after 10, 25, 50 and
   100 queries (mean and standard error over seeds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tnas.datasets import get_dataset
from tnas.encoders import ImageFeaturizer, dataset_inputs
from tnas.meta_train import load_model
from tnas.oracles import NB201Table, TableOracle
from tnas.search import RunConfig, make_searcher, run
from tnas.search.methods.tnas import TNASConfig, TNASSearcher, target_scale_of
from tnas.search.surrogates import META_TRAIN_SOURCE

DATASETS = ("cifar10", "cifar100", "imagenet16-120")
CHECKPOINTS = (10, 25, 50, 100)


def measure_overhead(surrogate: Path, repeats: int, data_dir: str | None) -> dict[int, dict[str, float]]:
    """Seconds per TNAS iteration with n observations on CIFAR-100."""
    model = load_model(surrogate)
    table = NB201Table.load(data_dir)
    accuracy = np.asarray(table.column("c100_valid_200"))
    features, mask = dataset_inputs(get_dataset("cifar100", data_dir=data_dir), ImageFeaturizer(),
                                    np.random.default_rng(0), model.samples_per_class)  # fmt: skip
    figures = {}
    for observed in (10, 50, 100):
        seconds = []
        for repeat in range(repeats):
            rng = np.random.default_rng([repeat, observed])
            searcher = TNASSearcher(model.kernel, features[None], mask[None], rng, TNASConfig(),
                                    target_scale=target_scale_of(model.statistics))  # fmt: skip
            for index in rng.choice(len(accuracy), observed, replace=False):
                searcher._observed[int(index)] = float(accuracy[index])
            start = time.perf_counter()
            searcher._acquire()
            seconds.append(time.perf_counter() - start)
        figures[observed] = {"median_s": float(np.median(seconds)), "p90_s": float(np.percentile(seconds, 90))}
    return figures


def search_figures(rows, best_index: int, budget: int) -> dict[str, float]:
    """Queries to the best cell and the incumbent's test accuracy at the checkpoints."""
    reached = next((row.query for row in rows if row.incumbent_index == best_index), None)
    tests = {f"test@{q}": rows[min(q, len(rows)) - 1].incumbent_test for q in CHECKPOINTS if q <= budget}
    return {"queries_to_best": reached, **tests}


def run_grid(surrogates: Path, seeds: int, budget: int, observe: str, data_dir: str | None,
             methods: tuple[str, ...]) -> dict:  # fmt: skip
    table = NB201Table.load(data_dir)
    results: dict = {}
    for dataset in DATASETS:
        oracle = TableOracle(table, dataset)
        best_index = int(np.nanargmax(oracle.valid_values(200)))
        surrogate = surrogates / f"no-{META_TRAIN_SOURCE[dataset]}"
        for method in methods:
            per_seed = []
            for seed in range(seeds):
                options = {"surrogate": str(surrogate), **{k: v for k, v in vars(TNASConfig()).items()}} \
                    if method == "tnas" else {}  # fmt: skip
                config = RunConfig(method=method, dataset=dataset, seed=seed, budget=budget, fidelity=200,
                                   observe=observe, options=options)  # fmt: skip
                searcher = make_searcher(config, data_dir=Path(data_dir) if data_dir else None)
                result = run(searcher, oracle, config)
                per_seed.append(search_figures(result.rows, best_index, budget))
                per_seed[-1]["overhead_s"] = result.summary["overhead_s"]
            results.setdefault(dataset, {})[method] = per_seed
            print(f"  done: {dataset} {method} ({observe})", file=sys.stderr, flush=True)
    return results


def summarise(per_seed: list[dict]) -> dict[str, float]:
    reached = [row["queries_to_best"] for row in per_seed if row["queries_to_best"] is not None]
    summary = {
        "seeds": len(per_seed),
        "reached": len(reached),
        "median_queries": float(np.median([r if r is not None else np.inf for r in
                                           (row["queries_to_best"] for row in per_seed)])),
        "max_queries": float(max(reached)) if len(reached) == len(per_seed) else float("inf"),
        "overhead_s": float(np.mean([row["overhead_s"] for row in per_seed])),
    }
    for key in per_seed[0]:
        if key.startswith("test@"):
            values = np.array([row[key] for row in per_seed])
            summary[key] = float(values.mean())
            summary[key + "_se"] = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
    return summary


def print_table(results: dict, observe: str, budget: int) -> None:
    print(f"\nobserve={observe}, 200 epochs, budget {budget}; test accuracy of the incumbent (mean +- SE):")
    checkpoints = [q for q in CHECKPOINTS if q <= budget]
    header = f"  {'dataset':<16}{'method':<7}{'to best: median':>16}{'max':>6}{'reached':>9}"
    header += "".join(f"{f'@{q}':>16}" for q in checkpoints)
    print(header)
    for dataset, methods in results.items():
        for method, per_seed in methods.items():
            s = summarise(per_seed)
            line = f"  {dataset:<16}{method:<7}{s['median_queries']:>16.1f}{s['max_queries']:>6.0f}"
            line += f"{s['reached']:>5}/{s['seeds']:<3}"
            line += "".join(f"{s[f'test@{q}']:>10.2f}+-{s[f'test@{q}_se']:.2f}" for q in checkpoints)
            print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tnas_search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--surrogates", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--observe", nargs="+", default=["mean", "seed"], choices=["mean", "seed"])
    parser.add_argument("--methods", default="tnas,rs,re,ls")
    parser.add_argument("--repeats", type=int, default=20, help="observation sets per overhead figure")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--overhead-only", action="store_true", help="measure the overhead, run no search")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())

    output: dict = {}
    if not args.skip_overhead:
        overhead = measure_overhead(args.surrogates / "no-cifar100", args.repeats, args.data_dir)
        output["overhead"] = overhead
        print(f"TNAS overhead per iteration on CIFAR-100 (15,625 candidates, {torch.get_num_threads()} threads, "
              f"{args.repeats} repeats):")  # fmt: skip
        for observed, figures in overhead.items():
            print(f"  {observed:>4} observations: median {figures['median_s']:.3f} s, p90 {figures['p90_s']:.3f} s")
    for observe in [] if args.overhead_only else args.observe:
        results = run_grid(args.surrogates, args.seeds, args.budget, observe, args.data_dir,
                           tuple(args.methods.split(",")))  # fmt: skip
        output[observe] = {d: {m: summarise(rows) for m, rows in methods.items()} for d, methods in results.items()}
        print_table(results, observe, args.budget)
    if args.json:
        args.json.write_text(json.dumps(output, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
