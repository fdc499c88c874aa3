from __future__ import annotations

import numpy as np
import pytest

from tnas.datasets import get_dataset
from tnas.errors import ConfigError
from tnas.space import Cell
from tnas.train import NetworkConfig
from tnas.train.trainer import TrainConfig, train_and_evaluate


def _digits_splits(data_dir):
    digits = get_dataset("digits", data_dir=data_dir)
    order = np.random.default_rng(0).permutation(len(digits))
    train, valid, test = order[:1200], order[1200:1500], order[1500:]
    return [(digits.images[rows], digits.labels[rows]) for rows in (train, valid, test)]


def test_a_short_training_on_digits_is_clearly_better_than_chance(data_dir):
    train, valid, test = _digits_splits(data_dir)
    config = TrainConfig(epochs=2, batch_size=64, learning_rate=0.05)
    network = NetworkConfig(channels=8, cells_per_stage=1, num_classes=10, in_channels=1)
    cell = Cell.from_index(6111)
    result = train_and_evaluate(cell, train, valid, test, num_classes=10, seed=0, config=config, network=network)
    assert result.valid > 50 and result.test > 50  # chance is 10%
    again = train_and_evaluate(cell, train, valid, test, num_classes=10, seed=0, config=config, network=network)
    assert (again.valid, again.test, again.final_loss) == (result.valid, result.test, result.final_loss)


def test_augmentation_path_for_colour_images_runs():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, 40)
    split = (images, labels)
    result = train_and_evaluate(Cell.from_index(1), split, split, split, num_classes=3, seed=1,
                                config=TrainConfig(epochs=1, batch_size=16, train_subset=24),
                                network=NetworkConfig(channels=4, cells_per_stage=1, num_classes=3))  # fmt: skip
    assert 0 <= result.valid <= 100 and result.seed == 1


def test_bad_training_settings_are_refused():
    with pytest.raises(ConfigError):
        TrainConfig(epochs=0)
