"""From a dataset to the dataset encoder's input: a per-class sample of image features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from tnas.datasets import ImageDataset
from tnas.encoders.dataset import pad_classes, stack_datasets
from tnas.encoders.features import ImageFeaturizer

DEFAULT_SAMPLES_PER_CLASS = 20
"""Images per class fed to the dataset encoder (MetaD2A and TNAS use 20)."""


def dataset_features(dataset: ImageDataset, rows: np.ndarray, featurizer: ImageFeaturizer,
                     *, progress: bool = False) -> np.ndarray:  # fmt: skip
    """Features of some rows of ``dataset``: ``len(rows) x 1280``.

    A dataset that is a view of another (a MetaD2A task inside the ImageNet sample) is
    served from the features of its parent, computed once for the whole parent and cached.
    """
    if dataset.parent is not None:
        parent_features = featurizer.features(dataset.parent.images, progress=progress)
        return parent_features[dataset.parent_rows[rows]]
    return featurizer.features(dataset.images[rows], progress=progress)


def dataset_inputs(
    dataset: ImageDataset,
    featurizer: ImageFeaturizer,
    rng: np.random.Generator,
    samples_per_class: int = DEFAULT_SAMPLES_PER_CLASS,
    *,
    progress: bool = False,
) -> tuple[Tensor, Tensor]:
    """The dataset encoder's input for ``dataset``.

    Returns:
        ``features`` (``n_classes x n_samples x 1280``) and ``mask`` (``n_classes x
        n_samples``, True for real samples), from up to ``samples_per_class`` images per
        class drawn with ``rng``.
    """
    per_class = dataset.sample_per_class(samples_per_class, rng)
    rows = np.concatenate(per_class)
    features = dataset_features(dataset, rows, featurizer, progress=progress)
    bounds = np.cumsum([0, *(len(block) for block in per_class)])
    return pad_classes([features[bounds[i] : bounds[i + 1]] for i in range(len(per_class))])


SHIPPED_SAMPLES: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16-120")
"""The benchmark datasets whose image samples ship with tnas; their mean dataset code stands
for a dataset without images (a table of your own task, a source you cannot share)."""


def stand_in_inputs(target: str, featurizer: ImageFeaturizer, seed: int, samples_per_class: int,
                    *, data_dir: str | Path | None = None, progress: bool = False) -> tuple[Tensor, Tensor, tuple[str, ...]]:  # fmt: skip
    """The inputs whose mean code stands for ``target`` without its images.

    Each sample is drawn with a generator seeded by ``seed`` (as a search draws its target's).

    Returns:
        ``B x C x S x 1280`` features of the shipped samples other than ``target`` (the
        dataset encoder's codes of them are averaged), the matching mask, and their names.
    """
    from tnas.datasets import canonical_name, get_dataset

    names = tuple(name for name in SHIPPED_SAMPLES if canonical_name(name) != canonical_name(target))
    inputs = [dataset_inputs(get_dataset(name, data_dir=data_dir), featurizer, np.random.default_rng(seed),
                             samples_per_class, progress=progress) for name in names]  # fmt: skip
    features, mask = stack_datasets(inputs)
    return features, mask, names
