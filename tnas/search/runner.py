"""One runner for every search method: budget, observation policy, timing, logging, resume.

Resume works by replay. Searchers are deterministic given their seed and the answers
they are told, so a resumed run rebuilds the searcher, lets it ask again, and answers the
first queries from ``trajectory.csv`` instead of the oracle (checking that each proposal is
the recorded cell). The finished trajectory is therefore the one an uninterrupted run
would have written, and no query is evaluated twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tnas.errors import ConfigError, RunDirectoryError, SearcherError, TableError
from tnas.oracles import Evaluation, Oracle
from tnas.search.config import RunConfig
from tnas.search.protocol import Recommender, Searcher
from tnas.search.rundir import RunDirectory, TrajectoryRow, append_row
from tnas.space import Cell
from tnas.versions import package_versions

RUN_FORMAT = 1
MAX_CONSECUTIVE_REPEATS = 1000
"""A searcher proposing this many evaluated cells in a row is stopped with an error."""


@dataclass(frozen=True)
class RunResult:
    """A finished (or budget-exhausted) run.

    Attributes:
        config: the run's configuration.
        rows: one row per query.
        summary: the content of ``summary.json``.
        replayed: how many queries were answered from an earlier, interrupted run.
    """

    config: RunConfig
    rows: tuple[TrajectoryRow, ...]
    summary: dict[str, Any]
    replayed: int


def observed_seed(config: RunConfig, query: int, oracle: Oracle, cell: Cell) -> int | None:
    """The training-seed slot to observe at ``query`` (``None``: the seed mean).

    With ``observe="seed"`` the slot is drawn uniformly among those the oracle holds for
    ``cell``, from a generator keyed by (run seed, query), so replays draw the same slot.
    """
    if config.observe == "mean":
        return None
    slots = oracle.seeds(cell, fidelity=config.fidelity)
    if not slots:
        raise TableError(f"{oracle.name} holds no per-seed result for cell {cell.index}")
    rng = np.random.default_rng([config.seed, query])
    return int(slots[int(rng.integers(len(slots)))])


def run(
    searcher: Searcher,
    oracle: Oracle,
    config: RunConfig,
    run_dir: str | Path | None = None,
    *,
    run_info: dict[str, Any] | None = None,
    progress: bool = False,
) -> RunResult:
    """Drive ``searcher`` against ``oracle`` until the budget is spent.

    Args:
        searcher: a fresh searcher built with the generator of ``config.seed``.
        oracle: answers the queries (e.g. a :class:`~tnas.oracles.TableOracle`).
        config: budget, fidelity and observation policy.
        run_dir: where to write ``config.json``, ``trajectory.csv`` and ``summary.json``;
            an existing directory of the same run is resumed. ``None`` keeps all in memory.
        run_info: extra facts recorded in ``config.json`` (data source, method settings).
        progress: show a progress bar on stderr.

    Raises:
        RunDirectoryError: ``run_dir`` holds another run, or a trajectory the searcher
            does not reproduce.
        SearcherError: the searcher keeps proposing evaluated cells.
    """
    directory = RunDirectory(run_dir) if run_dir is not None else None
    recorded = _prepare_directory(directory, config, run_info or {}) if directory else []
    if directory is not None:
        summary = directory.read_summary()
        if summary is not None and summary.get("config") == config.to_dict():
            return RunResult(config, tuple(recorded), summary, replayed=len(recorded))

    rows: list[TrajectoryRow] = []
    history: dict[int, Evaluation] = {}
    incumbent: TrajectoryRow | None = None
    overhead = pending = sim_cost = 0.0
    repeats = consecutive_repeats = 0
    max_sim_s = None if config.max_sim_hours is None else config.max_sim_hours * 3600.0
    trajectory = directory.open_trajectory(len(recorded)) if directory else None
    bar = _progress_bar(config, progress)
    try:
        while len(rows) < config.budget and (max_sim_s is None or sim_cost < max_sim_s):
            start = time.perf_counter()
            cell = searcher.ask()
            pending += time.perf_counter() - start
            if cell.index in history:  # answered from the cache, not a query
                repeats += 1
                consecutive_repeats += 1
                if consecutive_repeats > MAX_CONSECUTIVE_REPEATS:
                    raise SearcherError(
                        f"{config.method} proposed evaluated cells {consecutive_repeats} times in a row"
                    )
                start = time.perf_counter()
                searcher.tell(cell, history[cell.index])
                pending += time.perf_counter() - start
                continue
            consecutive_repeats = 0
            query = len(rows) + 1
            replaying = query <= len(recorded)
            if replaying:
                old = recorded[query - 1]
                if old.index != cell.index:
                    raise RunDirectoryError(
                        f"cannot resume {directory.path if directory else ''}: query {query} was cell "
                        f"{old.index}, the searcher now proposes {cell.index} (code or settings changed?)"
                    )
                evaluation = old.evaluation(config.fidelity)
            else:
                seed = observed_seed(config, query, oracle, cell)
                evaluation = oracle.evaluate(cell, fidelity=config.fidelity, seed=seed)
            start = time.perf_counter()
            searcher.tell(cell, evaluation)
            history[cell.index] = evaluation
            recommended = _recommendation(searcher, history)
            pending += time.perf_counter() - start
            overhead = recorded[query - 1].overhead_s if replaying else overhead + pending
            pending = 0.0
            sim_cost += evaluation.cost_s
            if incumbent is None or evaluation.valid > incumbent.incumbent_valid:
                incumbent_index, incumbent_valid, incumbent_test = cell.index, evaluation.valid, evaluation.test
            else:
                incumbent_index = incumbent.incumbent_index
                incumbent_valid, incumbent_test = incumbent.incumbent_valid, incumbent.incumbent_test
            row = TrajectoryRow(
                query=query,
                index=cell.index,
                arch=cell.arch_str,
                valid=evaluation.valid,
                test=evaluation.test,
                seed=evaluation.seed,
                cost_s=evaluation.cost_s,
                params_mb=evaluation.params_mb,
                incumbent_index=incumbent_index,
                incumbent_valid=incumbent_valid,
                incumbent_test=incumbent_test,
                sim_cost_s=recorded[query - 1].sim_cost_s if replaying else sim_cost,
                overhead_s=overhead,
                failure=evaluation.failure,
                **_proposal_info(searcher),
                recommended_index=incumbent_index if recommended is None else recommended.index,
                recommended_test=incumbent_test if recommended is None else history[recommended.index].test,
            )
            sim_cost = row.sim_cost_s
            rows.append(row)
            incumbent = row
            if trajectory is not None and not replaying:
                append_row(trajectory, row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(best_valid=f"{row.incumbent_valid:.2f}", test=f"{row.incumbent_test:.2f}")
    finally:
        if trajectory is not None:
            trajectory.close()
        if bar is not None:
            bar.close()

    summary = summarize(config, rows, repeats=repeats)
    if directory is not None:
        directory.write_summary(summary)
    return RunResult(config, tuple(rows), summary, replayed=min(len(recorded), len(rows)))


def _recommendation(searcher: Searcher, history: dict[int, Evaluation]) -> Cell | None:
    """The evaluated cell the searcher would return (``None``: its incumbent).

    Raises:
        SearcherError: it recommends a cell it was never told about.
    """
    if not isinstance(searcher, Recommender):
        return None
    cell = searcher.recommend()
    if cell is not None and cell.index not in history:
        raise SearcherError(f"the searcher recommends cell {cell.index}, which it has not evaluated")
    return cell


def _proposal_info(searcher: Searcher) -> dict[str, float | None]:
    """What a model-based searcher said about its last proposal (see ``TrajectoryRow``)."""
    info = getattr(searcher, "last_info", None) or {}
    return {
        "acquisition": info.get("acquisition", info.get("prior_mean")),
        "pred_mean": info.get("pred_mean"),
        "pred_std": info.get("pred_std"),
    }


def summarize(config: RunConfig, rows: list[TrajectoryRow], *, repeats: int = 0) -> dict[str, Any]:
    """The content of ``summary.json`` for a finished trajectory."""
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
        "config": config.to_dict(),
        "versions": package_versions(),
    }


def _prepare_directory(
    directory: RunDirectory, config: RunConfig, run_info: dict[str, Any]
) -> list[TrajectoryRow]:
    """Check that ``directory`` is new or holds this run; return its recorded rows."""
    stored = directory.read_config()
    if stored is None:
        if directory.trajectory_path.exists():
            raise RunDirectoryError(
                f"{directory.path} has a trajectory but no {directory.config_path.name}; "
                "move it away to start the run anew"
            )
        directory.path.mkdir(parents=True, exist_ok=True)
        directory.write_config(_config_record(config, run_info, created=None))
        return []
    try:
        stored_config = RunConfig(**stored["config"])
    except (KeyError, TypeError, ConfigError) as error:
        raise RunDirectoryError(f"{directory.config_path} is not a tnas run config ({error})") from None
    if not stored_config.same_run_as(config):
        raise RunDirectoryError(
            f"{directory.path} holds another run ({_describe(stored_config)}); "
            f"choose another --out for {_describe(config)}"
        )
    recorded = directory.read_trajectory()
    if len(recorded) > config.budget:
        raise RunDirectoryError(
            f"{directory.path} already holds {len(recorded)} queries, more than the budget "
            f"of {config.budget}; raise --budget or choose another --out"
        )
    if stored_config != config:
        directory.write_config(_config_record(config, run_info, created=stored.get("created")))
    return recorded


def _config_record(config: RunConfig, run_info: dict[str, Any], created: str | None) -> dict[str, Any]:
    return {
        "format": RUN_FORMAT,
        "created": created or datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        **run_info,
        "versions": package_versions(),
    }


def _describe(config: RunConfig) -> str:
    return (
        f"method={config.method} dataset={config.dataset} seed={config.seed} "
        f"fidelity={config.fidelity} observe={config.observe}"
    )


def _progress_bar(config: RunConfig, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(
        total=config.budget, desc=f"{config.method} on {config.dataset}", unit="query", leave=False, disable=None
    )
