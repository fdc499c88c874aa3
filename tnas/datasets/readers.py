"""Readers of the usual on-disk image dataset formats (no torchvision needed).

Every reader returns ``(images, labels)`` with images ``N x H x W x C`` uint8 and labels
int64, or raises :class:`DatasetNotFoundError` naming the files it looked for.
"""

from __future__ import annotations

import gzip
import math
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tnas.datasets.base import DatasetNotFoundError
from tnas.errors import DataFileError

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".gif", ".tif", ".tiff", ".webp"}


def first_existing(candidates: Sequence[Path], what: str, hint: str) -> Path:
    """The first existing path among ``candidates``, else a clear error."""
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = ", ".join(str(candidate) for candidate in candidates)
    raise DatasetNotFoundError(f"{what} not found (looked for {looked}). {hint}")


class _Arrays(dict):
    """The arrays of an ``.npz`` file; a missing one is a :class:`DataFileError`."""

    def __init__(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        super().__init__(arrays)
        self.path = path

    def __missing__(self, key: str) -> np.ndarray:
        raise DataFileError(f"{self.path} lacks the array {key!r} (holds {', '.join(sorted(self)) or 'none'}); "
                            "restore the file from its source (see SOURCES.md)")  # fmt: skip


def read_npz(path: Path, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays ``names`` (default: all) of an ``.npz`` file, read at once.

    Raises:
        DataFileError: the file is truncated, empty or not an ``.npz`` archive, or (on
            access) lacks an array.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            wanted = data.files if names is None else [name for name in names if name in data.files]
            return _Arrays(path, {name: data[name] for name in wanted})
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataFileError(f"{path} is damaged or not a NumPy .npz archive ({error}); restore it from its "
                            "source (see SOURCES.md)") from None  # fmt: skip


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as file:
            data = file.read()
    except (OSError, EOFError) as error:
        raise DataFileError(f"{path} is damaged ({error}); download it again") from None
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # unsigned byte data
        raise DatasetNotFoundError(f"{path} is not an IDX file of unsigned bytes (magic {magic:#x})")
    dims = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    if len(data) < 4 + 4 * dims or len(data) - 4 - 4 * dims != math.prod(shape):
        raise DataFileError(f"{path} is damaged (its header announces {' x '.join(map(str, shape)) or 'no'} bytes, "
                            f"it holds {max(len(data) - 4 - 4 * dims, 0)}); download it again")  # fmt: skip
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find_idx_pair(folders: Sequence[Path], prefix: str, hint: str, what: str = "") -> tuple[Path, Path]:
    """The images and labels IDX files named ``{prefix}-images-idx3-ubyte[.gz]``."""
    def candidates(kind: str) -> list[Path]:
        names = [f"{prefix}-{kind}-ubyte.gz", f"{prefix}-{kind}-ubyte"]
        return [folder / name for folder in folders for name in names]

    return (
        first_existing(candidates("images-idx3"), f"{what or prefix} images", hint),
        first_existing(candidates("labels-idx1"), f"{what or prefix} labels", hint),
    )


def read_idx_dataset(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path)
    labels = read_idx(labels_path).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise DatasetNotFoundError(f"{images_path} and {labels_path} hold different numbers of items")
    return images[..., None], labels


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as file:
        return pickle.load(file, encoding="bytes")


def read_cifar_batches(folder: Path, files: Sequence[str], label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR python batches (the torchvision download) as NHWC images."""
    images, labels = [], []
    for name in files:
        batch = _unpickle(folder / name)
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def read_cifar_names(meta_file: Path, key: bytes) -> tuple[str, ...]:
    return tuple(name.decode() for name in _unpickle(meta_file)[key])


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SVHN cropped digits (``*_32x32.mat``); label 10 means digit 0."""
    from scipy.io import loadmat

    content = loadmat(path)
    images = np.ascontiguousarray(content["X"].transpose(3, 0, 1, 2)).astype(np.uint8)
    labels = content["y"].astype(np.int64).reshape(-1) % 10
    return images, labels


def read_image_folder(root: Path, image_size: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """An ``ImageFolder`` layout (``root/<class>/<image>``), resized to ``image_size`` squares."""
    try:
        from PIL import Image
    except ImportError:
        raise DatasetNotFoundError("reading image folders needs Pillow: pip install pillow") from None
    classes = tuple(sorted(entry.name for entry in root.iterdir() if entry.is_dir()))
    if not classes:
        raise DatasetNotFoundError(f"{root} holds no class folders (expected {root}/<class>/<image>)")
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() in _IMAGE_SUFFIXES:
                with Image.open(path) as image:
                    resized = image.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
                    images.append(np.asarray(resized, dtype=np.uint8))
                labels.append(label)
    if not images:
        raise DatasetNotFoundError(f"{root} holds no images")
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def read_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8 x 8 digits (values 0..16 scaled to 0..255)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetNotFoundError("the digits dataset needs scikit-learn: pip install scikit-learn") from None
    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return images, digits.target.astype(np.int64)
