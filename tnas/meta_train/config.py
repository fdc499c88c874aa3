"""Configuration of a meta-training run (``python -m tnas.meta_train`` flags set its main fields)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tnas.encoders import ArchEncoderConfig, DatasetEncoderConfig
from tnas.errors import ConfigError
from tnas.meta_train.data import normalise_exclusions
from tnas.meta_train.sources import SourceSpec
from tnas.models.deep_kernel import DeepKernelConfig

LEGACY_SETTINGS: dict[str, Any] = {"top_fraction": 0.0, "top_quantile": 0.1, "sources": [], "selection": "spearman"}
"""Settings added after runs were first written, with the value those older runs used
(their stored configuration lacks them): uniform mini-batches, selection by Spearman."""
SELECTIONS = ("top-cells", "spearman")
"""Model-selection rules (:func:`tnas.meta_train.validation.selection_score`)."""


@dataclass(frozen=True)
class MetaTrainConfig:
    """REPTILE meta-training of the deep-kernel GP.

    Attributes:
        exclude: sources left out of meta-training (the search's target dataset).
        sources: extra sources, tables of your own and run directories of earlier searches,
            as ``PATH=DATASET`` (:mod:`tnas.meta_train.sources`).
        seed: seed of the weights' initialisation and of every sampling step.
        epochs: number of epochs; validation and a checkpoint follow each.
        steps_per_epoch: REPTILE meta-steps per epoch.
        tasks_per_step: sources adapted to in each meta-step.
        inner_steps: Adam steps of each inner loop.
        inner_lr: Adam learning rate of the inner loops.
        outer_step: epsilon of the outer update ``w <- w + epsilon (w' - w)``.
        anneal_outer_step: decay epsilon linearly to 0 over the run, as in Nichol et al.
        batch_size: triples per inner-loop mini-batch (one exact GP each).
        top_fraction: share of every mini-batch drawn from the source's best triples (the
            rest uniformly from the others), so that the GP learns to tell good cells apart,
            which is all a search asks of it; 0 gives uniform batches.
        top_quantile: what "best" means: the top ``top_quantile`` of a source's triples by
            accuracy.
        samples_per_class: images per class fed to the dataset encoder.
        conditioning_cells: cells the validation conditions the GP on.
        selection: which epoch ``model.pt`` keeps: ``top-cells`` (default) the epoch whose
            prior ranks the NAS-Bench-201 training tables' 10 best cells highest, after the
            first fifth of the epochs; ``spearman`` the epoch of best held-out Spearman
            (MetaD2A records and held-out cells). Neither looks at an excluded dataset.
        kernel: architecture of the deep-kernel GP.
    """

    exclude: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    seed: int = 0
    epochs: int = 20
    steps_per_epoch: int = 40
    tasks_per_step: int = 2
    inner_steps: int = 3
    inner_lr: float = 1e-2
    outer_step: float = 0.5
    anneal_outer_step: bool = True
    batch_size: int = 128
    top_fraction: float = 0.25
    top_quantile: float = 0.1
    samples_per_class: int = 20
    conditioning_cells: int = 10
    selection: str = "top-cells"
    kernel: DeepKernelConfig = field(default_factory=DeepKernelConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(SourceSpec.parse(text).to_text() for text in self.sources))
        object.__setattr__(self, "exclude", normalise_exclusions(self.exclude, extra_sources=len(self.sources)))
        for name in ("epochs", "steps_per_epoch", "tasks_per_step", "inner_steps", "samples_per_class"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be at least 2, got {self.batch_size}")
        if not 0 <= self.top_fraction < 1:
            raise ConfigError(f"top_fraction must be in [0, 1), got {self.top_fraction}")
        if not 0 < self.top_quantile < 1:
            raise ConfigError(f"top_quantile must be in (0, 1), got {self.top_quantile}")
        if not 0 < self.inner_lr < math.inf:
            raise ConfigError(f"inner_lr must be a positive finite number, got {self.inner_lr}")
        if not 0 < self.outer_step <= 1:
            raise ConfigError(f"outer_step (epsilon) must be in (0, 1], got {self.outer_step}")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")
        if self.seed < 0 or self.conditioning_cells < 2:
            raise ConfigError("seed must be >= 0 and conditioning_cells >= 2")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["exclude"] = list(self.exclude)
        data["sources"] = list(self.sources)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetaTrainConfig:
        """Inverse of :meth:`to_dict` (raises ``ConfigError`` on unknown fields); a setting
        missing from an older run's dict takes its :data:`LEGACY_SETTINGS` value."""
        known = {item.name for item in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown meta-training settings: {', '.join(sorted(unknown))}")
        values = {**LEGACY_SETTINGS, **data}
        values["exclude"] = tuple(values.get("exclude", ()))
        values["sources"] = tuple(values.get("sources", ()))
        if "kernel" in values:
            values["kernel"] = kernel_config_from_dict(values["kernel"])
        return cls(**values)


def kernel_config_from_dict(data: dict[str, Any]) -> DeepKernelConfig:
    """Rebuild a :class:`DeepKernelConfig` from its ``asdict`` form."""
    values = dict(data)
    values["arch"] = ArchEncoderConfig(**values.get("arch", {}))
    values["dataset"] = DatasetEncoderConfig(**values.get("dataset", {}))
    values["widths"] = tuple(values.get("widths", DeepKernelConfig().widths))
    try:
        return DeepKernelConfig(**values)
    except TypeError as error:
        raise ConfigError(f"bad kernel settings: {error}") from None
