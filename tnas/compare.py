"""Compare search runs: ``python -m tnas.compare RUN_DIR_OR_FOLDER ...``.

Reads the run directories given (or every run directory below a folder given), pools the
runs of the same method on the same task over their seeds, prints one line per method,
and writes into ``--out``:

- ``comparison.csv``: per task, method and query, the number of runs and the mean and
  standard error of the best observed validation accuracy and of the returned cell's test
  accuracy (the ``recommended_test`` of ``trajectory.csv``: the incumbent, or the cell a
  model-based method recommends under noisy observations), and the mean simulated
  GPU-hours spent so far;
- ``comparison.json``: the printed figures (``[mean, standard error]`` pairs, ``null`` for a
  single run's standard error);
- ``comparison.png``: those two curves against queries, one row of panels per task
  (needs matplotlib: ``pip install 'tnas[bench]'``).

A task is a dataset with its observation policy, fidelity and constraints: runs of other
tasks are compared side by side, never pooled. Runs of one method with different settings
are told apart by the settings that differ (``tnas (init=random)``), as searched with: given
or by default (``Run.searched_with``). A group's curves stop
at its shortest run. Runs still in progress are read as far as they got.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tnas.cli_common import OneLineErrorParser, path_argument, run_command
from tnas.errors import ConfigError, RunDirectoryError
from tnas.io import atomic_write, atomic_write_json, atomic_write_text
from tnas.rundir import CONFIG_FILE, RunDirectory, TrajectoryRow, is_set_aside
from tnas.search.config import RunConfig
from tnas.search.methods import METHODS
from tnas.stats import mean_and_se

PROG = "python -m tnas.compare"
CHECKPOINTS = (10, 50)
"""Queries at which the printed table quotes the returned cell's test accuracy (and at the
group's last query)."""
DRAW_OPTIONS = ("surrogate_seed", "sample_seed")
"""Options that pick a run's random draws (TNAS's meta-trained surrogate and the target's
image sample; the harness sets them from the run seed): pooled over like the seed, never a
label."""
ZOOM_FROM_QUERY = 5
"""The plots' accuracy axis spans the curves (mean +- standard error) from this query on,
so that the first random draws do not squash the part that tells the methods apart."""


