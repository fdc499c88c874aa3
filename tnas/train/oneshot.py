"""Weight-sharing (one-shot) search on the NAS-Bench-201 supernet: DARTS-V1, DARTS-V2 and GDAS.

- **DARTS** (Liu, Simonyan & Yang, ICLR 2019): the architecture logits ``alpha`` (``6 x
  5``) mix every edge by their softmax; each step first moves ``alpha`` with Adam against
  the gradient of the validation loss, then the network weights with SGD on the training
  loss (the order of the DARTS code). **V1** (first order) takes the validation gradient at
  the current weights; **V2** (second order) at the weights after one virtual SGD step
  ``w' = w - xi (momentum * buffer + grad_w L_train + weight_decay * w)``, ``xi`` the
  current weight learning rate, minus ``xi`` times the Hessian-vector product
  ``grad^2_{alpha, w} L_train . grad_{w'} L_val`` by central finite differences with
  ``epsilon = 0.01 / |grad_{w'} L_val|`` (the DARTS approximation, as in the NAS-Bench-201
  paper's ``DARTS-V2``).
- **GDAS** (Dong & Yang, CVPR 2019): every step samples one operation per edge with the
  straight-through Gumbel-softmax at temperature ``tau`` (:func:`~tnas.train.supernet.
  gumbel_sample`): the forward pass runs only the sampled operations, the backward pass
  reaches every logit; the weights take an SGD step on the training batch, then ``alpha``
  an Adam step on a validation batch (the order of the GDAS code); ``tau`` decays linearly
  from ``tau_max`` to ``tau_min`` over the epochs.

The derived cell is the per-edge argmax of ``alpha`` (:func:`~tnas.train.supernet.
derive_cell`), recorded after every epoch. The data are a dataset's train and validation
splits (:mod:`tnas.datasets.splits`, the cut the real-training oracle uses): weights learn
on train, ``alpha`` on validation; images are normalised, and 32 x 32 colour images get the
trainer's random crop and flip. Every random choice (initial weights and logits, batch
orders, augmentation, Gumbel draws) comes from one generator seeded with ``seed``.

Durability: after every epoch the whole search state (weights, logits, both optimisers,
the schedule, the generator) is written atomically to ``state_dir/checkpoint.pt`` with the
per-epoch records ``epochs.csv`` and ``alphas.csv``; a search started again on the same
``state_dir`` resumes after the last finished epoch and ends exactly where the
uninterrupted one would (on the same device and thread count). A finished search writes
``search.json`` and is not run again. Search cost: the sum of the finished epochs' real
seconds (time lost to a kill is not counted).

Settings: ``protocol="nb201"`` is the NAS-Bench-201 paper's (C = 16, N = 5, batch 64; SGD
0.025 with cosine decay to 0.001, momentum 0.9, Nesterov, weight decay 5e-4, gradient
clipping 5; Adam 3e-4, betas (0.5, 0.999), weight decay 1e-3 for ``alpha``; DARTS 50
epochs, GDAS 250 epochs with ``tau`` 10 -> 0.1), for a GPU. ``protocol="cpu"`` (the
default) keeps those optimiser settings on a small supernet (C = 8, N = 1, batch 64) for
12 DARTS epochs or 60 GDAS epochs (the paper's 1 : 5 ratio), sized to finish in under 10
minutes on 2 cores with the CIFAR-10 sample (2,400 train / 600 validation images; measured
per epoch on one thread: DARTS-V1 15 s, DARTS-V2 38 s, GDAS 5 s). On CUDA the
forward passes run under bfloat16 autocast (no loss scaling needed), except DARTS-V2's
virtual step and finite differences, which stay in float32.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from tnas.datasets.splits import DataSplits
from tnas.errors import ConfigError, TnasError
from tnas.io import atomic_write, atomic_write_json, atomic_write_text, parse_json
from tnas.space import NUM_EDGES, NUM_OPS, OPERATIONS, Cell
from tnas.train.network import NetworkConfig
from tnas.train.supernet import SuperNetwork, derive_cell, gumbel_sample
from tnas.train.trainer import augment_batch, split_tensors

ALGORITHMS: dict[str, str] = {
    "darts-v1": "DARTS, first order: alpha on the validation gradient at the current weights (Liu et al. 2019)",
    "darts-v2": "DARTS, second order: alpha on the gradient after one unrolled SGD step (Liu et al. 2019)",
    "gdas": "GDAS: one Gumbel-softmax-sampled operation per edge, hard forward, soft backward (Dong & Yang 2019)",
}
PROTOCOLS: dict[str, str] = {
    "cpu": "a small supernet (C 8, N 1; DARTS 12 epochs, GDAS 60): minutes on 2 cores with the CIFAR-10 sample",
    "nb201": "the NAS-Bench-201 paper's settings (C 16, N 5; DARTS 50 epochs, GDAS 250), for a GPU",
}
CPU_DARTS_EPOCHS = 12
CPU_GDAS_EPOCHS = 60  # five times DARTS's, as in the NAS-Bench-201 paper (250 against 50)
CHECKPOINT = "checkpoint.pt"
RESULT = "search.json"


class OneShotStateError(TnasError):
    """A one-shot state folder that cannot be resumed (damaged, or another search's)."""


@dataclass(frozen=True)
class OneShotConfig:
    """Settings of one weight-sharing search (see the module docstring for their sources).

    Attributes:
        algorithm: a key of :data:`ALGORITHMS`.
        channels, cells_per_stage: supernet size (C of the first stage, N cells per stage).
        epochs: passes over the training split.
        batch_size: images per weight step (and per architecture step).
        w_lr, w_lr_min: SGD learning rate of the weights, cosine-decayed to ``w_lr_min``.
        w_momentum, w_weight_decay: SGD momentum (Nesterov) and weight decay.
        grad_clip: largest norm of the weights' gradient.
        a_lr, a_betas, a_weight_decay: Adam for the architecture logits.
        tau_max, tau_min: GDAS's temperature, linear from ``tau_max`` (first epoch) to
            ``tau_min`` (last epoch).
        init_scale: logits start at ``init_scale * N(0, 1)``.
        augment: random crop and flip of 32 x 32 colour training images.
        train_subset: search on this many random training images (``None``: all).
    """

    algorithm: str = "darts-v1"
    channels: int = 8
    cells_per_stage: int = 1
    epochs: int = 10
    batch_size: int = 64
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 5e-4
    grad_clip: float = 5.0
    a_lr: float = 3e-4
    a_betas: tuple[float, float] = (0.5, 0.999)
    a_weight_decay: float = 1e-3
    tau_max: float = 10.0
    tau_min: float = 0.1
    init_scale: float = 1e-3
    augment: bool = True
    train_subset: int | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"one-shot algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}")
        if min(self.channels, self.cells_per_stage, self.epochs, self.batch_size) < 1:
            raise ConfigError("channels, cells_per_stage, epochs and batch_size must be positive")
        if not (self.w_lr > 0 and 0 <= self.w_lr_min <= self.w_lr and self.a_lr > 0 and self.grad_clip > 0):
            raise ConfigError("learning rates and grad_clip must be positive, w_lr_min in [0, w_lr]")
        if not self.tau_max >= self.tau_min > 0:
            raise ConfigError(f"GDAS needs tau_max >= tau_min > 0, got {self.tau_max} and {self.tau_min}")
        if self.train_subset is not None and self.train_subset < 1:
            raise ConfigError("train_subset must be positive")

    @classmethod
    def for_protocol(cls, algorithm: str, protocol: str = "cpu", **overrides: Any) -> OneShotConfig:
        """The settings of ``protocol`` (a key of :data:`PROTOCOLS`) for ``algorithm``, then ``overrides``."""
        if protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        if protocol == "nb201":
            base = cls(algorithm=algorithm, channels=16, cells_per_stage=5, epochs=250 if algorithm == "gdas" else 50)
        else:
            base = cls(algorithm=algorithm, epochs=CPU_GDAS_EPOCHS if algorithm == "gdas" else CPU_DARTS_EPOCHS)
        if "a_betas" in overrides:
            overrides["a_betas"] = tuple(overrides["a_betas"])
        return replace(base, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "a_betas": list(self.a_betas)}

    def tau(self, epoch: int) -> float:
        """GDAS's temperature during 0-based ``epoch``."""
        if self.epochs == 1:
            return self.tau_max
        return self.tau_max - (self.tau_max - self.tau_min) * epoch / (self.epochs - 1)


