"""``python -m benchmarks.constrained``: latency-constrained search on CIFAR-100 (HELP's Table 4).

The 15 settings of HELP (Lee, Lee & Hwang, NeurIPS 2021, Table 4: MetaD2A + HELP on
NAS-Bench-201, CIFAR-100): five devices, three latency limits each. Every method searches
only the feasible cells (``--max-latency-ms L --latency-device D``, known constraints
read from HELP's own latency measurements), observes the seed-mean 200-epoch validation
accuracy, and the page reports

- queries until the incumbent is the best *feasible* cell (highest validation accuracy
  among the cells within the limit): median, max and how many seeds got there;
- the test accuracy of the cell the method returns after 10 and after ``--budget`` queries;
- HELP + MetaD2A's reported accuracy and the latency of their pick, flagged where that
  latency exceeds the limit.

``--source-ranks`` runs nothing and prints, per setting, how the plain average of the
*source* tables (the standardised seed-mean validation accuracies of the other two
NAS-Bench-201 datasets, the data TNAS meta-trains on without CIFAR-100) ranks the best
feasible cell among the feasible cells: a transfer reference without any learning, to
hold the meta-learned prior's rank against.

Runs go through the same runner and configuration as ``python -m tnas.search`` (TNAS's run
seed selects one of the ``--surrogates`` meta-training draws and draws the target's image
sample), one directory per run under ``--out``; finished runs are skipped, interrupted ones
resumed, and several processes may work on one grid.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.aggregate import (
    GridSpec,
    RunData,
    best_cells,
    load_run,
    mean_and_se,
    queries_to_best,
    runs_as,
    summarize_to_best,
)
from benchmarks.nb201 import check_settings_act, make_run, parse_setting, run_config
from benchmarks.results_page import format_stat, format_to_best, stale_run_lines
from tnas.cli_common import (
    OneLineErrorParser,
    option_names,
    options_given,
    path_argument,
    positive_int,
    run_command,
)
from tnas.constraints import TASK_GEOMETRY, Constraints, constrained_space
from tnas.errors import ConfigError
from tnas.io import atomic_write_text
from tnas.oracles import NB201Table, TableOracle, get_task
from tnas.search.config import RunConfig
from tnas.search.methods import get_method
from tnas.search.methods.tnas_setup import CONSTRAINED_SETTINGS
from tnas.search.methods.zero_shot import source_average, zero_shot_sources

PROG = "python -m benchmarks.constrained"
DATASET = "cifar100"
DEFAULT_OUT = Path("benchmarks/results-constrained")
DEFAULT_PAGE = Path("benchmarks/RESULTS-constrained.md")
TARGET_QUERIES = 10
"""The issue's target: TNAS's median queries to the best feasible cell at most this..."""
TARGET_SETTINGS = 12
"""...in at least this many of the 15 settings."""


@dataclass(frozen=True)
class HelpSetting:
    """One row of HELP's Table 4: a device, a latency limit, and what HELP + MetaD2A found."""

    device: str
    limit_ms: float
    help_accuracy: float
    help_latency_ms: float

    @property
    def name(self) -> str:
        return f"{self.device}-{self.limit_ms:g}ms"

    @property
    def constraints(self) -> Constraints:
        return Constraints(max_latency_ms=self.limit_ms, latency_device=self.device)


HELP_SETTINGS: tuple[HelpSetting, ...] = tuple(
    HelpSetting(device, limit, accuracy, latency)
    for device, rows in (
        ("titan_rtx_256", ((18, 69.7, 17.8), (21, 71.5, 18.9), (25, 71.8, 24.2))),
        ("gold_6226", ((8, 67.3, 8.0), (11, 70.2, 10.7), (14, 72.1, 14.3))),
        ("pixel2", ((14, 69.7, 13.0), (18, 71.8, 19.0), (22, 73.2, 25.0))),
        ("eyeriss", ((5, 71.5, 3.9), (7, 71.8, 5.1), (9, 73.5, 9.1))),
        ("fpga", ((4, 70.2, 3.8), (5, 71.8, 4.7), (6, 73.5, 7.4))),
    )
    for limit, accuracy, latency in rows
)
"""HELP's Table 4 (CIFAR-100 test accuracy and measured latency of MetaD2A + HELP's pick)."""


