"""The meta-training loop: REPTILE epochs, validation, checkpoints, resume."""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tnas.errors import ConfigError, cause
from tnas.io import atomic_write_json, parse_json
from tnas.meta_train import checkpoint
from tnas.meta_train.checkpoint import CheckpointError
from tnas.meta_train.config import LEGACY_SETTINGS, MetaTrainConfig
from tnas.meta_train.data import MetaDataset, build_meta_dataset
from tnas.meta_train.reptile import BatchLoss, StepReport, make_inner_loop, reptile_update
from tnas.meta_train.validation import selection_score, selection_starts, validate
from tnas.models.deep_kernel import DeepKernel
from tnas.typecheck import is_integer
from tnas.versions import package_versions

logger = logging.getLogger(__name__)


def epoch_dir(out: str | Path, epoch: int) -> Path:
    """Where ``meta_train(..., keep_epochs=True)`` keeps epoch ``epoch``'s kernel: a directory
    that :func:`~tnas.meta_train.checkpoint.load_model` reads like a finished run's."""
    return Path(out) / checkpoint.EPOCHS_FOLDER / f"{epoch:03d}"


@dataclass(frozen=True)
class MetaTrainResult:
    """The outcome of :func:`meta_train`.

    Attributes:
        metrics: one dict of figures per epoch.
        best_epoch: the epoch kept in ``model.pt``.
        resumed_from: the epoch a previous run had finished (0 for a fresh run).
        seconds: wall time of this call.
    """

    metrics: list[dict[str, float]]
    best_epoch: int
    resumed_from: int
    seconds: float


def unkept_epochs(out: str | Path, epochs: int) -> list[int]:
    """The epochs among ``1 .. epochs`` whose kernel ``out`` does not keep (:func:`epoch_dir`):
    all of them for a run meta-trained without ``keep_epochs``."""
    return [epoch for epoch in range(1, epochs + 1) if not (epoch_dir(out, epoch) / checkpoint.MODEL_FILE).is_file()]


def _epoch_list(epochs: list[int]) -> str:
    """``1-3, 5`` for ``[1, 2, 3, 5]``."""
    runs: list[list[int]] = []
    for epoch in epochs:
        if runs and epoch == runs[-1][-1] + 1:
            runs[-1].append(epoch)
        else:
            runs.append([epoch])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)


def _refuse_what_cannot_change(out: Path, config: MetaTrainConfig, done: int, planned: int, keep_epochs: bool) -> None:
    """Raise ``ConfigError`` where ``out``, holding ``done`` epochs of a run planned for
    ``planned``, cannot do what was asked, instead of returning without training: fewer
    epochs than it holds, or ``keep_epochs`` on a finished run that did not keep them."""
    if done > config.epochs:
        raise ConfigError(
            f"--epochs {config.epochs} cannot change this run: {out} already holds {done} meta-trained epochs, "
            f"which a lower --epochs cannot undo; repeat --epochs {max(planned, done)} (a higher one continues "
            "the run) or meta-train into a new --out"
        )
    missing = unkept_epochs(out, done) if keep_epochs and done >= config.epochs else []
    if missing:
        kept = ("without keeping their kernels" if len(missing) == done else
                f"keeping only {done - len(missing)} of their kernels (not epoch(s) {_epoch_list(missing)})")
        raise ConfigError(
            f"--keep-epochs cannot change this run: {out} finished its {done} epochs {kept}, and they cannot be "
            "recovered without training again; meta-train into a new --out with --keep-epochs, or leave "
            "--keep-epochs out"
        )


def check_request(config: MetaTrainConfig, out: str | Path, *, keep_epochs: bool = False) -> None:
    """Refuse now, before any work, what :func:`meta_train` would refuse on ``out``'s
    checkpoint: other settings, fewer epochs than it holds, ``keep_epochs`` on a finished
    run that did not keep them (an ensemble checks every member before training any).

    Raises:
        CheckpointError: ``out`` holds a run of other settings, a damaged checkpoint, or
            something other than a meta-training run (see :func:`checkpoint.check_output_folder`).
        ConfigError: ``out`` cannot do what was asked.
    """
    out = Path(out)
    checkpoint.check_output_folder(out)
    state = _resume_state(out, config)
    if state is None:
        return
    done = state.get("epoch")
    if is_integer(done):  # else meta_train reports the damage
        _refuse_what_cannot_change(out, config, done, _planned_epochs(state, done), keep_epochs)


def _planned_epochs(state: dict[str, Any], done: int) -> int:
    """The epochs a checkpoint's run was started for (``done`` where it does not say)."""
    planned = state.get("config", {}).get("epochs")
    return planned if is_integer(planned) else done