@dataclass(frozen=True)
class EpochRecord:
    """What one finished epoch of a search recorded.

    Attributes:
        epoch: 1-based epoch; seconds: its real duration.
        train_loss, train_accuracy: on the epoch's training batches (weights' steps).
        valid_loss, valid_accuracy: the supernet on the validation split after the epoch
            (DARTS: soft mixing; GDAS: the derived cell's operations).
        tau: GDAS's temperature (``None`` for DARTS).
        probabilities: ``6 x 5`` softmax of the logits after the epoch.
        derived: the derived cell after the epoch.
    """

    epoch: int
    seconds: float
    train_loss: float
    train_accuracy: float
    valid_loss: float
    valid_accuracy: float
    tau: float | None
    probabilities: list[list[float]]
    derived: Cell

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "derived"}, "derived_index": self.derived.index}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        values = {k: v for k, v in data.items() if k != "derived_index"}
        return cls(**values, derived=Cell.from_index(int(data["derived_index"])))


@dataclass(frozen=True)
class OneShotResult:
    """A finished search: the derived cell, its cost and the per-epoch history."""

    cell: Cell
    seconds: float
    device: str
    history: list[EpochRecord] = field(default_factory=list)
    resumed_from_epoch: int = 0


@dataclass
class _State:
    network: SuperNetwork
    logits: Tensor
    w_optimizer: torch.optim.SGD
    a_optimizer: torch.optim.Adam
    scheduler: torch.optim.lr_scheduler.CosineAnnealingLR
    generator: torch.Generator
    history: list[EpochRecord]


