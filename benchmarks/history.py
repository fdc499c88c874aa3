"""``python -m benchmarks.history``: does meta-training on earlier searches make the next one faster?

The loop a team runs: search a dataset, meta-train on what the search found, search the
next dataset. Measured on NAS-Bench-201 with CIFAR-100 as the next dataset, for K
independent draws (meta-training seeds 0..K-1):

1. ``metad2a-only``: a surrogate meta-trained on MetaD2A's records alone (no NAS-Bench-201
   table at all);
2. histories: TNAS searches of CIFAR-10 and ImageNet16-120 with that surrogate
   (``--budget`` queries each, run seed k): what a team would have found;
3. ``history``: a surrogate meta-trained on MetaD2A's records plus those two run histories
   (``--source``), still without any NAS-Bench-201 table;
4. ``full-table``: the default single surrogate meta-trained on MetaD2A and the CIFAR-10 and
   ImageNet16-120 tables (every cell of both);

then TNAS on CIFAR-100 with each kind of surrogate: search seed s uses draw s % K and draws
CIFAR-100's image sample with s, observes the seed-mean validation accuracy, and the table
gives queries to the best-validation cell and the returned cell's test accuracy after 10
and 100 queries. No surrogate saw CIFAR-100. Every step resumes (meta-trainings from their
last epoch, searches by replay); several processes may share the work.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.aggregate import RunData, best_cells, holds_run_of, load_run, mean_and_se, runs_as
from benchmarks.constrained import finished_runs, method_row, row_cells
from benchmarks.nb201 import claim_run, make_run
from benchmarks.results_page import format_stat
from tnas.cli_common import OneLineErrorParser, path_argument, positive_int, run_command
from tnas.io import atomic_write_text
from tnas.meta_train import MetaTrainConfig
from tnas.meta_train.ensemble import members_finished
from tnas.meta_train.trainer import meta_train
from tnas.oracles import NB201Table, get_task
from tnas.rundir import RunDirectory
from tnas.search.cli import default_method_options
from tnas.search.config import RunConfig
from tnas.search.methods import stale_settings
from tnas.search.surrogates import default_surrogate_dir, resolve_surrogate

PROG = "python -m benchmarks.history"
TARGET = "cifar100"
HISTORY_DATASETS = ("cifar10", "imagenet16-120")
NO_TABLES = ("cifar10-valid", "cifar100", "imagenet16-120")
KINDS = ("metad2a-only", "history", "full-table")
DEFAULT_OUT = Path("benchmarks/results-history")
DEFAULT_PAGE = Path("benchmarks/RESULTS-history.md")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example:\n  OMP_NUM_THREADS=1 python -m benchmarks.history   # one process per "
                                "core may share the work")  # fmt: skip
    parser.add_argument("--draws", type=positive_int, default=5, help="meta-training draws K (default: 5)")
    parser.add_argument("--seeds", type=positive_int, default=10, help="CIFAR-100 search seeds (default: 10)")
    parser.add_argument("--budget", type=positive_int, default=100, help="queries per search, histories too (default: 100)")
    parser.add_argument("--out", type=path_argument, default=DEFAULT_OUT, help=f"work folder (default: {DEFAULT_OUT})")
    parser.add_argument("--page", type=Path, default=DEFAULT_PAGE, help=f"results page (default: {DEFAULT_PAGE})")
    parser.add_argument("--data-dir", type=Path, default=None, help="data directory (default: the usual lookup)")
    parser.add_argument("--report-only", action="store_true", help="write the page from what is finished")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def _meta_train(config: MetaTrainConfig, out: Path, data_dir: Path | None) -> bool:
    """Meta-train into ``out`` unless finished or claimed; whether it is finished now."""
    if members_finished(out, 1):
        return True
    with claim_run(out) as claimed:
        if claimed and not members_finished(out, 1):
            meta_train(config, out, data_dir=data_dir)
    return members_finished(out, 1)


def _search(dataset: str, seed: int, surrogate: Path, budget: int, out: Path, table: NB201Table,
            data_dir: Path | None, *, redo_stale: bool = True) -> None:  # fmt: skip
    """One TNAS run; ``redo_stale=False`` for a history run, which a surrogate is meta-trained
    on: a stale one stops the experiment instead of being redone under that surrogate."""
    make_run(out, search_config(dataset, seed, surrogate, budget), table, data_dir=data_dir, redo_stale=redo_stale)


def search_config(dataset: str, seed: int, surrogate: Path, budget: int) -> RunConfig:
    """The configuration of one TNAS run of the experiment (with ``surrogate``; sample ``seed``)."""
    options = default_method_options("tnas") | {"surrogate": str(surrogate), "sample_seed": seed}
    return RunConfig(method="tnas", dataset=dataset, seed=seed, budget=budget, fidelity=200, observe="mean",
                     options=options)  # fmt: skip


def holds_search(path: Path, config: RunConfig) -> bool:
    """Whether ``path`` holds a run of ``config`` (see :func:`is_search`)."""
    return holds_run_of(path, config, normalise=_surrogate_resolved)


def is_search(record: Mapping[str, Any], config: RunConfig) -> bool:
    """Whether a run's ``config.json`` record is a run of ``config`` searched as this code
    searches it (not stale: :func:`tnas.search.methods.stale_settings`), the surrogate
    directories compared as the folders they name (a run made with ``--out`` spelt another way
    is the same run)."""
    return runs_as(record, config, normalise=_surrogate_resolved) and not stale_settings(config, record)


def _surrogate_resolved(config: RunConfig) -> RunConfig:
    surrogate = config.options.get("surrogate")
    options = {**config.options, "surrogate": str(Path(surrogate).expanduser().resolve())} if surrogate else config.options
    return replace(config, options=options)


def surrogate_path(out: Path, kind: str, draw: int) -> Path:
    """Where draw ``draw`` of a kind of surrogate lives (the full-table one: the default cache)."""
    if kind == "full-table":
        return default_surrogate_dir("cifar100", seed=draw, members=1)
    return out / "surrogates" / kind / f"seed{draw}"


def history_path(out: Path, dataset: str, draw: int) -> Path:
    return out / "histories" / dataset / f"seed{draw}"


def target_path(out: Path, kind: str, seed: int) -> Path:
    return out / "cifar100" / kind / f"seed{seed}"


def run_all(args: argparse.Namespace, table: NB201Table) -> None:
    out, draws = args.out, range(args.draws)
    for draw in draws:  # 1. MetaD2A only
        _meta_train(MetaTrainConfig(exclude=NO_TABLES, seed=draw), surrogate_path(out, "metad2a-only", draw),
                    args.data_dir)  # fmt: skip
    for draw in draws:  # 2. what a team would have found on the other datasets
        surrogate = surrogate_path(out, "metad2a-only", draw)
        if not members_finished(surrogate, 1):  # another process is meta-training it
            continue
        for dataset in HISTORY_DATASETS:
            _search(dataset, draw, surrogate, args.budget, history_path(out, dataset, draw), table, args.data_dir,
                    redo_stale=False)
    for draw in draws:  # 3. meta-trained on those histories
        histories = [history_path(out, dataset, draw) for dataset in HISTORY_DATASETS]
        if all(RunDirectory(path).read_summary() is not None for path in histories):
            config = MetaTrainConfig(exclude=NO_TABLES, sources=tuple(map(str, histories)), seed=draw)
            _meta_train(config, surrogate_path(out, "history", draw), args.data_dir)
    for draw in draws:  # 4. the default single surrogate, on both other tables
        resolve_surrogate(TARGET, None, seed=draw, members=1, data_dir=args.data_dir)
    for seed in range(args.seeds):
        for kind in KINDS:
            surrogate = surrogate_path(out, kind, seed % args.draws)
            if members_finished(surrogate, 1):
                _search(TARGET, seed, surrogate, args.budget, target_path(out, kind, seed), table, args.data_dir)


def render_page(args: argparse.Namespace, table: NB201Table) -> str:
    task = get_task(TARGET)
    valid = table.column(task.valid[200])
    best = best_cells(valid)
    lines = [
        "# Meta-training on earlier searches: CIFAR-100 after CIFAR-10 and ImageNet16-120",
        "",
        f"Generated by `{PROG} --draws {args.draws} --seeds {args.seeds} --budget {args.budget}`. Protocol: TNAS "
        f"(default settings) on NAS-Bench-201 CIFAR-100, seed-mean 200-epoch validation observed; search seed s "
        f"uses meta-training draw s % {args.draws} and draws CIFAR-100's image sample with s. Surrogates (single "
        "models, never meta-trained on CIFAR-100): *metad2a-only*: MetaD2A's records alone; *history*: MetaD2A's "
        f"records plus the {args.budget}-query TNAS histories of CIFAR-10 and ImageNet16-120 made with the "
        "metad2a-only surrogate of the same draw (not their tables); *full-table*: MetaD2A plus the CIFAR-10 and "
        "ImageNet16-120 tables (the default single surrogate). *to best*: queries until the incumbent is CIFAR-100's "
        "best-validation cell (median, max, seeds that got there); *test @k*: mean ± s.e. test accuracy of the "
        "returned cell after k queries.",
        "",
        "| surrogate | meta-training sources | to best | test @10 | test @100 |",
        "| --- | --- | --- | --- | --- |",
    ]
    sources = {"metad2a-only": "MetaD2A (4,230 records)",
               "history": f"MetaD2A + 2 x {args.budget} cells of earlier searches",
               "full-table": "MetaD2A + 2 x 14,844 table cells"}  # fmt: skip
    for kind in KINDS:  # target_path(out, kind, seed) is out/cifar100/<kind>/seed<k>
        def belongs(run: RunData, seed: int, kind: str = kind) -> bool:
            surrogate = surrogate_path(args.out, kind, seed % args.draws)
            return is_search(run.config, search_config(TARGET, seed, surrogate, args.budget))

        runs, others = finished_runs(args.out / TARGET, kind, range(args.seeds), args.budget, belongs)
        cells = row_cells(method_row(kind, runs, args.budget, best), others)
        lines.append(f"| {kind} | {sources[kind]} | {cells} |")
    histories = []
    for dataset in HISTORY_DATASETS:
        loaded = [(load_run(history_path(args.out, dataset, draw), budget=args.budget), draw)
                  for draw in range(args.draws)]
        found = [one for one, draw in loaded if one is not None and is_search(
            one.config, search_config(dataset, draw, surrogate_path(args.out, "metad2a-only", draw), args.budget))]
        if found:
            histories.append(f"{dataset}: {len(found)} histories, incumbent test after {args.budget} queries "
                             f"{format_stat(*(float(v) for v in _last(found)))}")  # fmt: skip
    if histories:
        lines += ["", "The histories (metad2a-only surrogate): " + "; ".join(histories) + "."]
    return "\n".join(lines) + "\n"


def _last(runs: Sequence) -> tuple[float, float]:
    stat = mean_and_se(np.stack([one.incumbent_test for one in runs]))
    return float(stat.mean[-1]), float(stat.se[-1])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _experiment_and_page(args))


def _experiment_and_page(args: argparse.Namespace) -> int:
    table = NB201Table.load(args.data_dir)
    if not args.report_only:
        run_all(args, table)
    atomic_write_text(args.page, render_page(args, table))
    print(f"page {args.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