def _resume_state(out: Path, config: MetaTrainConfig) -> dict[str, Any] | None:
    path = out / checkpoint.CHECKPOINT_FILE
    if not path.exists():
        return None
    state = checkpoint.load(path, "checkpoint")
    if not isinstance(state.get("config", {}), dict):
        raise CheckpointError(f"checkpoint {path} is damaged (its config is not a dict); delete it to meta-train "
                              "from the start")  # fmt: skip
    stored = {**LEGACY_SETTINGS, **state.get("config", {})}
    current = config.to_dict()
    stored.pop("epochs", None), current.pop("epochs", None)
    if stored != current:
        changed = sorted(key for key in current if stored.get(key) != current[key])
        raise CheckpointError(
            f"{out} holds a meta-training run with other settings ({', '.join(changed)}); "
            "choose another --out or repeat its settings (only --epochs may change)"
        )
    return state


def _restore(state: dict[str, Any], kernel: DeepKernel, rng: np.random.Generator,
             path: Path) -> tuple[list[dict[str, float]], dict[str, Any] | None, int]:  # fmt: skip
    """Load a checkpoint's kernel and generator state; its metrics, best epoch and epochs done.

    Raises:
        CheckpointError: a field is missing or of the wrong kind.
    """
    try:
        kernel.load_state_dict(state["kernel"])
        rng.bit_generator.state = parse_json(state["rng"])
        metrics, best, done = list(state["metrics"]), state["best"], state["epoch"]
        if isinstance(done, bool) or not isinstance(done, int) or done < 0:
            raise TypeError(f"epoch is {done!r}")
        if not all(isinstance(row, dict) for row in metrics):
            raise TypeError("metrics are not rows of figures")
        if [row.get("epoch") for row in metrics] != list(range(1, done + 1)):
            raise ValueError(f"its metrics are not one row per epoch 1 to {done}")
        if best is not None and (not isinstance(best, dict) or not isinstance(best.get("epoch"), int)
                                 or "kernel" not in best or not isinstance(best.get("score"), float)):  # fmt: skip
            raise TypeError("the best epoch's record lacks its epoch, kernel or score")
        if (best is None) != (done == 0) or (best is not None and not 1 <= best["epoch"] <= done):
            raise ValueError("its best epoch is not one of its epochs")
        if not all(torch.isfinite(parameter).all() for parameter in kernel.parameters()):  # (bounds may be inf)
            raise ValueError("its weights are not finite")
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"checkpoint {path} is damaged ({cause(error)}); delete it to meta-train from the "
                              "start") from None  # fmt: skip
    return metrics, best, done


