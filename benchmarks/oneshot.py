"""``python -m benchmarks.oneshot``: DARTS-V1, DARTS-V2 and GDAS on the NAS-Bench-201 supernet.

Each (method, seed) is one ``python -m tnas.search --dataset cifar10 --method M --seed S``
run (the same runner, run directory and supernet state as a user's), searching on the
CIFAR-10 sample with the CPU protocol by default. The page reports, per method:

- the derived cells, their table test accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120
  (the NAS-Bench-201 paper's protocol: search on CIFAR-10, look the derived cell up on all
  three), mean and standard error over the seeds;
- the search cost in real seconds on this machine (the finished epochs' sum);
- whether the derived cells are parameter-free (no convolution on any edge) and how the
  share of parameter-free operations in the derived cell moves over the epochs;
- the NAS-Bench-201 paper's figures for the same methods (and SETN, ENAS);
- the black-box methods' simulated cost to return a cell at least as good on CIFAR-10
  (median simulated GPU-hours and queries over their runs), read from grids of
  ``benchmarks.nb201`` run directories (``--compare``).

Finished runs are skipped, interrupted ones resumed (the supernet resumes from its last
epoch), and several processes may share the grid (each run is claimed with a lock).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.aggregate import holds_run_of, mean_and_se
from benchmarks.nb201 import make_run
from benchmarks.results_page import format_stat
from tnas.cli_common import OneLineErrorParser, device_argument, path_argument, positive_int, run_command
from tnas.errors import ConfigError
from tnas.io import atomic_write_text
from tnas.oracles import NB201Table, TableOracle
from tnas.rundir import RunDirectory, is_set_aside
from tnas.search.cli import default_method_options
from tnas.search.config import RunConfig
from tnas.search.methods import ONE_SHOT_METHODS
from tnas.search.methods.oneshot import STATE_FOLDER
from tnas.space import OPERATIONS, Cell
from tnas.train.oneshot import PROTOCOLS, read_result

PROG = "python -m benchmarks.oneshot"
DATASET = "cifar10"
TASKS = ("cifar10", "cifar100", "imagenet16-120")
DEFAULT_OUT = Path("benchmarks/results-oneshot")
DEFAULT_PAGE = Path("benchmarks/RESULTS-oneshot.md")
DEFAULT_COMPARE = (Path("benchmarks/results-baselines"), Path("benchmarks/results"))
PAPER = {  # NAS-Bench-201 paper (Dong & Yang, ICLR 2020), Table 5: test accuracy of the cell searched on CIFAR-10
    "darts-v1": (54.30, 15.61, 16.32),
    "darts-v2": (54.30, 15.61, 16.32),
    "gdas": (93.61, 70.70, 41.71),
    "setn": (87.64, 59.05, 32.52),
    "enas": (53.89, 13.96, 14.84),
}
PARAMETER_FREE = frozenset(OPERATIONS.index(name) for name in ("none", "skip_connect", "avg_pool_3x3"))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        epilog=f"examples:\n  {PROG}\n  {PROG} --seeds 3 --protocol cpu   # twice, one per core, to share the grid\n"
               f"  {PROG} --report-only",
    )  # fmt: skip
    parser.add_argument("--methods", default=",".join(ONE_SHOT_METHODS), help="comma-separated one-shot methods")
    parser.add_argument("--seeds", type=positive_int, default=3, help="runs per method, seeds 0..N-1 (default: 3)")
    parser.add_argument("--protocol", choices=tuple(PROTOCOLS), default="cpu", help="supernet protocol (default: cpu)")
    parser.add_argument("--device", default="cpu", type=device_argument, help="where the supernets train (default: cpu)")
    parser.add_argument("--out", type=path_argument, default=DEFAULT_OUT, help=f"run directories (default: {DEFAULT_OUT})")
    parser.add_argument("--results-page", type=Path, default=DEFAULT_PAGE, help=f"page (default: {DEFAULT_PAGE})")
    parser.add_argument("--compare", default=",".join(map(str, DEFAULT_COMPARE)),
                        help="comma-separated roots of benchmarks.nb201 grids whose cifar10 runs (observe=mean) give "
                        "the black-box methods' cost to reach the one-shot accuracies (missing ones are skipped)")
    parser.add_argument("--data-dir", type=Path, default=None, help="data directory (default: the usual lookup)")
    parser.add_argument("--report-only", action="store_true", help="run nothing: aggregate and write the page")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def run_config(method: str, seed: int, protocol: str) -> RunConfig:
    """The configuration ``python -m tnas.search --dataset cifar10 --method M --seed S --protocol P`` gives."""
    options = {**default_method_options(method), "protocol": protocol}
    return RunConfig(method=method, dataset=DATASET, seed=seed, budget=1, fidelity=200, observe="mean",
                     options=options)  # fmt: skip


def run_grid(methods: Sequence[str], seeds: int, protocol: str, out: Path, table: NB201Table, *, device: str,
             data_dir: Path | None, progress: bool) -> int:  # fmt: skip
    """Make every missing run; returns how many this process made."""
    made = 0
    for method in methods:
        for seed in range(seeds):
            config, path = run_config(method, seed, protocol), out / method / f"seed{seed}"
            if make_run(path, config, table, data_dir=data_dir, progress=progress, device=device) in ("made", "remade"):
                made += 1
                print(f"{method} seed {seed}: done", file=sys.stderr)
    return made


@dataclass(frozen=True)
class OneShotRun:
    """One finished one-shot run: derived cell, per-epoch derived cells, search seconds."""

    seed: int
    cell: Cell
    seconds: float
    device: str
    epochs: list[Cell]


def load_runs(out: Path, method: str, seeds: int, protocol: str) -> list[OneShotRun]:
    """The finished one-shot runs of ``method`` under ``out`` searched with ``protocol`` (seeds
    without a result, or whose run was made with another protocol or settings, are left out)."""
    runs = []
    for seed in range(seeds):
        path = out / method / f"seed{seed}"
        result = read_result(path / STATE_FOLDER)
        if result is not None and holds_run_of(path, run_config(method, seed, protocol)):
            runs.append(OneShotRun(seed=seed, cell=result.cell, seconds=result.seconds, device=result.device,
                                   epochs=[record.derived for record in result.history]))  # fmt: skip
    return runs


def _runs_of(values: Sequence[str]) -> str:
    """``a -> a -> b`` as ``a (x2) -> b``."""
    parts: list[list] = []
    for value in values:
        if parts and parts[-1][0] == value:
            parts[-1][1] += 1
        else:
            parts.append([value, 1])
    return " -> ".join(f"{value} (x{count})" if count > 1 else value for value, count in parts)


def parameter_free_share(cell: Cell) -> float:
    """Share of the cell's six edges that hold no parameters (none, skip, pooling)."""
    return sum(op in PARAMETER_FREE for op in cell.ops) / len(cell.ops)


