"""Aggregation of NAS-Bench-201 benchmark runs across seeds (pure functions, no plotting).

The harness (:mod:`benchmarks.nb201`) writes one run directory per grid cell at
``OUT/<observe>/<dataset>/<method>/seed<k>`` (schema: :mod:`tnas.rundir`). This
module reads the finished ones and computes, per (observe policy, dataset, method), for
every query ``q = 1..budget``:

- **incumbent test accuracy**: the test accuracy of the cell with the best *observed*
  validation accuracy after ``q`` queries;
- **recommended test accuracy**: the test accuracy of the cell the method would *return*
  after ``q`` queries (``recommended_index`` of ``trajectory.csv``): the incumbent, except
  for model-based methods under noisy observations, which return the evaluated cell of
  best posterior mean (see :class:`tnas.search.protocol.Recommender`);
- **validation regret**: ``max_c V(c) - V(incumbent)``, where ``V`` is the table's
  *seed-mean* validation accuracy at the run's fidelity. The incumbent's value is looked
  up by ``incumbent_index`` in the table, never taken from ``incumbent_valid``: with
  ``--observe seed`` that column holds one training seed's (noisy) number. The regret is
  therefore >= 0 and exactly 0 once the incumbent is a best cell; with ``--observe seed``
  it need not decrease monotonically (a lucky seed can displace a better incumbent);
- **simulated GPU-hours**: the cumulative simulated training time (``sim_cost_s``);

and per run, **queries to the best-validation cell**: the first query at which the
incumbent is a cell of maximal seed-mean validation accuracy (all tied maxima count),
``None`` if that never happens within the budget.

Statistics across seeds: mean and standard error ``s / sqrt(n)`` with the sample
standard deviation ``s`` (``ddof=1``). With a single seed the standard error is
undefined and reported as NaN (plots draw no band, tables print ``n/a``).

Ranks (for the rank plot): at every query, the methods of a dataset are ranked *per seed
index* by recommended test accuracy (rank 1 = highest; ties share the average rank), and the
ranks are averaged over the seed indices that every compared method has finished. Seed
``k`` of one method and seed ``k`` of another are independent runs, so this pairing is
arbitrary but unbiased: the average rank estimates each method's expected rank in a
random draw of one run per method. (Ranking the seed means instead would give integer
ranks that flip on differences far below the standard error.) Only the methods with the
most finished seeds on a dataset are ranked, so that a method run at fewer seeds does not
cut the comparison down to its seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tnas.errors import RunDirectoryError, TnasError
from tnas.rundir import RunDirectory
from tnas.search.config import RunConfig
from tnas.search.methods import same_run
from tnas.stats import Stat, mean_and_se

CHECKPOINTS: tuple[int, ...] = (10, 25, 50, 100)
"""Queries at which the results page quotes the incumbent's test accuracy."""


# ---------------------------------------------------------------------------- layout
def run_path(out: Path, observe: str, dataset: str, method: str, seed: int) -> Path:
    """The run directory of one grid cell: ``OUT/<observe>/<dataset>/<method>/seed<k>``."""
    return Path(out) / observe / dataset / method / f"seed{seed}"


@dataclass(frozen=True)
class GridSpec:
    """The requested grid of runs.

    Attributes:
        observes: observation policies (``mean``, ``seed``).
        datasets: task names, in display order.
        methods: method names, in display order (this order fixes the plot colours).
        seeds: run seeds (``--seeds N`` means ``0..N-1``).
        budget: queries per run.
        fidelity: training epochs observed.
        surrogates: independently meta-trained default surrogates per target that TNAS and
            its ablations cycle through: run seed ``s`` uses surrogate ``s % surrogates``
            (and draws the target's image sample with ``s``).
        settings: ``(method, option, value)`` changes to a method's default options.
        workers: evaluations running at once in every run (simulated backend when > 1).
        tables: ``(dataset, CSV path)`` of the datasets that are tables of your own
            (:mod:`tnas.oracles.user_table`, columns from their sidecars), searched with
            ``--observe mean`` only.
    """

    observes: tuple[str, ...]
    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    budget: int
    fidelity: int
    surrogates: int = 5
    settings: tuple[tuple[str, str, Any], ...] = ()
    workers: int = 1
    tables: tuple[tuple[str, str], ...] = ()

    def cells(self) -> Iterable[tuple[str, str, str, int]]:
        """Every (observe, dataset, method, seed) of the grid, in run order."""
        for observe in self.observes:
            for dataset in self.datasets:
                for method in self.methods:
                    for seed in self.seeds:
                        yield observe, dataset, method, seed


