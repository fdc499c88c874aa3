"""Files of a meta-training output directory.

- ``config.json``: the resolved configuration, data directory and package versions;
- ``metrics.csv``: one row of validation figures per epoch;
- ``checkpoint.pt``: everything needed to resume (weights, sampler state, best epoch);
- ``model.pt``: the meta-trained surrogate, the best epoch by validation: weights,
  kernel configuration, excluded datasets, standardisation statistics, versions.

All are written atomically; ``.pt`` files hold only tensors and plain containers and are
read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tnas.errors import TnasError, cause
from tnas.io import (
    atomic_write,
    atomic_write_text,
    describe_entries,
    foreign_entries,
    parse_json,
    why_not_a_file,
)
from tnas.models.deep_kernel import DeepKernel, DeepKernelConfig
from tnas.typecheck import is_finite_number, is_integer

CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.csv"
CONFIG_FILE = "config.json"
EPOCHS_FOLDER = "epochs"
RUN_ENTRIES = (CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, MODEL_FILE, EPOCHS_FOLDER)
"""What a meta-training run writes into its folder (``epochs/`` with ``--keep-epochs``)."""
FORMAT = 1


class CheckpointError(TnasError):
    """A meta-training directory or model file is missing or unreadable."""


def check_output_folder(out: Path) -> None:
    """Refuse an output folder that holds something other than a meta-training run (a
    search's run directory, a folder of runs, an ensemble, other files), whose
    ``config.json`` and neighbours meta-training would overwrite.

    Raises:
        CheckpointError: ``out`` is a file or holds other things; the message says what.
    """
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out} is a file, not a meta-training folder; choose another --out")
    others = foreign_entries(out, RUN_ENTRIES)
    if others:
        raise CheckpointError(f"{out} holds {describe_entries(others)}, which is not a meta-training run; "
                              "meta-train into a new or empty --out")  # fmt: skip
    config_path = out / CONFIG_FILE
    if config_path.is_file() and not (out / CHECKPOINT_FILE).exists():  # killed in its first epoch, or not ours
        try:
            record = parse_json(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = None
        settings = record.get("config") if isinstance(record, dict) else None
        if not (isinstance(settings, dict) and "inner_steps" in settings and "method" not in settings):
            raise CheckpointError(f"{config_path} is not a tnas meta-training record (a search run's, or damaged); "
                                  "meta-train into a new or empty --out")  # fmt: skip


def save(path: Path, payload: dict[str, Any]) -> None:
    """Atomically ``torch.save`` a payload."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(path, lambda file: file.write(buffer.getvalue()))


def load(path: Path, what: str) -> dict[str, Any]:
    """Read a payload written by :func:`save`, or raise a :class:`CheckpointError`."""
    if not path.is_file():
        raise CheckpointError(f"{what} {path} {why_not_a_file(path)}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise CheckpointError(f"{what} {path} is corrupt ({type(error).__name__}); delete it and meta-train again") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{what} {path} is not a tnas meta-training file of format {FORMAT}")
    return payload


def write_metrics(path: Path, rows: list[dict[str, float]]) -> None:
    """Atomically write all epochs' figures as CSV (NaN written as empty)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        values = []
        for column in columns:
            value = row.get(column, "")
            values.append("" if isinstance(value, float) and math.isnan(value) else value)
        writer.writerow(values)
    atomic_write_text(path, buffer.getvalue())


def recorded_epochs(directory: str | Path) -> int:
    """Epochs whose figures ``directory``'s ``metrics.csv`` holds (one row each, after the
    header; 0 before the first epoch). Cheap enough to poll: the file is written atomically."""
    try:
        with open(Path(directory) / METRICS_FILE, encoding="utf-8") as file:
            return max(sum(1 for _ in file) - 1, 0)
    except (OSError, ValueError):  # missing, or damaged (not text): the checkpoint decides, this only reports
        return 0


def is_finished(directory: str | Path) -> bool:
    """Whether ``directory`` holds a finished meta-training run.

    ``model.pt`` is written after the first epoch already (the best epoch so far), so a
    run killed midway has one too: it is finished only when ``checkpoint.pt`` has all its
    epochs. A ``model.pt`` without a checkpoint (a copied model) counts as finished.
    """
    directory = Path(directory)
    if not (directory / MODEL_FILE).is_file():
        return False
    if not (directory / CHECKPOINT_FILE).is_file():
        return True
    try:
        state = load(directory / CHECKPOINT_FILE, "checkpoint")
        return int(state["epoch"]) >= int(state["config"]["epochs"])
    except (CheckpointError, KeyError, TypeError, ValueError):
        return False


@dataclass(frozen=True)
class MetaTrainedModel:
    """A meta-trained deep kernel and what it was trained on.

    Attributes:
        kernel: the deep kernel (eval mode).
        exclude: sources left out of its meta-training.
        statistics: standardisation statistics of its training sources.
        epoch: the epoch it comes from.
        validation: that epoch's validation figures.
        path: the directory it was loaded from.
        samples_per_class: images per class its dataset encoder was trained with (a search
            encodes its target the same way).
        settings: its meta-training configuration as a dict (empty if not recorded).
    """

    kernel: DeepKernel
    exclude: tuple[str, ...]
    statistics: dict[str, dict[str, float]]
    epoch: int
    validation: dict[str, float]
    path: Path
    samples_per_class: int = 20
    settings: dict[str, Any] = field(default_factory=dict)


def load_model(directory: str | Path) -> MetaTrainedModel:
    """Load ``model.pt`` from a meta-training directory.

    Raises:
        CheckpointError: the directory or file is missing, corrupt or incompatible.
    """
    from tnas.meta_train.config import kernel_config_from_dict

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"surrogate {directory} is a file; give the folder python -m tnas.meta_train wrote "
                              "(it holds model.pt, or ensemble.json and member folders)")  # fmt: skip
    if not directory.is_dir():
        raise CheckpointError(f"surrogate directory {directory} does not exist; create it with python -m tnas.meta_train --out {directory}")
    payload = load(directory / MODEL_FILE, "meta-trained model")
    try:
        config: DeepKernelConfig = kernel_config_from_dict(payload["kernel_config"])
        kernel = DeepKernel(config)
        kernel.load_state_dict(payload["kernel"])
        if not all(torch.isfinite(parameter).all() for parameter in kernel.parameters()):
            raise ValueError("NaN or infinite weights")
        exclude = payload.get("exclude", ())
        if isinstance(exclude, str) or not all(isinstance(name, str) for name in exclude):
            raise TypeError(f"exclude is {exclude!r}, not a list of dataset names")
        settings = _mapping(payload.get("meta_train_config", {}), "meta_train_config")
        seed, sources = settings.get("seed", 0), settings.get("sources", [])
        if not (is_integer(seed) and seed >= 0 and is_integer(settings.get("samples_per_class", 20))
                and settings.get("samples_per_class", 20) >= 1 and isinstance(sources, list)
                and all(isinstance(text, str) for text in sources)):  # fmt: skip
            raise ValueError("meta_train_config's seed, samples_per_class or sources are not what a run records")
            # (types only: a source's path need not exist any more for the model to be used)
        statistics = _mapping(payload.get("statistics", {}), "statistics")
        for name, figures in statistics.items():
            if not (isinstance(figures, dict) and is_finite_number(figures.get("mean"))
                    and is_finite_number(figures.get("std")) and figures["std"] > 0):  # fmt: skip
                raise ValueError(f"statistics of {name} are {figures!r}, not a finite mean and a positive std")
        if not is_integer(payload.get("epoch", 0)):
            raise TypeError(f"epoch is {payload.get('epoch')!r}")
        model = MetaTrainedModel(
            kernel=kernel.eval(),
            exclude=tuple(exclude),
            statistics=statistics,
            epoch=int(payload.get("epoch", 0)),
            validation=_mapping(payload.get("validation", {}), "validation"),
            path=directory,
            samples_per_class=int(settings.get("samples_per_class", 20)),
            settings=dict(settings),
        )
    except (KeyError, TypeError, ValueError, RuntimeError, TnasError) as error:
        raise CheckpointError(f"meta-trained model {directory / MODEL_FILE} does not fit this tnas ({cause(error)})") from None
    return model


def _mapping(value: object, name: str) -> dict:
    """``value`` as a dict; ``TypeError`` naming ``name`` when it is not one."""
    if not isinstance(value, dict):
        raise TypeError(f"{name} is a {type(value).__name__}, not a dict")
    return dict(value)
