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
from tnas.io import atomic_write, atomic_write_text
from tnas.models.deep_kernel import DeepKernel, DeepKernelConfig

CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.csv"
CONFIG_FILE = "config.json"
FORMAT = 1


class CheckpointError(TnasError):
    """A meta-training directory or model file is missing or unreadable."""


def save(path: Path, payload: dict[str, Any]) -> None:
    """Atomically ``torch.save`` a payload."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(path, lambda file: file.write(buffer.getvalue()))


def load(path: Path, what: str) -> dict[str, Any]:
    """Read a payload written by :func:`save`, or raise a :class:`CheckpointError`."""
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
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
        with open(Path(directory) / METRICS_FILE) as file:
            return max(sum(1 for _ in file) - 1, 0)
    except OSError:
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
        settings = payload.get("meta_train_config", {})
        model = MetaTrainedModel(
            kernel=kernel.eval(),
            exclude=tuple(exclude),
            statistics=_mapping(payload.get("statistics", {}), "statistics"),
            epoch=int(payload.get("epoch", 0)),
            validation=_mapping(payload.get("validation", {}), "validation"),
            path=directory,
            samples_per_class=int(_mapping(settings, "meta_train_config").get("samples_per_class", 20)),
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
