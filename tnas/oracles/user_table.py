"""Your own table of results over the NAS-Bench-201 cell space, and the oracle that answers from it.

Schema (CSV, UTF-8, one header line, one row per cell):

- the cell: a column ``index`` (official NAS-Bench-201 index, 0..15624) and/or a column
  ``arch_str`` (``|nor_conv_3x3~0|+|...|``); with both, they must name the same cell;
- numeric metric columns, named as you like: the one a search observes (``--valid-column``),
  the one the report quotes (``--test-column``, default: the observed one), and optionally
  the training seconds a query costs on the simulated clock (``--cost-column``, default:
  nothing) and the parameters in millions (``--params-column``, for ``--max-params``);
- other columns are ignored; an empty value, ``nan`` or ``NaN`` means "not measured".

Cells may be missing: a search on a partial table proposes only the cells whose observed
(and reported) column holds a value. The column choice may also come from a sidecar beside the table,
``<table stem>.json`` (for ``results.csv``: ``results.json``), holding
``{"valid_column": ..., "test_column": ..., "cost_column": ..., "params_column": ...,
"dataset": ...}`` (``dataset`` names the task the table measured, for meta-training on
it); options on the command line win over it.

The table is parsed once and kept as a binary copy in the cache directory (keyed by the
file's path, size and modification time), so later loads take milliseconds, as for the
NAS-Bench-201 table.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from tnas.cell_csv import PRESENT, cached_columns, read_cell_csv
from tnas.errors import ConfigError, DataFileError, SeedNotAvailableError, TableError
from tnas.io import parse_json, why_not_a_file
from tnas.oracles.base import Evaluation
from tnas.space import Cell

_CACHE_FORMAT = 1


@dataclass(frozen=True)
class UserTableSpec:
    """Which file and columns a user-table run reads (part of the run's identity).

    Attributes:
        table: path of the CSV file.
        valid_column: the column a search observes.
        test_column: the column the report quotes (``None``: the observed one).
        cost_column: training seconds per query on the simulated clock (``None``: free).
        params_column: parameters in millions (``None``: not known; ``--max-params`` then
            counts the NAS-Bench-201 network of the ``--dataset``'s geometry).
    """

    table: str
    valid_column: str
    test_column: str | None = None
    cost_column: str | None = None
    params_column: str | None = None

    def __post_init__(self) -> None:
        for name in ("valid_column", "test_column", "cost_column", "params_column"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{name} must be a column name, got {value!r}")

    @property
    def columns(self) -> tuple[str, ...]:
        """The numeric columns read, without repeats."""
        named = (self.valid_column, self.test_column, self.cost_column, self.params_column)
        return tuple(dict.fromkeys(name for name in named if name is not None))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SIDECAR_KEYS = (frozenset(field.name for field in fields(UserTableSpec)) - {"table"}) | {"dataset"}
"""Keys a sidecar may hold: the column choice, and the ``dataset`` the table measured (for
``python -m tnas.meta_train --source``)."""


def sidecar_path(table: Path) -> Path:
    """``results.csv`` -> ``results.json`` beside it."""
    return table.with_suffix(".json")


def read_sidecar(table: Path) -> dict[str, str]:
    """The column choice stored beside ``table`` (``{}`` when there is none).

    Raises:
        DataFileError: the sidecar is unreadable, not a JSON object, or has unknown keys.
    """
    path = sidecar_path(table)
    if not path.is_file():
        return {}
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataFileError(f"sidecar {path} is unreadable ({error}); fix or delete it") from None
    if not isinstance(data, dict):
        raise DataFileError(f"sidecar {path} must hold a JSON object such as {{\"valid_column\": \"val_acc\"}}")
    unknown = sorted(set(data) - SIDECAR_KEYS)
    if unknown:
        raise DataFileError(f"sidecar {path} has unknown key(s) {', '.join(unknown)}; keys: "
                            f"{', '.join(sorted(SIDECAR_KEYS))}")  # fmt: skip
    if not all(isinstance(value, str) or value is None for value in data.values()):
        raise DataFileError(f"sidecar {path}: every value must be a column name (a string)")
    blank = [key for key, value in data.items() if isinstance(value, str) and not value.strip()]
    if blank:
        raise DataFileError(f"sidecar {path}: {', '.join(blank)} must name something, not be blank")
    garbled = [key for key, value in data.items() if isinstance(value, str) and not value.isprintable()]
    if garbled:
        raise DataFileError(f"sidecar {path}: {', '.join(garbled)} must be one line of printable text")
    return data


def table_dataset(table: Path, sidecar: Mapping[str, str | None] | None = None) -> str:
    """The task a table of your own measured, when no ``--dataset`` names it: its sidecar's
    ``dataset`` (``sidecar``: the sidecar already read; read here otherwise), else the file's
    stem, in lower case (``lab.csv`` -> ``lab``).

    Raises:
        DataFileError: a damaged sidecar (:func:`read_sidecar`).
    """
    path = Path(table).expanduser().resolve()
    return str((read_sidecar(path) if sidecar is None else sidecar).get("dataset") or path.stem).lower()


def resolve_spec(table: Path, *, valid_column: str | None = None, test_column: str | None = None,
                 cost_column: str | None = None, params_column: str | None = None) -> UserTableSpec:  # fmt: skip
    """The columns to read: the command line's, else the sidecar's.

    Raises:
        TableError: the table is not a file.
        ConfigError: no observed column is named anywhere.
        DataFileError: a damaged sidecar.
    """
    table = Path(table).expanduser().resolve()
    if not table.is_file():  # before asking for its columns
        raise TableError(f"table {table} {why_not_a_file(table)}")
    stored = read_sidecar(table)
    given = {"valid_column": valid_column, "test_column": test_column, "cost_column": cost_column,
             "params_column": params_column}  # fmt: skip
    chosen = {name: value if value is not None else stored.get(name) for name, value in given.items()}
    if chosen["valid_column"] is None:
        raise ConfigError(f"name the column a search observes: --valid-column COL (or \"valid_column\" in "
                          f"{sidecar_path(table)})")  # fmt: skip
    return UserTableSpec(table=str(table), **chosen)


class UserTable:
    """The columns of a user table, by official index (NaN where a cell has no value)."""

    def __init__(self, spec: UserTableSpec, columns: dict[str, np.ndarray]) -> None:
        self.spec = spec
        self.source = Path(spec.table)
        self._columns = columns
        for values in columns.values():
            values.setflags(write=False)
        reported = columns[spec.test_column or spec.valid_column]
        self.present = columns[PRESENT].astype(bool) & ~np.isnan(columns[spec.valid_column]) & ~np.isnan(reported)
        self.present.setflags(write=False)
        if not self.present.any():
            raise TableError(f"table {self.source} holds no cell with a value in column {spec.valid_column}"
                             + (f" and in {spec.test_column}" if spec.test_column else ""))
        for name in (spec.cost_column, spec.params_column):
            if name is not None and (columns[name][self.present] < 0).any():
                raise TableError(f"table {self.source}: column {name} has negative values")

    @classmethod
    def load(cls, spec: UserTableSpec, *, use_cache: bool = True) -> UserTable:
        """Read the spec's table (through the binary cache).

        Raises:
            TableError: a missing or damaged file, or a named column it lacks.
        """
        path = Path(spec.table)
        if not path.is_file():
            raise TableError(f"table {path} {why_not_a_file(path)}")
        columns = cached_columns(path, f"user-table-{_columns_key(spec)}", _CACHE_FORMAT,
                                 lambda source: read_cell_csv(source, numeric=spec.columns, required=spec.columns,
                                                              what="table", hint="fix the file and run again"),
                                 use_cache=use_cache, required=spec.columns)  # fmt: skip
        return cls(spec, columns)

    def column(self, name: str) -> np.ndarray:
        """Read-only float64 array of shape ``(15625,)`` of a column read from the table."""
        return self._columns[name]

    def sha256(self) -> str:
        """The file's content hash (recorded in ``config.json``)."""
        return hashlib.sha256(self.source.read_bytes()).hexdigest()

    def __len__(self) -> int:
        return int(self.present.sum())


def _columns_key(spec: UserTableSpec) -> str:
    return hashlib.sha256("|".join(spec.columns).encode()).hexdigest()[:8]


class UserTableOracle:
    """Answers queries from a :class:`UserTable`: one value per cell, no training seeds.

    ``fidelity`` is the run's label for the table's training schedule; any value is
    accepted (the table holds one). Cost: the cost column's seconds, or 0.
    """

    def __init__(self, table: UserTable, name: str) -> None:
        self.table = table
        self.name = name
        spec = table.spec
        self._valid = table.column(spec.valid_column)
        self._test = table.column(spec.test_column or spec.valid_column)
        self._cost = table.column(spec.cost_column) if spec.cost_column else None
        self._params = table.column(spec.params_column) if spec.params_column else None

    def seeds(self, cell: Cell, *, fidelity: int) -> tuple[int, ...]:
        return ()

    def evaluate(self, cell: Cell, *, fidelity: int, seed: int | None) -> Evaluation:
        index = cell.index
        if seed is not None:
            raise SeedNotAvailableError(f"table {self.table.source} holds one value per cell (no training seeds); "
                                        "search it with --observe mean")  # fmt: skip
        if not self.table.present[index]:
            raise TableError(f"cell {index} ({cell.arch_str}) has no {self.table.spec.valid_column} in "
                             f"{self.table.source}")  # fmt: skip
        cost = float(self._cost[index]) if self._cost is not None else 0.0
        return Evaluation(
            valid=float(self._valid[index]),
            test=float(self._test[index]),
            cost_s=cost if math.isfinite(cost) else 0.0,  # not measured: free
            params_mb=float(self._params[index]) if self._params is not None else math.nan,
            fidelity=fidelity,
            seed=None,
        )

    def valid_values(self, fidelity: int) -> np.ndarray:
        """The observed column of every searchable cell, shape ``(15625,)`` (NaN elsewhere)."""
        return np.where(self.table.present, self._valid, np.nan)

    def test_values(self, fidelity: int) -> np.ndarray:
        """The reported column of every searchable cell, shape ``(15625,)`` (NaN elsewhere)."""
        return np.where(self.table.present, self._test, np.nan)
