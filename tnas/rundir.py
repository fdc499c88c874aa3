"""The run directory: ``config.json``, ``journal.jsonl``, ``trajectory.csv`` and ``summary.json``.

This is a stable schema that other tools (the benchmark harness, plots) read.

``trajectory.csv`` has one row per query, in the order the evaluations finished (with one
worker: the order they were asked), with the columns of :data:`TRAJECTORY_COLUMNS`:

- ``query``: 1-based query number; ``index``, ``arch``: the cell evaluated;
- ``valid``: observed validation accuracy (%); ``test``: its test accuracy (%);
- ``seed``: seed slot observed (empty for the seed mean); ``cost_s``: simulated training
  seconds of this query; ``params_mb``: parameters in millions;
- ``incumbent_index``, ``incumbent_valid``, ``incumbent_test``: the cell with the best
  observed validation accuracy so far (earliest on ties), what the method would return;
- ``sim_cost_s``: cumulative simulated training seconds; ``overhead_s``: cumulative
  seconds spent inside the searcher's ``ask`` and ``tell``;
- ``acquisition``, ``pred_mean``, ``pred_std``: for model-based methods, the acquisition
  value and the surrogate's predicted mean and standard deviation (accuracy, %) of the
  proposed cell when it was proposed (empty otherwise; TNAS's initial design records its
  ``prior_mean`` in standardised units in ``acquisition``);
- ``failure``: why the query's training failed (real-training oracle only; the query then
  observed chance-level accuracy), empty otherwise;
- ``recommended_index``, ``recommended_test``: the evaluated cell the method would return
  after this query and its test accuracy (%). It is the incumbent unless the method
  recommends another cell (see :class:`tnas.search.protocol.Recommender`: model-based
  methods return the cell of best posterior mean when observations are noisy);
- ``start_s``, ``end_s``: when the evaluation started and finished, in seconds on the run's
  clock: simulated (each query's recorded training time; the ``simulated`` backend) or
  real wall-clock since the run started (``local``, ``ray``); ``worker``: the worker
  (0-based) that ran it. A failed worker's query has a ``failure`` and chance accuracy;
- ``latency_ms``, ``flops_m``: the cell's latency on the run's ``latency_device`` and its
  MFLOPs, for runs constrained on them (``--max-latency-ms``, ``--max-flops``); empty
  otherwise (``params_mb`` is always recorded).

``journal.jsonl`` (:mod:`tnas.search.journal`) records every submitted evaluation.

Trajectories written before the optional trailing columns existed are read as well (and
rewritten with the current header when a run appends to them).

Rows are appended one full line per write and flushed at once, so a killed run leaves at
most a partial last line, which the reader skips and the writer cuts off before it
appends. Readers never write. ``config.json`` and ``summary.json`` are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import IO, Any

from tnas.errors import RunDirectoryError
from tnas.io import atomic_write_json, atomic_write_text, parse_json
from tnas.oracles import Evaluation
from tnas.space import NUM_CELLS

CONFIG_FILE = "config.json"
JOURNAL_FILE = "journal.jsonl"
TRAJECTORY_FILE = "trajectory.csv"
SUMMARY_FILE = "summary.json"
STALE_RUN_SUFFIX = ".stale-"
"""Between a run directory's name and a number: a run searched with other settings than this
version's, moved aside by the benchmark harness (``seed3.stale-1``, :func:`set_aside`);
readers of run trees (``tnas.compare``, the results pages) skip such folders
(:func:`is_set_aside`)."""


@dataclass(frozen=True)
class TrajectoryRow:
    """One query of a run (see the module docstring for the meaning of each field)."""

    query: int
    index: int
    arch: str
    valid: float
    test: float
    seed: int | None
    cost_s: float
    params_mb: float
    incumbent_index: int
    incumbent_valid: float
    incumbent_test: float
    sim_cost_s: float
    overhead_s: float
    acquisition: float | None = None
    pred_mean: float | None = None
    pred_std: float | None = None
    failure: str | None = None
    recommended_index: int | None = None
    recommended_test: float | None = None
    start_s: float | None = None
    end_s: float | None = None
    worker: int | None = None
    latency_ms: float | None = None
    flops_m: float | None = None

    def evaluation(self, fidelity: int) -> Evaluation:
        """The evaluation this row recorded."""
        return Evaluation(
            valid=self.valid,
            test=self.test,
            cost_s=self.cost_s,
            params_mb=self.params_mb,
            fidelity=fidelity,
            seed=self.seed,
            failure=self.failure,
        )


TRAJECTORY_COLUMNS: tuple[str, ...] = tuple(field.name for field in fields(TrajectoryRow))
_INT_FIELDS = {"query", "index", "incumbent_index", "recommended_index", "worker"}
_TEXT_FIELDS = {"arch", "failure"}
_OPTIONAL_FIELDS = {"seed", "acquisition", "pred_mean", "pred_std", "failure", "recommended_index",
                    "recommended_test", "start_s", "end_s", "worker", "latency_ms", "flops_m"}  # fmt: skip
_REQUIRED_COLUMNS = tuple(name for name in TRAJECTORY_COLUMNS if name not in _OPTIONAL_FIELDS or name == "seed")


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back to the same float
    return str(value)


def format_row(row: TrajectoryRow) -> str:
    """One CSV line (with its newline) for ``row``."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([_format(value) for value in astuple(row)])
    return buffer.getvalue()


