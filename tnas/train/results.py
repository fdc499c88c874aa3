"""A durable cache of finished trainings, so that a killed search never retrains a cell.

Every training, successful or failed, is written at once, atomically, as one JSON file::

    ROOT/<dataset>/<setup>/cell<index>-seed<seed>.json

``<setup>`` is a short hash of everything that decides the outcome besides the cell and
the seed: the dataset's splits (source, sizes, split settings), the training protocol and
the network size. ``ROOT/<dataset>/<setup>/setup.json`` spells that setup out for people.
The device is recorded in each file but is not part of the key: a training finished on
one GPU is reused on another.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tnas.io import atomic_write_json, parse_json
from tnas.space import Cell
from tnas.typecheck import is_finite_number, is_integer

SETUP_FILE = "setup.json"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingRecord:
    """The outcome of one training of one cell with one seed.

    Attributes:
        status: ``ok`` or ``failed``.
        index, arch: the cell.
        seed: training seed.
        valid, test: accuracies (%); ``None`` when the training failed.
        seconds: wall-clock seconds the training took (until it failed, if it did).
        final_loss: loss of the last training batch (``None`` if failed).
        error: why it failed (``None`` if it succeeded).
        device: where it ran.
        finished: ISO time stamp (UTC).
    """

    status: Literal["ok", "failed"]
    index: int
    arch: str
    seed: int
    valid: float | None
    test: float | None
    seconds: float
    final_loss: float | None
    error: str | None
    device: str
    finished: str

    def __post_init__(self) -> None:
        """Raises ``ValueError`` for a record no training writes (a damaged file)."""
        if self.status not in ("ok", "failed"):
            raise ValueError(f"status must be 'ok' or 'failed', got {self.status!r}")
        if not (is_integer(self.index) and is_integer(self.seed) and isinstance(self.arch, str)):
            raise ValueError("index and seed must be whole numbers and arch text")
        if not (is_finite_number(self.seconds) and self.seconds >= 0):
            raise ValueError(f"seconds must be a finite number >= 0, got {self.seconds!r}")
        if self.ok and not all(is_finite_number(value) and 0 <= value <= 100 for value in (self.valid, self.test)):
            raise ValueError(f"a finished training needs accuracies in [0, 100], got {self.valid!r} and {self.test!r}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def now(cls, **fields: Any) -> TrainingRecord:
        """A record stamped with the current time."""
        return cls(finished=datetime.now(UTC).isoformat(timespec="seconds"), **fields)


def setup_key(setup: dict[str, Any]) -> str:
    """A 16-hex-digit hash of a JSON-able ``setup`` (key order does not matter)."""
    text = json.dumps(setup, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class TrainingCache:
    """Finished trainings of one dataset under one setup.

    Args:
        root: the cache's root folder (e.g. ``$TNAS_CACHE_DIR/trainings``).
        dataset: dataset name.
        setup: JSON-able description of splits, training protocol and network.
    """

    def __init__(self, root: str | Path, dataset: str, setup: dict[str, Any]) -> None:
        self.setup = setup
        self.key = setup_key(setup)
        self.folder = Path(root) / dataset / self.key

    def path(self, cell: Cell, seed: int) -> Path:
        return self.folder / f"cell{cell.index:05d}-seed{seed}.json"

    def get(self, cell: Cell, seed: int) -> TrainingRecord | None:
        """The stored training of ``cell`` with ``seed``, or ``None``.

        A file that cannot be read (it cannot be half-written, but disks fail) is reported
        with a warning and treated as absent, so the cell is trained again.
        """
        path = self.path(cell, seed)
        if not path.is_file():
            return None
        try:
            record = TrainingRecord(**parse_json(path.read_text(encoding="utf-8")))
            if (record.index, record.seed) != (cell.index, seed):
                raise ValueError(f"it records cell {record.index} seed {record.seed}")
        except (OSError, ValueError, TypeError) as error:
            logger.warning("ignoring the damaged training record %s (%s); the cell is trained again", path,
                           str(error).replace("\n", " "))  # fmt: skip
            return None
        return record

    def put(self, record: TrainingRecord) -> None:
        """Store ``record`` atomically (and the setup description once)."""
        setup_path = self.folder / SETUP_FILE
        if not setup_path.is_file():
            atomic_write_json(setup_path, self.setup)
        atomic_write_json(self.path(Cell.from_index(record.index), record.seed), asdict(record))

    def records(self) -> list[TrainingRecord]:
        """Every stored training of this setup, by cell index then seed."""
        found = []
        for path in sorted(self.folder.glob("cell*-seed*.json")):
            index, seed = path.stem[4:].split("-seed")
            record = self.get(Cell.from_index(int(index)), int(seed))
            if record is not None:
                found.append(record)
        return found

