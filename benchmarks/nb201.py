"""``python -m benchmarks.nb201``: the NAS-Bench-201 benchmark grid, its figures and results page.

Runs every (observation policy, dataset, method, seed) of a grid through the same runner
as ``python -m tnas.search`` (same configuration, same ``config.json`` records), then
aggregates the finished runs (:mod:`benchmarks.aggregate`), draws the figures
(:mod:`benchmarks.plots`) and writes the results page (:mod:`benchmarks.results_page`).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import shlex
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.aggregate import GridSpec, Report, build_report, run_path
from benchmarks.plots import plot_report
from benchmarks.results_page import PageInputs, write_page
from tnas.cli_common import OneLineErrorParser, help_listing, options_given, path_argument, run_command
from tnas.errors import ConfigError, RunDirectoryError, TnasError
from tnas.oracles import FIDELITIES, TASKS, NB201Table, TableOracle, get_task
from tnas.oracles.user_table import UserTable, UserTableOracle, resolve_spec, table_dataset
from tnas.rundir import RunDirectory, set_aside
from tnas.search.bookkeeping import summary_problem
from tnas.search.cli import build_run, default_method_options
from tnas.search.config import OBSERVATION_POLICIES, RunConfig
from tnas.search.methods import METHODS, ONE_SHOT_METHODS, get_method, same_run, stale_settings
from tnas.search.methods.gp_bo import GPBOConfig
from tnas.search.methods.tnas import TNASConfig
from tnas.search.methods.tnas_setup import SURROGATE_OPTIONS
from tnas.search.runner import run
from tnas.typecheck import is_integer

PROG = "python -m benchmarks.nb201"
DEFAULT_DATASETS = ("cifar10", "cifar100", "imagenet16-120")
DEFAULT_OUT = Path("benchmarks/results")
DEFAULT_PAGE = Path("benchmarks/RESULTS.md")
FIGURES_FOLDER = "figures"


@dataclass(frozen=True)
class HarnessConfig:
    """One invocation of the harness.

    Attributes:
        spec: the requested grid.
        out: root of the run directories (``OUT/<observe>/<dataset>/<method>/seed<k>``).
        results_page: the Markdown page to write.
        figures_dir: where the PNG and PDF figures go.
        data_dir: the data directory given by the user, if any.
        report_only: only aggregate, plot and write the page; start no run.
        progress: show progress bars.
    """

    spec: GridSpec
    out: Path
    results_page: Path
    figures_dir: Path
    data_dir: Path | None
    report_only: bool
    progress: bool


@dataclass(frozen=True)
class GridOutcome:
    """What a pass over the grid did."""

    ran: int
    skipped: int
    busy: int = 0  # runs another harness process was running
    remade: int = 0  # of ``ran``: runs searched with other settings, moved aside and run anew


def build_parser() -> argparse.ArgumentParser:
    methods = help_listing({name: method.summary for name, method in METHODS.items()}, width=14)
    datasets = help_listing({name: task.description for name, task in TASKS.items()})
    policies = help_listing(OBSERVATION_POLICIES, width=6)
    parser = OneLineErrorParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Benchmark search methods on NAS-Bench-201: every method x dataset x seed runs through\n"
            "the runner of `python -m tnas.search` with that command's default settings (TNAS: the\n"
            "default surrogate, meta-trained without the target dataset, taken from the cache).\n\n"
            "Protocol: a run makes --budget queries (distinct cells looked up in the table, no\n"
            "training); the method observes validation accuracy (--observe) at --fidelity epochs;\n"
            "its incumbent is the cell with the best observed validation accuracy so far. Reported\n"
            "per query, mean +- standard error over seeds 0..N-1: the incumbent's test accuracy and\n"
            "its validation regret (best seed-mean validation in the table minus the incumbent's\n"
            "seed-mean validation); per run: queries until the incumbent is the best-validation\n"
            "cell, optimizer overhead, simulated GPU-hours."
        ),
        epilog=(
            "outputs:\n"
            "  OUT/<observe>/<dataset>/<method>/seed<k>/  one run directory per run (config.json,\n"
            "      trajectory.csv, summary.json, as python -m tnas.search writes them); re-running\n"
            "      the same command skips finished runs and resumes interrupted ones; a finished\n"
            "      run this version would search with other settings (a default changed since) is\n"
            "      moved aside to seed<k>.stale-<n> and run anew; several processes may share a\n"
            "      grid (each run is locked by the one running it), e.g. one per core:\n"
            "      OMP_NUM_THREADS=1 python -m benchmarks.nb201 ... & (twice)\n"
            "  --results-page (benchmarks/RESULTS.md)   protocol, missing runs, headline tables,\n"
            "      figures, NAS-Bench-201 paper reference, the command regenerating it\n"
            "  <page folder>/figures/<observe>-{regret-queries,regret-gpu-hours,test-queries,\n"
            "      rank-queries}.{png,pdf}\n"
            "The page covers the requested grid for --observe and every other policy found in OUT.\n"
            "Use another --out per --fidelity (the run directories do not name the fidelity).\n\n"
            f"methods (registered):\n{methods}\n\ndatasets:\n{datasets}\n\n"
            f"observation policies:\n{policies}\n\n"
            "examples:\n"
            f"  {PROG} --methods rs,re,ls --datasets cifar10 --seeds 3 --budget 50\n"
            f"  {PROG} --observe seed --seeds 10 --budget 100\n"
            f"  {PROG} --report-only --observe mean,seed"
        ),
    )
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated methods (default: every registered one)")  # fmt: skip
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS),
                        help=f"comma-separated datasets: NAS-Bench-201 tasks, or CSV tables of your own (columns and "
                        f"dataset name from the sidecar FILE.json; --observe mean) (default: "
                        f"{','.join(DEFAULT_DATASETS)})")  # fmt: skip
    parser.add_argument(
        "--seeds", type=int, default=10, help="runs per method and dataset, seeds 0..N-1 (default: 10)"
    )
    parser.add_argument("--budget", type=int, default=100, help="queries per run (default: 100)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="METHOD:OPTION=VALUE",
                        help="change one of a method's default options (VALUE in JSON, e.g. tnas-nodata:members=1); "
                        "repeatable; the runs record it")
    parser.add_argument("--surrogates", type=int, default=5,
                        help="independently meta-trained default surrogates per target: TNAS's run seed s uses "
                        "surrogate s %% N (python -m benchmarks.meta_train --surrogates N makes them; default: 5)")
    parser.add_argument("--observe", default="mean",
                        help="comma-separated observation policies: mean, seed (default: mean)")  # fmt: skip
    parser.add_argument("--fidelity", type=int, choices=FIDELITIES, default=200,
                        help="training epochs whose results are observed (default: 200)")  # fmt: skip
    parser.add_argument(
        "--out", type=path_argument, default=DEFAULT_OUT, help=f"root of the run directories (default: {DEFAULT_OUT}/)"
    )
    parser.add_argument("--results-page", type=Path, default=DEFAULT_PAGE,
                        help=f"Markdown page to write (default: {DEFAULT_PAGE}); figures go to its folder's "
                        "figures/")  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding nb201/nb201_merged.csv (default: $TNAS_DATA_DIR, then "
                        "../shared/data)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1,
                        help="evaluations running at once in every run, on the simulated backend (default: 1); "
                        "use another --out per worker count")
    parser.add_argument("--report-only", action="store_true",
                        help="start no run: aggregate the run directories, plot, write the page")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def _names(text: str) -> list[str]:
    names: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if name and name not in names:
            names.append(name)
    return names


def _is_task(name: str) -> bool:
    try:
        get_task(name)
    except ConfigError:
        return False
    return True


def _user_tables(names: list[str]) -> dict[str, str]:
    """``--datasets`` entries that are tables of your own (CSV files): their dataset name (the
    sidecar's ``dataset``, else the file's stem) -> the resolved path."""
    tables: dict[str, str] = {}
    for name in names:
        path = Path(name).expanduser()
        if name.endswith(".csv") or path.is_file():
            if not path.is_file():
                raise ConfigError(f"--datasets {name}: no such table")
            resolve_spec(path)  # its sidecar names the columns (or the error says how)
            dataset = table_dataset(path)
            if _is_task(dataset) or dataset in tables:
                raise ConfigError(f"--datasets {name}: its dataset name {dataset!r} is already a dataset of the grid "
                                  "(a NAS-Bench-201 task or another table); name it in its sidecar: "
                                  '{"dataset": "..."}')  # fmt: skip
            tables[dataset] = str(path.resolve())
    return tables


def resolve_config(args: argparse.Namespace) -> HarnessConfig:
    """Check every name and number of the grid before anything runs.

    Raises:
        ConfigError: an unknown method, dataset or policy, or an invalid seed count, budget
            or fidelity/policy combination.
    """
    user_tables = _user_tables(_names(args.datasets))
    unknown = [
        *(f"method {n!r}" for n in _names(args.methods) if n not in METHODS),
        *(f"dataset {n!r}" for n in _names(args.datasets)
          if not _is_task(n) and str(Path(n).expanduser().resolve()) not in user_tables.values()),
        *(f"observation policy {n!r}" for n in _names(args.observe) if n not in OBSERVATION_POLICIES),
    ]
    one_shot = [name for name in _names(args.methods) if name in ONE_SHOT_METHODS]
    if one_shot:
        raise ConfigError(f"{', '.join(one_shot)}: one-shot methods have their own benchmark, python -m benchmarks.oneshot")
    if unknown:
        raise ConfigError(
            f"unknown {', '.join(unknown)}; methods: {', '.join(METHODS)}; datasets: {', '.join(TASKS)}; "
            f"policies: {', '.join(OBSERVATION_POLICIES)}"
        )
    methods = tuple(get_method(name).name for name in _names(args.methods))
    by_path = {path: dataset for dataset, path in user_tables.items()}
    datasets = tuple(dict.fromkeys(by_path.get(str(Path(name).expanduser().resolve()), None) or get_task(name).name
                                   for name in _names(args.datasets)))  # fmt: skip
    observes = tuple(_names(args.observe))
    if not methods or not datasets or not observes:
        raise ConfigError("--methods, --datasets and --observe each need at least one name")
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
    if args.surrogates < 1:
        raise ConfigError(f"--surrogates must be at least 1, got {args.surrogates}")
    spec = GridSpec(observes=observes, datasets=datasets, methods=methods, seeds=tuple(range(args.seeds)),
                    budget=args.budget, fidelity=args.fidelity, surrogates=args.surrogates,
                    settings=tuple(parse_setting(text, methods) for text in args.settings),
                    workers=args.workers, tables=tuple(user_tables.items()))  # fmt: skip
    for observe in observes:  # RunConfig checks the budget and the policy/fidelity combination
        for dataset in datasets:
            run_config(spec, observe, dataset, methods[0], 0)
    check_settings_act(spec, surrogates_given=bool(options_given(build_parser(), args, ["surrogates"])))
    for dataset, path in user_tables.items():
        cells = len(UserTable.load(resolve_spec(Path(path))))
        if args.budget > cells:
            raise ConfigError(f"--budget {args.budget} exceeds the {cells} cells of {path} (dataset {dataset})")
    return HarnessConfig(spec=spec, out=args.out, results_page=args.results_page,
                         figures_dir=args.results_page.parent / FIGURES_FOLDER, data_dir=args.data_dir,
                         report_only=args.report_only, progress=not args.no_progress)  # fmt: skip


SURROGATE_METHODS = ("tnas", "tnas-nodata", "tnas-prior")
"""Methods that search with a meta-trained surrogate (the grid cycles through several)."""


def parse_setting(text: str, methods: tuple[str, ...]) -> tuple[str, str, Any]:
    """``METHOD:OPTION=VALUE`` (VALUE parsed as JSON, else kept as text) for a method of the grid."""
    method, _, assignment = text.partition(":")
    name, _, value = assignment.partition("=")
    if method not in methods or not name or not value:
        raise ConfigError(f"--set {text!r}: expected METHOD:OPTION=VALUE for a method of the grid ({', '.join(methods)})")
    configurable = {"gp": GPBOConfig, **dict.fromkeys(("tnas", "tnas-nodata", "tnas-untrained", "tnas-prior"),
                                                      TNASConfig)}  # fmt: skip
    known = set(default_method_options(method)) | (set(asdict(configurable[method]())) if method in configurable else set())
    known |= set(SURROGATE_OPTIONS) if get_method(method).tnas_family else set()
    if name not in known:
        raise ConfigError(f"--set {text!r}: {method} has no option {name!r}")
    if method in SURROGATE_METHODS and name in ("surrogate_seed", "sample_seed"):
        raise ConfigError(f"--set {text!r}: the grid sets {name} from the run seed (see --surrogates)")
    try:
        return method, name, json.loads(value)
    except json.JSONDecodeError:
        return method, name, value


def check_settings_act(spec: GridSpec, *, surrogates_given: bool = False) -> None:
    """Refuse a ``--set`` that cannot change any run of the grid.

    An option the method cannot act on (``tnas-prior``'s BO settings, ``members`` with a
    ``surrogate`` directory...), or one inert in every run of the grid (``pending`` with one
    worker, ``ucb_beta`` without the ``ucb`` acquisition: ``Method.unusable_options``), a
    ``batch_size`` above the budget; and ``--surrogates`` when every surrogate method of the grid is given a
    ``surrogate`` directory (the grid would cycle through nothing).

    Raises:
        ConfigError: naming the setting and why it would be ignored.
    """
    named = {method for method, name, _ in spec.settings if name == "surrogate"}
    cycling = [method for method in spec.methods if method in SURROGATE_METHODS]
    if surrogates_given and cycling and all(method in named for method in cycling):
        raise ConfigError(f"--surrogates {spec.surrogates} cycles through default surrogates, and --set "
                          f"{cycling[0]}:surrogate=DIR names one; leave --surrogates out")  # fmt: skip
    for method, name, value in spec.settings:
        configs = [run_config(spec, observe, dataset, method, 0) for observe in spec.observes
                   for dataset in spec.datasets]  # fmt: skip
        reasons = [get_method(method).unusable_options(config).get(name) for config in configs]
        if all(reasons):
            raise ConfigError(f"--set {method}:{name} cannot change a {method} run of this grid: {reasons[0]}; "
                              "leave it out")  # fmt: skip
        if name == "batch_size" and is_integer(value) and value > spec.budget:
            raise ConfigError(f"--set {method}:batch_size={value} proposes more cells at once than the budget of "
                              f"{spec.budget} queries")  # fmt: skip


def run_config(spec: GridSpec, observe: str, dataset: str, method: str, seed: int) -> RunConfig:
    """The configuration of one run: ``python -m tnas.search``'s defaults for ``method``.

    TNAS's run seed reaches every random source: it selects the default surrogate
    ``seed % spec.surrogates`` (an independent meta-training draw) and draws the target's
    image sample.
    """
    options = default_method_options(method)
    options.update({name: value for owner, name, value in spec.settings if owner == method})
    if method in SURROGATE_METHODS:
        options.update(surrogate_seed=seed % spec.surrogates, sample_seed=seed)
    user = dict(spec.tables).get(dataset)
    oracle = {"oracle": "user", "oracle_options": resolve_spec(Path(user)).to_dict()} if user else {}
    return RunConfig(method=method, dataset=dataset, seed=seed, budget=spec.budget, fidelity=spec.fidelity,
                     observe=observe, options=options, workers=spec.workers, **oracle)  # fmt: skip


def is_finished(path: Path, config: RunConfig) -> bool:
    """Whether ``path`` holds a finished run of ``config`` with at least its budget of queries
    (whether it was searched with this code's settings is :func:`stale_changes`).

    A finished run of the same configuration with a larger budget counts (its first
    ``config.budget`` queries are what a run of that budget makes: searchers do not see
    the budget); the aggregation reads only those. A smaller one is extended by :func:`run`.

    Raises:
        RunDirectoryError: the run's ``summary.json`` or ``trajectory.csv`` is damaged.
    """
    directory = RunDirectory(path)
    summary = directory.read_summary()
    if summary is None:
        return False
    rows = directory.read_trajectory()  # a damaged trajectory stops the grid here, in one line, not in the report
    if summary_problem(summary, rows) is not None:  # a summary of another trajectory: run() writes it again
        return False
    if summary.get("config") == config.to_dict():
        return True
    try:
        stored = RunConfig(**summary["config"])
    except (KeyError, TypeError, TnasError):
        return False
    return (
        same_run(stored, config)
        and stored.max_sim_hours is None
        and summary.get("queries", 0) >= config.budget
    )


def stale_changes(path: Path, config: RunConfig) -> list[str]:
    """How this code would search the run of ``config`` in ``path`` differently from how it
    was searched (a changed default...; :func:`tnas.search.methods.stale_settings`); empty
    for a run searched as this code would, no run, or a run of another configuration (which
    the runner refuses as such)."""
    record = RunDirectory(path).read_config()
    try:
        stored = RunConfig(**record["config"]) if record else None
    except (KeyError, TypeError, TnasError):
        return []
    if stored is None or not same_run(stored, config, record.get("method_settings")):
        return []
    return stale_settings(config, record)


def make_run(path: Path, config: RunConfig, table: NB201Table, *, data_dir: Path | None = None,
             progress: bool = False, device: str | None = None, redo_stale: bool = True) -> str:  # fmt: skip
    """Make the run of ``config`` in ``path`` unless it is finished there; what happened:

    ``finished`` (left as it is), ``busy`` (another harness process holds it), ``made``
    (run, or an interrupted run resumed), ``remade`` (the run there was searched with other
    settings than this code's: it is moved aside with :func:`set_aside`, never deleted, and
    run anew; a line on stderr says where it went and why).

    Raises:
        RunDirectoryError: ``redo_stale`` is off and the run there is stale (for runs that
            other results were built on, which moving it would orphan).
    """
    with claim_run(path) as claimed:
        if not claimed:
            return "busy"
        changes = stale_changes(path, config)
        if not changes and is_finished(path, config):
            return "finished"
        if changes and not redo_stale:
            raise RunDirectoryError(f"{path} was searched with other settings than this version's "
                                    f"({'; '.join(changes)}) and later results rest on it: move the folder "
                                    "that holds it away to redo them all")  # fmt: skip
        if changes:
            moved = set_aside(path)
            print(f"{path}: searched with other settings ({'; '.join(changes)}); moved to {moved.name}, "
                  "running it anew", file=sys.stderr)  # fmt: skip
        prepared = build_run(config, table, data_dir=data_dir, progress=progress, device=device, run_dir=path)
        run(prepared.searcher, prepared.oracle, config, path, run_info=prepared.run_info, progress=progress,
            space=prepared.space)  # fmt: skip
        return "remade" if changes else "made"


@contextmanager
def claim_run(path: Path) -> Iterator[bool]:
    """Claim run directory ``path`` for this process while the ``with`` block lasts.

    Several harness processes may work on one grid (one per core, or per machine sharing
    the folder): each run is claimed with an exclusive advisory lock (``flock``) on a file
    beside its directory, ``.<name>.lock``. Yields ``False`` if another process holds it.
    The operating system drops the lock when its process ends, so a killed worker leaves
    no stale claim and its run is resumed by the next one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_grid(config: HarnessConfig, table: NB201Table) -> GridOutcome:
    """Run every unfinished run of the grid (finished ones are skipped, interrupted resumed,
    ones another harness process is running left to it)."""
    from tqdm import tqdm

    spec = config.spec
    cells = list(spec.cells())
    outcomes: Counter[str] = Counter()
    with tqdm(total=len(cells), desc="grid", unit="run", disable=None if config.progress else True) as bar:
        for observe, dataset, method, seed in cells:
            bar.set_postfix({"method": method, "dataset": dataset, "seed": seed, "observe": observe})
            run_cfg = run_config(spec, observe, dataset, method, seed)
            path = run_path(config.out, observe, dataset, method, seed)
            outcomes[make_run(path, run_cfg, table, data_dir=config.data_dir, progress=config.progress)] += 1
            bar.update(1)
    return GridOutcome(ran=outcomes["made"] + outcomes["remade"], skipped=outcomes["finished"],
                       busy=outcomes["busy"], remade=outcomes["remade"])  # fmt: skip


def reported_spec(config: HarnessConfig) -> GridSpec:
    """The requested grid, extended to every observation policy that already has runs in OUT."""
    spec = config.spec
    found = [name for name in OBSERVATION_POLICIES if (config.out / name).is_dir()]
    observes = tuple(name for name in OBSERVATION_POLICIES if name in spec.observes or name in found)
    return GridSpec(observes=observes, datasets=spec.datasets, methods=spec.methods, seeds=spec.seeds,
                    budget=spec.budget, fidelity=spec.fidelity, surrogates=spec.surrogates,
                    settings=spec.settings, workers=spec.workers, tables=spec.tables)  # fmt: skip


def command_line(config: HarnessConfig, spec: GridSpec, *, report_only: bool) -> str:
    """The command that regenerates the page for ``spec`` (normalised names)."""
    parts = [
        "python", "-m", "benchmarks.nb201",
        "--methods", ",".join(spec.methods),
        "--datasets", ",".join(dict(spec.tables).get(dataset, dataset) for dataset in spec.datasets),
        "--seeds", str(len(spec.seeds)),
        "--budget", str(spec.budget),
        *(["--surrogates", str(spec.surrogates)] if set(spec.methods) & set(SURROGATE_METHODS) else []),
        *(part for method, name, value in spec.settings for part in ("--set", f"{method}:{name}={json.dumps(value)}")),
        *(["--workers", str(spec.workers)] if spec.workers > 1 else []),
        "--observe", ",".join(spec.observes),
        "--fidelity", str(spec.fidelity),
        "--out", str(config.out),
        "--results-page", str(config.results_page),
        *(["--data-dir", str(config.data_dir)] if config.data_dir is not None else []),
        *(["--report-only"] if report_only else []),
    ]  # fmt: skip
    return shlex.join(parts)


def make_report(config: HarnessConfig, table: NB201Table) -> tuple[Report, dict[str, list[Path]]]:
    """Aggregate the runs under OUT, draw the figures, write the page."""
    spec = reported_spec(config)
    tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for dataset in spec.datasets:
        user = dict(spec.tables).get(dataset)
        oracle = UserTableOracle(UserTable.load(resolve_spec(Path(user))), dataset) if user else TableOracle(table, dataset)
        tables[dataset] = (oracle.valid_values(spec.fidelity), oracle.test_values(spec.fidelity))
    report = build_report(config.out, spec, tables,
                          expected=lambda observe, dataset, method, seed: run_config(spec, observe, dataset, method,
                                                                                    seed))  # fmt: skip
    figures = plot_report(report, config.figures_dir)
    inputs = PageInputs(
        command=command_line(config, spec, report_only=False),
        report_command=command_line(config, spec, report_only=True),
        figures=figures,
        page_path=config.results_page,
        table_source=f"{Path(table.source).parent.name}/{Path(table.source).name}",
    )
    write_page(report, inputs)
    return report, figures


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _grid_and_report(args))


def _grid_and_report(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    table = NB201Table.load(config.data_dir)
    for dataset in config.spec.datasets:  # fails early on a fidelity a task lacks
        if dataset not in dict(config.spec.tables):
            TableOracle(table, dataset).valid_values(config.spec.fidelity)
    outcome = GridOutcome(0, 0) if config.report_only else run_grid(config, table)
    report, figures = make_report(config, table)
    print(_summary_line(config, outcome, report, figures))
    return 0


def _summary_line(
    config: HarnessConfig, outcome: GridOutcome, report: Report, figures: dict[str, Any]
) -> str:
    missing = sum(len(m.seeds) for m in report.missing)
    anew = f" ({outcome.remade} anew: their old settings were moved aside)" if outcome.remade else ""
    runs = (
        "report only"
        if config.report_only
        else f"{outcome.ran} runs made{anew}, {outcome.skipped} already finished"
        + (f", {outcome.busy} left to other harness processes" if outcome.busy else "")
    )
    return (f"{runs}; {missing} runs missing; page {config.results_page}, "
            f"{sum(len(f) for f in figures.values())} figures in {config.figures_dir}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