def _parse_row(values: list[str], columns: tuple[str, ...] = TRAJECTORY_COLUMNS) -> TrajectoryRow:
    parsed: dict[str, Any] = {}
    for name, text in zip(columns, values, strict=True):
        if name in _OPTIONAL_FIELDS and not text:
            parsed[name] = None
        elif name in _TEXT_FIELDS:
            parsed[name] = text
        elif name == "seed" or name in _INT_FIELDS:
            parsed[name] = int(text)
        else:
            parsed[name] = float(text)
    return TrajectoryRow(**parsed)


class RunDirectory:
    """Reads and writes the files of one run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def check_layout(self) -> None:
        """Raises ``RunDirectoryError`` when the folder is a file, or one of its run files
        (config, journal, trajectory, summary) is something other than a file."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"{self.path} is a file, not a run directory; choose another --out")
        for path in (self.config_path, self.journal_path, self.trajectory_path, self.summary_path):
            if path.exists() and not path.is_file():
                raise RunDirectoryError(f"{path} is not a file; move {self.path} away to start the run anew")

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL_FILE

    @property
    def trajectory_path(self) -> Path:
        return self.path / TRAJECTORY_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    def _read_json(self, path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        try:
            data = parse_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise RunDirectoryError(
                f"{path} is unreadable ({error}); move {self.path} away to start the run anew"
            ) from None
        if not isinstance(data, dict):
            raise RunDirectoryError(f"{path} does not hold a JSON object")
        return data

    def read_config(self) -> dict[str, Any] | None:
        """The stored ``config.json``, or ``None`` for a new run.

        Raises:
            RunDirectoryError: unreadable, or its ``config`` or ``method_settings`` is not a
                JSON object (what the run's identity and staleness are judged by).
        """
        data = self._read_json(self.config_path)
        for name in ("config", "method_settings"):
            if data is not None and name in data and not isinstance(data[name], dict):
                raise RunDirectoryError(f"{self.config_path} records {name} as {json.dumps(data[name])[:40]}, not a "
                                        f"JSON object; move {self.path} away to start the run anew")  # fmt: skip
        return data

    def write_config(self, data: dict[str, Any]) -> None:
        atomic_write_json(self.config_path, data)

    def read_summary(self) -> dict[str, Any] | None:
        return self._read_json(self.summary_path)

    def write_summary(self, data: dict[str, Any]) -> None:
        atomic_write_json(self.summary_path, data)

    def read_trajectory(self) -> list[TrajectoryRow]:
        """All complete rows of ``trajectory.csv`` (a partial last line is skipped); read only."""
        if self.trajectory_path.exists() and not self.trajectory_path.is_file():
            raise RunDirectoryError(f"{self.trajectory_path} is not a file; move {self.path} away to start the run anew")
        if not self.trajectory_path.is_file():
            return []
        try:
            text = self.trajectory_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise RunDirectoryError(f"{self.trajectory_path} is unreadable ({error}); move {self.path} away to "
                                    "start the run anew") from None  # fmt: skip
        if text and not text.endswith("\n"):  # killed in the middle of a write
            text = text[: text.rfind("\n") + 1]
        try:
            lines = list(csv.reader(io.StringIO(text)))
        except csv.Error as error:  # a field past the csv module's limit, a NUL byte
            raise RunDirectoryError(f"{self.trajectory_path} is corrupt ({error}); move {self.path} away to start "
                                    "the run anew") from None  # fmt: skip
        if not lines:
            return []
        columns = tuple(lines[0])
        older_format = columns != TRAJECTORY_COLUMNS and columns == TRAJECTORY_COLUMNS[: len(columns)]
        if columns != TRAJECTORY_COLUMNS and not (older_format and len(columns) >= len(_REQUIRED_COLUMNS)):
            raise RunDirectoryError(
                f"{self.trajectory_path} has columns {lines[0]}, expected {list(TRAJECTORY_COLUMNS)}"
            )
        rows: list[TrajectoryRow] = []
        evaluated: set[int] = set()
        for number, values in enumerate(lines[1:], start=2):
            try:
                row = _parse_row(values, columns)
                _check_row(row)
            except (ValueError, TypeError) as error:
                raise RunDirectoryError(
                    f"{self.trajectory_path}:{number} is corrupt ({error}); move {self.path} "
                    "away to start the run anew"
                ) from None
            if row.query != len(rows) + 1:
                raise RunDirectoryError(
                    f"{self.trajectory_path}:{number} holds query {row.query}, expected {len(rows) + 1}"
                )
            evaluated.add(row.index)
            for name in ("incumbent_index", "recommended_index"):
                cell = getattr(row, name)
                if cell is not None and cell not in evaluated:
                    raise RunDirectoryError(
                        f"{self.trajectory_path}:{number} is corrupt ({name} {cell} is no cell evaluated so far); "
                        f"move {self.path} away to start the run anew"
                    )
            rows.append(row)
        return rows

    def open_trajectory(self, existing_rows: int) -> IO[str]:
        """Open ``trajectory.csv`` for appending after its first ``existing_rows`` rows.

        A new file gets the header; an existing one is rewritten (atomically) in today's
        format, without a partial last line or rows past ``existing_rows``, whenever it
        differs from that, so that appended rows always follow complete ones.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        header = ",".join(TRAJECTORY_COLUMNS) + "\n"
        if existing_rows == 0:
            atomic_write_text(self.trajectory_path, header)
        else:
            text = header + "".join(format_row(row) for row in self.read_trajectory()[:existing_rows])
            if self.trajectory_path.read_text() != text:
                atomic_write_text(self.trajectory_path, text)
        return open(self.trajectory_path, "a", newline="")


FINITE_FIELDS = ("valid", "test", "cost_s", "sim_cost_s", "incumbent_valid", "incumbent_test", "overhead_s")
"""The figures of a trajectory row that must be finite numbers."""
FINITE_WHEN_PRESENT = ("recommended_test", "start_s", "end_s")
"""Figures that may be empty (older formats) but, given, must be finite."""


def _check_row(row: TrajectoryRow) -> None:
    """Raises ``ValueError`` naming the first figure of ``row`` that is NaN or infinite, or
    the first cell index that is not one of the space's."""
    for name in ("index", "incumbent_index", "recommended_index"):
        value = getattr(row, name)
        if value is not None and not 0 <= value < NUM_CELLS:
            raise ValueError(f"{name} {value} is not a cell index (0 to {NUM_CELLS - 1})")
    for name in FINITE_FIELDS + FINITE_WHEN_PRESENT:
        value = getattr(row, name)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name} is {value}")


def append_row(file: IO[str], row: TrajectoryRow) -> None:
    """Append one row as a single write and flush it to the operating system."""
    file.write(format_row(row))
    file.flush()


def set_aside(path: Path) -> Path:
    """Move run directory ``path`` to ``<name>.stale-<k>`` beside it (first free k); the new path."""
    k = 1
    while (target := path.with_name(f"{path.name}{STALE_RUN_SUFFIX}{k}")).exists():
        k += 1
    path.rename(target)
    return target


def is_set_aside(path: Path) -> bool:
    """Whether ``path`` names a run directory moved aside by :func:`set_aside`."""
    return STALE_RUN_SUFFIX in path.name
