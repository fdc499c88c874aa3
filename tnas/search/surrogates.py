"""Which meta-trained surrogate a TNAS search uses, and the refusal of contaminated ones.

A search on a dataset must use a surrogate whose meta-training did not see that dataset.
Without ``--surrogate``, the default surrogate meta-trained with the target excluded is
taken from the cache directory (``$TNAS_CACHE_DIR/surrogates/no-<source>``), or
meta-trained there on the spot with the default configuration when it is absent. The
default is an ensemble of :data:`DEFAULT_MEMBERS` independent meta-training runs (see
:mod:`tnas.meta_train.ensemble`); ``members=1`` gives a single surrogate.

The default surrogates form a family indexed by a *surrogate seed* ``k`` (default 0):
surrogate ``k`` with ``M`` members is meta-trained with seeds ``k * M .. k * M + M - 1``,
so different ``k`` are independent draws of the shipped default (what the benchmark
averages over). ``use_dataset=False`` gives the same family meta-trained without the
dataset encoder (the ``tnas-nodata`` ablation).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from tnas import paths
from tnas.datasets import canonical_name
from tnas.errors import ConfigError, TnasError
from tnas.meta_train import MetaTrainConfig
from tnas.meta_train.ensemble import (
    ENSEMBLE_FILE,
    Surrogate,
    load_surrogate,
    members_finished,
    meta_train_ensemble,
)
from tnas.meta_train.trainer import meta_train
from tnas.threads import torch_threads

logger = logging.getLogger(__name__)

DEFAULT_MEMBERS = 2
"""Members of the default surrogate (independent meta-training runs averaged into one GP)."""

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


def default_surrogate_config(source: str | None, *, seed: int = 0, members: int = DEFAULT_MEMBERS,
                             use_dataset: bool = True) -> MetaTrainConfig:  # fmt: skip
    """The meta-training settings of default surrogate ``seed`` (its first member's seed)."""
    if seed < 0 or members < 1:
        raise ConfigError(f"the surrogate seed must be >= 0 and the members >= 1, got {seed} and {members}")
    config = MetaTrainConfig(exclude=(source,) if source else (), seed=seed * members)
    return config if use_dataset else replace(config, kernel=replace(config.kernel, use_dataset=False))


def default_surrogate_dir(source: str | None, *, seed: int = 0, members: int = DEFAULT_MEMBERS,
                          use_dataset: bool = True) -> Path:  # fmt: skip
    """``$TNAS_CACHE_DIR/surrogates/no-<source>[-nodata][-single][-seed<k>]``."""
    name = f"no-{source}" if source else "all"
    name += "" if use_dataset else "-nodata"
    name += "" if members == DEFAULT_MEMBERS else ("-single" if members == 1 else f"-{members}members")
    name += f"-seed{seed}" if seed else ""
    return paths.cache_dir() / "surrogates" / name


def outdated_settings(surrogate: Surrogate, expected: MetaTrainConfig) -> list[str]:
    """Settings (``name=stored value``) in which a cached surrogate differs from ``expected``
    (seeds aside); empty when it matches or records no settings."""
    if not surrogate.settings:
        return []
    try:
        stored = MetaTrainConfig.from_dict(surrogate.settings).to_dict()
    except (TnasError, TypeError):
        return ["unreadable settings"]
    wanted = expected.to_dict()
    return [f"{key}={stored.get(key)}" for key in wanted if key != "seed" and stored.get(key) != wanted[key]]


def _is_complete(directory: Path, members: int) -> bool:
    """Whether ``directory`` holds a finished default surrogate (every member meta-trained to
    its last epoch: a killed meta-training is resumed, not used half-way)."""
    return (members == 1 or (directory / ENSEMBLE_FILE).is_file()) and members_finished(directory, members)


def resolve_surrogate(
    dataset: str,
    surrogate: str | Path | None,
    *,
    seed: int = 0,
    members: int = DEFAULT_MEMBERS,
    use_dataset: bool = True,
    allow_target: bool = False,
    data_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[Surrogate, dict[str, Any]]:
    """Load (or meta-train) the surrogate for a search on ``dataset``.

    Args:
        surrogate: a meta-training or ensemble directory; ``None`` takes the default
            surrogate ``seed`` with ``members`` members (meta-trained now if not cached),
            with or without the dataset encoder (``use_dataset``).

    Returns:
        The surrogate and what to record about it in the run's ``config.json``.

    Raises:
        ContaminatedSurrogateError: its meta-training saw ``dataset`` and ``allow_target``
            is off.
        CheckpointError: a given directory is missing or holds no readable model.
    """
    source = META_TRAIN_SOURCE.get(dataset)
    expected = default_surrogate_config(source, seed=seed, members=members, use_dataset=use_dataset)
    if surrogate is None:
        directory = default_surrogate_dir(source, seed=seed, members=members, use_dataset=use_dataset)
        if not _is_complete(directory, members):
            logger.info("meta-training the default surrogate %s in %s (%d member%s, once)",
                        f"without {source}" if source else "on every source", directory, members,
                        "s" if members > 1 else "")  # fmt: skip
            with torch_threads(1):  # one thread per member: the same surrogate on every machine
                if members == 1:
                    meta_train(expected, directory, data_dir=data_dir, progress=progress)
                else:  # finished members are kept, an interrupted one resumes; members in parallel
                    jobs = min(members, os.cpu_count() or 1)
                    meta_train_ensemble(expected, directory, members, jobs=jobs, data_dir=data_dir,
                                        progress=progress)  # fmt: skip
        origin = "default (cache)"
    else:
        directory, origin = Path(surrogate), "--surrogate"
    loaded = load_surrogate(directory)
    outdated = outdated_settings(loaded, expected) if surrogate is None else []
    if outdated:
        logger.warning("note: the cached surrogate %s was meta-trained with older settings (%s); delete it to "
                       "meta-train one with the current defaults", directory, ", ".join(outdated))  # fmt: skip
    if source is not None and source not in loaded.exclude and not allow_target:
        raise ContaminatedSurrogateError(
            f"surrogate {directory} was meta-trained on {source}, the data this search observes; "
            f"use one meta-trained with --exclude {source}, or pass --allow-target-in-meta-train"
        )
    seen = {META_TRAIN_SOURCE.get(name, name) for name in loaded.seen_datasets}
    target = META_TRAIN_SOURCE.get(canonical_name(dataset), canonical_name(dataset))
    if target in seen and not allow_target:
        raise ContaminatedSurrogateError(
            f"surrogate {directory} was meta-trained on an earlier search or table of {dataset} (--source); "
            "use one meta-trained without it, or pass --allow-target-in-meta-train"
        )
    info = {
        "path": str(directory),
        "origin": origin,
        "exclude": list(loaded.exclude),
        "members": len(loaded.members),
        "member_seeds": [int(member.settings.get("seed", -1)) for member in loaded.members],
        "epoch": [member.epoch for member in loaded.members],
        "uses_dataset_code": bool(loaded.members[0].kernel.config.use_dataset),
        "target_in_meta_train": (source is not None and source not in loaded.exclude)
        or target in seen,
        **({"extra_sources": sorted(loaded.seen_datasets)} if loaded.seen_datasets else {}),
        "validation": [member.validation for member in loaded.members],
        **({"outdated_settings": outdated} if outdated else {}),
    }
    return loaded, info