def black_box_costs(roots: Sequence[Path], accuracy: float) -> dict[str, tuple[float, float, int, int]]:
    """Per black-box method: median simulated GPU-hours and queries until its returned cell's CIFAR-10
    test accuracy reaches ``accuracy`` (``inf``: not within the run), and runs reaching / runs."""
    found: dict[str, list[tuple[float, float]]] = {}
    for root in roots:
        base = root / "mean" / DATASET
        if not base.is_dir():
            continue
        for method_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            for run_dir in sorted(method_dir.glob("seed*")):
                if is_set_aside(run_dir):  # not part of the grid
                    continue
                directory = RunDirectory(run_dir)
                if directory.read_summary() is None:  # unfinished
                    continue
                hit = (math.inf, math.inf)
                for row in directory.read_trajectory():
                    returned = row.incumbent_test if row.recommended_test is None else row.recommended_test
                    if returned >= accuracy:
                        hit = (row.sim_cost_s / 3600, float(row.query))
                        break
                found.setdefault(method_dir.name, []).append(hit)
    return {method: (float(np.median([h for h, _ in hits])), float(np.median([q for _, q in hits])),
                     sum(math.isfinite(h) for h, _ in hits), len(hits)) for method, hits in found.items()}  # fmt: skip


def render_page(methods: Sequence[str], seeds: int, protocol: str, out: Path, table: NB201Table,
                compare: Sequence[Path]) -> str:  # fmt: skip
    oracles = {task: TableOracle(table, task) for task in TASKS}
    lines = [
        "# One-shot NAS on the NAS-Bench-201 supernet: DARTS-V1, DARTS-V2, GDAS",
        "",
        f"Generated by `{PROG}` from the run directories; do not edit by hand. Regenerate with",
        "",
        "```",
        f"{PROG} --methods {','.join(methods)} --seeds {seeds} --protocol {protocol} --out {out}",
        "```",
        "",
        "## Protocol",
        "",
        f"- **Search**: `python -m tnas.search --dataset cifar10 --method M --seed S` (protocol `{protocol}`: "
        f"{PROTOCOLS[protocol]}), the supernet trained on the CIFAR-10 sample's train split (weights) and "
        "validation split (architecture), the cut of the real-training oracle; every random source (weights, logits, "
        "batches, augmentation, Gumbel draws) from the run seed.",
        "- **Derived cell**: the per-edge argmax of the architecture weights after the last epoch, looked up in "
        "the NAS-Bench-201 table (seed-mean 200-epoch **test** accuracy) on CIFAR-10, CIFAR-100 and ImageNet16-120: "
        "the NAS-Bench-201 paper's protocol (its Table 5 searched on CIFAR-10 and evaluated the cell on all three).",
        "- **Search cost**: real seconds of the finished supernet epochs on this machine (2 cores, torch on one "
        "thread per run, two runs side by side), as recorded in each run's `oneshot/search.json`.",
        f"- **Statistics**: mean ± standard error over seeds 0..{seeds - 1}.",
        "",
        "## Derived cells",
        "",
        "| method | runs | CIFAR-10 test | CIFAR-100 test | ImageNet16-120 test | search seconds | parameter-free cells "
        "| parameter-free edges, epoch 1 -> last (mean) | NAS-Bench-201 paper (C10 / C100 / IN16) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    per_method: dict[str, list[OneShotRun]] = {m: load_runs(out, m, seeds, protocol) for m in methods}
    details: list[str] = []
    targets: dict[str, float] = {}  # method -> mean CIFAR-10 test of its derived cells
    for method, runs in per_method.items():
        if not runs:
            lines.append(f"| `{method}` | 0 | - | - | - | - | - | - | {' / '.join(f'{v:.2f}' for v in PAPER[method])} |")
            continue
        accuracies = np.array([[oracles[t].evaluate(r.cell, fidelity=200, seed=None).test for t in TASKS] for r in runs])
        stat = mean_and_se(accuracies)
        targets[method] = float(stat.mean[0])
        seconds = mean_and_se(np.array([r.seconds for r in runs]))
        free = sum(parameter_free_share(r.cell) == 1.0 for r in runs)
        first = np.mean([parameter_free_share(r.epochs[0]) * 6 for r in runs])
        last = np.mean([parameter_free_share(r.epochs[-1]) * 6 for r in runs])
        cells = " / ".join(format_stat(float(m), float(s)) for m, s in zip(stat.mean, stat.se))
        lines.append(f"| `{method}` | {len(runs)} | {cells.replace(' / ', ' | ')} | {format_stat(float(seconds.mean), float(seconds.se), 0)} "
                     f"| {free}/{len(runs)} | {first:.1f} -> {last:.1f} of 6 "
                     f"| {' / '.join(f'{v:.2f}' for v in PAPER[method])} |")  # fmt: skip
        for r, acc in zip(runs, accuracies):
            drift = _runs_of([f"{parameter_free_share(c) * 6:.0f}/6" for c in r.epochs])
            details.append(f"- `{method}` seed {r.seed}: #{r.cell.index} `{r.cell.arch_str}` (test {acc[0]:.2f} / "
                           f"{acc[1]:.2f} / {acc[2]:.2f}; {r.seconds:.0f} s on {r.device}); parameter-free edges of the "
                           f"derived cell, epoch by epoch: {drift}")  # fmt: skip
    for method in ("setn", "enas"):
        lines.append(f"| {method.upper()} (not run here) | - | - | - | - | - | - | - "
                     f"| {' / '.join(f'{v:.2f}' for v in PAPER[method])} |")  # fmt: skip
    lines += ["", "Paper figures: NAS-Bench-201 (Dong & Yang, ICLR 2020), Table 5, test accuracy; their DARTS-V1 and "
              "V2 both collapse to the all-`skip_connect` cell (54.30 / 15.61 / 16.32). Parameter-free edges are `none`, "
              "`skip_connect` and `avg_pool_3x3`: a uniformly random cell has 3.6 of 6 on average.", "", "### Per run", "", *details]
    lines += ["", "## What the black-box methods pay for the same accuracy (CIFAR-10)", ""]
    roots = [root for root in compare if (root / "mean" / DATASET).is_dir()]
    if not roots:
        lines.append("No `benchmarks.nb201` grid was found (`--compare`); nothing to compare.")
    else:
        lines += [f"From the grids under {', '.join(f'`{r}`' for r in roots)} (`--observe mean`, 200 epochs): median "
                  "simulated GPU-hours and median queries until the cell the method returns has at least the one-shot "
                  "method's mean CIFAR-10 test accuracy (`inf`: the median run never got there within its budget), "
                  "and the runs that got there. A query costs the table's recorded training time of the cell (200 "
                  "epochs on NAS-Bench-201's GPUs); the one-shot seconds above are CPU seconds of a small supernet, "
                  "so the two columns price different things. Methods without run directories in these grids are "
                  "absent.", "",
                  "| one-shot method (mean C10 test) | method | simulated GPU-hours | queries | runs reaching it |",
                  "| --- | --- | --- | --- | --- |"]  # fmt: skip
        sources = [f"`{m.name}` {sum(not is_set_aside(p.parent) for p in m.glob('seed*/summary.json'))} runs in `{root}`"
                   for root in roots for m in sorted((root / "mean" / DATASET).iterdir()) if m.is_dir()]
        lines[-3:-3] = ["", f"Runs found: {'; '.join(sources)}."]
        for method, target in targets.items():
            for other, (hours, queries, reached, total) in sorted(black_box_costs(roots, target).items()):
                lines.append(f"| `{method}` ({target:.2f}) | `{other}` | {hours:.2f} | {queries:g} | {reached}/{total} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _grid_and_page(args))


def _grid_and_page(args: argparse.Namespace) -> int:
    methods = tuple(name.strip() for name in args.methods.split(",") if name.strip())
    unknown = [name for name in methods if name not in ONE_SHOT_METHODS]
    if unknown or not methods:
        raise ConfigError(f"--methods takes one-shot methods ({', '.join(ONE_SHOT_METHODS)}), got {args.methods!r}")
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be positive, got {args.seeds}")
    table = NB201Table.load(args.data_dir)
    made = 0 if args.report_only else run_grid(methods, args.seeds, args.protocol, args.out, table, device=args.device,
                                                data_dir=args.data_dir, progress=not args.no_progress)  # fmt: skip
    compare = [Path(part) for part in args.compare.split(",") if part.strip()]
    atomic_write_text(args.results_page, render_page(methods, args.seeds, args.protocol, args.out, table, compare))
    print(f"{made} runs made; page {args.results_page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