# ---------------------------------------------------------------------------- one run
@dataclass(frozen=True)
class RunData:
    """What the aggregation needs from one finished run (arrays over queries 1..budget).

    Attributes:
        seed: the run's seed.
        incumbent_index: incumbent cell after each query.
        incumbent_test: its reported test accuracy (%).
        sim_cost_s: cumulative simulated training seconds.
        overhead_s: seconds in the optimizer over the ``budget`` queries (``summary.json``'s
            ``overhead_s`` for a run of exactly that budget).
        versions: package versions recorded in ``summary.json``.
        config: the run's ``config.json`` (method settings, oracle, TNAS surrogate...).
        recommended_test: test accuracy of the recommended cell after each query (the
            incumbent's where the trajectory records no recommendation).
    """

    seed: int
    incumbent_index: np.ndarray
    incumbent_test: np.ndarray
    sim_cost_s: np.ndarray
    overhead_s: float
    versions: Mapping[str, str] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    recommended_test: np.ndarray | None = None

    @property
    def surrogate_seed(self) -> int | None:
        """The default surrogate a TNAS-family run used (``None``: another method or surrogate)."""
        options = (self.config.get("config") or {}).get("options") or {}
        if "surrogate_seed" not in options or options.get("surrogate") is not None:
            return None
        return int(options["surrogate_seed"])


def load_run(path: Path, *, budget: int, expect: Mapping[str, Any] | None = None) -> RunData | None:
    """Read a finished run with at least ``budget`` queries, truncated to ``budget``.

    Returns ``None`` for a missing or unfinished run (no ``summary.json``, fewer queries),
    or one whose configuration differs from ``expect`` (e.g. ``{"fidelity": 200}``) in
    any of its keys.

    Raises:
        RunDirectoryError: the files are unreadable.
    """
    directory = RunDirectory(path)
    summary = directory.read_summary()
    if summary is None:
        return None
    stored = summary.get("config") or {}
    if any(stored.get(key) != value for key, value in (expect or {}).items()):
        return None
    rows = directory.read_trajectory()
    if len(rows) < budget:
        return None
    rows = rows[:budget]
    return RunData(
        seed=int(summary["seed"]),
        incumbent_index=np.array([row.incumbent_index for row in rows], dtype=np.int64),
        incumbent_test=np.array([row.incumbent_test for row in rows], dtype=np.float64),
        sim_cost_s=np.array([row.sim_cost_s for row in rows], dtype=np.float64),
        overhead_s=float(rows[-1].overhead_s),  # = summary's overhead_s unless truncated to the budget
        versions=dict(summary.get("versions", {})),
        config=directory.read_config() or {},
        recommended_test=np.array([row.incumbent_test if row.recommended_test is None else row.recommended_test
                                   for row in rows], dtype=np.float64),
    )


# ---------------------------------------------------------------------------- statistics
def best_cells(valid_mean: np.ndarray) -> np.ndarray:
    """Indices of the cells of maximal seed-mean validation accuracy (ties all count)."""
    valid_mean = np.asarray(valid_mean, dtype=np.float64)
    return np.flatnonzero(valid_mean == np.nanmax(valid_mean))


def regret_curves(incumbent_index: np.ndarray, valid_mean: np.ndarray) -> np.ndarray:
    """Validation regret ``max V - V[incumbent]`` (same shape as ``incumbent_index``)."""
    valid_mean = np.asarray(valid_mean, dtype=np.float64)
    return np.nanmax(valid_mean) - valid_mean[np.asarray(incumbent_index)]


def queries_to_best(incumbent_index: np.ndarray, best: np.ndarray) -> int | None:
    """First query (1-based) whose incumbent is in ``best``; ``None`` if none is."""
    hits = np.flatnonzero(np.isin(np.asarray(incumbent_index), best))
    return int(hits[0]) + 1 if hits.size else None


