"""Train / validation / test splits of a registered dataset, for really training cells.

A search observes validation accuracy and reports test accuracy, so a dataset needs three
disjoint splits. Where the dataset has a train and a test split (CIFAR, SVHN, MNIST and
Fashion-MNIST under ``--data-root``, the CIFAR-10 and Fashion-MNIST samples), the test
split is kept and ``valid_fraction`` of each class of the train split becomes the
validation split. Where it has one split only (the MNIST sample is the MNIST test set;
scikit-learn's digits; the CIFAR-100 sample), that split is cut per class into
``1 - 2 * valid_fraction`` train, ``valid_fraction`` validation and ``valid_fraction`` test.

The cut is stratified and drawn from ``split_seed`` alone (default 0), never from a run's
seed: every cell of every run on a dataset is trained and measured on the same images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tnas.datasets.base import DatasetNotFoundError, ImageDataset, SplitNotAvailableError
from tnas.datasets.registry import get_dataset
from tnas.errors import ConfigError

MIN_IMAGES_PER_CLASS = 3
"""A class needs at least one image in each of the three splits."""


@dataclass(frozen=True)
class SplitConfig:
    """How the validation (and, for one-split datasets, test) images are cut.

    Attributes:
        valid_fraction: share of each class's train images held out for validation (and,
            for one-split datasets, also for test).
        split_seed: seed of the cut; keep it fixed across runs that should be comparable.
    """

    valid_fraction: float = 0.2
    split_seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.valid_fraction < 0.5:
            raise ConfigError(f"valid_fraction must lie in (0, 0.5), got {self.valid_fraction}")


@dataclass(frozen=True, eq=False)
class DataSplits:
    """The three splits of one dataset.

    Attributes:
        name: registry name of the dataset.
        train, valid, test: ``(images, labels)``; images uint8 ``N x H x W x C``, labels
            int64 ``N``.
        num_classes: number of classes.
        source: where the images were read from.
    """

    name: str
    train: tuple[np.ndarray, np.ndarray]
    valid: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    num_classes: int
    source: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``H x W x C`` of every image."""
        return tuple(self.train[0].shape[1:])  # type: ignore[return-value]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train[1]), "valid": len(self.valid[1]), "test": len(self.test[1])}


def _stratified_cut(dataset: ImageDataset, fractions: tuple[float, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """Row indexes of each part, cutting every class by ``fractions`` (the first part takes the rest)."""
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for label, rows in enumerate(dataset.class_rows()):
        if len(rows) == 0:
            continue
        if len(rows) < MIN_IMAGES_PER_CLASS:
            raise DatasetNotFoundError(
                f"{dataset.name} has {len(rows)} image(s) of class {dataset.class_names[label]!r}; training needs "
                f"at least {MIN_IMAGES_PER_CLASS} per class (it is a per-class sample for the dataset encoder); "
                "train on a full dataset given with --data-root"
            )
        shuffled = rows[rng.permutation(len(rows))]
        sizes = [max(1, round(fraction * len(rows))) for fraction in fractions]
        bounds = np.cumsum([len(rows) - sum(sizes), *sizes])
        for part, chunk in zip(parts, np.split(shuffled, bounds[:-1])):
            part.append(chunk)
    return [np.sort(np.concatenate(part)) for part in parts]


def _rows(dataset: ImageDataset, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return dataset.images[rows], dataset.labels[rows]


def _load_split(name: str, split: str, data_dir: str | Path | None,
                data_root: str | Path | None) -> ImageDataset | None:  # fmt: skip
    """The ``split`` of dataset ``name``, ``None`` if it has no such split (missing files raise)."""
    try:
        return get_dataset(name, split=split, data_dir=data_dir, data_root=data_root)
    except SplitNotAvailableError:
        return None


def get_splits(
    name: str,
    *,
    data_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    config: SplitConfig = SplitConfig(),
) -> DataSplits:
    """Train / validation / test splits of the dataset called ``name``.

    Raises:
        DatasetNotFoundError: unknown dataset, files missing (the message says what to
            download and where to put it), or too few images per class to train.
    """
    rng = np.random.default_rng(config.split_seed)
    train = _load_split(name, "train", data_dir, data_root)
    test = _load_split(name, "test", data_dir, data_root)
    if train is not None and test is not None:
        keep, valid = _stratified_cut(train, (config.valid_fraction,), rng)
        test_pair = (test.images, test.labels)
    else:  # one split only: cut it three ways
        train = train if train is not None else test
        assert train is not None  # get_dataset raised otherwise
        keep, valid, held_out = _stratified_cut(train, (config.valid_fraction, config.valid_fraction), rng)
        test_pair = _rows(train, held_out)
    return DataSplits(
        name=train.name,
        train=_rows(train, keep),
        valid=_rows(train, valid),
        test=test_pair,
        num_classes=train.num_classes,
        source=train.source,
    )