@dataclass(frozen=True)
class MethodRow:
    """One method on one setting, over its finished seeds."""

    method: str
    to_best: str
    median: float
    returned_10: str
    returned_budget: str
    seeds: int


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example:\n  OMP_NUM_THREADS=1 python -m benchmarks.constrained --seeds 10 "
                                "--budget 50   # one process per core may share the grid")  # fmt: skip
    parser.add_argument("--methods", default="tnas,tnas-prior,zero-shot,re,rs",
                        help="comma-separated methods (default: tnas,tnas-prior,zero-shot,re,rs)")
    parser.add_argument("--seeds", type=positive_int, default=10, help="seeds 0..N-1 per method and setting (default: 10)")
    parser.add_argument("--budget", type=positive_int, default=50, help="queries per run (default: 50)")
    parser.add_argument("--surrogates", type=positive_int, default=5,
                        help="meta-training draws TNAS's seeds cycle through (default: 5)")
    parser.add_argument("--settings", default=None,
                        help="comma-separated DEVICE-LIMITms names to run (default: all 15)")
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="METHOD:OPTION=VALUE",
                        help="change a method's default option, e.g. tnas:init=sources (repeatable; give such a "
                        "grid its own --out)")  # fmt: skip
    parser.add_argument("--out", type=path_argument, default=DEFAULT_OUT, help=f"run directories (default: {DEFAULT_OUT})")
    parser.add_argument("--page", type=Path, default=DEFAULT_PAGE, help=f"results page (default: {DEFAULT_PAGE})")
    parser.add_argument("--data-dir", type=Path, default=None, help="data directory (default: the usual lookup)")
    parser.add_argument("--report-only", action="store_true", help="write the page from the finished runs")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--source-ranks", action="store_true",
                        help="run nothing; print where the source tables' average ranks each setting's best "
                        "feasible cell")
    return parser


def _settings(text: str | None) -> tuple[HelpSetting, ...]:
    if text is None:
        return HELP_SETTINGS
    by_name = {setting.name: setting for setting in HELP_SETTINGS}
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in by_name]
    if unknown or not names:
        raise ConfigError(f"unknown or no setting(s) {', '.join(unknown) or repr(text)}; settings: {', '.join(by_name)}")
    return tuple(by_name[name] for name in names)


def run_path(out: Path, setting: HelpSetting, method: str, seed: int) -> Path:
    """``OUT/<device>-<limit>ms/<method>/seed<k>``."""
    return out / setting.name / method / f"seed{seed}"


def setting_run_config(spec: GridSpec, setting: HelpSetting, method: str, seed: int) -> RunConfig:
    """The configuration of one run of the grid: the harness's, under the setting's limit."""
    return dataclasses.replace(run_config(spec, "mean", DATASET, method, seed), constraints=setting.constraints.to_dict())


def run_grid(spec: GridSpec, settings: Sequence[HelpSetting], out: Path, table: NB201Table, data_dir: Path | None,
             progress: bool) -> int:  # fmt: skip
    """Make every unfinished run; the number made."""
    from tqdm import tqdm

    jobs = [(setting, method, seed) for setting in settings for method in spec.methods for seed in spec.seeds]
    made = 0
    for setting, method, seed in tqdm(jobs, desc="constrained grid", unit="run", disable=None if progress else True):
        config = setting_run_config(spec, setting, method, seed)
        path = run_path(out, setting, method, seed)
        made += make_run(path, config, table, data_dir=data_dir) in ("made", "remade")
    return made


def finished_runs(setting_out: Path, method: str, seeds: Sequence[int], budget: int,
                  belongs: Callable[[RunData, int], bool] | None = None) -> tuple[list[RunData], list[int]]:  # fmt: skip
    """``method``'s finished runs under ``setting_out``, and the seeds whose finished run does
    not ``belong`` (run, seed -> whether it is the page's run; made with other settings), which
    the page leaves out and lists. Each run directory is read once."""
    runs: list[RunData] = []
    others: list[int] = []
    for seed in seeds:
        run = load_run(setting_out / method / f"seed{seed}", budget=budget)
        if run is not None and (belongs is None or belongs(run, seed)):
            runs.append(run)
        elif run is not None:
            others.append(seed)
    return runs, others


