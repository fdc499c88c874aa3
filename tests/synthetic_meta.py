"""A small synthetic meta-dataset for fast tests of meta-training mechanics."""

from __future__ import annotations

import numpy as np
import torch

from tnas.encoders import ArchEncoderConfig, DatasetEncoderConfig
from tnas.meta_train import MetaTrainConfig
from tnas.meta_train.data import ContextBank, MetaDataset, Triples
from tnas.models import DeepKernelConfig
from tnas.space import NUM_CELLS, Cell

FEATURES = 8


def _quality(cells: np.ndarray, offset: float) -> np.ndarray:
    """A smooth synthetic accuracy: convolutions help, 'none' edges hurt."""
    ops = np.array([Cell.from_index(int(i)).ops for i in cells])
    return 60 + 3 * (ops == 3).sum(1) + 2 * (ops == 2).sum(1) - 4 * (ops == 0).sum(1) + offset


def synthetic_meta(seed: int = 0, *, full_table: bool = False) -> MetaDataset:
    """``full_table``: ``cifar10-valid`` is a whole table (95% of its cells trained on, 5% held
    out, as a real NAS-Bench-201 source) instead of 300 training cells."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    bank = ContextBank(
        imagenet_features=torch.randn(1000, FEATURES, generator=generator),
        task_rows=torch.from_numpy(rng.integers(0, 1000, size=(40, 20))),
        named={name: (torch.randn(4, 3, FEATURES, generator=generator), torch.ones(4, 3, dtype=torch.bool))
               for name in ("cifar10-valid", "cifar100", "imagenet16-120")},
    )  # fmt: skip

    def triples(name, cells, context, offset):
        raw = _quality(cells, offset) + rng.normal(0, 0.5, len(cells))
        return Triples(name, cells, raw, (raw - raw.mean()) / raw.std(), context, float(raw.mean()), float(raw.std()))

    metad2a_cells = rng.choice(NUM_CELLS, 240, replace=False)
    context = rng.integers(0, 40, 240)
    heldout: tuple[Triples, ...] = ()
    tables: dict[str, np.ndarray] = {}
    if full_table:
        order = rng.permutation(NUM_CELLS)
        cut = NUM_CELLS // 20
        cifar10 = triples("cifar10-valid", np.sort(order[cut:]), np.zeros(NUM_CELLS - cut, dtype=np.int64), 20.0)
        heldout = (triples("cifar10-valid", np.sort(order[:cut]), np.zeros(cut, dtype=np.int64), 20.0),)
        table = np.empty(NUM_CELLS)
        table[cifar10.cells], table[heldout[0].cells] = cifar10.raw, heldout[0].raw
        tables["cifar10-valid"] = table
    else:
        cifar10 = triples("cifar10-valid", rng.choice(NUM_CELLS, 300, replace=False), np.zeros(300, dtype=np.int64), 20.0)
    train = (triples("metad2a", metad2a_cells[:200], context[:200], 0.0), cifar10)
    valid = triples("metad2a", metad2a_cells[200:], context[200:], 0.0)
    excluded = {"cifar100": _quality(np.arange(NUM_CELLS), -10.0)}
    return MetaDataset(train, valid, excluded, bank, heldout, tables)


def small_config(**changes) -> MetaTrainConfig:
    kernel = DeepKernelConfig(
        arch=ArchEncoderConfig(code_dim=6, hidden_dim=12, embed_dim=4),
        dataset=DatasetEncoderConfig(feature_dim=FEATURES, hidden_dim=8, code_dim=4, num_heads=2, num_blocks=1),
        widths=(12, 6),
    )
    values = {"exclude": ("cifar100",), "epochs": 2, "steps_per_epoch": 3, "tasks_per_step": 2, "inner_steps": 2,
              "batch_size": 24, "kernel": kernel}
    values.update(changes)
    return MetaTrainConfig(**values)
