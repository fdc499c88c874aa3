"""The NAS-Bench-201 results table and the oracle that answers queries from it.

The table is ``nb201/nb201_merged.csv`` in the data directory (see :mod:`tnas.paths`):
one row per cell, keyed by the official index, 32 numeric columns (see
``TABLE_COLUMNS``). The first load parses the CSV (about half a second) and writes a
binary copy to the cache directory; later loads read that copy in milliseconds and keep
about 4 MB in memory, against ~28 GB for the official API.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tnas import paths
from tnas.cell_csv import cached_columns, read_cell_csv
from tnas.errors import SeedNotAvailableError, TableError
from tnas.oracles.base import FIDELITIES, Evaluation
from tnas.oracles.tasks import TableTask, get_task
from tnas.space import NUM_CELLS, Cell

TABLE_FILE = "nb201/nb201_merged.csv"
KEY_COLUMNS: tuple[str, ...] = ("index", "arch_str", "ops")
TABLE_COLUMNS: tuple[str, ...] = (
    "c10_test_200", "c100_test_200", "in16_test_200",
    "c10v_valid_200", "c10v_test_200", "c10v_train_acc_200",
    "c10v_valid_200_seed0", "c10v_valid_200_seed1", "c10v_valid_200_seed2",
    "c10v_train_time_200_s", "c10v_params_MB", "c10v_latency_s",
    "c100_valid_200", "c100_valid_200_seed0", "c100_valid_200_seed1", "c100_valid_200_seed2",
    "c100_train_time_200_s", "c100_params_MB", "c100_latency_s",
    "in16_valid_200", "in16_valid_200_seed0", "in16_valid_200_seed1", "in16_valid_200_seed2",
    "in16_train_time_200_s", "in16_params_MB", "in16_latency_s",
    "c10_test_12", "c10v_valid_12", "c100_test_12", "c100_valid_12", "in16_test_12",
    "in16_valid_12",
)  # fmt: skip
"""Numeric columns of the table, in file order (documented in the data's SOURCES.md)."""
LOW_FIDELITY_COLUMNS: tuple[str, ...] = tuple(name for name in TABLE_COLUMNS if name.endswith("_12"))
"""The 12-epoch columns: a table may lack them (it is then searchable at 200 epochs only)."""

_CACHE_FORMAT = 1
_HOW_TO_GET_THE_TABLE = (
    "Point --data-dir or $TNAS_DATA_DIR at a folder holding nb201/nb201_merged.csv, or "
    "convert the official file: python -m tnas.oracles.convert "
    "NAS-Bench-201-v1_1-096897.pth --out DATA_DIR/nb201/nb201_merged.csv"
)


class NB201Table:
    """All numeric results of NAS-Bench-201, one float64 array per column.

    Arrays are indexed by official cell index and have length 15,625; cells missing
    from the file (a partial table) hold NaN and are absent from :attr:`present`.
    """

    def __init__(self, columns: Mapping[str, np.ndarray], source: Path) -> None:
        missing = [name for name in TABLE_COLUMNS if name not in columns and name not in LOW_FIDELITY_COLUMNS]
        if missing:
            raise TableError(f"table {source} lacks column(s) {', '.join(missing)}")
        self._columns = {}
        for name in TABLE_COLUMNS:
            array = np.asarray(columns[name] if name in columns else np.full(NUM_CELLS, np.nan), dtype=np.float64)
            if array.shape != (NUM_CELLS,):
                raise TableError(f"column {name} of {source} has shape {array.shape}")
            array.setflags(write=False)
            self._columns[name] = array
        self.source = Path(source)
        present = np.asarray(columns.get("present", ~np.isnan(self._columns["c10v_valid_200"])))
        self.present = present.astype(bool)
        self.present.setflags(write=False)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, data_dir: str | Path | None = None, *, use_cache: bool = True) -> NB201Table:
        """Find the table through the data-directory lookup and load it (cached)."""
        source = paths.find_data_file(TABLE_FILE, data_dir, hint=_HOW_TO_GET_THE_TABLE)
        return cls.from_csv(source, use_cache=use_cache)

    @classmethod
    def from_csv(cls, path: str | Path, *, use_cache: bool = True) -> NB201Table:
        """Load a table in ``nb201_merged.csv`` format, through the binary cache."""
        path = Path(path).resolve()
        columns = cached_columns(path, "nb201-table", _CACHE_FORMAT, _parse_csv, use_cache=use_cache,
                                 required=TABLE_COLUMNS)  # fmt: skip
        try:
            return cls(columns, path)
        except TableError:
            if not use_cache:
                raise
            return cls(_parse_csv(path), path)  # a cached copy of another layout: parse the file

    # ------------------------------------------------------------------ access
    def column(self, name: str) -> np.ndarray:
        """Read-only float64 array of shape ``(15625,)`` for column ``name``."""
        try:
            return self._columns[name]
        except KeyError:
            raise TableError(f"no column {name!r}; columns: {', '.join(TABLE_COLUMNS)}") from None

    def __contains__(self, cell: Cell) -> bool:
        return bool(self.present[cell.index])

    def __len__(self) -> int:
        return int(self.present.sum())


