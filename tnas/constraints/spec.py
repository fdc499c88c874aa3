"""Known constraints of a search: latency on a device, parameters, FLOPs.

A constraint is *known*: it is a property of the cell that can be read (latency from a
measurement table) or computed (parameters, FLOPs) before any training, so a constrained
search simply never proposes a cell that breaks it. The feasible cells form the run's
:class:`~tnas.space.SearchSpace`; the benchmark's reference (regret, queries to the best
cell) is the best *feasible* cell.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from tnas.constraints.footprint import NetworkGeometry, flops_m_of_all_cells, params_mb_of_all_cells
from tnas.constraints.latency import LatencyTable
from tnas.errors import ConfigError
from tnas.space import NUM_CELLS, SearchSpace


@dataclass(frozen=True)
class Constraints:
    """Upper limits a returned cell must meet (``None``: no limit).

    Attributes:
        max_latency_ms: latency limit in milliseconds on ``latency_device``.
        latency_device: a device of the latency table (e.g. ``pixel2``, ``titan_rtx_256``).
        latency_table: a user's latency CSV (``<device>_ms`` columns); ``None`` is the
            shipped HELP measurements of 27 devices.
        max_params_mb: limit on the parameters, in millions.
        max_flops_m: limit on the FLOPs of one image's forward pass, in millions.
    """

    max_latency_ms: float | None = None
    latency_device: str | None = None
    latency_table: str | None = None
    max_params_mb: float | None = None
    max_flops_m: float | None = None

    def __post_init__(self) -> None:
        for name, flag in (("max_latency_ms", "--max-latency-ms"), ("max_params_mb", "--max-params"),
                           ("max_flops_m", "--max-flops")):  # fmt: skip
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{flag} must be a positive number, got {value!r}")
        if (self.max_latency_ms is None) != (self.latency_device is None):
            raise ConfigError("a latency limit needs both --max-latency-ms and --latency-device (see --help for "
                              "the devices)")  # fmt: skip
        if self.latency_table is not None and self.latency_device is None:
            raise ConfigError("--latency-table needs --max-latency-ms and --latency-device")

    @property
    def active(self) -> bool:
        """Whether any limit is set."""
        return any(getattr(self, name) is not None for name in ("max_latency_ms", "max_params_mb", "max_flops_m"))

    def to_dict(self) -> dict[str, Any]:
        """The limits that are set (an unconstrained run records ``{}``)."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Constraints:
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown constraint(s) {', '.join(unknown)}; constraints: {', '.join(sorted(known))}")
        return cls(**values)

    def describe(self) -> str:
        """One line, e.g. ``latency <= 5 ms on fpga, params <= 1.0 M``."""
        parts = []
        if self.max_latency_ms is not None:
            parts.append(f"latency <= {self.max_latency_ms:g} ms on {self.latency_device}")
        if self.max_params_mb is not None:
            parts.append(f"params <= {self.max_params_mb:g} M")
        if self.max_flops_m is not None:
            parts.append(f"FLOPs <= {self.max_flops_m:g} M")
        return ", ".join(parts) or "no constraint"


def constrained_space(constraints: Constraints, geometry: NetworkGeometry | None, *,
                      params_mb: np.ndarray | None = None,
                      present: np.ndarray | None = None, data_dir: str | Path | None = None) -> SearchSpace:  # fmt: skip
    """The cells that meet ``constraints`` (and that the table holds), with their quantities.

    Args:
        constraints: the limits.
        geometry: the network whose FLOPs (and, without ``params_mb``, parameters) count;
            ``None`` when it is not known (a user's table of another task).
        params_mb: parameters in millions per cell, shape ``(15625,)`` (a table's own
            column); ``None`` computes them from ``geometry``.
        present: cells the oracle can answer (a partial table), shape ``(15625,)``.
        data_dir: where the shipped latency table is looked up.

    Raises:
        ConfigError: an unknown device, no cell meets the constraints, or a FLOPs or
            parameter limit without a known network.
        TableError: a damaged latency table.
    """
    allowed = np.asarray(present, dtype=bool).copy() if present is not None else np.ones(NUM_CELLS, dtype=bool)
    quantities: dict[str, np.ndarray] = {}
    if constraints.max_latency_ms is not None:
        assert constraints.latency_device is not None
        table = LatencyTable.load(constraints.latency_table, data_dir)
        quantities["latency_ms"] = table.latency_ms(constraints.latency_device)
        allowed &= quantities["latency_ms"] <= constraints.max_latency_ms  # NaN (not measured) is infeasible
    if geometry is None and (constraints.max_flops_m is not None or (constraints.max_params_mb is not None
                                                                     and params_mb is None)):  # fmt: skip
        raise ConfigError("--max-flops and --max-params count the network of an NB201 task (cifar10, cifar100, "
                          "imagenet16-120) or of --oracle train; for your own task's table give --dataset one of "
                          "those, or its --params-column")  # fmt: skip
    if constraints.max_params_mb is not None:
        quantities["params_mb"] = params_mb if params_mb is not None else params_mb_of_all_cells(geometry)
        allowed &= quantities["params_mb"] <= constraints.max_params_mb
    if constraints.max_flops_m is not None:
        assert geometry is not None
        quantities["flops_m"] = flops_m_of_all_cells(geometry)
        allowed &= quantities["flops_m"] <= constraints.max_flops_m
    if not allowed.any():
        ranges = "; ".join(f"{name} ranges {np.nanmin(values):.3g} to {np.nanmax(values):.3g}"
                           for name, values in quantities.items())  # fmt: skip
        raise ConfigError(f"no cell meets {constraints.describe()} ({ranges}); loosen the limits")
    return SearchSpace(allowed, description=constraints.describe(), quantities=quantities)
