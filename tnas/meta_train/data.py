"""The meta-dataset: (cell, dataset, validation accuracy) triples and the datasets' features.

Sources (each one a REPTILE task):

- ``metad2a``: MetaD2A's 4,630 records over 3,031 ImageNet-32 tasks of 20 classes. Its
  400-record validation split (``predictor_split_perm[:400]``) is kept out of training and
  used for validation. A task has 1 to 6 records, too few for a GP of its own, so a batch
  mixes records of many tasks, each with its own dataset code. Targets are standardised
  with the mean and standard deviation of the training records.
- ``cifar10-valid``, ``cifar100``, ``imagenet16-120``: the cells of the NAS-Bench-201
  table with their 200-epoch seed-mean validation accuracy, but a random 5% of the cells
  held out for validation; targets standardised per dataset. Datasets named by ``exclude`` are left out (``cifar10`` and
  ``cifar10-valid`` share their images, so excluding either removes both).

Every dataset is encoded from its registry images: a fixed per-class sample (drawn once
with the run's seed) of EfficientNet-Lite0 features. MetaD2A tasks use one 32-px image
per class from the ImageNet sample. Note: the ImageNet-32 tasks draw their classes from
the first 600 ImageNet classes, which include ImageNet16-120's 120; no ImageNet16-120
accuracy is used when it is excluded, but its classes are seen at 32 px.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from tnas.datasets import Sources, get_dataset, has_images, load_imagenet_sample
from tnas.datasets.readers import read_npz
from tnas.encoders import ImageFeaturizer, dataset_inputs
from tnas.encoders.inputs import stand_in_inputs
from tnas.errors import ConfigError, DataFileError
from tnas.meta_train.sources import SourceSpec, read_source
from tnas.oracles import NB201Table
from tnas.paths import find_data_file
from tnas.space import NUM_CELLS, Cell

METAD2A = "metad2a"
NB201_SOURCES: dict[str, str] = {
    "cifar10-valid": "c10v_valid_200",
    "cifar100": "c100_valid_200",
    "imagenet16-120": "in16_valid_200",
}
"""NAS-Bench-201 meta-training datasets and the table column of their validation accuracy."""
EXCLUDABLE = ("cifar10", *NB201_SOURCES, METAD2A)
METAD2A_FILE = "metad2a_meta_train/metad2a_meta_train_nb201.npz"
METAD2A_VALID_RECORDS = 400
NB201_VALID_FRACTION = 0.05
"""Fraction of each NAS-Bench-201 training dataset's cells held out for validation."""


def normalise_exclusions(names: tuple[str, ...] | list[str], *, extra_sources: int = 0) -> tuple[str, ...]:
    """Canonical names of excluded sources (``cifar10`` means ``cifar10-valid``).

    ``extra_sources`` counts the run's own sources (tables, earlier searches), which keep
    something to meta-train on when every shipped source is excluded.

    Raises:
        ConfigError: an unknown name, or nothing left to meta-train on.
    """
    result = []
    for name in names:
        key = name.lower()
        if key not in EXCLUDABLE:
            raise ConfigError(f"cannot exclude {name!r}; choose from {', '.join(EXCLUDABLE)}")
        key = "cifar10-valid" if key == "cifar10" else key
        if key not in result:
            result.append(key)
    if set(result) >= {*NB201_SOURCES, METAD2A} and not extra_sources:
        raise ConfigError("--exclude leaves nothing to meta-train on; keep at least one source")
    return tuple(sorted(result))


@dataclass(frozen=True)
class Triples:
    """Training or validation triples of one source.

    Attributes:
        name: source name.
        cells: ``n`` official cell indexes.
        raw: ``n`` accuracies (%).
        targets: ``n`` standardised accuracies (float64).
        context: ``n`` dataset slots (MetaD2A task slots; all 0 for an NB201 dataset).
        mean, std: the standardisation statistics.
    """

    name: str
    cells: np.ndarray
    raw: np.ndarray
    targets: np.ndarray
    context: np.ndarray
    mean: float
    std: float

    def __len__(self) -> int:
        return len(self.cells)