def method_row(method: str, runs: Sequence[RunData], budget: int, best: np.ndarray) -> MethodRow | None:
    """The row of ``method``'s finished ``runs`` (``None``: none)."""
    if not runs:
        return None
    to_best = summarize_to_best([queries_to_best(one.incumbent_index, best) for one in runs])
    returned = mean_and_se(np.stack([one.recommended_test for one in runs]))  # type: ignore[misc]
    at = min(10, budget) - 1
    return MethodRow(method, format_to_best(to_best, budget), to_best.median,
                     format_stat(float(returned.mean[at]), float(returned.se[at])),
                     format_stat(float(returned.mean[-1]), float(returned.se[-1])), len(runs))  # fmt: skip


def row_cells(row: MethodRow | None, others: Sequence[int]) -> str:
    """The to-best and test cells of a method's row (``not run``, or runs left out as made
    with other settings)."""
    if row is not None:
        return f"{row.to_best} | {row.returned_10} | {row.returned_budget}"
    return "runs of other settings, left out | |" if others else "not run | |"


def _constrained_defaults() -> str:
    """TNAS's constrained defaults in words, for the protocol line."""
    names = {"source_weight": "source weight", "feature_patience": "feature patience"}
    return ", ".join(f"{names.get(name, name)} {value:g}" for name, value in CONSTRAINED_SETTINGS.items())