def meta_train(
    config: MetaTrainConfig,
    out: str | Path,
    *,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = False,
    meta: MetaDataset | None = None,
    keep_epochs: bool = False,
) -> MetaTrainResult:
    """Meta-train a deep kernel with REPTILE, writing ``out`` (resumed if it holds a run).

    Args:
        config: the run's settings.
        out: output directory (see :mod:`tnas.meta_train.checkpoint`).
        data_dir: data directory (default: the usual lookup).
        device: torch device of the model.
        progress: show a progress bar on stderr.
        meta: a prebuilt meta-dataset (tests); by default built from the data directory.
        keep_epochs: also write every epoch's kernel as a loadable model file,
            ``out/epochs/NNN/model.pt`` (:func:`epoch_dir`; about 2.5 MB each; for
            ensembles of epochs and for studying epoch selection). A resumed run keeps
            the epochs it trains from now on.

    Raises:
        CheckpointError: ``out`` holds a run of other settings (only ``epochs`` may
            change), a damaged checkpoint, or something other than a meta-training run.
        ConfigError: ``out`` holds more epochs than ``config.epochs`` (they cannot be
            undone), or ``keep_epochs`` is asked of a finished run that did not keep
            its epochs (they cannot be recovered without training again).
    """
    started = time.perf_counter()
    out = Path(out)
    checkpoint.check_output_folder(out)
    state = _resume_state(out, config)
    torch.manual_seed(config.seed)
    kernel = DeepKernel(config.kernel).to(device)
    rng = np.random.default_rng(config.seed)
    metrics: list[dict[str, float]] = []
    best: dict[str, Any] | None = None
    done = 0
    if state is not None:
        metrics, best, done = _restore(state, kernel, rng, out / checkpoint.CHECKPOINT_FILE)
        _refuse_what_cannot_change(out, config, done, _planned_epochs(state, done), keep_epochs)
        missing = unkept_epochs(out, done) if keep_epochs and done < config.epochs else []
        if missing:  # resumed with keep_epochs: the epochs to come are kept, the earlier ones were not
            logger.warning("note: %s resumes after epoch %d; epoch(s) %s were meta-trained without --keep-epochs "
                           "and are not kept", out, done, _epoch_list(missing))  # fmt: skip
    if done >= config.epochs:
        if best is not None and not (out / checkpoint.MODEL_FILE).is_file():  # deleted since: written again
            meta = meta or build_meta_dataset(config.exclude, seed=config.seed, samples_per_class=config.samples_per_class,
                                              data_dir=data_dir, progress=progress, sources=config.sources)  # fmt: skip
            _save_model(out / checkpoint.MODEL_FILE, config, meta, best, metrics[best["epoch"] - 1])
            logger.warning("note: %s had no %s; written again from its checkpoint (epoch %d)", out,
                           checkpoint.MODEL_FILE, best["epoch"])  # fmt: skip
        return MetaTrainResult(metrics, int(best["epoch"]) if best else done, done, time.perf_counter() - started)

    out.mkdir(parents=True, exist_ok=True)
    if meta is None:
        meta = build_meta_dataset(config.exclude, seed=config.seed, samples_per_class=config.samples_per_class,
                                  data_dir=data_dir, progress=progress, sources=config.sources)  # fmt: skip
    atomic_write_json(out / checkpoint.CONFIG_FILE, {
        "config": config.to_dict(), "data_dir": str(data_dir) if data_dir else None,
        "sources": [source.name for source in meta.train], "statistics": meta.statistics(),
        "versions": package_versions(),
    })  # fmt: skip
    loss = BatchLoss(kernel, meta.bank.to(device), config.batch_size, torch.device(device),
                     top_fraction=config.top_fraction, top_quantile=config.top_quantile)  # fmt: skip
    parameters = list(kernel.parameters())
    bar = _progress_bar(config, done, progress)
    try:
        for epoch in range(done + 1, config.epochs + 1):
            report = StepReport(losses=[], skipped=0)
            inner_loop = make_inner_loop(parameters, loss, rng, inner_steps=config.inner_steps,
                                         inner_lr=config.inner_lr, report=report)  # fmt: skip
            kernel.train()
            for step in range(config.steps_per_epoch):
                picks = rng.choice(len(meta.train), size=config.tasks_per_step,
                                   replace=len(meta.train) < config.tasks_per_step)  # fmt: skip
                progress_done = ((epoch - 1) * config.steps_per_epoch + step) / (config.epochs * config.steps_per_epoch)
                epsilon = config.outer_step * (1 - progress_done) if config.anneal_outer_step else config.outer_step
                reptile_update(parameters, [meta.train[int(i)] for i in picks], inner_loop, epsilon)
                if bar is not None:
                    bar.update(1)
                    if report.losses:
                        bar.set_postfix(epoch=epoch, nll=f"{np.mean(report.losses[-20:]):.3f}")
            figures = validate(loss, meta, seed=config.seed, conditioning_cells=config.conditioning_cells)
            row = {"epoch": epoch, "train_nll": float(np.mean(report.losses)) if report.losses else math.nan,
                   "skipped_batches": report.skipped, **figures}  # fmt: skip
            metrics.append(row)
            if bar is not None:
                bar.write(format_row(row))
            eligible = epoch >= selection_starts(config.epochs, config.selection)
            score = selection_score(figures, config.selection) if eligible else math.nan
            if best is None or math.isnan(score) or math.isnan(best["score"]) or score > best["score"]:
                best = {"epoch": epoch, "score": score, "kernel": copy.deepcopy(kernel.state_dict())}
                _save_model(out / checkpoint.MODEL_FILE, config, meta, best, row)
            if keep_epochs:
                snapshot = {"epoch": epoch, "kernel": kernel.state_dict()}
                _save_model(epoch_dir(out, epoch) / checkpoint.MODEL_FILE, config, meta, snapshot, row)
            checkpoint.write_metrics(out / checkpoint.METRICS_FILE, metrics)
            checkpoint.save(out / checkpoint.CHECKPOINT_FILE, {
                "format": checkpoint.FORMAT, "epoch": epoch, "config": config.to_dict(),
                "kernel": kernel.state_dict(), "rng": json.dumps(rng.bit_generator.state),
                "metrics": metrics, "best": best,
            })  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    return MetaTrainResult(metrics, int(best["epoch"]), done, time.perf_counter() - started)


def _save_model(path: Path, config: MetaTrainConfig, meta: MetaDataset, best: dict[str, Any],
                row: dict[str, float]) -> None:  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save(path, {
        "format": checkpoint.FORMAT, "kernel": best["kernel"], "kernel_config": config.to_dict()["kernel"],
        "exclude": list(config.exclude), "statistics": meta.statistics(), "epoch": best["epoch"],
        "validation": {key: value for key, value in row.items() if key != "epoch"},
        "meta_train_config": config.to_dict(), "versions": package_versions(),
    })  # fmt: skip


def format_row(row: dict[str, float]) -> str:
    """One line of an epoch's figures."""
    parts = [f"epoch {int(row['epoch'])}"]
    for key, value in row.items():
        if key != "epoch":
            parts.append(f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)


def _progress_bar(config: MetaTrainConfig, done: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tnas.progress import progress_bar

    total = config.epochs * config.steps_per_epoch
    return progress_bar(total=total, initial=done * config.steps_per_epoch, desc="meta-training", unit="step")
