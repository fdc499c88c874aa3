"""``python -m tnas.search``: run one search method on one NAS-Bench-201 task."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tnas.cli_common import OneLineErrorParser
from tnas.errors import TnasError
from tnas.oracles import FIDELITIES, TASKS, NB201Table, TableOracle, get_task
from tnas.search.config import OBSERVATION_POLICIES, RunConfig
from tnas.search.methods import METHODS, get_method, make_searcher
from tnas.search.methods.tnas import ACQUISITIONS, INITS, TNASConfig
from tnas.search.runner import RunResult, run

PROG = "python -m tnas.search"


def build_parser() -> argparse.ArgumentParser:
    datasets = "\n".join(f"  {name:<16} {task.description}" for name, task in TASKS.items())
    methods = "\n".join(f"  {name:<16} {method.summary}" for name, method in METHODS.items())
    policies = "\n".join(f"  {name:<16} {text}" for name, text in OBSERVATION_POLICIES.items())
    parser = OneLineErrorParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Search the NAS-Bench-201 space for the best cell on a dataset. Each query looks a\n"
            "cell up in the benchmark table: the method observes validation accuracy, the\n"
            "report quotes the test accuracy of the cell it would return (best validation)."
        ),
        epilog=(
            f"datasets:\n{datasets}\n\nmethods:\n{methods}\n\nobservation policies (--observe):\n"
            f"{policies}\n\n"
            "outputs (in --out): config.json, trajectory.csv (one row per query), summary.json.\n"
            "Re-running the same command resumes an interrupted run without repeating a query.\n\n"
            "example:\n"
            f"  {PROG} --dataset cifar100 --method re --budget 100 --seed 0\n"
            f"  {PROG} --dataset cifar10 --method rs --observe seed --out runs/c10-rs"
        ),
    )
    parser.add_argument("--dataset", required=True, help="task to search (see below)")
    parser.add_argument("--method", required=True, help="search method (see below)")
    parser.add_argument("--budget", type=int, default=100, help="number of queries (default: 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the run (default: 0)")
    parser.add_argument(
        "--fidelity", type=int, choices=FIDELITIES, default=200,
        help="training epochs whose results are observed (default: 200)",
    )  # fmt: skip
    parser.add_argument(
        "--observe", choices=tuple(OBSERVATION_POLICIES), default="mean",
        help="what a query observes (default: mean)",
    )  # fmt: skip
    parser.add_argument(
        "--max-sim-hours", type=float, default=None,
        help="also stop once this many simulated training hours are spent",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=None,
        help="run directory (default: runs/DATASET/METHOD/seedSEED)",
    )  # fmt: skip
    parser.add_argument(
        "--data-dir", type=Path, default=None,
        help="folder holding nb201/nb201_merged.csv (default: $TNAS_DATA_DIR, then ../shared/data)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    tnas = parser.add_argument_group("TNAS (--method tnas)")
    defaults = TNASConfig()
    tnas.add_argument("--surrogate", type=Path, default=None,
                      help="meta-trained surrogate directory (python -m tnas.meta_train --out DIR); default: "
                      "one meta-trained without the target, cached, or meta-trained now (a few minutes)")
    tnas.add_argument("--acquisition", choices=ACQUISITIONS, default=defaults.acquisition,
                      help=f"acquisition function (default: {defaults.acquisition})")
    tnas.add_argument("--init", choices=INITS, default=defaults.init,
                      help="initial design: top cells of the prior mean, or random (default: prior)")
    tnas.add_argument("--init-size", type=int, default=defaults.init_size, help="cells in the initial design")
    tnas.add_argument("--batch-size", type=int, default=defaults.batch_size,
                      help="q, cells proposed per acquisition (q > 1: qLogNEI / qUCB)")
    tnas.add_argument("--finetune-steps", type=int, default=defaults.finetune_steps,
                      help=f"Adam steps on the GP head per query (default: {defaults.finetune_steps})")
    tnas.add_argument("--allow-target-in-meta-train", action="store_true",
                      help="accept a surrogate whose meta-training saw the target dataset")  # fmt: skip
    return parser


def method_options(args: argparse.Namespace, method: str) -> dict[str, Any]:
    """The method-specific settings of a run (empty for the baselines)."""
    if method != "tnas":
        return {}
    return {
        "surrogate": str(args.surrogate) if args.surrogate else None,
        "allow_target_in_meta_train": args.allow_target_in_meta_train,
        "acquisition": args.acquisition,
        "init": args.init,
        "init_size": args.init_size,
        "batch_size": args.batch_size,
        "finetune_steps": args.finetune_steps,
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        task = get_task(args.dataset)
        method = get_method(args.method)
        config = RunConfig(
            method=method.name,
            dataset=task.name,
            seed=args.seed,
            budget=args.budget,
            fidelity=args.fidelity,
            observe=args.observe,
            max_sim_hours=args.max_sim_hours,
            options=method_options(args, method.name),
        )
        out = args.out or Path("runs") / task.name / method.name / f"seed{args.seed}"
        table = NB201Table.load(args.data_dir)
        oracle = TableOracle(table, task)
        oracle.valid_values(config.fidelity)  # fails early on an unsupported fidelity
        run_info: dict[str, Any] = {"method_settings": method.settings,
                                    "oracle": {"kind": "table", "source": str(table.source)}}  # fmt: skip
        searcher = make_searcher(config, data_dir=args.data_dir, progress=not args.no_progress, run_info=run_info)
        result = run(searcher, oracle, config, out, run_info=run_info, progress=not args.no_progress)
    except TnasError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    print(format_summary(result, out, run_info))
    return 0


def format_summary(result: RunResult, out: Path, run_info: dict[str, Any] | None = None) -> str:
    """A short human-readable summary of a finished run."""
    summary: dict[str, Any] = result.summary
    surrogate = (run_info or {}).get("surrogate")
    observed = "seed mean" if summary["observe"] == "mean" else "one seed per query"
    resumed = f" ({result.replayed} replayed from an earlier run)" if result.replayed else ""
    return "\n".join(
        [
            f"{summary['method']} on {summary['dataset']}, seed {summary['seed']}: "
            f"{summary['queries']} queries{resumed}",
            f"  best cell    #{summary['best_index']} {summary['best_arch']}",
            f"  validation   {summary['best_valid']:.2f}% ({observed}, {summary['fidelity']} epochs)",
            f"  test         {summary['best_test']:.2f}%",
            f"  found at     query {summary['found_at_query']}",
            f"  simulated    {summary['sim_gpu_hours']:.1f} GPU-hours of training",
            f"  overhead     {summary['overhead_s']:.3f} s in the optimizer",
            *([f"  surrogate    {surrogate['path']} (meta-trained without {', '.join(surrogate['exclude']) or 'nothing'})"]
              if surrogate else []),
            f"  run dir      {out}",
        ]
    )
