"""A run's bookkeeping: its directory, the trajectory and incumbent, the progress bar, the summary.

The runner's loop (:mod:`tnas.search.runner`) decides what to ask and submit; everything it
records goes through here.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from tnas.errors import ConfigError, RunDirectoryError, SearcherError
from tnas.io import describe_entries, foreign_entries
from tnas.oracles import Evaluation
from tnas.rundir import RunDirectory, TrajectoryRow, append_row
from tnas.search.config import RunConfig
from tnas.search.methods import registered_settings, run_differences, stale_settings
from tnas.space import FULL_SPACE, Cell, SearchSpace
from tnas.typecheck import is_finite_number
from tnas.versions import package_versions

RUN_FORMAT = 1


class Trajectory:
    """The finished queries of a run, its incumbent, and ``trajectory.csv``.

    Args:
        directory: where ``trajectory.csv`` is appended (``None``: in memory only).
        recorded: rows of an interrupted run that the replay will add back first.
        space: the run's search space; its constrained quantities (latency, FLOPs) go in each row.
    """

    def __init__(self, directory: RunDirectory | None, recorded: list[TrajectoryRow],
                 space: SearchSpace = FULL_SPACE) -> None:  # fmt: skip
        self.rows: list[TrajectoryRow] = []
        self.space = space
        self.history: dict[int, Evaluation] = {}  # index -> evaluation, filled as the searcher is told
        self._file = directory.open_trajectory(len(recorded)) if directory is not None else None
        self.overhead_s = 0.0  # cumulative seconds in the searcher, up to the last row
        self.unbooked_overhead_s = 0.0  # seconds in the searcher since the last row
        self.sim_cost_s = 0.0

    @property
    def incumbent(self) -> TrajectoryRow | None:
        return self.rows[-1] if self.rows else None

    @property
    def failed(self) -> int:
        return sum(row.failure is not None for row in self.rows)

    def add_replayed(self, row: TrajectoryRow) -> None:
        """Add back a row of the interrupted run (already in ``trajectory.csv``)."""
        self.rows.append(row)
        self.overhead_s, self.unbooked_overhead_s, self.sim_cost_s = row.overhead_s, 0.0, row.sim_cost_s

    def add(self, cell: Cell, evaluation: Evaluation, *, proposal: dict[str, float | None],
            recommended: Cell | None, start_s: float, end_s: float, worker: int) -> TrajectoryRow:  # fmt: skip
        """Record a finished query (already in :attr:`history`) and append it to ``trajectory.csv``."""
        self.sim_cost_s += evaluation.cost_s
        self.overhead_s += self.unbooked_overhead_s
        self.unbooked_overhead_s = 0.0
        last = self.incumbent
        if last is None or evaluation.valid > last.incumbent_valid:
            incumbent = (cell.index, evaluation.valid, evaluation.test)
        else:
            incumbent = (last.incumbent_index, last.incumbent_valid, last.incumbent_test)
        quantities = self.space.quantities_of(cell)
        row = TrajectoryRow(
            query=len(self.rows) + 1, index=cell.index, arch=cell.arch_str, valid=evaluation.valid,
            test=evaluation.test, seed=evaluation.seed, cost_s=evaluation.cost_s, params_mb=evaluation.params_mb,
            incumbent_index=incumbent[0], incumbent_valid=incumbent[1], incumbent_test=incumbent[2],
            sim_cost_s=self.sim_cost_s, overhead_s=self.overhead_s, failure=evaluation.failure,
            acquisition=proposal.get("acquisition"), pred_mean=proposal.get("pred_mean"),
            pred_std=proposal.get("pred_std"),
            recommended_index=incumbent[0] if recommended is None else recommended.index,
            recommended_test=incumbent[2] if recommended is None else self.history[recommended.index].test,
            start_s=start_s, end_s=end_s, worker=worker, latency_ms=quantities.get("latency_ms"),
            flops_m=quantities.get("flops_m"),
        )  # fmt: skip
        self.rows.append(row)
        if self._file is not None:
            append_row(self._file, row)
        return row

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def proposal_info(searcher: Any) -> dict[str, float | None]:
    """What a model-based searcher said about its last proposal (see ``TrajectoryRow``)."""
    info = getattr(searcher, "last_info", None) or {}
    return {
        "acquisition": info.get("acquisition", info.get("prior_mean")),
        "pred_mean": info.get("pred_mean"),
        "pred_std": info.get("pred_std"),
    }


class Progress:
    """A progress bar over the budget: finished, running and failed evaluations and the incumbent."""

    def __init__(self, config: RunConfig, enabled: bool, done: int = 0) -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            workers = f", {config.workers} workers" if config.workers > 1 else ""
            self._bar = tqdm(total=config.budget, initial=done, desc=f"{config.method} on {config.dataset}{workers}",
                             unit="query", leave=False, disable=None)  # fmt: skip
        self._done = done

    def update(self, trajectory: Trajectory, running: int) -> None:
        if self._bar is None:
            return
        self._bar.update(len(trajectory.rows) - self._done)
        self._done = len(trajectory.rows)
        best = trajectory.incumbent
        postfix: dict[str, str] = {"running": str(running)}
        if trajectory.failed:
            postfix["failed"] = str(trajectory.failed)
        if best is not None:
            postfix.update(best_valid=f"{best.incumbent_valid:.2f}", test=f"{best.incumbent_test:.2f}")
        self._bar.set_postfix(postfix)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def clock_figures(config: RunConfig, rows: list[TrajectoryRow]) -> dict[str, float]:
    """Wall-clock (on the run's clock) until the last evaluation finished, and worker utilisation.

    Rows written before the clock columns existed count as one worker evaluating back to back.
    """
    if all(row.end_s is not None and row.start_s is not None for row in rows):
        wall = max(row.end_s for row in rows)  # type: ignore[type-var]
        busy = sum(row.end_s - row.start_s for row in rows)  # type: ignore[operator]
    else:
        wall = busy = rows[-1].sim_cost_s
    utilisation = busy / (config.workers * wall) if wall > 0 else 1.0
    return {"wall_clock_s": wall, "worker_utilisation": utilisation}


def summarize(config: RunConfig, rows: list[TrajectoryRow], *, repeats: int = 0,
              space: SearchSpace = FULL_SPACE) -> dict[str, Any]:  # fmt: skip
    """The content of ``summary.json`` for a finished trajectory.

    A constrained run adds ``constraints``, ``feasible_cells`` and the returned cell's
    constrained quantities (``recommended_latency_ms`` and the like).
    """
    if not rows:
        raise SearcherError("the run made no query")
    last = rows[-1]
    found_at = next(row.query for row in rows if row.index == last.incumbent_index)
    recommended = last.incumbent_index if last.recommended_index is None else last.recommended_index
    recommended_test = last.incumbent_test if last.recommended_test is None else last.recommended_test
    return {
        "method": config.method,
        "dataset": config.dataset,
        "seed": config.seed,
        "budget": config.budget,
        "queries": len(rows),
        "fidelity": config.fidelity,
        "observe": config.observe,
        "best_index": last.incumbent_index,
        "best_arch": Cell.from_index(last.incumbent_index).arch_str,
        "best_valid": last.incumbent_valid,
        "best_test": last.incumbent_test,
        "found_at_query": found_at,
        "recommended_index": recommended,
        "recommended_arch": Cell.from_index(recommended).arch_str,
        "recommended_test": recommended_test,
        "sim_cost_s": last.sim_cost_s,
        "sim_gpu_hours": last.sim_cost_s / 3600.0,
        "overhead_s": last.overhead_s,
        "repeats_answered_from_cache": repeats,
        "failed_queries": sum(row.failure is not None for row in rows),
        "workers": config.workers,
        "backend": config.resolved_backend,
        **clock_figures(config, rows),
        **_constraint_figures(config, space, Cell.from_index(recommended)),
        "config": config.to_dict(),
        "versions": package_versions(),
    }


SUMMARY_NUMBERS = ("queries", "best_index", "best_valid", "best_test", "found_at_query", "sim_cost_s",
                   "sim_gpu_hours", "overhead_s")
"""The figures every ``summary.json`` holds (finite numbers; ``recommended_*``, ``workers``,
``failed_queries`` and the clock figures too where present)."""
OPTIONAL_SUMMARY_NUMBERS = ("recommended_index", "recommended_test", "workers", "failed_queries", "wall_clock_s",
                            "worker_utilisation", "repeats_answered_from_cache")


def summary_problem(summary: dict[str, Any], rows: list[TrajectoryRow] | None = None) -> str | None:
    """What is wrong with a stored ``summary.json`` (``None``: nothing): a figure missing, not
    a number, or not finite, or a name that is not text; given the run's ``rows``, a summary
    of another trajectory than theirs (its query count or best cell differ)."""
    for key in ("method", "dataset", "observe", "best_arch"):
        if not isinstance(summary.get(key), str):
            return f"{key} is {summary.get(key)!r}"
    for key in SUMMARY_NUMBERS + tuple(key for key in OPTIONAL_SUMMARY_NUMBERS if key in summary):
        value = summary.get(key)
        if not is_finite_number(value):
            return f"{key} is {value!r}"
    if rows is not None:
        if summary["queries"] != len(rows):
            return f"it counts {summary['queries']} queries, the trajectory holds {len(rows)}"
        best = rows[-1].incumbent_index
        if summary["best_index"] != best or summary["best_arch"] != Cell.from_index(best).arch_str:
            return f"its best cell is not the trajectory's ({best})"
    return None


def _constraint_figures(config: RunConfig, space: SearchSpace, recommended: Cell) -> dict[str, Any]:
    """What a constrained run's summary says about the constraints and the returned cell."""
    if not config.constraints:
        return {} if space.is_full else {"search_space_cells": len(space)}
    quantities = {f"recommended_{name}": value for name, value in space.quantities_of(recommended).items()}
    return {"constraints": dict(config.constraints), "feasible_cells": len(space), **quantities}


def failed_evaluation(chance: float, fidelity: int, seed: int | None, seconds: float, reason: str) -> Evaluation:
    """The observation of a query whose worker failed: chance accuracy, with the reason."""
    return Evaluation(valid=chance, test=chance, cost_s=seconds, params_mb=math.nan, fidelity=fidelity, seed=seed,
                      failure=reason)  # fmt: skip


# ---------------------------------------------------------------------- run directory
def prepare_directory(directory: RunDirectory, config: RunConfig, run_info: dict[str, Any]) -> list[TrajectoryRow]:
    """Check that ``directory`` is new or holds this run, searched with the settings of this
    version (a run searched otherwise is refused: see :mod:`tnas.search.settings_changes`);
    return its recorded rows. The record gets the method's default settings when ``run_info``
    lacks them."""
    directory.check_layout()
    settings = registered_settings(config)
    if "method_settings" not in run_info and settings is not None:
        run_info = {"method_settings": settings, **run_info}
    stored = directory.read_config()
    if stored is None:
        if directory.trajectory_path.exists():
            raise RunDirectoryError(
                f"{directory.path} has a trajectory but no {directory.config_path.name}; "
                "move it away to start the run anew"
            )
        present = foreign_entries(directory.path, ())
        if present:  # a folder of runs, a meta-training output, anything else: never write into it
            raise RunDirectoryError(
                f"{directory.path} holds {describe_entries(present)} but no tnas run (no "
                f"{directory.config_path.name}); give --out a new or empty folder"
            )
        directory.path.mkdir(parents=True, exist_ok=True)
        directory.write_config(_config_record(config, run_info, created=None))
        return []
    try:
        stored_config = RunConfig.from_record(stored["config"])
    except (KeyError, ConfigError) as error:
        raise RunDirectoryError(f"{directory.config_path} is not a tnas run config ({error})") from None
    differences = run_differences(stored_config, config, stored.get("method_settings"))
    if differences:
        raise RunDirectoryError(
            f"{directory.path} holds another run ({_describe(stored_config)}; this one differs in "
            f"{', '.join(differences)}); choose another --out for {_describe(config)}"
        )
    changes = stale_settings(config, stored)
    if changes:
        raise RunDirectoryError(
            f"{directory.path} was searched with other {config.method} settings than this version's "
            f"({'; '.join(changes)}): resuming it would mix two searches; choose another --out, "
            "or move it away to start the run anew"
        )
    recorded = directory.read_trajectory()
    if len(recorded) > config.budget:
        raise RunDirectoryError(
            f"{directory.path} already holds {len(recorded)} queries, more than the budget "
            f"of {config.budget}; raise --budget or choose another --out"
        )
    _check_time_limit(directory, stored_config, config, recorded)
    if stored_config != config:
        directory.write_config(_config_record(config, run_info, created=stored.get("created")))
    return recorded


def _check_time_limit(directory: RunDirectory, stored: RunConfig, config: RunConfig, rows: list[TrajectoryRow]) -> None:
    """Refuse a ``max_sim_hours`` lower than the run was searched with, under which its
    recorded queries would not all have started (a query starts only while the simulated
    cost so far is below the limit): resuming would record a limit the run broke.

    Raises:
        RunDirectoryError: the recorded queries spent too much before the last one.
    """
    limit = config.max_sim_hours
    if limit is None or not rows or config.workers > 1 or (stored.max_sim_hours is not None
                                                           and stored.max_sim_hours <= limit):  # fmt: skip
        return  # several workers: when a query started is in the journal, not the trajectory; not judged
    limit_s = limit * 3600.0
    if len(rows) == 1 or rows[-2].sim_cost_s < limit_s:  # the last query started under it (one worker)
        return
    raise RunDirectoryError(
        f"{directory.path} already spent {rows[-2].sim_cost_s / 3600.0:.6f} simulated hours before its last query, "
        f"so --max-sim-hours {limit:g} would have stopped it sooner; give more than that (or no limit, as it was "
        "searched), or choose another --out for a run under this one"
    )


def _config_record(config: RunConfig, run_info: dict[str, Any], created: str | None) -> dict[str, Any]:
    return {
        "format": RUN_FORMAT,
        "created": created or datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        **run_info,
        "versions": package_versions(),
    }


def _describe(config: RunConfig) -> str:
    workers = f" workers={config.workers} backend={config.resolved_backend}" if config.workers > 1 else ""
    return (
        f"method={config.method} dataset={config.dataset} seed={config.seed} "
        f"fidelity={config.fidelity} observe={config.observe}{workers}"
    )
