"""Image datasets as the encoders (and later the training oracle) see them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tnas.errors import TnasError


class DatasetNotFoundError(TnasError, FileNotFoundError):
    """A dataset is unknown, or its files are not where they were looked for."""


class SplitNotAvailableError(DatasetNotFoundError):
    """The dataset exists but has no such split (e.g. the MNIST sample has no train split)."""


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Labelled images of one dataset split.

    Attributes:
        name: registry name (e.g. ``cifar10``).
        images: ``N x H x W x C`` uint8 array (C is 1 or 3).
        labels: ``N`` int64 class ids in ``0..len(class_names) - 1``.
        class_names: one name per class id.
        source: where the images were read from.
        parent: a dataset whose ``images`` rows these are (``parent_rows``), so that
            features can be computed once for the parent and shared (MetaD2A tasks are
            views into the ImageNet sample).
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str
    parent: ImageDataset | None = None
    parent_rows: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] not in (1, 3) or self.images.dtype != np.uint8:
            raise ValueError(
                f"{self.name}: images must be uint8 N x H x W x (1|3), got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"{self.name}: {len(self.images)} images but labels of shape {self.labels.shape}")
        if len(self.labels) and not 0 <= int(self.labels.min()) <= int(self.labels.max()) < len(self.class_names):
            raise ValueError(f"{self.name}: labels outside 0..{len(self.class_names) - 1}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.images)

    def class_rows(self) -> list[np.ndarray]:
        """Row indexes of each class, in class-id order."""
        order = np.argsort(self.labels, kind="stable")
        bounds = np.searchsorted(self.labels[order], np.arange(self.num_classes + 1))
        return [order[bounds[c] : bounds[c + 1]] for c in range(self.num_classes)]

    def sample_per_class(self, samples_per_class: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Up to ``samples_per_class`` random rows of each class (all rows of a smaller class).

        Returns:
            One sorted row-index array per class that has images.
        """
        if samples_per_class < 1:
            raise ValueError(f"samples_per_class must be positive, got {samples_per_class}")
        chosen = []
        for rows in self.class_rows():
            if len(rows) == 0:
                continue
            take = min(samples_per_class, len(rows))
            chosen.append(np.sort(rng.choice(rows, size=take, replace=False)))
        return chosen

    def view(self, rows: np.ndarray, *, name: str, class_names: tuple[str, ...], labels: np.ndarray) -> ImageDataset:
        """A dataset made of some rows of this one (features are shared with this one)."""
        root, root_rows = (self.parent, self.parent_rows[rows]) if self.parent is not None else (self, rows)
        return ImageDataset(
            name=name,
            images=self.images[rows],
            labels=labels,
            class_names=class_names,
            source=self.source,
            parent=root,
            parent_rows=root_rows,
        )
