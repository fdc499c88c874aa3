"""Named image datasets that can be encoded here.

Samples in the data directory (``images/`` there, see its ``SOURCES.md``) serve the
datasets that have one; a full dataset on disk is read instead when the user gives
``data_root`` (``--data-root``) in its usual layout:

- CIFAR-10 / CIFAR-100: ``cifar-10-batches-py/`` / ``cifar-100-python/`` (torchvision);
- SVHN: ``train_32x32.mat`` and ``test_32x32.mat`` (torchvision);
- MNIST / Fashion-MNIST: IDX files in ``MNIST/raw/``, ``FashionMNIST/raw/`` or the folder
  itself (e.g. Debian's ``/usr/share/datasets/fashion-mnist``);
- Aircraft / Pets: an image folder ``<class>/<image>``, resized to 32 x 32 as in MetaD2A.

MetaD2A's meta-training tasks are named ``metad2a-task-N`` (N = task index in its task
list): 20 ImageNet classes each, one 32-px image per class from the ImageNet sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tnas import paths
from tnas.datasets.base import DatasetNotFoundError, ImageDataset, SplitNotAvailableError
from tnas.datasets.readers import (
    find_idx_pair,
    first_existing,
    read_cifar_batches,
    read_cifar_names,
    read_idx_dataset,
    read_image_folder,
    read_npz,
    read_sklearn_digits,
    read_svhn_mat,
)
from tnas.errors import DataNotFoundError

SPLITS = ("train", "test")
TASK_PREFIX = "metad2a-task-"
IMAGENET16_CLASSES = 120
_META_TRAIN_FILE = "metad2a_meta_train/metad2a_meta_train_nb201.npz"
_IMAGENET_FILE = "images/imagenet_sample/imagenet_1per_class_16_32.npz"
_DIGIT_NAMES = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class Sources:
    """Where a loader may read from."""

    data_dir: Path | None
    data_root: Path | None

    def data_file(self, relative: str) -> Path:
        try:
            return paths.find_data_file(relative, self.data_dir)
        except DataNotFoundError as error:
            raise DatasetNotFoundError(str(error)) from None


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: how to read it from the data directory and from a root."""

    name: str
    description: str
    from_sample: Callable[[Sources, str | None], ImageDataset] | None
    from_root: Callable[[Path, str | None], ImageDataset] | None
    root_hint: str


def _split(split: str | None, available: tuple[str, ...], name: str) -> str:
    """``split`` if ``name`` has it; ``None`` picks the first available (train before test)."""
    if split is None:
        return available[0]
    if split not in available:
        raise SplitNotAvailableError(f"{name} has no {split!r} split here; available: {', '.join(available)}")
    return split


# ------------------------------------------------------------------ samples in the data dir
def _cifar10_sample(sources: Sources, split: str | None) -> ImageDataset:
    path = sources.data_file("images/cifar10_subset/cifar10_jpeg_300train_100test_per_class.npz")
    data = read_npz(path)
    suffix = _split(split, SPLITS, "cifar10 sample")
    return ImageDataset("cifar10", data[f"x_{suffix}"], data[f"y_{suffix}"].astype(np.int64),
                        tuple(map(str, data["classes"])), str(path))  # fmt: skip


def _cifar100_sample(sources: Sources, split: str | None) -> ImageDataset:
    path = sources.data_file("images/cifar100_sample/cifar100_train_100_per_class.npz")
    _split(split, ("train",), "the cifar100 sample")
    data = read_npz(path)
    return ImageDataset("cifar100", data["x"], data["y"].astype(np.int64), tuple(map(str, data["classes"])), str(path))


def _fashion_sample(sources: Sources, split: str | None) -> ImageDataset:
    path = sources.data_file("images/fashion_mnist_sample/fashion_mnist_train1000pc_test10k.npz")
    data = read_npz(path)
    suffix = _split(split, SPLITS, "fashion-mnist sample")
    return ImageDataset("fashion-mnist", data[f"x_{suffix}"], data[f"y_{suffix}"].astype(np.int64),
                        tuple(map(str, data["classes"])), str(path))  # fmt: skip


def _mnist_sample(sources: Sources, split: str | None) -> ImageDataset:
    _split(split, ("test",), "the mnist sample (the MNIST test set)")
    folder = sources.data_file("images/mnist_test/t10k-labels-idx1-ubyte.gz").parent
    images, labels = read_idx_dataset(*find_idx_pair([folder], "t10k", ""))
    return ImageDataset("mnist", images, labels, _DIGIT_NAMES, str(folder))


def _digits(sources: Sources, split: str | None) -> ImageDataset:
    _split(split, ("train",), "digits")
    images, labels = read_sklearn_digits()
    return ImageDataset("digits", images, labels, _DIGIT_NAMES, "sklearn.datasets.load_digits")