@dataclass(frozen=True)
class ToBest:
    """Queries to the best-validation cell over seeds.

    Attributes:
        per_seed: the first query per seed (``None``: not within the budget).
        reached: how many seeds reached it.
        median: median over seeds, counting "never" as infinity (so ``inf`` when at most
            half of the seeds got there).
        max: the largest, ``inf`` if some seed never got there.
    """

    per_seed: tuple[int | None, ...]
    reached: int
    median: float
    max: float

    @property
    def n(self) -> int:
        return len(self.per_seed)


def summarize_to_best(per_seed: Sequence[int | None]) -> ToBest:
    """Median, max and count of the queries to the best cell (``None`` = never)."""
    values = np.array([math.inf if q is None else float(q) for q in per_seed])
    return ToBest(
        per_seed=tuple(per_seed),
        reached=sum(q is not None for q in per_seed),
        median=float(np.median(values)) if values.size else math.nan,
        max=float(values.max()) if values.size else math.nan,
    )


def step_values_at(times: np.ndarray, costs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` of the last query whose cumulative cost is <= each time (NaN before any)."""
    position = np.searchsorted(np.asarray(costs), np.asarray(times), side="right") - 1
    out = np.where(position >= 0, np.asarray(values)[np.clip(position, 0, None)], np.nan)
    return out.astype(np.float64)


def common_time_grid(costs: Sequence[np.ndarray], points: int = 100) -> np.ndarray:
    """Log-spaced GPU-seconds where every seed has a value: from the latest first query to
    the earliest end of a run (empty when the runs do not overlap)."""
    start = max(float(c[0]) for c in costs)
    stop = min(float(c[-1]) for c in costs)
    if not (start > 0 and stop >= start):
        return np.empty(0)
    return np.geomspace(start, stop, points) if stop > start else np.array([start])


def average_ranks(scores: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Average rank per method at every query (rank 1 = highest score; ties averaged).

    Args:
        scores: method -> array ``(seeds, queries)``; row ``k`` of every method must be the
            same seed index (see the module docstring).
    """
    from scipy.stats import rankdata

    methods = list(scores)
    if not methods:
        return {}
    stacked = np.stack([np.asarray(scores[m], dtype=np.float64) for m in methods])  # (M, S, Q)
    ranks = rankdata(-stacked, axis=0, method="average")
    return {method: ranks[i].mean(axis=0) for i, method in enumerate(methods)}


# ---------------------------------------------------------------------------- aggregates
@dataclass(frozen=True)
class MethodAggregate:
    """Everything the plots and the results page show for one (observe, dataset, method).

    Attributes:
        seeds: seeds of the finished runs aggregated.
        test: incumbent test accuracy (%) per query.
        regret: validation regret (%-points of seed-mean validation accuracy) per query.
        sim_hours: cumulative simulated GPU-hours per query.
        hours_grid: GPU-hours where every seed has a value (see :func:`common_time_grid`).
        regret_vs_hours: validation regret on ``hours_grid``.
        to_best: queries to the best-validation cell.
        overhead_s: total optimizer seconds per run.
        test_per_seed: recommended test accuracy ``(seeds, queries)``, for the ranks.
        recommended: recommended test accuracy (%) per query (what the method returns).
        by_surrogate: for TNAS-family runs on the default surrogates, surrogate seed ->
            (queries to best, recommended test per query) over the runs that used it.
    """

    observe: str
    dataset: str
    method: str
    seeds: tuple[int, ...]
    test: Stat
    regret: Stat
    sim_hours: Stat
    hours_grid: np.ndarray
    regret_vs_hours: Stat | None
    to_best: ToBest
    overhead_s: Stat
    test_per_seed: np.ndarray
    recommended: Stat | None = None
    by_surrogate: dict[int, tuple[ToBest, Stat]] = field(default_factory=dict)

    @property
    def budget(self) -> int:
        return int(self.test.mean.shape[0])


def aggregate_method(observe: str, dataset: str, method: str, runs: Sequence[RunData],
                     valid_mean: np.ndarray) -> MethodAggregate:  # fmt: skip
    """Aggregate the finished runs of one (observe, dataset, method) over their seeds.

    Args:
        runs: at least one run, all with the same number of queries.
        valid_mean: the table's seed-mean validation accuracy of every cell at the runs'
            fidelity (``TableOracle.valid_values``).
    """
    if not runs:
        raise ValueError(f"no finished run for {observe}/{dataset}/{method}")
    runs = sorted(runs, key=lambda r: r.seed)
    incumbents = np.stack([r.incumbent_index for r in runs])
    tests = np.stack([r.incumbent_test for r in runs])
    recommended = np.stack([r.incumbent_test if r.recommended_test is None else r.recommended_test for r in runs])
    regrets = regret_curves(incumbents, valid_mean)
    costs = [r.sim_cost_s for r in runs]
    grid = common_time_grid(costs)
    on_grid = None
    if grid.size:
        on_grid = mean_and_se(
            np.stack([step_values_at(grid, c, g) for c, g in zip(costs, regrets, strict=True)])
        )
    best = best_cells(valid_mean)
    by_surrogate: dict[int, tuple[ToBest, Stat]] = {}
    for seed in sorted({r.surrogate_seed for r in runs if r.surrogate_seed is not None}):
        chosen = [i for i, r in enumerate(runs) if r.surrogate_seed == seed]
        by_surrogate[seed] = (summarize_to_best([queries_to_best(incumbents[i], best) for i in chosen]),
                              mean_and_se(recommended[chosen]))  # fmt: skip
    return MethodAggregate(
        observe=observe,
        dataset=dataset,
        method=method,
        seeds=tuple(r.seed for r in runs),
        test=mean_and_se(tests),
        regret=mean_and_se(regrets),
        sim_hours=mean_and_se(np.stack(costs) / 3600.0),
        hours_grid=grid / 3600.0,
        regret_vs_hours=on_grid,
        to_best=summarize_to_best([queries_to_best(i, best) for i in incumbents]),
        overhead_s=mean_and_se(np.array([r.overhead_s for r in runs])),
        test_per_seed=recommended,
        recommended=mean_and_se(recommended),
        by_surrogate=by_surrogate,
    )


def dataset_ranks(aggregates: Sequence[MethodAggregate]) -> tuple[dict[str, np.ndarray], tuple[int, ...]]:
    """Average rank per method over the seed indices all of ``aggregates`` finished.

    Returns:
        method -> average rank per query, and the seeds used (empty: no common seed, no
        ranks).
    """
    common = sorted(set.intersection(*(set(a.seeds) for a in aggregates))) if aggregates else []
    if not common:
        return {}, ()
    scores = {a.method: a.test_per_seed[[a.seeds.index(s) for s in common]] for a in aggregates}
    return average_ranks(scores), tuple(common)


@dataclass(frozen=True)
class TaskReference:
    """The table's answer for one task: its best cell(s) by seed-mean validation."""

    dataset: str
    best_valid: float
    best_indices: tuple[int, ...]
    best_test: float
    """Test accuracy of the first best-validation cell (what a perfect search reports)."""


def task_reference(dataset: str, valid_mean: np.ndarray, test: np.ndarray) -> TaskReference:
    """Best seed-mean validation accuracy of a task, its cell(s) and their test accuracy."""
    best = best_cells(valid_mean)
    return TaskReference(
        dataset=dataset,
        best_valid=float(np.nanmax(valid_mean)),
        best_indices=tuple(int(i) for i in best),
        best_test=float(np.asarray(test)[best[0]]),
    )


@dataclass(frozen=True)
class Missing:
    """Grid cells without a finished run (``other``: their directories hold finished runs of
    other settings, e.g. another ``--set`` or worker count, which the report leaves out)."""

    observe: str
    dataset: str
    method: str
    seeds: tuple[int, ...]
    other: bool = False


@dataclass(frozen=True)
class Report:
    """The aggregates of a whole grid.

    Attributes:
        spec: the requested grid.
        aggregates: (observe, dataset, method) -> aggregate; absent when no seed finished.
        ranks: (observe, dataset) -> (method -> average rank per query, seeds used).
        references: dataset -> the table's best cell.
        missing: grid cells without a finished run.
        runs: (observe, dataset, method) -> the finished runs (for provenance: versions,
            TNAS meta-training exclusions, method settings).
    """

    spec: GridSpec
    aggregates: dict[tuple[str, str, str], MethodAggregate]
    ranks: dict[tuple[str, str], tuple[dict[str, np.ndarray], tuple[int, ...]]]
    references: dict[str, TaskReference]
    missing: tuple[Missing, ...]
    runs: dict[tuple[str, str, str], tuple[RunData, ...]]


def collect_runs(
    out: Path, spec: GridSpec, expected: Callable[[str, str, str, int], RunConfig] | None = None
) -> tuple[dict[tuple[str, str, str], tuple[RunData, ...]], tuple[Missing, ...]]:
    """The finished runs of the grid under ``out`` and the grid cells without one.

    Args:
        expected: the configuration the grid gives (observe, dataset, method, seed); a
            finished run of other settings (options, workers, oracle) is then not the
            grid's, and is listed as missing with ``other`` set instead of being reported.
    """
    found: dict[tuple[str, str, str], tuple[RunData, ...]] = {}
    missing: list[Missing] = []
    for observe in spec.observes:
        for dataset in spec.datasets:
            for method in spec.methods:
                runs: list[RunData] = []
                absent: list[int] = []
                other: list[int] = []
                for seed in spec.seeds:
                    expect = {"method": method, "dataset": dataset, "seed": seed, "observe": observe,
                              "fidelity": spec.fidelity}  # fmt: skip
                    try:
                        data = load_run(run_path(out, observe, dataset, method, seed), budget=spec.budget,
                                        expect=expect)  # fmt: skip
                    except RunDirectoryError:
                        data = None
                    if data is not None and expected and not runs_as(data.config, expected(observe, dataset, method,
                                                                                           seed)):  # fmt: skip
                        other.append(seed)
                    elif data is None:
                        absent.append(seed)
                    else:
                        runs.append(data)
                if runs:
                    found[(observe, dataset, method)] = tuple(runs)
                if absent:
                    missing.append(Missing(observe, dataset, method, tuple(absent)))
                if other:
                    missing.append(Missing(observe, dataset, method, tuple(other), other=True))
    return found, tuple(missing)


def holds_run_of(path: Path, config: RunConfig,
                 normalise: Callable[[RunConfig], RunConfig] | None = None) -> bool:  # fmt: skip
    """Whether the run directory ``path`` holds a run of ``config`` (its ``config.json``; any
    budget): a page reports a run only under the settings that made it. See :func:`runs_as`."""
    try:
        record = RunDirectory(path).read_config() or {}
    except TnasError:  # no readable configuration
        return False
    return runs_as(record, config, normalise)


def runs_as(record: Mapping[str, Any], config: RunConfig,
            normalise: Callable[[RunConfig], RunConfig] | None = None) -> bool:  # fmt: skip
    """Whether a run's ``config.json`` record (``RunData.config``) is a run of ``config`` (any
    budget). ``normalise`` maps both configurations first (e.g. paths in options made absolute)."""
    try:
        stored = RunConfig.from_record(record.get("config"))
        if normalise is not None:
            stored, config = normalise(stored), normalise(config)
    except TnasError:  # not a run configuration
        return False
    return same_run(stored, config, record.get("method_settings"))


def build_report(out: Path, spec: GridSpec, tables: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 expected: Callable[[str, str, str, int], RunConfig] | None = None) -> Report:  # fmt: skip
    """Aggregate every finished run of ``spec`` under ``out``.

    Args:
        tables: dataset -> (seed-mean validation, test accuracy) of every cell at
            ``spec.fidelity`` (``TableOracle.valid_values`` / ``test_values``).
        expected: the configuration of each run of the grid (see :func:`collect_runs`).
    """
    runs, missing = collect_runs(out, spec, expected)
    aggregates = {key: aggregate_method(*key, found, tables[key[1]][0]) for key, found in runs.items()}
    ranks = {}
    for observe in spec.observes:
        for dataset in spec.datasets:
            present = [
                aggregates[(observe, dataset, m)] for m in spec.methods if (observe, dataset, m) in aggregates
            ]
            most = max((len(a.seeds) for a in present), default=0)
            present = [a for a in present if len(a.seeds) == most]  # methods run at fewer seeds are not ranked
            if len(present) >= 2:
                ranks[(observe, dataset)] = dataset_ranks(present)
    references = {d: task_reference(d, *tables[d]) for d in spec.datasets}
    return Report(spec=spec, aggregates=aggregates, ranks=ranks, references=references,
                  missing=missing, runs=runs)  # fmt: skip


def checkpoints(budget: int) -> tuple[int, ...]:
    """The :data:`CHECKPOINTS` within ``budget``, and the budget itself."""
    points = [q for q in CHECKPOINTS if q <= budget]
    return tuple(points if budget in points else [*points, budget])