def render_page(spec: GridSpec, settings: Sequence[HelpSetting], out: Path, table: NB201Table,
                data_dir: Path | None, command: str) -> tuple[str, int | None]:  # fmt: skip
    """The results page, and in how many settings TNAS met the queries target (``None``: no TNAS)."""
    task = get_task(DATASET)
    valid, test = table.column(task.valid[200]), table.column(task.test)
    lines = [
        "# Latency-constrained search on CIFAR-100 (HELP's Table 4 settings)",
        "",
        f"Generated by `{command}`. Protocol: NAS-Bench-201 CIFAR-100, 200 epochs, each query observes the "
        f"seed-mean validation accuracy; known latency constraints from HELP's measurements "
        f"(`hardware/nb201_latency_help.csv`): every method proposes only cells within the limit. "
        f"{len(spec.seeds)} seeds per method, budget {spec.budget}; TNAS's seed s uses meta-training draw "
        f"s % {spec.surrogates} (meta-trained without CIFAR-100) and draws the image sample with s; TNAS and its "
        f"ablations search with TNAS's defaults for a constrained run ({_constrained_defaults()}, README *Hardware "
        "and size constraints*) unless the command sets them. "
        "*to best*: queries until the incumbent is the best feasible cell (highest validation accuracy within the "
        "limit), median / max / seeds that got there; *test @k*: mean ± s.e. test accuracy of the returned cell "
        "after k queries. HELP: MetaD2A + HELP's reported test accuracy and the latency of their pick, "
        "**over** where it exceeds the limit in these tables.",
        "",
        "| setting | feasible cells | best feasible: valid / test | method | to best | test @10 | "
        f"test @{spec.budget} | HELP + MetaD2A (latency) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    met = 0
    have_tnas = False
    left_out: list[str] = []
    stale: list[str] = []
    for setting in settings:
        space = constrained_space(setting.constraints, TASK_GEOMETRY[DATASET], params_mb=table.column(task.params),
                                  present=table.present, data_dir=data_dir)  # fmt: skip
        feasible_valid = np.where(space.mask, valid, np.nan)
        best = best_cells(feasible_valid)
        broke = " **over**" if setting.help_latency_ms > setting.limit_ms else ""
        head = (f"{setting.device} ≤ {setting.limit_ms:g} ms | {len(space):,} | "
                f"{valid[best[0]]:.2f} / {test[best[0]]:.2f}")  # fmt: skip
        help_cell = f"{setting.help_accuracy:.1f} ({setting.help_latency_ms:g} ms{broke})"
        for position, method in enumerate(spec.methods):
            def belongs(run: RunData, seed: int, setting: HelpSetting = setting, method: str = method) -> bool:
                return runs_as(run.config, setting_run_config(spec, setting, method, seed))

            runs, others = finished_runs(out / setting.name, method, spec.seeds, spec.budget, belongs)
            row = method_row(method, runs, spec.budget, best)
            cells = row_cells(row, others)
            expected = partial(setting_run_config, spec, setting, method)
            stale += stale_run_lines(f"{setting.name} {method}", runs, lambda run, expected=expected: expected(run.seed))
            if others:
                left_out.append(f"{setting.name} {method} seeds {', '.join(map(str, others))}")
            if method == "tnas" and row is not None:
                have_tnas = True
                met += row.median <= TARGET_QUERIES
            first = position == 0
            lines.append(f"| {head if first else ' | | '} | {method} | {cells} | {help_cell if first else ''} |")
    if stale:
        lines += ["", "Stale runs, on the page but searched with other settings than this code's (the grid command "
                  "runs them anew):", *stale]  # fmt: skip
    if left_out:
        lines += ["", "Left out, their folders holding runs of other settings than this command's (another "
                  "--set, --surrogates or limit): " + "; ".join(left_out) + "."]  # fmt: skip
    if have_tnas:
        lines += ["", f"TNAS's median queries to the best feasible cell is at most {TARGET_QUERIES} in **{met} of "
                  f"{len(settings)}** settings (target: at least {TARGET_SETTINGS} of 15)."]  # fmt: skip
    return "\n".join(lines) + "\n", (met if have_tnas else None)


def source_ranks(table: NB201Table, settings: Sequence[HelpSetting],
                 data_dir: Path | None) -> list[tuple[str, int, int]]:  # fmt: skip
    """Per setting: its name, the number of feasible cells, and the source average's rank
    (0 = first) of the best feasible CIFAR-100 cell among the feasible cells."""
    prior = source_average(table, zero_shot_sources(DATASET))  # the order the zero-shot method walks
    valid = TableOracle(table, DATASET).valid_values(200)
    rows = []
    for setting in settings:
        feasible = constrained_space(setting.constraints, TASK_GEOMETRY[DATASET], data_dir=data_dir).mask
        best = int(np.argmax(np.where(feasible, valid, -np.inf)))
        rows.append((setting.name, int(feasible.sum()), int(np.sum(feasible & (prior > prior[best])))))
    return rows


SOURCE_RANKS_OPTIONS = ("settings", "data_dir")
"""What ``--source-ranks`` reads of the command line (with itself): the others it would ignore."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: _source_ranks(args, parser) if args.source_ranks else _grid_and_page(args))


def _source_ranks(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    ignored = option_names(parser, [dest for dest in options_given(parser, args)
                                    if dest not in (*SOURCE_RANKS_OPTIONS, "source_ranks")])  # fmt: skip
    if ignored:
        raise ConfigError(f"--source-ranks runs nothing and reads only --settings and --data-dir, so "
                          f"{', '.join(ignored)} would be ignored; leave {'it' if len(ignored) == 1 else 'them'} "
                          "out or drop --source-ranks")  # fmt: skip
    rows = source_ranks(NB201Table.load(args.data_dir), _settings(args.settings), args.data_dir)
    print("setting                feasible  source average's rank of the best feasible cell (0 = first)")
    for name, feasible, rank in rows:
        print(f"{name:<22} {feasible:>8}  {rank}")
    within = sum(rank < TARGET_QUERIES for _, _, rank in rows)
    print(f"within the first {TARGET_QUERIES} cells of that order: {within} of {len(rows)} settings")
    return 0


def _grid_and_page(args: argparse.Namespace) -> int:
    methods = tuple(get_method(name.strip()).name for name in args.methods.split(",") if name.strip())
    if args.seeds < 1 or args.budget < 1 or args.surrogates < 1:
        raise ConfigError("--seeds, --budget and --surrogates must be positive")
    settings = _settings(args.settings)
    spec = GridSpec(observes=("mean",), datasets=(DATASET,), methods=methods, seeds=tuple(range(args.seeds)),
                    budget=args.budget, fidelity=200, surrogates=args.surrogates,
                    settings=tuple(parse_setting(text, methods) for text in args.changes))  # fmt: skip
    check_settings_act(spec, surrogates_given=bool(options_given(build_parser(), args, ["surrogates"])))
    table = NB201Table.load(args.data_dir)
    made = 0 if args.report_only else run_grid(spec, settings, args.out, table, args.data_dir, not args.no_progress)
    changes = "".join(f" --set {text}" for text in args.changes)
    command = f"{PROG} --methods {','.join(methods)} --seeds {args.seeds} --budget {args.budget}{changes}"
    page, met = render_page(spec, settings, args.out, table, args.data_dir, command)
    atomic_write_text(args.page, page)
    target = "" if met is None else f"; TNAS within {TARGET_QUERIES} queries (median) in {met}/{len(settings)} settings"
    print(f"{made} runs made; page {args.page}{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