@dataclass(frozen=True)
class Run:
    """One run directory's configuration and trajectory."""

    path: Path
    config: dict[str, Any]
    """The run's configuration (``config.json``'s ``config``: method, dataset, seed, options...)."""
    rows: tuple[TrajectoryRow, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    """The method's default settings recorded with the run (``config.json``'s
    ``method_settings``; empty for runs recorded without them)."""

    @property
    def searched_with(self) -> dict[str, Any]:
        """The settings the run was searched with: the recorded defaults, overridden by its options."""
        return {**self.settings, **(self.config.get("options") or {})}

    @property
    def task(self) -> str:
        """``dataset, observe O, F epochs[, N workers][, constraints]``: what makes runs comparable."""
        config = self.config
        text = f"{config.get('dataset')}, observe {config.get('observe')}, {config.get('fidelity')} epochs"
        if (config.get("workers") or 1) > 1:
            text += f", {config['workers']} workers"
        constraints = config.get("constraints") or {}
        if constraints:
            text += ", " + ", ".join(f"{key}={value}" for key, value in sorted(constraints.items()))
        return text


@dataclass(frozen=True)
class Group:
    """The runs of one method (with one set of settings) on one task.

    Attributes:
        best_valid, returned_test, gpu_hours: ``runs x queries`` arrays, cut to the
            shortest run.
    """

    task: str
    label: str
    runs: tuple[Run, ...]
    best_valid: np.ndarray
    returned_test: np.ndarray
    gpu_hours: np.ndarray

    @property
    def queries(self) -> int:
        return int(self.best_valid.shape[1])


def find_runs(paths: Iterable[str | Path]) -> dict[Path, bool]:
    """Candidate run directories, each with whether it was named itself: each path that
    holds a ``config.json``, else every folder below it that does.

    Raises:
        ConfigError: a path does not exist, or is a file, or holds no folder with a
            ``config.json``.
    """
    found = _merged(run_directories_in(Path(path)) for path in paths)
    if not found:
        raise ConfigError("no run directory given; give run directories or folders that hold them")
    return found


def _merged(per_path: Iterable[dict[Path, bool]]) -> dict[Path, bool]:
    """The run directories of several paths, once each, named where any path named it."""
    found: dict[Path, bool] = {}
    for directories in per_path:
        for directory, named in directories.items():
            found[directory] = found.get(directory, False) or named
    return found


def run_directories_in(path: Path) -> dict[Path, bool]:
    """The candidate run directories of one path given: the path itself when it holds a
    ``config.json`` (named: ``True``), else every folder below it that does, less those
    set aside (``False``).

    Raises:
        ConfigError: the path does not exist, is a file, or holds no such folder.
    """
    if not path.exists():
        raise ConfigError(f"{path} does not exist; give run directories or folders that hold them")
    if (path / CONFIG_FILE).is_file():
        return {path.resolve(): True}
    if not path.is_dir():
        holder = f" ({path.parent})" if (path.parent / CONFIG_FILE).is_file() else ""
        raise ConfigError(f"{path} is a file, not a run directory; give the folder with config.json that holds "
                          f"it{holder}")  # fmt: skip
    found = {config.parent.resolve(): False for config in sorted(path.rglob(CONFIG_FILE))
             if not any(map(is_set_aside, config.relative_to(path).parents))}  # runs moved aside are skipped
    if not found:
        raise ConfigError(f"no run directory (a folder with config.json) found in {path}; give run directories "
                          "or folders that hold them (python -m tnas.search writes them)")  # fmt: skip
    return found


def load_runs(directories: dict[Path, bool]) -> tuple[list[Run], list[Path]]:
    """The runs with at least one query, and the run directories without any. A folder
    found below a given one whose ``config.json`` is not a search's (a meta-training
    member's, say) is passed over; one named itself is refused.

    Raises:
        RunDirectoryError: a damaged ``config.json`` or ``trajectory.csv``, or a directory
            named on the command line that is not a search's.
    """
    runs, empty = [], []
    for directory, named in directories.items():
        run_dir = RunDirectory(directory)
        record = run_dir.read_config() or {}
        config = record.get("config")
        if not isinstance(config, dict) or "method" not in config or "dataset" not in config:
            if not named:
                continue
            raise RunDirectoryError(f"{run_dir.config_path} is not a tnas run's config.json (no method or dataset)")
        try:
            RunConfig.from_record(config)
        except ConfigError as error:
            raise RunDirectoryError(f"{run_dir.config_path} is damaged ({error}); restore it or leave the run "
                                    "out") from None  # fmt: skip
        rows = tuple(run_dir.read_trajectory())
        if rows:
            runs.append(Run(directory, config, rows, _recorded_settings(str(config["method"]), record)))
        else:
            empty.append(directory)
    return runs, empty


def _recorded_settings(method: str, record: dict[str, Any]) -> dict[str, Any]:
    """The default settings a run was searched with: its record's ``method_settings``, and
    for a setting added since, the value runs made before it used (``Method.legacy_settings``)."""
    known = METHODS.get(method)
    legacy = dict(known.legacy_settings) if known is not None else {}
    return {**legacy, **(record.get("method_settings") or {})}


def _labels(runs: Sequence[Run]) -> dict[Path, str]:
    """Each run's label: its method, plus the settings in which runs of that method on the
    same task differ (runs on other tasks are compared with their own task's runs only)."""
    labels = {}
    by_method: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        by_method.setdefault((run.task, str(run.config["method"])), []).append(run)
    for (_, method), members in by_method.items():
        options = [run.searched_with for run in members]  # spelt out or by default: the same search
        keys = sorted({key for option in options for key in option} - set(DRAW_OPTIONS))
        differing = [key for key in keys if len({json.dumps(option.get(key), sort_keys=True) for option in options}) > 1]
        for run, option in zip(members, options):
            suffix = ", ".join(f"{key}={option.get(key)}" for key in differing)
            labels[run.path] = f"{method} ({suffix})" if suffix else method
    return labels


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Runs pooled by task and label, in the order first seen.

    Raises:
        ConfigError: two runs of one group have the same seed (the same run twice).
    """
    labels = _labels(runs)
    pooled: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        pooled.setdefault((run.task, labels[run.path]), []).append(run)
    groups = []
    for (task, label), members in pooled.items():
        seeds = [run.config.get("seed") for run in members]
        twice = sorted({str(seed) for seed in seeds if seeds.count(seed) > 1})
        if twice:
            paths = [str(run.path) for run in members if str(run.config.get("seed")) in twice]
            raise ConfigError(f"{label} on {task} has seed {', '.join(twice)} more than once ({', '.join(paths)}); "
                              "compare copies of a run in separate calls")  # fmt: skip
        groups.append(Group(
            task=task, label=label, runs=tuple(members),
            best_valid=_per_query(members, lambda row: row.incumbent_valid),
            returned_test=_per_query(members, lambda row: row.incumbent_test if row.recommended_test is None
                                     else row.recommended_test),
            gpu_hours=_per_query(members, lambda row: row.sim_cost_s / 3600),
        ))  # fmt: skip
    return groups


def _per_query(runs: Sequence[Run], value: Callable[[TrajectoryRow], float]) -> np.ndarray:
    """``runs x queries`` values of each run's rows, cut to the shortest run."""
    length = min(len(run.rows) for run in runs)
    return np.array([[value(row) for row in run.rows[:length]] for run in runs], dtype=float)


def _number(value: float) -> float | None:
    """A figure for JSON: ``None`` where it is undefined (the standard error of one run)."""
    return None if math.isnan(value) else float(value)


def group_figures(group: Group) -> dict[str, Any]:
    """What the table prints for a group: final best validation, returned test at the
    checkpoints and at the last query (mean, standard error), simulated GPU-hours."""
    valid, test = mean_and_se(group.best_valid), mean_and_se(group.returned_test)
    at = [q for q in CHECKPOINTS if q < group.queries] + [group.queries]
    return {
        "task": group.task, "method": group.label, "runs": len(group.runs), "queries": group.queries,
        "seeds": [run.config.get("seed") for run in group.runs],
        "best_valid": [float(valid.mean[-1]), _number(valid.se[-1])],
        "returned_test": {str(q): [float(test.mean[q - 1]), _number(test.se[q - 1])] for q in at},
        "sim_gpu_hours": float(group.gpu_hours[:, -1].mean()),
        "paths": [str(run.path) for run in group.runs],
    }  # fmt: skip


def curves_csv(groups: Sequence[Group]) -> str:
    """``comparison.csv``: one row per task, method and query."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task", "method", "query", "runs", "best_valid_mean", "best_valid_se",
                     "returned_test_mean", "returned_test_se", "sim_gpu_hours_mean"])  # fmt: skip
    for group in groups:
        valid, test = mean_and_se(group.best_valid), mean_and_se(group.returned_test)
        hours = group.gpu_hours.mean(axis=0)
        for q in range(group.queries):
            writer.writerow([group.task, group.label, q + 1, len(group.runs),
                             *(_csv_number(value) for value in (valid.mean[q], valid.se[q], test.mean[q], test.se[q],
                                                                hours[q]))])  # fmt: skip
    return buffer.getvalue()


def _csv_number(value: float) -> str:
    """A figure for the CSV: its exact repr, empty where undefined (the s.e. of one run)."""
    return "" if math.isnan(value) else repr(float(value))


def plot(groups: Sequence[Group], path: Path) -> bool:
    """Write ``path`` (PNG): per task, best observed validation and returned test against
    queries, mean +- standard error. False when matplotlib is not installed. Matplotlib's
    notes on font fallbacks (``findfont: ... not found``) are kept off stderr meanwhile."""
    fonts = logging.getLogger("matplotlib.font_manager")
    level = fonts.level
    fonts.setLevel(logging.ERROR)
    try:
        return _plot(groups, path)
    finally:
        fonts.setLevel(level)


def _plot(groups: Sequence[Group], path: Path) -> bool:
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    tasks = list(dict.fromkeys(group.task for group in groups))
    figure, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.8 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        for column, (attribute, ylabel) in enumerate((("best_valid", "best observed validation (%)"),
                                                     ("returned_test", "returned cell's test (%)"))):  # fmt: skip
            ax = axes[row][column]
            low, high, longest = np.inf, -np.inf, 1
            for group in (group for group in groups if group.task == task):
                stat = mean_and_se(getattr(group, attribute))
                mean, se = stat.mean, np.nan_to_num(stat.se)  # one run: no band
                x = np.arange(1, group.queries + 1)
                label = f"{group.label} ({len(group.runs)} run{'s' * (len(group.runs) > 1)})"
                (line,) = ax.plot(x, mean, drawstyle="steps-post", label=label)
                ax.fill_between(x, mean - se, mean + se, color=line.get_color(), alpha=0.2, linewidth=0, step="post")
                shown = slice(min(ZOOM_FROM_QUERY, group.queries) - 1, None)
                low, high = min(low, float((mean - se)[shown].min())), max(high, float((mean + se)[shown].max()))
                longest = max(longest, group.queries)
            margin = 0.08 * max(high - low, 0.2)
            ax.set_ylim(low - margin, high + margin)  # the first queries' low values run off the axis
            ax.set_xscale("log")
            ax.set_xlim(1, max(longest, 2))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
            ax.set_xlabel("queries")
            ax.set_ylabel(ylabel)
            ax.set_title(task, fontsize=9)
            ax.grid(alpha=0.3)
        axes[row][0].legend(fontsize=8)
    figure.tight_layout()
    atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=120))
    plt.close(figure)
    return True


def format_table(figures: Sequence[dict[str, Any]]) -> str:
    """The printed comparison: one block per task, one line per method (test accuracy of the
    returned cell after 10 and 50 queries and after the group's last query)."""
    lines = []
    for task in dict.fromkeys(entry["task"] for entry in figures):
        lines.append(task)
        header = "".join(f"{'test @' + str(q):>16}" for q in CHECKPOINTS)
        lines.append(f"  {'method':<24}{'runs':>5}{'queries':>8}{'best valid':>16}{header}{'test @end':>16}"
                     f"{'GPU-h':>8}")  # fmt: skip
        for entry in (entry for entry in figures if entry["task"] == task):
            cells = []
            for q in [*CHECKPOINTS, entry["queries"]]:
                mean_se = entry["returned_test"].get(str(q))
                cells.append(f"{_mean_se(*mean_se):>16}" if mean_se else f"{'-':>16}")
            lines.append(f"  {entry['method']:<24}{entry['runs']:>5}{entry['queries']:>8}"
                         f"{_mean_se(*entry['best_valid']):>16}{''.join(cells)}{entry['sim_gpu_hours']:>8.1f}")  # fmt: skip
    return "\n".join(lines)


def _mean_se(mean: float, se: float | None) -> str:
    """``mean ± s.e.``, or ``mean ± n/a`` for a single run."""
    return f"{mean:.2f} ± {'n/a' if se is None else f'{se:.2f}'}"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG,
        description=(
            "Compare search runs: the runs of each method on each task (dataset, observation policy,\n"
            "fidelity, workers, constraints) are pooled over their seeds. Prints one line per method and\n"
            "writes comparison.csv (per query: best observed validation and the returned cell's test,\n"
            "mean and standard error), comparison.json (the printed figures) and comparison.png (the\n"
            "curves; needs matplotlib, pip install 'tnas[bench]')."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            f"  {PROG} runs/demo                      # every run below runs/demo\n"
            f"  {PROG} runs/cifar100/tnas runs/cifar100/re --out results\n"
            "\nThe returned cell is what each method would hand over after that many queries (the\n"
            "test accuracy is never what a method sees). Standard errors are over the pooled seeds."
        ),
    )  # fmt: skip
    parser.add_argument("paths", nargs="+", type=Path, help="run directories, or folders holding run directories")
    parser.add_argument("--out", type=path_argument, default=None,
                        help="folder for comparison.csv / .json / .png (default: the run directories' common "
                        "folder; a single run's own directory)")  # fmt: skip
    parser.add_argument("--no-plot", action="store_true", help="do not write comparison.png")
    return parser


def _compare(args: argparse.Namespace) -> int:
    per_path = {path: run_directories_in(path) for path in args.paths}
    runs, empty = load_runs(_merged(per_path.values()))
    kept = {run.path for run in runs} | set(empty)
    for path, directories in per_path.items():
        if not kept & directories.keys():  # every config.json below it is another program's
            raise ConfigError(f"no tnas run in {path}: its config.json files are not a search's (a meta-training "
                              "member's, say); give run directories or folders that hold them")  # fmt: skip
    for directory in empty:
        print(f"note: {directory} has no finished query yet; left out", file=sys.stderr)
    if not runs:
        raise ConfigError("none of the runs has a finished query yet")
    groups = group_runs(runs)
    directories = [run.path for run in runs] + empty
    out = args.out or Path(os.path.commonpath([str(directory) for directory in directories]))
    if out.parent == out:
        raise ConfigError(f"the runs have no common folder but {out}; say where the comparison goes with --out")
    figures = [group_figures(group) for group in groups]
    print(format_table(figures))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "comparison.csv", curves_csv(groups))
    atomic_write_json(out / "comparison.json", {"groups": figures})
    written = ["comparison.csv", "comparison.json"]
    if not args.no_plot:
        if plot(groups, out / "comparison.png"):
            written.append("comparison.png")
        else:
            print("note: matplotlib is not installed, so no comparison.png (pip install 'tnas[bench]')", file=sys.stderr)
    print(f"wrote {', '.join(written)} to {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _compare(args))


if __name__ == "__main__":
    sys.exit(main())
