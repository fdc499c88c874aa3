"""Measured inference latency of every cell's network on hardware devices.

The shipped file is ``hardware/nb201_latency_help.csv`` in the data directory: HELP's
measurements (Lee, Lee & Hwang, NeurIPS 2021) of all 15,625 NAS-Bench-201 networks on 27
devices, one ``<device>_ms`` column each (``titan_rtx_256`` is a Titan RTX at batch 256,
``pixel2`` a Pixel 2 phone, ``fpga`` and ``eyeriss`` come from HW-NAS-Bench). A user's own
measurements for another device go in the same format: cells by ``index`` and/or
``arch_str``, one ``<device>_ms`` column per device, cells without a value left empty
(they are then infeasible under a latency limit on that device).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tnas import paths
from tnas.cell_csv import KEY_COLUMNS, PRESENT, cached_columns, read_cell_csv
from tnas.errors import ConfigError, TableError
from tnas.io import why_not_a_file

LATENCY_FILE = "hardware/nb201_latency_help.csv"
SUFFIX = "_ms"
_CACHE_FORMAT = 1


class LatencyTable:
    """Per-device latencies in milliseconds, one array of shape ``(15625,)`` per device (NaN: not measured)."""

    def __init__(self, latencies: dict[str, np.ndarray], source: Path) -> None:
        if not latencies:
            raise TableError(f"latency table {source} has no <device>{SUFFIX} column")
        self.source = Path(source)
        self._latencies = {}
        for device, values in latencies.items():
            values = np.asarray(values, dtype=np.float64)
            if (values[~np.isnan(values)] < 0).any():
                raise TableError(f"latency table {source}: device {device} has negative latencies")
            values.setflags(write=False)
            self._latencies[device] = values

    @classmethod
    def load(cls, path: str | Path | None = None, data_dir: str | Path | None = None, *,
             use_cache: bool = True) -> LatencyTable:  # fmt: skip
        """Read ``path``, or the shipped HELP file found through the data-directory lookup."""
        source = Path(path) if path is not None else paths.find_data_file(
            LATENCY_FILE, data_dir, hint="it ships with tnas's data (HELP's measurements, NeurIPS 2021)")
        if not source.is_file():
            raise TableError(f"latency table {source} {why_not_a_file(source)}")
        columns = cached_columns(source, "latency-table", _CACHE_FORMAT, _parse, use_cache=use_cache)
        return cls({name[: -len(SUFFIX)]: values for name, values in columns.items() if name.endswith(SUFFIX)},
                   source.resolve())  # fmt: skip

    @property
    def devices(self) -> tuple[str, ...]:
        """Device names, in file order."""
        return tuple(self._latencies)

    def latency_ms(self, device: str) -> np.ndarray:
        """Latency of every cell on ``device``: read-only float64 array of shape ``(15625,)``.

        Raises:
            ConfigError: an unknown device (the message lists the known ones).
        """
        try:
            return self._latencies[device]
        except KeyError:
            raise ConfigError(f"no latency measurements for device {device!r} in {self.source}; devices: "
                              f"{', '.join(self.devices)}") from None  # fmt: skip


def _parse(path: Path) -> dict[str, np.ndarray]:
    """Columns of a latency CSV: every ``<device>_ms`` column, and which cells have a row."""
    with open(path, "rb") as file:
        head = file.readline(65536)
    try:
        header = head.decode("utf-8").removeprefix("\ufeff").strip().split(",")  # a byte order mark is allowed
    except UnicodeDecodeError:
        header = []  # read_cell_csv names the encoding problem
    others = [name for name in header if name not in KEY_COLUMNS and not name.endswith(SUFFIX)]
    if header and header != [""] and others:
        raise TableError(f"latency table {path}: column(s) {', '.join(others)} are neither index, arch_str nor "
                         f"<device>{SUFFIX} (latency in milliseconds)")  # fmt: skip
    columns = read_cell_csv(path, what="latency table", hint="restore it, or regenerate it")
    if PRESENT not in columns or len(columns) == 1:
        raise TableError(f"latency table {path} has no <device>{SUFFIX} column")
    empty = [name for name, values in columns.items() if name != PRESENT and np.isnan(values).all()]
    if empty:
        raise TableError(f"latency table {path}: column(s) {', '.join(empty)} hold no value; fill or remove them")
    return columns