def search(
    config: OneShotConfig,
    splits: DataSplits,
    *,
    seed: int,
    state_dir: str | Path,
    device: str = "cpu",
    progress: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> OneShotResult:
    """Run (or resume, or read back) a weight-sharing search on ``splits``.

    Args:
        state_dir: where the checkpoint, per-epoch records and result are kept.
        on_epoch: called after every finished and saved epoch (progress, tests).

    Raises:
        OneShotStateError: ``state_dir`` holds a damaged checkpoint or another search's.
        FloatingPointError: the training loss became NaN or infinite.
    """
    folder = Path(state_dir)
    identity = _identity(config, splits, seed)
    finished = read_result(folder, identity)
    if finished is not None:
        return finished
    folder.mkdir(parents=True, exist_ok=True)
    state = _fresh_state(config, splits, seed, device)
    _restore(folder, identity, state, device)
    resumed_from = len(state.history)
    train_x, train_y = _training_images(config, splits, seed)
    valid_x, valid_y = split_tensors(splits.valid)
    augment = config.augment and splits.image_shape == (32, 32, 3)
    bar = _bar(config, resumed_from) if progress else None
    try:
        for epoch in range(resumed_from, config.epochs):
            start = time.perf_counter()
            train_loss, train_accuracy = _train_epoch(config, state, epoch, (train_x, train_y), (valid_x, valid_y),
                                                      augment, device)  # fmt: skip
            valid_loss, valid_accuracy = _evaluate(config, state, (valid_x, valid_y), device)
            record = EpochRecord(
                epoch=epoch + 1, seconds=time.perf_counter() - start, train_loss=train_loss,
                train_accuracy=train_accuracy, valid_loss=valid_loss, valid_accuracy=valid_accuracy,
                tau=config.tau(epoch) if config.algorithm == "gdas" else None,
                probabilities=torch.softmax(state.logits.detach(), dim=-1).cpu().tolist(),
                derived=derive_cell(state.logits.detach().cpu()),
            )  # fmt: skip
            state.history.append(record)
            _save(folder, identity, state)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{train_loss:.3f}", valid=f"{valid_accuracy:.1f}%", cell=f"#{record.derived.index}")
            if on_epoch is not None:
                on_epoch(record)
    finally:
        if bar is not None:
            bar.close()
    result = OneShotResult(cell=state.history[-1].derived, seconds=sum(r.seconds for r in state.history),
                           device=device, history=state.history, resumed_from_epoch=resumed_from)  # fmt: skip
    atomic_write_json(folder / RESULT, {
        "identity": identity, "derived_index": result.cell.index, "derived_arch": result.cell.arch_str,
        "search_seconds": result.seconds, "device": device, "epochs": [r.to_dict() for r in state.history],
    })  # fmt: skip
    return result


# ---------------------------------------------------------------------- the steps
def _train_epoch(config: OneShotConfig, state: _State, epoch: int, train: tuple[Tensor, Tensor],
                 valid: tuple[Tensor, Tensor], augment: bool, device: str) -> tuple[float, float]:  # fmt: skip
    """One pass over the training split, alternating weight and architecture steps."""
    network, generator = state.network, state.generator
    network.train()
    train_order = torch.randperm(len(train[0]), generator=generator)
    steps = math.ceil(len(train_order) / config.batch_size)
    repeats = math.ceil(steps * config.batch_size / len(valid[0]))
    valid_order = torch.cat([torch.randperm(len(valid[0]), generator=generator) for _ in range(repeats)])
    tau = config.tau(epoch)
    loss_sum = correct = seen = 0.0
    for step in range(steps):
        rows = train_order[step * config.batch_size : (step + 1) * config.batch_size]
        images, labels = train[0][rows], train[1][rows]
        if augment:
            images = augment_batch(images, generator)
        images, labels = images.to(device), labels.to(device)
        valid_rows = valid_order[step * config.batch_size : (step + 1) * config.batch_size]
        valid_images, valid_labels = valid[0][valid_rows].to(device), valid[1][valid_rows].to(device)
        if config.algorithm == "gdas":
            logits_out, loss = _weight_step(config, state, images, labels, device, tau)
            _gdas_architecture_step(state, valid_images, valid_labels, tau, device)
        else:
            if config.algorithm == "darts-v2":
                _unrolled_architecture_step(state, images, labels, valid_images, valid_labels)
            else:
                _first_order_architecture_step(state, valid_images, valid_labels, device)
            logits_out, loss = _weight_step(config, state, images, labels, device, None)
        state.scheduler.step()
        loss_sum += float(loss) * len(labels)
        correct += float((logits_out.argmax(dim=1) == labels).sum())
        seen += len(labels)
    return loss_sum / seen, 100.0 * correct / seen


def _autocast(device: str):  # type: ignore[no-untyped-def]
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda"))


def _weight_step(config: OneShotConfig, state: _State, images: Tensor, labels: Tensor, device: str,
                 tau: float | None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """One SGD step of the network weights on a training batch (DARTS: soft mix; GDAS: a sample)."""
    with _autocast(device):
        if tau is None:
            logits_out = state.network(images, torch.softmax(state.logits.detach(), dim=-1))
        else:
            weights, chosen = gumbel_sample(state.logits.detach(), tau, state.generator)
            logits_out = state.network(images, weights, chosen)
        loss = F.cross_entropy(logits_out.float(), labels)
    if not torch.isfinite(loss.detach()):
        raise FloatingPointError(f"the supernet's training loss became {loss.item()}")
    state.w_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(state.network.parameters(), config.grad_clip)
    state.w_optimizer.step()
    return logits_out.detach(), loss.detach()


def _first_order_architecture_step(state: _State, images: Tensor, labels: Tensor, device: str) -> None:
    """DARTS-V1: Adam on ``alpha`` with the validation gradient at the current weights."""
    state.a_optimizer.zero_grad(set_to_none=True)
    with _autocast(device):
        loss = F.cross_entropy(state.network(images, torch.softmax(state.logits, dim=-1)).float(), labels)
    loss.backward()
    state.network.zero_grad(set_to_none=True)
    state.a_optimizer.step()


def _gdas_architecture_step(state: _State, images: Tensor, labels: Tensor, tau: float, device: str) -> None:
    """GDAS: Adam on ``alpha`` with the validation loss of a fresh Gumbel sample."""
    state.a_optimizer.zero_grad(set_to_none=True)
    weights, chosen = gumbel_sample(state.logits, tau, state.generator)
    with _autocast(device):
        loss = F.cross_entropy(state.network(images, weights, chosen).float(), labels)
    loss.backward()
    state.network.zero_grad(set_to_none=True)
    state.a_optimizer.step()


def unrolled_alpha_gradient(network: SuperNetwork, logits: Tensor, w_optimizer: torch.optim.SGD,
                            train_batch: tuple[Tensor, Tensor], valid_batch: tuple[Tensor, Tensor]) -> Tensor:  # fmt: skip
    """DARTS-V2's architecture gradient (``6 x 5``), see the module docstring.

    The network's weights, buffers and optimiser are left as they were (the virtual step
    is taken on copies through ``torch.func.functional_call``).
    """
    group = w_optimizer.param_groups[0]
    lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
    names = [name for name, _ in network.named_parameters()]
    weights = [parameter for _, parameter in network.named_parameters()]
    buffers = {name: buffer.clone() for name, buffer in network.named_buffers()}  # keep running stats untouched

    def loss_at(params: dict[str, Tensor], mix: Tensor, batch: tuple[Tensor, Tensor]) -> Tensor:
        return F.cross_entropy(functional_call(network, {**params, **buffers}, (batch[0], mix)), batch[1])

    soft = torch.softmax(logits.detach(), dim=-1)
    train_loss = loss_at(dict(zip(names, weights)), soft, train_batch)
    gradients = torch.autograd.grad(train_loss, weights)
    with torch.no_grad():
        virtual = {}
        for name, weight, gradient in zip(names, weights, gradients):
            buffer = w_optimizer.state.get(weight, {}).get("momentum_buffer")
            moment = momentum * buffer if buffer is not None else torch.zeros_like(weight)
            virtual[name] = weight - lr * (moment + gradient + decay * weight)
    virtual = {name: value.requires_grad_() for name, value in virtual.items()}
    alpha = logits.detach().clone().requires_grad_()
    valid_loss = loss_at(virtual, torch.softmax(alpha, dim=-1), valid_batch)
    alpha_gradient, *vector = torch.autograd.grad(valid_loss, [alpha, *virtual.values()])
    norm = torch.sqrt(sum((v * v).sum() for v in vector))
    epsilon = 0.01 / float(norm.clamp_min(1e-12))

    def train_alpha_gradient(sign: float) -> Tensor:
        with torch.no_grad():
            moved = {name: weight + sign * epsilon * v for name, weight, v in zip(names, weights, vector)}
        point = logits.detach().clone().requires_grad_()
        (gradient,) = torch.autograd.grad(loss_at(moved, torch.softmax(point, dim=-1), train_batch), [point])
        return gradient

    hessian_vector = (train_alpha_gradient(1.0) - train_alpha_gradient(-1.0)) / (2 * epsilon)
    return alpha_gradient - lr * hessian_vector


def _unrolled_architecture_step(state: _State, images: Tensor, labels: Tensor, valid_images: Tensor,
                                valid_labels: Tensor) -> None:  # fmt: skip
    """DARTS-V2: Adam on ``alpha`` with :func:`unrolled_alpha_gradient`."""
    gradient = unrolled_alpha_gradient(state.network, state.logits, state.w_optimizer, (images, labels),
                                       (valid_images, valid_labels))  # fmt: skip
    state.a_optimizer.zero_grad(set_to_none=True)
    state.logits.grad = gradient.detach()
    state.a_optimizer.step()


@torch.no_grad()
def _evaluate(config: OneShotConfig, state: _State, valid: tuple[Tensor, Tensor], device: str,
              batch_size: int = 256) -> tuple[float, float]:  # fmt: skip
    """Loss and accuracy (%) of the supernet on the validation split (DARTS: soft; GDAS: derived ops)."""
    network = state.network
    network.eval()
    if config.algorithm == "gdas":
        chosen = derive_cell(state.logits.detach().cpu()).ops
        weights = torch.zeros(NUM_EDGES, NUM_OPS, device=state.logits.device)
        weights[torch.arange(NUM_EDGES), torch.tensor(chosen)] = 1.0
    else:
        chosen, weights = None, torch.softmax(state.logits, dim=-1)
    loss_sum = correct = 0.0
    for start in range(0, len(valid[0]), batch_size):
        images, labels = valid[0][start : start + batch_size].to(device), valid[1][start : start + batch_size].to(device)
        with _autocast(device):
            out = network(images, weights, chosen).float()
        loss_sum += float(F.cross_entropy(out, labels, reduction="sum"))
        correct += float((out.argmax(dim=1) == labels).sum())
    network.train()
    return loss_sum / len(valid[0]), 100.0 * correct / len(valid[0])


# ---------------------------------------------------------------------- state
def _identity(config: OneShotConfig, splits: DataSplits, seed: int) -> dict[str, Any]:
    """What decides a search's outcome besides the device (checked on resume)."""
    return {"config": config.to_dict(), "seed": seed, "dataset": splits.name, "sizes": splits.sizes(),
            "classes": splits.num_classes, "image_shape": list(splits.image_shape)}  # fmt: skip


def _training_images(config: OneShotConfig, splits: DataSplits, seed: int) -> tuple[Tensor, Tensor]:
    """The training split as tensors (``N x C x H x W`` float, ``N`` int64), or ``train_subset`` of it."""
    images, labels = splits.train
    if config.train_subset is not None and config.train_subset < len(images):
        keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
        rows = np.sort(keep[: config.train_subset].numpy())
        images, labels = images[rows], labels[rows]
    return split_tensors((images, labels))


def _fresh_state(config: OneShotConfig, splits: DataSplits, seed: int, device: str) -> _State:
    generator = torch.Generator().manual_seed(seed)
    network_config = NetworkConfig(channels=config.channels, cells_per_stage=config.cells_per_stage,
                                   num_classes=splits.num_classes, in_channels=splits.image_shape[-1])  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
        network = SuperNetwork(network_config).to(device)
    logits = (config.init_scale * torch.randn(NUM_EDGES, NUM_OPS, generator=generator)).to(device).requires_grad_()
    w_optimizer = torch.optim.SGD(network.parameters(), lr=config.w_lr, momentum=config.w_momentum,
                                  weight_decay=config.w_weight_decay, nesterov=True)  # fmt: skip
    a_optimizer = torch.optim.Adam([logits], lr=config.a_lr, betas=config.a_betas, weight_decay=config.a_weight_decay)
    steps = math.ceil(min(len(splits.train[1]), config.train_subset or len(splits.train[1])) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(w_optimizer, T_max=config.epochs * steps,
                                                           eta_min=config.w_lr_min)  # fmt: skip
    return _State(network, logits, w_optimizer, a_optimizer, scheduler, generator, [])


def _save(folder: Path, identity: dict[str, Any], state: _State) -> None:
    """The checkpoint and the per-epoch records, each written atomically."""
    payload = {
        "identity": identity,
        "network": state.network.state_dict(),
        "logits": state.logits.detach().cpu(),
        "w_optimizer": state.w_optimizer.state_dict(),
        "a_optimizer": state.a_optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "generator": state.generator.get_state(),
        "history": [record.to_dict() for record in state.history],
    }
    atomic_write(folder / CHECKPOINT, lambda handle: torch.save(payload, handle))
    atomic_write_text(folder / "epochs.csv", _epochs_csv(state.history))
    atomic_write_text(folder / "alphas.csv", _alphas_csv(state.history))


def _restore(folder: Path, identity: dict[str, Any], state: _State, device: str) -> None:
    """Load the checkpoint in ``folder``, if any, into the fresh ``state``."""
    path = folder / CHECKPOINT
    if not path.exists():
        return
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
        saved_identity = payload["identity"]
    except Exception as error:  # noqa: BLE001 - any unreadable checkpoint gets the same advice
        raise OneShotStateError(f"{path} is damaged ({type(error).__name__}); delete it to start the search "
                                "again") from None  # fmt: skip
    if saved_identity != identity:
        raise OneShotStateError(f"{path} belongs to another search (other settings, seed or data); use another "
                                "--out or delete the folder")  # fmt: skip
    try:
        state.network.load_state_dict(payload["network"])
        with torch.no_grad():
            state.logits.copy_(payload["logits"].to(device))
        state.w_optimizer.load_state_dict(payload["w_optimizer"])
        state.a_optimizer.load_state_dict(payload["a_optimizer"])
        state.scheduler.load_state_dict(payload["scheduler"])
        state.generator.set_state(payload["generator"])
        state.history = [EpochRecord.from_dict(record) for record in payload["history"]]
    except (KeyError, RuntimeError, ValueError, TypeError) as error:
        raise OneShotStateError(f"{path} is damaged ({type(error).__name__}: {str(error).splitlines()[0]}); "
                                "delete it to start the search again") from None  # fmt: skip


def read_result(folder: str | Path, identity: dict[str, Any] | None = None) -> OneShotResult | None:
    """The finished search in ``folder`` (``None`` if it has not finished).

    Raises:
        OneShotStateError: ``search.json`` is damaged, or (with ``identity``) another search's.
    """
    path = Path(folder) / RESULT
    if not path.exists():
        return None
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
        if identity is not None and data["identity"] != identity:
            raise OneShotStateError(f"{path} belongs to another search; use another --out or delete the folder")
        history = [EpochRecord.from_dict(record) for record in data["epochs"]]
        return OneShotResult(cell=Cell.from_index(int(data["derived_index"])), seconds=float(data["search_seconds"]),
                             device=str(data["device"]), history=history, resumed_from_epoch=len(history))  # fmt: skip
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise OneShotStateError(f"{path} is damaged ({type(error).__name__}); delete it to search again") from None


def _epochs_csv(history: list[EpochRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", "seconds", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy", "tau",
                     "derived_index", "derived_arch"])  # fmt: skip
    for r in history:
        writer.writerow([r.epoch, f"{r.seconds:.3f}", f"{r.train_loss:.6f}", f"{r.train_accuracy:.3f}",
                         f"{r.valid_loss:.6f}", f"{r.valid_accuracy:.3f}", "" if r.tau is None else f"{r.tau:.4f}",
                         r.derived.index, r.derived.arch_str])  # fmt: skip
    return out.getvalue()


def _alphas_csv(history: list[EpochRecord]) -> str:
    """One row per (epoch, edge): the softmax of the architecture logits over the five operations."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", "edge", *OPERATIONS])
    for r in history:
        for edge, row in enumerate(r.probabilities):
            writer.writerow([r.epoch, edge, *(f"{p:.6f}" for p in row)])
    return out.getvalue()


def _bar(config: OneShotConfig, done: int):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(total=config.epochs, initial=done, desc=config.algorithm, unit="epoch", disable=None)
