"""The real-training oracle: answers a query by training the cell's network.

Used for datasets without a benchmark table (``--oracle train``). Each query trains the
NAS-Bench-201 network of the cell on the dataset's train split with the configured
protocol, once per training seed, and observes its validation accuracy; the test
accuracy is measured on the test split for the report. Every finished training is
stored at once in a :class:`~tnas.train.results.TrainingCache`, so a killed search that is
run again picks finished trainings up from there instead of training them again.

A training that fails (NaN loss, out of memory) is recorded as failed with its reason,
reported on stderr, and observed as chance-level accuracy; the search goes on. Failed
trainings are not retried unless ``retry_failed`` is set.

This module imports torch; ``tnas.oracles`` does not import it by itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from tnas.datasets.splits import DataSplits, SplitConfig
from tnas.errors import ConfigError
from tnas.oracles.base import Evaluation
from tnas.space import Cell
from tnas.train.network import NetworkConfig, count_parameters_mb
from tnas.train.results import TrainingCache, TrainingRecord
from tnas.train.trainer import EpochProgress, TrainConfig, train_and_evaluate

logger = logging.getLogger(__name__)

ORACLE_KIND = "train"
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory")


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and any(text in str(error) for text in _OUT_OF_MEMORY)
    )


class TrainingOracle:
    """Trains cells on one dataset's splits; durable and resumable through its cache.

    Args:
        splits: the dataset's train / validation / test splits.
        split_config: how the splits were cut (part of the cache key).
        train_config: the training protocol (its ``epochs`` is the oracle's only fidelity).
        channels, cells_per_stage: network size (NAS-Bench-201: 16 and 5).
        train_seeds: the training seeds of every cell; ``evaluate(seed=None)`` averages
            over them, ``--observe seed`` draws one per query.
        cache_root: root folder of the trainings cache.
        device: ``cpu``, ``cuda``, ``cuda:1``...
        progress: show a progress bar per training (epoch, loss, accuracy).
        retry_failed: train again cells whose stored training failed.
        log: where failure reports go (default: the ``tnas.oracles.training`` logger, as warnings).
    """

    def __init__(
        self,
        splits: DataSplits,
        *,
        split_config: SplitConfig = SplitConfig(),
        train_config: TrainConfig = TrainConfig(),
        channels: int = 16,
        cells_per_stage: int = 5,
        train_seeds: tuple[int, ...] = (0,),
        cache_root: str | Path,
        device: str = "cpu",
        progress: bool = False,
        retry_failed: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if not train_seeds or len(set(train_seeds)) != len(train_seeds) or min(train_seeds) < 0:
            raise ConfigError(f"train_seeds must be distinct non-negative integers, got {train_seeds}")
        self.name = splits.name
        self.splits = splits
        self.train_config = train_config
        self.network = NetworkConfig(channels=channels, cells_per_stage=cells_per_stage,
                                     num_classes=splits.num_classes, in_channels=splits.image_shape[-1])  # fmt: skip
        self.train_seeds = tuple(train_seeds)
        self.device = device
        self.progress = progress
        self.retry_failed = retry_failed
        self._log = log or logger.warning
        self.trainings_run = 0
        self.cache = TrainingCache(cache_root, splits.name, self.setup(split_config))

    def setup(self, split_config: SplitConfig) -> dict[str, Any]:
        """Everything besides cell and seed that decides a training's outcome."""
        return {
            "dataset": self.splits.name,
            "source": self.splits.source,
            "split": {**asdict(split_config), **self.splits.sizes()},
            "train": self.train_config.to_dict(),
            "network": asdict(self.network),
        }

    @property
    def chance_accuracy(self) -> float:
        return 100.0 / self.splits.num_classes

    def seeds(self, cell: Cell, *, fidelity: int) -> tuple[int, ...]:
        self._check_fidelity(fidelity)
        return self.train_seeds

    def evaluate(self, cell: Cell, *, fidelity: int, seed: int | None) -> Evaluation:
        """Train ``cell`` (or take its finished trainings from the cache) and measure it.

        ``seed=None`` averages over all training seeds (failed ones left out); a seed
        asks for that seed's training alone.
        """
        self._check_fidelity(fidelity)
        if seed is not None and seed not in self.train_seeds:
            raise ConfigError(f"training seed {seed} is not one of this oracle's seeds {self.train_seeds}")
        records = [self.training(cell, one) for one in ((seed,) if seed is not None else self.train_seeds)]
        finished = [record for record in records if record.ok]
        cost = sum(record.seconds for record in records)
        params = count_parameters_mb(cell, self.network)
        if not finished:
            reason = "; ".join(f"seed {record.seed}: {record.error}" for record in records)
            chance = self.chance_accuracy
            return Evaluation(chance, chance, cost, params, fidelity, seed, failure=reason)
        valid = sum(record.valid for record in finished) / len(finished)  # type: ignore[misc]
        test = sum(record.test for record in finished) / len(finished)  # type: ignore[misc]
        return Evaluation(valid, test, cost, params, fidelity, seed)

    def training(self, cell: Cell, seed: int) -> TrainingRecord:
        """The training of ``cell`` with ``seed``: from the cache, or run now and stored."""
        record = self.cache.get(cell, seed)
        if record is not None and (record.ok or not self.retry_failed):
            return record
        record = self._train(cell, seed)
        self.cache.put(record)
        self.trainings_run += 1
        if not record.ok:
            self._log(f"training of cell #{cell.index} ({cell.arch_str}) with seed {seed} failed: {record.error}; "
                      f"recorded in {self.cache.path(cell, seed)}, observed as chance accuracy")  # fmt: skip
        return record

    def _train(self, cell: Cell, seed: int) -> TrainingRecord:
        bar = self._bar(cell, seed)
        identity = {"index": cell.index, "arch": cell.arch_str, "seed": seed, "device": self.device}
        start = time.perf_counter()
        try:
            result = train_and_evaluate(
                cell, self.splits.train, self.splits.valid, self.splits.test,
                num_classes=self.splits.num_classes, seed=seed, config=self.train_config,
                network=self.network, device=self.device, on_epoch=bar.report if bar else None,
            )  # fmt: skip
        except FloatingPointError as error:
            return TrainingRecord.now(status="failed", valid=None, test=None, seconds=time.perf_counter() - start,
                                      final_loss=None, error=f"diverged: {error}", **identity)  # fmt: skip
        except RuntimeError as error:
            if not _is_out_of_memory(error):
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            return TrainingRecord.now(status="failed", valid=None, test=None, seconds=time.perf_counter() - start,
                                      final_loss=None, error=f"out of memory: {str(error).splitlines()[0]}", **identity)  # fmt: skip
        finally:
            if bar is not None:
                bar.close()
        return TrainingRecord.now(status="ok", valid=result.valid, test=result.test, seconds=result.seconds,
                                  final_loss=result.final_loss, error=None, **identity)  # fmt: skip

    def _bar(self, cell: Cell, seed: int) -> _EpochBar | None:
        return _EpochBar(f"cell #{cell.index} seed {seed}", self.train_config.epochs) if self.progress else None

    def _check_fidelity(self, fidelity: int) -> None:
        if fidelity != self.train_config.epochs:
            raise ConfigError(f"this oracle trains for {self.train_config.epochs} epochs, asked for {fidelity}")


class _EpochBar:
    """A progress bar over one training's epochs showing loss and training accuracy."""

    def __init__(self, description: str, epochs: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=epochs, desc=description, unit="epoch", leave=False, position=1, disable=None)

    def report(self, progress: EpochProgress) -> None:
        self._bar.update(1)
        self._bar.set_postfix(loss=f"{progress.loss:.3f}", acc=f"{progress.train_accuracy:.1f}%")

    def close(self) -> None:
        self._bar.close()