def load_imagenet_sample(sources: Sources, size: int = 32) -> ImageDataset:
    """The ImageNet sample: one image per class, classes in ``map_clsloc`` order (label 1 first)."""
    relative = _IMAGENET_FILE if size in (16, 32) else "images/imagenet_sample/imagenet_1per_class_64.npz"
    path = sources.data_file(relative)
    data = read_npz(path)
    order = np.argsort(data["clsloc_label_1based"])
    images = data[f"images{size}"][order]
    names = tuple(f"{wnid} {name}" for wnid, name in zip(data["wnid"][order], data["clsloc_name"][order]))
    return ImageDataset(f"imagenet-sample-{size}px", images, np.arange(len(images), dtype=np.int64), names, str(path))


def _imagenet_sample(sources: Sources, split: str | None) -> ImageDataset:
    _split(split, ("train",), "the imagenet sample")
    return load_imagenet_sample(sources, 32)


def _imagenet16_120(sources: Sources, split: str | None) -> ImageDataset:
    _split(split, ("train",), "the imagenet16-120 sample")
    full = load_imagenet_sample(sources, 16)
    return ImageDataset("imagenet16-120", full.images[:IMAGENET16_CLASSES].copy(),
                        np.arange(IMAGENET16_CLASSES, dtype=np.int64), full.class_names[:IMAGENET16_CLASSES],
                        full.source)  # fmt: skip


def metad2a_task_classes(sources: Sources) -> np.ndarray:
    """MetaD2A's task list: ``5000 x 20`` ImageNet labels (1-based ``map_clsloc`` order)."""
    data = read_npz(sources.data_file(_META_TRAIN_FILE), ("task_classes",))
    return data["task_classes"].astype(np.int64)


def metad2a_task(sources: Sources, task: int, imagenet: ImageDataset | None = None) -> ImageDataset:
    """MetaD2A task ``task``: its 20 ImageNet classes, one 32-px sample image each."""
    classes = metad2a_task_classes(sources)
    if not 0 <= task < len(classes):
        raise DatasetNotFoundError(f"MetaD2A task {task} does not exist (tasks 0..{len(classes) - 1})")
    imagenet = imagenet or load_imagenet_sample(sources, 32)
    rows = classes[task] - 1
    return imagenet.view(rows, name=f"{TASK_PREFIX}{task}", class_names=tuple(imagenet.class_names[r] for r in rows),
                         labels=np.arange(len(rows), dtype=np.int64))  # fmt: skip


# ------------------------------------------------------------------ full datasets under a root
def _cifar_root(root: Path, split: str | None, name: str) -> ImageDataset:
    ten = name == "cifar10"
    subfolder, meta_name = ("cifar-10-batches-py", "batches.meta") if ten else ("cifar-100-python", "meta")
    meta = first_existing([root / subfolder / meta_name, root / meta_name], f"{name} batches",
                          DATASETS[name].root_hint)  # fmt: skip
    folder = meta.parent
    split = _split(split, SPLITS, name)
    if ten:
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        names = read_cifar_names(meta, b"label_names")
        images, labels = read_cifar_batches(folder, files, b"labels")
    else:
        names = read_cifar_names(meta, b"fine_label_names")
        images, labels = read_cifar_batches(folder, [split], b"fine_labels")
    return ImageDataset(name, images, labels, names, str(folder))


def _svhn_root(root: Path, split: str | None) -> ImageDataset:
    split = _split(split, SPLITS, "svhn")
    path = first_existing([root / f"{split}_32x32.mat", root / "svhn" / f"{split}_32x32.mat"],
                          f"SVHN {split} split", DATASETS["svhn"].root_hint)  # fmt: skip
    images, labels = read_svhn_mat(path)
    return ImageDataset("svhn", images, labels, _DIGIT_NAMES, str(path))


def _idx_root(root: Path, split: str | None, name: str, subfolder: str, class_names: tuple[str, ...]) -> ImageDataset:
    split = _split(split, SPLITS, name)
    prefix = "train" if split == "train" else "t10k"
    folders = [root / subfolder / "raw", root / subfolder, root / "raw", root]
    images, labels = read_idx_dataset(*find_idx_pair(folders, prefix, DATASETS[name].root_hint, f"{name} {split}"))
    return ImageDataset(name, images, labels, class_names, str(root))


def _folder_root(root: Path, split: str | None, name: str) -> ImageDataset:
    split = _split(split, SPLITS, name)
    folder = first_existing([root / split, root / name / split, root], f"{name} {split} image folder",
                            DATASETS[name].root_hint)  # fmt: skip
    images, labels, classes = read_image_folder(folder, image_size=32)
    return ImageDataset(name, images, labels, classes, str(folder))


_FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("cifar10", "CIFAR-10 (sample: 300 train + 100 test images per class)", _cifar10_sample,
                    lambda root, split: _cifar_root(root, split, "cifar10"),
                    "Download CIFAR-10 (python version) and pass its parent folder as --data-root."),
        DatasetSpec("cifar100", "CIFAR-100 (sample: 100 train images per class)", _cifar100_sample,
                    lambda root, split: _cifar_root(root, split, "cifar100"),
                    "Download CIFAR-100 (python version) and pass its parent folder as --data-root."),
        DatasetSpec("imagenet16-120", "ImageNet16-120: the first 120 ImageNet classes at 16 px (1 image each)",
                    _imagenet16_120, None, ""),
        DatasetSpec("imagenet-sample", "ImageNet: 1,000 classes, one 32-px image each", _imagenet_sample, None, ""),
        DatasetSpec("fashion-mnist", "Fashion-MNIST (sample: 1,000 train images per class, full test set)",
                    _fashion_sample,
                    lambda root, split: _idx_root(root, split, "fashion-mnist", "FashionMNIST", _FASHION_NAMES),
                    "Put the Fashion-MNIST IDX files in DIR (apt-get install dataset-fashion-mnist puts them in "
                    "/usr/share/datasets/fashion-mnist) and pass --data-root DIR."),
        DatasetSpec("mnist", "MNIST (sample: the 10,000-image test set)", _mnist_sample,
                    lambda root, split: _idx_root(root, split, "mnist", "MNIST", _DIGIT_NAMES),
                    "Put the MNIST IDX files in DIR/MNIST/raw and pass --data-root DIR."),
        DatasetSpec("digits", "scikit-learn's bundled 8 x 8 digits (1,797 images)", _digits, None, ""),
        DatasetSpec("svhn", "SVHN cropped digits (needs --data-root)", None, _svhn_root,
                    "Download SVHN format 2 (train_32x32.mat, test_32x32.mat) into DIR and pass --data-root DIR."),
        DatasetSpec("aircraft", "FGVC-Aircraft as an image folder (needs --data-root)", None,
                    lambda root, split: _folder_root(root, split, "aircraft"),
                    "Arrange the images as DIR/train/<class>/<image> (and DIR/test/...) and pass --data-root DIR."),
        DatasetSpec("pets", "Oxford-IIIT Pets as an image folder (needs --data-root)", None,
                    lambda root, split: _folder_root(root, split, "pets"),
                    "Arrange the images as DIR/train/<class>/<image> (and DIR/test/...) and pass --data-root DIR."),
    )
}  # fmt: skip
ALIASES = {"cifar10-valid": "cifar10", "imagenet": "imagenet-sample", "in16": "imagenet16-120",
           "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist"}  # fmt: skip


def dataset_names() -> list[str]:
    """Registered names (MetaD2A tasks are ``metad2a-task-N`` on top of these)."""
    return [*DATASETS, f"{TASK_PREFIX}N"]


def canonical_name(name: str) -> str:
    """``name`` lower-cased and alias-resolved (``CIFAR10-valid`` -> ``cifar10``, ``in16`` ->
    ``imagenet16-120``): the registry's key for it."""
    key = name.strip().lower()
    return ALIASES.get(key, key)


def has_images(name: str) -> bool:
    """Whether ``name`` is an image dataset of the registry (or a MetaD2A task)."""
    key = canonical_name(name)
    return key in DATASETS or key.startswith(TASK_PREFIX)


def get_dataset(
    name: str,
    *,
    split: str | None = None,
    data_dir: str | Path | None = None,
    data_root: str | Path | None = None,
) -> ImageDataset:
    """Load the dataset called ``name``.

    Args:
        name: a registered name, an alias (``cifar10-valid`` is CIFAR-10's images), or
            ``metad2a-task-N``.
        split: ``train`` or ``test``; ``None`` takes the train split where there is
            one, else the test split (the MNIST sample is the MNIST test set).
        data_dir: the data directory (default: the usual lookup, see ``tnas.paths``).
        data_root: a folder holding the full dataset in its usual layout; when given it is
            read instead of the sample.

    Raises:
        DatasetNotFoundError: unknown name, or files missing (the message lists where
            they were looked for and what to do).
    """
    key = canonical_name(name)
    sources = Sources(Path(data_dir) if data_dir else None, Path(data_root) if data_root else None)
    if key.startswith(TASK_PREFIX):
        suffix = key[len(TASK_PREFIX):]
        if not suffix.isdigit():
            raise DatasetNotFoundError(f"{name!r}: MetaD2A tasks are named {TASK_PREFIX}N with N a number")
        return metad2a_task(sources, int(suffix))
    spec = DATASETS.get(key)
    if spec is None:
        raise DatasetNotFoundError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
    if sources.data_root is not None:
        if spec.from_root is None:
            raise DatasetNotFoundError(f"{spec.name} is read from the data directory only; drop --data-root")
        if not sources.data_root.is_dir():
            raise DatasetNotFoundError(f"--data-root {sources.data_root} is not a folder. {spec.root_hint}")
        return spec.from_root(sources.data_root, split)
    if spec.from_sample is None:
        raise DatasetNotFoundError(f"{spec.name} has no sample in the data directory. {spec.root_hint}")
    return spec.from_sample(sources, split)