class ContextBank:
    """Dataset-encoder inputs of every meta-training and validation dataset.

    MetaD2A tasks are stored compactly as rows of the ImageNet sample's features.
    """

    def __init__(self, imagenet_features: Tensor, task_rows: Tensor, named: dict[str, tuple[Tensor, Tensor]]):
        self.imagenet_features = imagenet_features  # 1000 x F
        self.task_rows = task_rows  # slots x 20
        self.named = named  # name -> (C x S x F, C x S)

    def tasks(self, slots: np.ndarray) -> tuple[Tensor, Tensor]:
        """Inputs of MetaD2A task slots: ``B x 20 x 1 x F`` features and mask."""
        rows = self.task_rows[torch.as_tensor(slots, dtype=torch.long)]
        features = self.imagenet_features[rows].unsqueeze(2)
        return features, torch.ones(features.shape[:3], dtype=torch.bool)

    def dataset(self, name: str) -> tuple[Tensor, Tensor]:
        """Inputs of a named dataset: ``1 x C x S x F`` features and mask (``B x ...`` for a
        source without images: the samples whose mean code stands for it)."""
        features, mask = self.named[name]
        return (features, mask) if features.dim() == 4 else (features.unsqueeze(0), mask.unsqueeze(0))

    def to(self, device: str | torch.device) -> ContextBank:
        return ContextBank(self.imagenet_features.to(device), self.task_rows.to(device),
                           {k: (f.to(device), m.to(device)) for k, (f, m) in self.named.items()})  # fmt: skip


@dataclass(frozen=True)
class MetaDataset:
    """Everything meta-training reads: training sources, validation data, dataset inputs.

    Attributes:
        train: the REPTILE tasks.
        metad2a_valid: MetaD2A's held-out records (``None`` when MetaD2A is excluded).
        excluded: excluded NB201 dataset -> its 15,625 validation accuracies (for
            validation only; they never enter training).
        bank: dataset-encoder inputs of every dataset named above.
        heldout: held-out cells of each NAS-Bench-201 training dataset (5%, never trained on).
        training_tables: NAS-Bench-201 training dataset -> its whole table of 15,625
            accuracies (training and held-out cells together), for the top-cells model
            selection; only datasets whose table covers every cell.
    """

    train: tuple[Triples, ...]
    metad2a_valid: Triples | None
    excluded: dict[str, np.ndarray]
    bank: ContextBank
    heldout: tuple[Triples, ...] = ()
    training_tables: dict[str, np.ndarray] = field(default_factory=dict)

    def statistics(self) -> dict[str, dict[str, float]]:
        """Standardisation statistics per training source (stored in checkpoints)."""
        return {source.name: {"mean": source.mean, "std": source.std} for source in self.train}


def _standardise(name: str, cells: np.ndarray, raw: np.ndarray, context: np.ndarray,
                 stats: tuple[float, float] | None = None) -> Triples:  # fmt: skip
    mean, std = stats if stats is not None else (float(raw.mean()), float(raw.std()))
    return Triples(name, cells, raw, (raw - mean) / std, context, mean, std)


