"""Training one NAS-Bench-201 network, following the benchmark's protocol by default.

SGD with Nesterov momentum 0.9, learning rate 0.1 with cosine decay to 0, weight decay
5e-4, batch 256, random crop (4-pixel padding) and horizontal flip for 32 x 32 colour
images, 200 epochs. On CUDA, mixed precision and channels-last are on by default. Every
random choice comes from generators seeded with ``seed``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tnas.errors import ConfigError
from tnas.space import Cell
from tnas.train.network import NB201Network, NetworkConfig


@dataclass(frozen=True)
class TrainConfig:
    """Training protocol (defaults: NAS-Bench-201's 200-epoch schedule)."""

    epochs: int = 200
    batch_size: int = 256
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = True
    train_subset: int | None = None
    mixed_precision: bool = True
    channels_last: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not 0 < self.learning_rate < math.inf:
            raise ConfigError(f"epochs, batch_size and learning_rate must be positive (learning_rate finite), got "
                              f"{self.epochs}, {self.batch_size} and {self.learning_rate}")  # fmt: skip
        if not (0 <= self.momentum < math.inf and 0 <= self.weight_decay < math.inf):
            raise ConfigError(f"momentum and weight_decay must be finite numbers >= 0, got {self.momentum} and "
                              f"{self.weight_decay}")  # fmt: skip
        if self.train_subset is not None and self.train_subset < 1:
            raise ConfigError("train_subset must be positive")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    """Accuracies (%) on the validation and test splits, seconds spent, seed used."""

    valid: float
    test: float
    seconds: float
    seed: int
    final_loss: float


def images_to_tensor(images: np.ndarray) -> Tensor:
    """uint8 ``N x H x W x C`` to float ``N x C x H x W`` normalised per channel to [-1, 1]."""
    return torch.tensor(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)  # copy: may be read-only


def split_tensors(split: tuple[np.ndarray, np.ndarray]) -> tuple[Tensor, Tensor]:
    """``(images, labels)`` as tensors: float ``N x C x H x W`` in [-1, 1] and int64 ``N``."""
    images, labels = split
    return images_to_tensor(images), torch.from_numpy(labels.astype(np.int64))


def augment_batch(batch: Tensor, generator: torch.Generator) -> Tensor:
    """Random 4-pixel-padded crop and horizontal flip (applied to 32 x 32 colour images)."""
    count, _, height, width = batch.shape
    padded = F.pad(batch, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (count,), generator=generator)
    dy = torch.randint(0, 9, (count,), generator=generator)
    cropped = torch.stack(
        [padded[i, :, y : y + height, x : x + width] for i, (y, x) in enumerate(zip(dy.tolist(), dx.tolist()))]
    )
    flip = torch.rand(count, generator=generator) < 0.5
    cropped[flip] = cropped[flip].flip(-1)
    return cropped


@dataclass(frozen=True)
class EpochProgress:
    """What a training reports after each epoch (for progress displays).

    Attributes:
        epoch: 1-based epoch just finished; epochs: total epochs.
        loss: mean training loss over the epoch's batches.
        train_accuracy: top-1 accuracy (%) on the epoch's (augmented) training batches.
    """

    epoch: int
    epochs: int
    loss: float
    train_accuracy: float


@torch.no_grad()
def accuracy(network: torch.nn.Module, images: np.ndarray, labels: np.ndarray, device: torch.device,
             batch_size: int = 512) -> float:  # fmt: skip
    """Top-1 accuracy (%) of ``network`` on ``images``."""
    network.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        batch = images_to_tensor(images[start : start + batch_size]).to(device)
        predicted = network(batch).argmax(dim=1).cpu()
        correct += int((predicted == torch.tensor(labels[start : start + batch_size])).sum())
    return 100.0 * correct / max(len(images), 1)


def train_and_evaluate(
    cell: Cell,
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    num_classes: int,
    seed: int,
    config: TrainConfig = TrainConfig(),
    network: NetworkConfig | None = None,
    device: str = "cpu",
    on_epoch: Callable[[EpochProgress], None] | None = None,
) -> TrainResult:
    """Train the network of ``cell`` and measure it.

    Args:
        train, valid, test: ``(images, labels)`` with images uint8 ``N x H x W x C``.
        on_epoch: called after every epoch with its loss and training accuracy.

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    start_time = time.perf_counter()
    images, labels = train
    generator = torch.Generator().manual_seed(seed)
    if config.train_subset is not None and config.train_subset < len(images):
        keep = torch.randperm(len(images), generator=generator)[: config.train_subset].numpy()
        images, labels = images[keep], labels[keep]
    torch.manual_seed(seed)
    net_config = network or NetworkConfig(num_classes=num_classes, in_channels=images.shape[-1])
    model = NB201Network(cell, net_config).to(device)
    cuda = device.startswith("cuda")
    if cuda and config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=True)  # fmt: skip
    steps_per_epoch = math.ceil(len(images) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and config.mixed_precision)
    augment = config.augment and images.shape[1:] == (32, 32, 3)
    all_images, all_labels = split_tensors((images, labels))
    loss_value = float("nan")
    for epoch in range(1, config.epochs + 1):
        model.train()
        loss_sum = correct = seen = 0.0
        order = torch.randperm(len(all_images), generator=generator)
        for begin in range(0, len(order), config.batch_size):
            rows = order[begin : begin + config.batch_size]
            batch, target = all_images[rows], all_labels[rows]
            if augment:
                batch = augment_batch(batch, generator)
            batch, target = batch.to(device), target.to(device)
            if cuda and config.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type="cuda", enabled=cuda and config.mixed_precision):
                logits = model(batch)
                loss = F.cross_entropy(logits, target)
            if not torch.isfinite(loss.detach()):
                raise FloatingPointError(f"the training loss of cell {cell.index} became {loss.item()}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_value = float(loss.detach())
            loss_sum += loss_value * len(target)
            correct += float((logits.detach().argmax(dim=1) == target).sum())
            seen += len(target)
        if on_epoch is not None:
            on_epoch(EpochProgress(epoch, config.epochs, loss_sum / seen, 100.0 * correct / seen))
    torch_device = torch.device(device)
    return TrainResult(
        valid=accuracy(model, *valid, torch_device),
        test=accuracy(model, *test, torch_device),
        seconds=time.perf_counter() - start_time,
        seed=seed,
        final_loss=loss_value,
    )
