"""Which meta-trained surrogate a TNAS search uses, and the refusal of contaminated ones.

A search on a dataset must use a surrogate whose meta-training did not see that dataset.
Without ``--surrogate``, the surrogate meta-trained with the target excluded is taken from
the cache directory (``$TNAS_CACHE_DIR/surrogates/no-<source>``), or meta-trained there on
the spot with the default configuration when it is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tnas import paths
from tnas.errors import TnasError
from tnas.meta_train import MetaTrainConfig, MetaTrainedModel, load_model, meta_train
from tnas.meta_train.checkpoint import MODEL_FILE

META_TRAIN_SOURCE: dict[str, str] = {
    "cifar10": "cifar10-valid",
    "cifar10-valid": "cifar10-valid",
    "cifar100": "cifar100",
    "imagenet16-120": "imagenet16-120",
}
"""Search dataset -> the meta-training source that holds its data (cifar10's observed
validation accuracies are cifar10-valid's)."""


class ContaminatedSurrogateError(TnasError):
    """The surrogate's meta-training saw the search's target dataset."""


def default_surrogate_dir(source: str | None) -> Path:
    return paths.cache_dir() / "surrogates" / (f"no-{source}" if source else "all")


def outdated_settings(model: MetaTrainedModel, source: str | None) -> list[str]:
    """Meta-training settings in which a cached surrogate differs from today's default
    (``name=stored value``); empty when it matches or records no settings."""
    if not model.settings:
        return []
    try:
        stored = MetaTrainConfig.from_dict(model.settings).to_dict()
    except (TnasError, TypeError):
        return ["unreadable settings"]
    current = MetaTrainConfig(exclude=(source,) if source else ()).to_dict()
    return [f"{key}={stored.get(key)}" for key in current if stored.get(key) != current[key]]


def resolve_surrogate(
    dataset: str,
    surrogate: str | Path | None,
    *,
    allow_target: bool = False,
    data_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[MetaTrainedModel, dict[str, Any]]:
    """Load (or meta-train) the surrogate for a search on ``dataset``.

    Returns:
        The model and what to record about it in the run's ``config.json``.

    Raises:
        ContaminatedSurrogateError: its meta-training saw ``dataset`` and ``allow_target``
            is off.
        CheckpointError: a given directory is missing or holds no readable model.
    """
    source = META_TRAIN_SOURCE.get(dataset)
    if surrogate is None:
        directory = default_surrogate_dir(source)
        if not (directory / MODEL_FILE).is_file():
            config = MetaTrainConfig(exclude=(source,) if source else ())
            if progress:
                print(f"meta-training a surrogate without {source} in {directory} (once)")
            meta_train(config, directory, data_dir=data_dir, progress=progress)
        origin = "default (cache)"
    else:
        directory, origin = Path(surrogate), "--surrogate"
    model = load_model(directory)
    outdated = outdated_settings(model, source) if surrogate is None else []
    if outdated and progress:
        print(f"note: the cached surrogate {directory} was meta-trained with older settings "
              f"({', '.join(outdated)}); delete it to meta-train one with the current defaults")
    if source is not None and source not in model.exclude and not allow_target:
        raise ContaminatedSurrogateError(
            f"surrogate {directory} was meta-trained on {source}, the data this search observes; "
            f"use one meta-trained with --exclude {source}, or pass --allow-target-in-meta-train"
        )
    info = {
        "path": str(directory),
        "origin": origin,
        "exclude": list(model.exclude),
        "epoch": model.epoch,
        "target_in_meta_train": source is not None and source not in model.exclude,
        "validation": model.validation,
        **({"outdated_settings": outdated} if outdated else {}),
    }
    return model, info