class TableOracle:
    """Answers queries about one task from an :class:`NB201Table`.

    Seeds: NAS-Bench-201 trained each cell 2 or 3 times. Seed slot ``k`` (0, 1 or 2) is
    the k-th of those training runs; 7,456 cells have no slot 2. Asking for a slot a
    cell lacks raises :class:`SeedNotAvailableError` (nothing is substituted); the
    runner's ``seed`` observation policy draws among :meth:`seeds` only. Per-seed values
    exist at 200 epochs only.

    Cost: the 200-epoch training time of the runs whose validation accuracy is observed.
    At 12 epochs the table has no times, so the cost is that time scaled by 12/200 (the
    schedules train the same network, one epoch costs the same).

    Report: the 200-epoch test accuracy at every fidelity (NATS-Bench's protocol: observe
    the 12-epoch validation accuracy, report the test accuracy of the fully trained cell).
    """

    def __init__(self, table: NB201Table, task: str | TableTask) -> None:
        self.table = table
        self.task = get_task(task) if isinstance(task, str) else task
        self.name = self.task.name

    def _check_fidelity(self, fidelity: int) -> None:
        if fidelity not in FIDELITIES or fidelity not in self.task.valid:
            raise TableError(
                f"fidelity {fidelity!r} is not in the table; choose one of "
                f"{', '.join(map(str, FIDELITIES))} epochs"
            )
        column = self.task.valid[fidelity]
        if np.isnan(self.table.column(column)[self.table.present]).all():
            raise TableError(
                f"table {self.table.source} holds no {fidelity}-epoch validation accuracy for {self.name} "
                f"(column {column} is missing or empty); search at --fidelity 200, or add that column"
            )

    def seeds(self, cell: Cell, *, fidelity: int) -> tuple[int, ...]:
        """Seed slots holding a per-seed validation accuracy for ``cell``."""
        self._check_fidelity(fidelity)
        if fidelity != 200:
            return ()
        index = cell.index
        return tuple(
            slot
            for slot, name in enumerate(self.task.valid_seeds)
            if not math.isnan(self.table.column(name)[index])
        )

    def evaluate(self, cell: Cell, *, fidelity: int, seed: int | None) -> Evaluation:
        """Look up ``cell``: observed validation (seed mean or one seed) and reported test."""
        self._check_fidelity(fidelity)
        index = cell.index
        if not self.table.present[index]:
            raise TableError(f"cell {index} ({cell.arch_str}) is not in table {self.table.source}")
        if seed is None:
            valid = self.table.column(self.task.valid[fidelity])[index]
            if math.isnan(valid):
                raise TableError(f"cell {index} has no {fidelity}-epoch validation accuracy in {self.table.source}")
        else:
            available = self.seeds(cell, fidelity=fidelity)
            if seed not in available:
                where = f"at {fidelity} epochs" if available else f"at {fidelity} epochs (means only)"
                raise SeedNotAvailableError(
                    f"cell {index} has no result for seed slot {seed!r} {where}; "
                    f"available slots: {list(available)}"
                )
            valid = self.table.column(self.task.valid_seeds[seed])[index]
        test, train_time, params = (float(self.table.column(name)[index])
                                    for name in (self.task.test, self.task.train_time_200, self.task.params))  # fmt: skip
        self._check_reported(cell, {self.task.test: test, self.task.train_time_200: train_time,
                                    self.task.params: params})  # fmt: skip
        return Evaluation(
            valid=float(valid),
            test=test,
            cost_s=train_time * fidelity / 200,
            params_mb=params,
            fidelity=fidelity,
            seed=seed,
        )

    def _check_reported(self, cell: Cell, values: Mapping[str, float]) -> None:
        """What a query reports besides its observation (test accuracy, training time,
        parameters) must be in the table, and not negative.

        Raises:
            TableError: a value is empty in the table or negative.
        """
        for name, value in values.items():
            if math.isnan(value) or value < 0:
                problem = "is empty" if math.isnan(value) else f"is negative ({value:g})"
                raise TableError(f"{self.table.source}: column {name} {problem} for cell {cell.index} "
                                 f"({cell.arch_str}); restore the table, or convert the official file again")  # fmt: skip

    def valid_values(self, fidelity: int) -> np.ndarray:
        """Seed-mean validation accuracy of every cell, shape ``(15625,)``."""
        self._check_fidelity(fidelity)
        return self.table.column(self.task.valid[fidelity])

    def test_values(self, fidelity: int) -> np.ndarray:
        """Reported test accuracy of every cell, shape ``(15625,)``: the 200-epoch test
        accuracy at every fidelity (a low-fidelity search reports the fully trained cell)."""
        self._check_fidelity(fidelity)
        return self.table.column(self.task.test)


def _parse_csv(path: Path) -> dict[str, np.ndarray]:
    """Parse and validate a table CSV into index-aligned float64 columns and ``present``.

    Raises:
        TableError: the file is damaged (see :func:`tnas.cell_csv.read_cell_csv`).
    """
    required = [name for name in (*KEY_COLUMNS, *TABLE_COLUMNS) if name not in LOW_FIDELITY_COLUMNS]
    return read_cell_csv(path, numeric=TABLE_COLUMNS, required=required, what="table",
                         hint="restore it, or convert the official file again")
