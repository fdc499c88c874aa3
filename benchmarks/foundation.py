"""Foundation figures: table load time and memory, optimizer overhead of each baseline.

Usage::

    python -m benchmarks.foundation [--data-dir DIR] [--repeats 5] [--seeds 10] [--budget 100]

Table loading is measured in fresh Python processes (so that nothing is already in
memory): *cold* parses the CSV and writes the binary cache, *warm* reads that cache.
Memory is the growth of the process's resident set size (VmRSS) across the load.
Overhead is the time spent inside each searcher's ``ask``/``tell`` per query, from the
``overhead_s`` column of the runs' trajectories.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tnas.cli_common import OneLineErrorParser, path_argument, positive_int, run_command

PROG = "python -m benchmarks.foundation"

_LOAD_SNIPPET = """
import json, sys, time
def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
start = time.perf_counter()
from tnas.oracles import NB201Table
import_seconds = time.perf_counter() - start
before = rss_mb()
start = time.perf_counter()
table = NB201Table.load(sys.argv[1] if sys.argv[1] != "-" else None)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "import_seconds": import_seconds, "rss_mb": rss_mb() - before, "cells": len(table)}))
"""


def measure_table_load(data_dir: Path | None, repeats: int) -> dict[str, list[dict]]:
    """Cold and warm load figures, each from ``repeats`` fresh processes."""
    results: dict[str, list[dict]] = {"cold": [], "warm": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            env = {**_environ(), "TNAS_CACHE_DIR": cache}
            for kind in ("cold", "warm"):
                output = subprocess.run(
                    [sys.executable, "-c", _LOAD_SNIPPET, "-" if data_dir is None else str(data_dir)],
                    capture_output=True, text=True, check=True, env=env,
                )  # fmt: skip
                results[kind].append(json.loads(output.stdout))
    return results


def measure_overhead(data_dir: Path | None, seeds: int, budget: int, dataset: str) -> dict[str, dict]:
    """Per-query optimizer overhead of each registered method, its searchers reading their data
    (TNAS's surrogates, the zero-shot method's source tables) from ``data_dir`` like the table."""
    from tnas.oracles import NB201Table, TableOracle
    from tnas.search import METHODS, RunConfig, make_searcher, run

    oracle = TableOracle(NB201Table.load(data_dir), dataset)
    figures = {}
    for method in METHODS:
        per_query: list[float] = []
        totals = []
        for seed in range(seeds):
            config = RunConfig(method=method, dataset=dataset, seed=seed, budget=budget, fidelity=200, observe="mean")
            rows = run(make_searcher(config, data_dir=data_dir), oracle, config).rows
            cumulative = np.array([row.overhead_s for row in rows])
            per_query.extend(np.diff(cumulative, prepend=0.0).tolist())
            totals.append(cumulative[-1])
        figures[method] = {
            "median_ms": 1e3 * float(np.median(per_query)),
            "p90_ms": 1e3 * float(np.percentile(per_query, 90)),
            "max_ms": 1e3 * float(np.max(per_query)),
            "total_per_run_ms": 1e3 * float(np.mean(totals)),
        }
    return figures


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--data-dir", type=path_argument, default=None,
                        help="data directory (default: the usual lookup)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="fresh processes per load figure")
    parser.add_argument("--seeds", type=positive_int, default=10, help="runs per method for the overhead")
    parser.add_argument("--budget", type=positive_int, default=100, help="queries per run")
    parser.add_argument("--dataset", default="cifar100", help="task of the overhead runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from tnas.oracles import TABLE_FILE
    from tnas.paths import find_data_file

    find_data_file(TABLE_FILE, args.data_dir)  # a one-line error here, not a failing load process below
    from tnas.oracles import NB201Table, TableOracle

    TableOracle(NB201Table.load(args.data_dir), args.dataset)  # an unknown --dataset now, not after the loads
    loads = measure_table_load(args.data_dir, args.repeats)
    print(f"NB201 table load, {args.repeats} fresh processes each (median [min, max]):")
    for kind, runs in loads.items():
        seconds = [run["seconds"] for run in runs]
        memory = [run["rss_mb"] for run in runs]
        print(
            f"  {kind:<5} {statistics.median(seconds):7.3f} s [{min(seconds):.3f}, {max(seconds):.3f}]"
            f"   +{statistics.median(memory):6.1f} MB RSS [{min(memory):.1f}, {max(memory):.1f}]"
            f"   {runs[0]['cells']} cells (import of tnas.oracles: "
            f"{statistics.median(run['import_seconds'] for run in runs):.3f} s)"
        )
    overhead = measure_overhead(args.data_dir, args.seeds, args.budget, args.dataset)
    print(f"\nOptimizer overhead per query ({args.dataset}, budget {args.budget}, {args.seeds} seeds):")
    print(f"  {'method':<8}{'median':>12}{'p90':>12}{'max':>12}{'per run':>14}")
    for method, figures in overhead.items():
        print(
            f"  {method:<8}{figures['median_ms']:>10.3f}ms{figures['p90_ms']:>10.3f}ms"
            f"{figures['max_ms']:>10.3f}ms{figures['total_per_run_ms']:>12.2f}ms"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"table_load": loads, "overhead": overhead}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
