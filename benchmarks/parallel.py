"""``python -m benchmarks.parallel``: parallel search on the tables, against simulated wall-clock.

The runs are made by the harness, one ``--out`` per worker count (the simulated backend:
N virtual workers on a clock advanced by each query's recorded training time)::

    python -m benchmarks.nb201 --methods tnas,re,rs --seeds 10 --workers 4 --out benchmarks/results-w4
    python -m benchmarks.nb201 --methods tnas,re,rs --seeds 10 --workers 16 --out benchmarks/results-w16

(one worker is the main grid, ``benchmarks/results``). ``report`` reads them and writes
``benchmarks/RESULTS-parallel.md`` with a figure of validation regret against simulated
wall-clock; ``overhead`` measures the optimizer's time per proposal with cells pending.

Per (dataset, method, workers), over the seeds: how many runs reached the best-validation
cell within the budget, the simulated wall-clock until it finished (median; mean and s.e.
of the runs that reached it), the queries until then (in the order evaluations finished:
what ``trajectory.csv`` numbers) and the submissions until it was submitted (from the
journal: how many cells the method had to propose), and the mean validation regret at
fixed wall-clock times.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.aggregate import best_cells, mean_and_se, regret_curves, step_values_at
from tnas.cli_common import OneLineErrorParser, non_negative_int, positive_int, run_command
from tnas.errors import ConfigError, RunDirectoryError
from tnas.oracles import NB201Table, TableOracle
from tnas.rundir import RunDirectory
from tnas.search.config import RunConfig
from tnas.search.journal import read_journal

PROG = "python -m benchmarks.parallel"
DEFAULT_RUNS = ("1=benchmarks/results", "4=benchmarks/results-w4", "16=benchmarks/results-w16")
"""``report --runs`` by default: the harness grids of 1, 4 and 16 workers (they may not exist yet)."""
DATASETS = ("cifar10", "cifar100", "imagenet16-120")
METHODS = ("tnas", "re", "rs")
HOURS = (1.0, 4.0, 16.0, 64.0)
"""Simulated wall-clock hours at which the page quotes the regret."""
DEFAULT_PAGE = Path("benchmarks/RESULTS-parallel.md")


@dataclass(frozen=True)
class ParallelRun:
    """What the page needs from one run: per query (finishing order) its end time and incumbent."""

    seed: int
    end_h: np.ndarray  # simulated wall-clock hours at which each query finished
    incumbent: np.ndarray  # incumbent cell index after each query
    submitted: dict[int, int]  # cell index -> submission number (journal)


def load_parallel_run(path: Path) -> ParallelRun | None:
    """A finished run directory, or ``None`` while it is unfinished."""
    directory = RunDirectory(path)
    if directory.read_summary() is None:
        return None
    rows = directory.read_trajectory()
    ends = [row.end_s if row.end_s is not None else row.sim_cost_s for row in rows]
    submitted: dict[int, int] = {}
    for submission in read_journal(directory.journal_path):
        submitted.setdefault(submission.index, submission.ticket)
    if not submitted:  # one worker, before the journal existed: submissions are the queries
        submitted = {row.index: row.query for row in rows}
    return ParallelRun(seed=int(path.name.removeprefix("seed")), end_h=np.array(ends) / 3600.0,
                       incumbent=np.array([row.incumbent_index for row in rows]), submitted=submitted)  # fmt: skip


@dataclass(frozen=True)
class ParallelCell:
    """One (dataset, method, workers) of the page, over its seeds."""

    dataset: str
    method: str
    workers: int
    runs: int
    reached: int
    hours_to_best: tuple[float, ...]  # of the runs that reached it
    queries_to_best: tuple[int, ...]
    submissions_to_best: tuple[int, ...]
    regret_at: dict[float, tuple[float, float]]  # hours -> (mean, s.e.)
    curve_hours: np.ndarray
    curve_regret: np.ndarray  # mean regret over seeds at curve_hours


def summarize_cell(dataset: str, method: str, workers: int, runs: Sequence[ParallelRun],
                   valid_mean: np.ndarray) -> ParallelCell:  # fmt: skip
    best = best_cells(valid_mean)
    hours, queries, submissions = [], [], []
    for one in runs:
        hits = np.flatnonzero(np.isin(one.incumbent, best))
        if hits.size:
            hours.append(float(one.end_h[hits[0]]))
            queries.append(int(hits[0]) + 1)
            submissions.append(min(one.submitted[int(i)] for i in best if int(i) in one.submitted))
    grid = np.geomspace(0.05, 400.0, 120)
    regrets = [regret_curves(one.incumbent, valid_mean) for one in runs]  # per query, once per run
    curves = np.array([step_values_at(grid, one.end_h, regret) for one, regret in zip(runs, regrets)])
    at_hours = np.array([step_values_at(np.array(HOURS), one.end_h, regret) for one, regret in zip(runs, regrets)])
    regret_at = {}
    for position, hour in enumerate(HOURS):
        values = at_hours[:, position]
        stat = mean_and_se(values) if not np.isnan(values).any() else None
        regret_at[hour] = (float(stat.mean), float(stat.se)) if stat else (math.nan, math.nan)
    complete = ~np.isnan(curves).any(axis=0)  # every seed has finished a query by then
    mean_curve = np.full(grid.shape, np.nan)
    mean_curve[complete] = curves[:, complete].mean(axis=0)
    return ParallelCell(dataset, method, workers, len(runs), len(hours), tuple(hours), tuple(queries),
                        tuple(submissions), regret_at, grid, mean_curve)  # fmt: skip


def check_workers(path: Path, workers: int, root: Path) -> None:
    """Refuse a run directory below ``--runs WORKERS=ROOT`` whose ``config.json`` records
    another worker count (a one-worker run may not record it). No ``config.json``: not run.

    Raises:
        ConfigError: the recorded count differs from the label.
        RunDirectoryError: a damaged ``config.json``.
    """
    directory = RunDirectory(path)
    record = directory.read_config()
    if record is None:
        return
    try:
        recorded = RunConfig.from_record(record.get("config")).workers
    except ConfigError as error:
        raise RunDirectoryError(f"{directory.config_path} is damaged ({error}); restore it or move {path} "
                                "away") from None  # fmt: skip
    if recorded != workers:
        raise ConfigError(f"--runs {workers}={root}: {path} was run with {recorded} worker"
                          f"{'s' if recorded > 1 else ''}, not {workers}; label the folder {recorded}={root}")


def collect(sources: dict[int, Path], seeds: int, table: NB201Table) -> tuple[list[ParallelCell], list[str]]:
    """Every cell of the page, and the run directories still missing."""
    cells, missing = [], []
    for dataset in DATASETS:
        valid_mean = TableOracle(table, dataset).valid_values(200)
        for method in METHODS:
            for workers, root in sources.items():
                runs = []
                for seed in range(seeds):
                    path = root / "mean" / dataset / method / f"seed{seed}"
                    check_workers(path, workers, root)
                    one = load_parallel_run(path)
                    if one is None:
                        missing.append(str(path))
                    else:
                        runs.append(one)
                if runs:
                    cells.append(summarize_cell(dataset, method, workers, runs, valid_mean))
    return cells, missing


def _median(values: Sequence[float], runs: int) -> float:
    """Median counting runs that never reached the best as infinity."""
    padded = sorted(values) + [math.inf] * (runs - len(values))
    return float(statistics.median(padded)) if padded else math.nan


def _fmt(value: float, digits: int = 1) -> str:
    return "never" if math.isinf(value) else ("—" if math.isnan(value) else f"{value:.{digits}f}")


def table_lines(cells: Sequence[ParallelCell]) -> list[str]:
    hours = " | ".join(f"regret @ {h:g} h" for h in HOURS)
    lines = [f"| dataset | method | workers | reached | wall-clock h to best: median | mean ± s.e. (reached) "
             f"| queries to best: median (max) | submissions to best: median | {hours} |",
             "|" + "---|" * (8 + len(HOURS))]  # fmt: skip
    for cell in cells:
        reached = cell.hours_to_best
        mean = (f"{statistics.mean(reached):.2f} ± {statistics.stdev(reached) / math.sqrt(len(reached)):.2f}"
                if len(reached) > 1 else "—")  # fmt: skip
        queries = (f"{_fmt(_median(cell.queries_to_best, cell.runs), 1)} ({max(cell.queries_to_best)})"
                   if cell.queries_to_best else "never")  # fmt: skip
        regret = " | ".join(f"{m:.2f} ± {s:.2f}" if not math.isnan(m) else "—" for m, s in cell.regret_at.values())
        lines.append(f"| {cell.dataset} | {cell.method} | {cell.workers} | {cell.reached}/{cell.runs} "
                     f"| {_fmt(_median(reached, cell.runs), 2)} | {mean} | {queries} "
                     f"| {_fmt(_median(cell.submissions_to_best, cell.runs), 1)} | {regret} |")  # fmt: skip
    return lines


def plot(cells: Sequence[ParallelCell], path: Path) -> list[Path]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.6 * len(DATASETS), 3.8))
    FigureCanvasAgg(figure)
    colors = {method: f"C{i}" for i, method in enumerate(METHODS)}
    styles = {1: ":", 4: "--", 16: "-"}
    for position, dataset in enumerate(DATASETS):
        ax = figure.add_subplot(1, len(DATASETS), position + 1)
        for cell in (c for c in cells if c.dataset == dataset):
            ax.plot(cell.curve_hours, np.clip(cell.curve_regret, 1e-3, None), color=colors[cell.method],
                    linestyle=styles.get(cell.workers, "-."), linewidth=2.4 if cell.method == "tnas" else 1.4,
                    label=f"{cell.method}, {cell.workers} worker{'s' if cell.workers > 1 else ''}")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(dataset)
        ax.set_xlabel("simulated wall-clock (hours)")
        ax.set_ylabel("validation regret (%-points, floor 1e-3)")
        ax.grid(True, which="both", alpha=0.3)
    figure.axes[0].legend(fontsize=7, ncol=1)
    figure.suptitle("mean over 10 seeds, --observe mean, 200 epochs, simulated backend", fontsize=9)
    figure.tight_layout()
    paths = []
    for suffix in ("png", "pdf"):
        out = path.with_suffix(f".{suffix}")
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, dpi=150)
        paths.append(out)
    return paths


def write_page(cells: Sequence[ParallelCell], missing: Sequence[str], page: Path, command: str) -> Path:
    figure = plot(cells, page.parent / "figures" / "parallel-regret-wallclock")
    lines = [
        "# Parallel search on NAS-Bench-201 (simulated wall-clock)",
        "",
        f"Generated by `{command}` from the run directories the harness wrote "
        "(`python -m benchmarks.nb201 --workers N`).",
        "",
        "**Protocol.** Each run makes 100 queries with `N` workers on the `simulated` backend: an evaluation "
        "submitted at clock time t finishes at t + its recorded 200-epoch training time (the table's "
        "`train_time`); the method is told evaluations in the order they finish and proposes whenever a "
        "worker is free, knowing which cells are pending. `--observe mean` (seed-mean validation accuracy), "
        "seeds 0-9; TNAS's run seed s uses default surrogate draw s mod 5, meta-trained without the target. "
        "One worker is the main grid (`benchmarks/results`). *Best cell*: the cell of best seed-mean "
        "validation accuracy in the table. *Queries to best*: its position in the finishing order. "
        "*Submissions to best*: how many cells were proposed up to it (from `journal.jsonl`). Medians count "
        "runs that never reached the best as infinite (`never`). Regret: best seed-mean validation minus "
        "the incumbent's, mean ± s.e. over seeds at that simulated time (— : some run had not finished a "
        "query yet; a run that has spent its 100 queries keeps its last incumbent, so with 16 workers the "
        "later columns are the end of the budget). The optimizer's own time does not advance the simulated clock (it is in each run's "
        "`overhead_s`).",
        "",
        *table_lines(cells),
        "",
        f"![regret against simulated wall-clock]({figure[0].relative_to(page.parent)})",
        "",
        *([f"Missing runs ({len(missing)}): " + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")]
          if missing else ["No run missing."]),
        "",
    ]  # fmt: skip
    page.write_text("\n".join(lines))
    return page


# ---------------------------------------------------------------------- overhead
def measure_overhead(dataset: str, observations: int, pending: int, proposals: int, data_dir: Path | None,
                     strategy: str, method: str = "tnas") -> list[float]:  # fmt: skip
    """Seconds per proposal of ``method`` (``tnas`` or ``gp``) with ``pending`` cells pending
    after ``observations`` observations.

    The observations are the cells a sequential search of the method on ``dataset`` evaluated
    (seed 0; TNAS: the default surrogate); then each proposal is followed by the observation
    of the oldest pending cell, as a worker finishing would, so refits happen at their usual rate.
    """
    from tnas.search import RunConfig, make_searcher
    from tnas.search.cli import default_method_options

    table = NB201Table.load(data_dir)
    oracle = TableOracle(table, dataset)
    options = {**default_method_options(method), "pending": strategy}
    config = RunConfig(method=method, dataset=dataset, seed=0, budget=observations + pending + proposals,
                       fidelity=200, observe="mean", options=options)  # fmt: skip
    searcher = make_searcher(config, data_dir=data_dir)
    for _ in range(observations):
        cell = searcher.ask()
        searcher.tell(cell, oracle.evaluate(cell, fidelity=200, seed=None))
    running = []
    for _ in range(pending):
        running.append(searcher.ask(tuple(running)))
    seconds = []
    for _ in range(proposals):
        done = running.pop(0)
        searcher.tell(done, oracle.evaluate(done, fidelity=200, seed=None))
        start = time.perf_counter()
        running.append(searcher.ask(tuple(running)))
        seconds.append(time.perf_counter() - start)
    return seconds


# ---------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="write the page from the harness's run directories")
    report.add_argument("--runs", nargs="+", default=list(DEFAULT_RUNS),
                        help="WORKERS=OUT pairs (default: 1=benchmarks/results 4=... 16=...)")  # fmt: skip
    report.add_argument("--seeds", type=positive_int, default=10, help="search seeds per setting (default: 10)")
    report.add_argument("--results-page", type=Path, default=DEFAULT_PAGE,
                        help=f"the page written (default: {DEFAULT_PAGE})")
    report.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding the data (default: the usual lookup)")
    overhead = commands.add_parser("overhead", help="seconds per TNAS (or GP-BO) proposal with cells pending")
    overhead.add_argument("--method", default="tnas", choices=("tnas", "gp"), help="the searcher timed (default: tnas)")
    overhead.add_argument("--dataset", default="cifar10", help="the table searched (default: cifar10)")
    overhead.add_argument("--observations", type=non_negative_int, default=100,
                          help="cells observed before the timed proposals (default: 100)")
    overhead.add_argument("--pending", type=positive_int, default=16,
                          help="cells pending at every timed proposal, as with that many more workers (default: 16)")
    overhead.add_argument("--proposals", type=positive_int, default=30, help="proposals timed (default: 30)")
    overhead.add_argument("--strategy", default="believer", choices=("believer", "x_pending"),
                          help="how TNAS treats pending cells: a kriging believer at the posterior mean, or "
                          "BoTorch's X_pending (default: believer)")
    overhead.add_argument("--data-dir", type=Path, default=None,
                          help="folder holding the data (default: the usual lookup)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if args.command == "overhead":
        seconds = measure_overhead(args.dataset, args.observations, args.pending, args.proposals,
                                   args.data_dir, args.strategy, args.method)  # fmt: skip
        print(f"{args.method} ({args.strategy}) on {args.dataset}, {args.observations} observations, {args.pending} "
              f"pending, {len(seconds)} proposals: median {statistics.median(seconds):.3f} s, mean "
              f"{statistics.mean(seconds):.3f} s, max {max(seconds):.3f} s")  # fmt: skip
        return 0
    sources: dict[int, Path] = {}
    for text in args.runs:
        workers, _, folder = text.partition("=")
        if not (workers.isascii() and workers.isdigit()) or int(workers) < 1 or not folder:
            raise ConfigError(f"--runs {text!r}: expected WORKERS=FOLDER (WORKERS a positive whole number)")
        if int(workers) in sources:
            raise ConfigError(f"--runs gives {int(workers)} workers twice ({sources[int(workers)]} and {folder}); "
                              "give each worker count one folder")  # fmt: skip
        sources[int(workers)] = Path(folder)
    given = tuple(args.runs) != DEFAULT_RUNS
    absent = [str(folder) for folder in sources.values() if not folder.is_dir()]
    if given and absent:  # the default folders may not exist yet; ones you name should
        raise ConfigError(f"--runs: {', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not a folder; give the "
                          "--out folders of python -m benchmarks.nb201 --workers N")  # fmt: skip
    cells, missing = collect(sources, args.seeds, NB201Table.load(args.data_dir))
    command = f"{PROG} report --runs {' '.join(args.runs)} --seeds {args.seeds}"
    page = write_page(cells, missing, args.results_page, command)
    print(f"{len(cells)} cells, {len(missing)} runs missing; page {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
