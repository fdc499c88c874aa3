"""Extra meta-training sources: your own tables and the run directories of earlier searches.

Each extra source is one more REPTILE task, standardised on its own like a NAS-Bench-201
table: the cells it holds and their observed accuracy, on a dataset encoded from its
images (a dataset of the registry) or, without images, by the mean code of the shipped
benchmark samples (as a search on such a target is, see :mod:`tnas.search.methods.tnas_setup`).

A source is named on the command line as ``PATH`` or ``PATH=DATASET``:

- a **run directory** of ``python -m tnas.search`` (``config.json`` and ``trajectory.csv``):
  every finished query's observed validation accuracy (failed trainings left out; a cell
  observed more than once counts with its mean). The dataset is the run's unless given.
- a **table** of your own (:mod:`tnas.oracles.user_table`): its observed column, named by
  its sidecar (``<stem>.json``; ``"valid_column"``); the dataset is ``=DATASET`` or the
  sidecar's ``"dataset"``, else the file's stem (a task without images).

This is how each search makes the next one faster: search a dataset, then meta-train on
what you found (``--source runs/DATASET/tnas/seed0``), then search the next dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tnas.datasets import canonical_name
from tnas.errors import ConfigError, DataFileError, TnasError
from tnas.oracles.user_table import UserTable, read_sidecar, resolve_spec
from tnas.rundir import RunDirectory

MIN_CELLS = 10
"""Fewest distinct cells a source must hold (a GP mini-batch needs a few)."""


@dataclass(frozen=True)
class SourceSpec:
    """An extra source as the configuration records it: ``path`` and the ``dataset`` it ran on."""

    path: str
    dataset: str

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        """``PATH`` or ``PATH=DATASET`` (the dataset filled in from the source when omitted).

        Raises:
            ConfigError: the path is neither a run directory nor a file.
            DataFileError: a run directory's ``config.json`` or a sidecar is damaged.
        """
        raw, _, dataset = text.rpartition("=") if "=" in text else (text, "", "")
        if dataset and ("/" in dataset or Path(text).exists()):  # an "=" inside the path itself
            raw, dataset = text, ""
        path = Path(raw).expanduser().resolve()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise ConfigError(f"--source {raw}: a run directory holds config.json (from python -m tnas.search)")
            if not dataset:
                dataset = str(_run_config(path).get("dataset", ""))
        elif path.is_file():
            dataset = dataset or str(read_sidecar(path).get("dataset") or path.stem)
        else:
            raise ConfigError(f"--source {raw}: no such run directory or table")
        if not dataset:
            raise ConfigError(f"--source {raw}: name its dataset as {raw}=DATASET")
        return cls(str(path), canonical_name(dataset))

    def to_text(self) -> str:
        return f"{self.path}={self.dataset}"

    @property
    def name(self) -> str:
        """The source's name in the meta-training records: ``<dataset>@<parent>/<folder or file>``
        (``cifar100@tnas/seed0`` for ``runs/cifar100/tnas/seed0``)."""
        path = Path(self.path)
        return f"{self.dataset}@{path.parent.name}/{path.stem}"


@dataclass(frozen=True)
class SourceData:
    """What an extra source holds: distinct ``cells`` (official indexes) and their ``values`` (%),
    and where the full dataset of a real-training run was (``data_root``, for its images)."""

    spec: SourceSpec
    cells: np.ndarray
    values: np.ndarray
    data_root: str | None = None


def read_source(spec: SourceSpec) -> SourceData:
    """Read an extra source's observations.

    Raises:
        DataFileError: an unreadable or damaged source, or one with fewer than
            :data:`MIN_CELLS` cells.
    """
    path = Path(spec.path)
    data_root = None
    try:
        if path.is_dir():
            cells, values = _run_observations(path)
            oracle_options = _run_config(path).get("oracle_options") or {}
            data_root = oracle_options.get("data_root") if isinstance(oracle_options, dict) else None
            if data_root is not None and not isinstance(data_root, str):
                raise DataFileError(f"--source {path}: its config.json records data_root as {data_root!r}, not a "
                                    "folder name; fix it, or name the images with --source PATH=DATASET")  # fmt: skip
        else:
            table = UserTable.load(resolve_spec(path))
            cells = np.flatnonzero(table.present)
            values = table.column(table.spec.valid_column)[cells]
    except TnasError as error:
        if isinstance(error, DataFileError):
            raise
        raise DataFileError(f"--source {path}: {error}") from None
    with np.errstate(over="ignore", invalid="ignore"):
        spread = float(np.std(values)) if len(cells) else 0.0
    if not math.isfinite(spread):  # finite readings so large that their spread overflows: not accuracies
        raise DataFileError(f"--source {path}: its values (up to {np.max(np.abs(values)):.3g}) are too large to "
                            "standardise; observe accuracies or another metric of ordinary size")  # fmt: skip
    if len(cells) >= MIN_CELLS and spread == 0.0:
        raise DataFileError(f"--source {path}: every cell has the same value ({values[0]}); it teaches nothing")
    if len(cells) < MIN_CELLS:
        raise DataFileError(f"--source {path} holds {len(cells)} distinct cell(s); a meta-training source needs at "
                            f"least {MIN_CELLS}")  # fmt: skip
    return SourceData(spec, np.asarray(cells, dtype=np.int64), np.asarray(values, dtype=np.float64), data_root)


def _run_config(path: Path) -> dict:

    try:
        stored = RunDirectory(path).read_config() or {}
    except TnasError as error:
        raise DataFileError(str(error)) from None
    config = stored.get("config") or {}
    if (not isinstance(config, dict) or not isinstance(config.get("oracle_options") or {}, dict)
            or not isinstance(config.get("dataset", ""), str)):  # fmt: skip
        raise DataFileError(f"--source {path}: {RunDirectory(path).config_path} is damaged (its config or "
                            "oracle_options is not a JSON object, or its dataset not a name)")  # fmt: skip
    return config


def _run_observations(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Distinct cells of a run's finished queries and their mean observed validation accuracy."""

    rows = [row for row in RunDirectory(path).read_trajectory() if row.failure is None and math.isfinite(row.valid)]
    observed: dict[int, list[float]] = {}
    for row in rows:
        observed.setdefault(row.index, []).append(row.valid)
    cells = np.array(sorted(observed), dtype=np.int64)
    return cells, np.array([np.mean(observed[int(cell)]) for cell in cells])


def source_datasets(texts: tuple[str, ...]) -> set[str]:
    """The datasets extra sources (as recorded, ``PATH=DATASET``) hold observations of."""
    return {canonical_name(text.rpartition("=")[2]) for text in texts}

