"""From a dataset to the dataset encoder's input: a per-class sample of image features."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from tnas.datasets import ImageDataset
from tnas.encoders.dataset import pad_classes
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
