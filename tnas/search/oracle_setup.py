"""Which oracle answers a run's queries: the benchmark table or really training cells.

The table oracle serves the NAS-Bench-201 tasks. The real-training oracle serves any
dataset of the registry (``tnas.datasets``): its settings that decide the answers live in
``RunConfig.oracle_options`` (so a resumed run must repeat them); the device and the
trainings cache folder do not change answers and are given at run time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tnas import paths
from tnas.cli_common import resolve_device
from tnas.constraints import TASK_GEOMETRY, NetworkGeometry, constrained_space
from tnas.errors import ConfigError
from tnas.oracles import TASKS, NB201Table, Oracle, TableOracle, get_task
from tnas.oracles.user_table import UserTable, UserTableOracle, UserTableSpec
from tnas.search.config import RunConfig
from tnas.space import FULL_SPACE, SearchSpace


@dataclass(frozen=True)
class TrainOracleOptions:
    """Settings of the real-training oracle that decide its answers.

    Defaults follow NAS-Bench-201 (200 epochs, batch 256, learning rate 0.1, C = 16,
    N = 5) with one training seed per cell and 20% of each class held out for validation.
    """

    epochs: int = 200
    batch_size: int = 256
    learning_rate: float = 0.1
    train_subset: int | None = None
    channels: int = 16
    cells_per_stage: int = 5
    train_seeds: tuple[int, ...] = (0,)
    valid_fraction: float = 0.2
    data_root: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_seeds", tuple(self.train_seeds))
        if self.channels < 1 or self.cells_per_stage < 1:
            raise ConfigError("--channels and --cells-per-stage must be positive")

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["train_seeds"] = list(self.train_seeds)
        return values


def default_oracle(dataset: str) -> str:
    """``table`` for the NAS-Bench-201 tasks, ``train`` for every other dataset."""
    try:
        get_task(dataset)
    except ConfigError:
        return "train"
    return "table"


def table_task_name(dataset: str) -> str:
    """The table task called ``dataset``, with a hint towards ``--oracle train`` if there is none."""
    try:
        return get_task(dataset).name
    except ConfigError:
        raise ConfigError(f"no NAS-Bench-201 table for {dataset!r} (tables: {', '.join(TASKS)}); "
                          "use --oracle train to train the cells") from None


@dataclass(frozen=True)
class OracleSpec:
    """How a worker process or Ray actor builds the run's oracle (picklable).

    Attributes:
        config: the run's configuration.
        data_dir: the data directory (tables, offline samples).
        results_cache: the trainings cache folder (shared by all workers on one machine).
        retry_failed: train again cells whose stored training failed.
    """

    config: RunConfig
    data_dir: Path | None = None
    results_cache: Path | None = None
    retry_failed: bool = False

    def build(self, device: str | None) -> Oracle:
        """The oracle, on ``device`` (real training)."""
        oracle, _ = build_oracle(self.config, data_dir=self.data_dir, device=device,
                                 results_cache=self.results_cache, retry_failed=self.retry_failed)  # fmt: skip
        return oracle


def build_oracle(
    config: RunConfig,
    *,
    table: NB201Table | None = None,
    data_dir: Path | None = None,
    device: str | None = None,
    results_cache: Path | None = None,
    progress: bool = False,
    retry_failed: bool = False,
) -> tuple[Oracle, dict[str, Any]]:
    """The oracle of ``config`` and what ``config.json`` records about it.

    Raises:
        TnasError: unknown dataset, missing data (with what to download), bad settings.
    """
    if config.oracle == "user":
        try:
            spec = UserTableSpec(**config.oracle_options)
        except TypeError as error:
            raise ConfigError(f"unknown user-table option: {error}") from None
        user_table = UserTable.load(spec)
        return UserTableOracle(user_table, config.dataset), {
            "kind": "user-table", "source": spec.table, "sha256": user_table.sha256(), "cells": len(user_table),
            "columns": {name: value for name, value in spec.to_dict().items() if name != "table"}}  # fmt: skip
    if config.oracle == "table":
        task = table_task_name(config.dataset)
        table = table if table is not None else NB201Table.load(data_dir)
        oracle = TableOracle(table, get_task(task))
        oracle.valid_values(config.fidelity)  # fails early on an unsupported fidelity
        return oracle, {"kind": "table", "source": str(table.source)}
    return _training_oracle(config, data_dir, device, results_cache, progress, retry_failed)


def _training_oracle(config: RunConfig, data_dir: Path | None, device: str | None, results_cache: Path | None,
                     progress: bool, retry_failed: bool) -> tuple[Oracle, dict[str, Any]]:  # fmt: skip
    from tnas.datasets.splits import SplitConfig, get_splits
    from tnas.oracles.training import TrainingOracle
    from tnas.train import TrainConfig

    try:
        options = TrainOracleOptions(**config.oracle_options)
    except TypeError as error:
        raise ConfigError(f"unknown training-oracle option: {error}") from None
    if options.epochs != config.fidelity:
        raise ConfigError(f"the training oracle's fidelity is its epochs ({options.epochs}), got {config.fidelity}")
    split_config = SplitConfig(valid_fraction=options.valid_fraction)
    splits = get_splits(config.dataset, data_dir=data_dir, data_root=options.data_root, config=split_config)
    train_config = TrainConfig(epochs=options.epochs, batch_size=options.batch_size,
                               learning_rate=options.learning_rate, train_subset=options.train_subset)  # fmt: skip
    device = device or resolve_device(None)
    cache_root = results_cache or paths.cache_dir() / "trainings"
    oracle = TrainingOracle(splits, split_config=split_config, train_config=train_config, channels=options.channels,
                            cells_per_stage=options.cells_per_stage, train_seeds=options.train_seeds,
                            cache_root=cache_root, device=device, progress=progress,
                            retry_failed=retry_failed)  # fmt: skip
    info = {"kind": "train", "device": device, "trainings_cache": str(oracle.cache.folder),
            "splits": splits.sizes(), "source": splits.source}  # fmt: skip
    return oracle, info


def search_space(config: RunConfig, oracle: Oracle, data_dir: Path | None = None) -> SearchSpace:
    """The cells the run may propose: those its oracle can answer that meet its constraints.

    A table oracle answers the cells its table holds (all 15,625 for NAS-Bench-201); its
    parameters are the table's own column. The real-training oracle answers every cell, and
    parameters and FLOPs are those of the network it trains.

    Raises:
        ConfigError: no cell meets the constraints, or the budget exceeds the feasible cells.
        TableError: a damaged latency table.
    """
    limits = config.limits
    geometry: NetworkGeometry | None = None
    if isinstance(oracle, TableOracle):
        present, params = oracle.table.present, oracle.table.column(oracle.task.params)
        geometry = TASK_GEOMETRY.get(oracle.task.name)
        held = f"the {int(present.sum())} cells of {oracle.table.source}"
    elif isinstance(oracle, UserTableOracle):
        spec = oracle.table.spec
        present = oracle.table.present
        params = oracle.table.column(spec.params_column) if spec.params_column else None
        geometry = TASK_GEOMETRY.get(config.dataset)  # the network of a user's own task is not known
        held = f"the {int(present.sum())} cells of {oracle.table.source}"
    else:  # the training oracle counts the network it trains; any other oracle answers every cell
        present, params, held = None, None, ""
        network, splits = getattr(oracle, "network", None), getattr(oracle, "splits", None)
        if limits.active and network is not None and splits is not None:
            geometry = NetworkGeometry(resolution=splits.image_shape[0], num_classes=network.num_classes,
                                       in_channels=network.in_channels, channels=network.channels,
                                       cells_per_stage=network.cells_per_stage)  # fmt: skip
    if limits.active:
        space = constrained_space(limits, geometry, params_mb=params, present=present, data_dir=data_dir)
    elif present is not None and not present.all():
        space = SearchSpace(present, description=held)
    else:
        space = FULL_SPACE
    if config.budget > len(space):
        raise ConfigError(f"--budget {config.budget} exceeds the {len(space)} cells of the search space "
                          f"({space.description}); lower the budget")  # fmt: skip
    return space