def build_meta_dataset(
    exclude: tuple[str, ...],
    *,
    seed: int,
    samples_per_class: int,
    data_dir: str | Path | None = None,
    featurizer: ImageFeaturizer | None = None,
    progress: bool = False,
    sources: tuple[str, ...] = (),
) -> MetaDataset:
    """Read the records and tables, featurise every dataset, standardise the targets.

    ``sources`` are extra sources as recorded (``PATH=DATASET``, :mod:`tnas.meta_train.sources`):
    each becomes one more training source, all of its cells trained on (none held out).
    """
    exclude = normalise_exclusions(exclude, extra_sources=len(sources))
    extra = [read_source(SourceSpec.parse(text)) for text in sources]  # read first: a damaged one fails early
    featurizer = featurizer or ImageFeaturizer()
    sources = Sources(Path(data_dir) if data_dir else None, None)
    rng = np.random.default_rng([seed, 2023])

    records_file = find_data_file(METAD2A_FILE, data_dir)
    records = read_npz(records_file)  # read first: a damaged file fails before any featurising
    task_idx, acc = records["task_idx"].astype(np.int64), records["acc"].astype(np.float64)
    arch = records["arch_str"]
    split = records["predictor_split_perm"]
    task_classes = records["task_classes"].astype(np.int64)
    if not np.isfinite(acc).all():
        raise DataFileError(f"{records_file} holds NaN or infinite accuracies; restore it from its source "
                            "(see SOURCES.md)")  # fmt: skip
    imagenet = load_imagenet_sample(sources, 32)
    imagenet_features = torch.from_numpy(featurizer.features(imagenet.images, progress=progress))
    used_tasks, slots = np.unique(task_idx, return_inverse=True)
    task_rows = torch.from_numpy(task_classes[used_tasks] - 1)
    cells = np.array([Cell.from_arch_str(str(a)).index for a in arch], dtype=np.int64)

    train: list[Triples] = []
    metad2a_valid = None
    if METAD2A not in exclude:
        valid_rows, train_rows = split[:METAD2A_VALID_RECORDS], split[METAD2A_VALID_RECORDS:]
        metad2a_train = _standardise(METAD2A, cells[train_rows], acc[train_rows], slots[train_rows])
        train.append(metad2a_train)
        metad2a_valid = _standardise(METAD2A, cells[valid_rows], acc[valid_rows], slots[valid_rows],
                                     (metad2a_train.mean, metad2a_train.std))  # fmt: skip

    table = NB201Table.load(data_dir)
    named: dict[str, tuple[Tensor, Tensor]] = {}
    excluded: dict[str, np.ndarray] = {}
    heldout: list[Triples] = []
    training_tables: dict[str, np.ndarray] = {}
    for name, column in NB201_SOURCES.items():
        dataset = get_dataset(name, data_dir=data_dir)
        named[name] = dataset_inputs(dataset, featurizer, rng, samples_per_class, progress=progress)
        values = np.asarray(table.column(column), dtype=np.float64)
        if name in exclude:
            excluded[name] = values
            continue
        if np.isfinite(values).all():
            training_tables[name] = values
        order = rng.permutation(NUM_CELLS)
        cut = round(NB201_VALID_FRACTION * NUM_CELLS)
        kept, held = np.sort(order[cut:]), np.sort(order[:cut])
        source = _standardise(name, kept, values[kept], np.zeros(len(kept), dtype=np.int64))
        train.append(source)
        heldout.append(_standardise(name, held, values[held], np.zeros(len(held), dtype=np.int64),
                                    (source.mean, source.std)))  # fmt: skip
    for data in extra:
        name = data.spec.name
        if name in named or any(source.name == name for source in train):
            raise ConfigError(f"two meta-training sources are both called {name}; rename one folder or file")
        named[name] = _source_inputs(data.spec.dataset, featurizer, rng, samples_per_class, data_dir, data.data_root,
                                     progress)  # fmt: skip
        train.append(_standardise(name, data.cells, data.values, np.zeros(len(data.cells), dtype=np.int64)))
    bank = ContextBank(imagenet_features, task_rows, named)
    return MetaDataset(tuple(train), metad2a_valid, excluded, bank, tuple(heldout), training_tables)


def _source_inputs(dataset: str, featurizer: ImageFeaturizer, rng: np.random.Generator, samples_per_class: int,
                   data_dir: str | Path | None, data_root: str | None, progress: bool) -> tuple[Tensor, Tensor]:  # fmt: skip
    """The dataset encoder's input for an extra source: its registry images (``C x S x F``),
    else (a task without images) the shipped samples (``B x C x S x F``) whose mean code stands for it."""
    if has_images(dataset):
        return dataset_inputs(get_dataset(dataset, data_dir=data_dir, data_root=data_root), featurizer, rng,
                              samples_per_class, progress=progress)  # fmt: skip
    features, mask, _ = stand_in_inputs(dataset, featurizer, int(rng.integers(2**31)), samples_per_class,
                                        data_dir=data_dir, progress=progress)  # fmt: skip
    return features, mask
