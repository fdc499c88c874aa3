"""Convert the official NAS-Bench-201 file into tnas's table format.

Usage::

    python -m tnas.oracles.convert NAS-Bench-201-v1_1-096897.pth --out DATA_DIR/nb201/nb201_merged.csv

The official file is a torch pickle (``torch.load`` needs ``weights_only=False``: only
convert a file you trust). Its records are read through the ``nas_201_api`` package
(``ArchResults``), one cell at a time, so that memory stays at the size of the loaded
file. Every cell the file holds becomes one row; values the file lacks are left empty.
Converting the full v1_1 file needs about as much memory as the file is large.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tnas.cli_common import OneLineErrorParser, run_command
from tnas.errors import TableError
from tnas.io import atomic_write_text, why_not_a_file
from tnas.oracles.table import KEY_COLUMNS, TABLE_COLUMNS
from tnas.space import Cell

_SEED_SLOTS = 3
# (column prefix, NAS-Bench-201 dataset name)
_DATASETS = (("c10v", "cifar10-valid"), ("c100", "cifar100"), ("in16", "ImageNet16-120"))


def convert_records(meta_archs: list[str], arch2infos: dict[int, dict[str, Any]]) -> list[dict]:
    """Turn official per-cell records into table rows.

    Args:
        meta_archs: the official list of arch strings (position = official index).
        arch2infos: official index -> ``{"full": state_dict, "less": state_dict}`` of
            ``nas_201_api.api_utils.ArchResults`` (200- and 12-epoch schedules).

    Returns:
        One dict per cell with the keys of :data:`KEY_COLUMNS` and :data:`TABLE_COLUMNS`,
        ordered by index.
    """
    from nas_201_api.api_utils import ArchResults

    rows = []
    for index in sorted(arch2infos):
        cell = Cell.from_index(int(index))
        if meta_archs[index] != cell.arch_str:
            raise TableError(
                f"the file's cell {index} is {meta_archs[index]!r}, but the official "
                f"index {index} is {cell.arch_str!r}: not a NAS-Bench-201 file?"
            )
        full = ArchResults.create_from_state_dict(arch2infos[index]["full"])
        less = ArchResults.create_from_state_dict(arch2infos[index]["less"])
        row: dict[str, Any] = {
            "index": index,
            "arch_str": cell.arch_str,
            "ops": "".join(str(op) for op in cell.ops),
        }
        row.update(_full_schedule_columns(full))
        row.update(_short_schedule_columns(less))
        rows.append(row)
    return rows


def _accuracy(results: Any, dataset: str, setname: str, seed: int | bool = False) -> float | None:
    return _safe(lambda: results.get_metrics(dataset, setname, is_random=seed)["accuracy"])


def _safe(getter: Callable[[], Any]) -> float | None:
    try:
        value = getter()
    except (KeyError, ValueError, AssertionError, TypeError):
        return None
    return None if value is None else float(value)


def _full_schedule_columns(full: Any) -> dict[str, float | None]:
    values: dict[str, float | None] = {
        "c10_test_200": _accuracy(full, "cifar10", "ori-test"),
        "c100_test_200": _accuracy(full, "cifar100", "x-test"),
        "in16_test_200": _accuracy(full, "ImageNet16-120", "x-test"),
        "c10v_test_200": _accuracy(full, "cifar10-valid", "ori-test"),
        "c10v_train_acc_200": _accuracy(full, "cifar10-valid", "train"),
    }
    for prefix, dataset in _DATASETS:
        values[f"{prefix}_valid_200"] = _accuracy(full, dataset, "x-valid")
        seeds = _safe_seeds(full, dataset)
        for slot in range(_SEED_SLOTS):
            values[f"{prefix}_valid_200_seed{slot}"] = (
                _accuracy(full, dataset, "x-valid", seeds[slot]) if slot < len(seeds) else None
            )
        costs = _safe_costs(full, dataset)
        values[f"{prefix}_train_time_200_s"] = costs.get("T-train@total")
        values[f"{prefix}_params_MB"] = costs.get("params")
        values[f"{prefix}_latency_s"] = costs.get("latency")
    return values


def _short_schedule_columns(less: Any) -> dict[str, float | None]:
    return {
        "c10_test_12": _accuracy(less, "cifar10", "ori-test"),
        "c10v_valid_12": _accuracy(less, "cifar10-valid", "x-valid"),
        "c100_test_12": _accuracy(less, "cifar100", "x-test"),
        "c100_valid_12": _accuracy(less, "cifar100", "x-valid"),
        "in16_test_12": _accuracy(less, "ImageNet16-120", "x-test"),
        "in16_valid_12": _accuracy(less, "ImageNet16-120", "x-valid"),
    }


def _safe_seeds(results: Any, dataset: str) -> list[int]:
    try:
        return sorted(results.get_dataset_seeds(dataset))
    except KeyError:
        return []


def _safe_costs(results: Any, dataset: str) -> dict[str, float | None]:
    try:
        costs = results.get_compute_costs(dataset)
    except KeyError:
        return {}
    return {key: (None if value is None else float(value)) for key, value in costs.items()}


def rows_to_csv(rows: list[dict]) -> str:
    """Format table rows as CSV text (floats with 6 decimals, missing values empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*KEY_COLUMNS, *TABLE_COLUMNS])
    for row in rows:
        values = [row[name] for name in KEY_COLUMNS]
        for name in TABLE_COLUMNS:
            value = row.get(name)
            values.append("" if value is None else f"{value:.6f}")
        writer.writerow(values)
    return buffer.getvalue()


def convert_file(source: str | Path, out: str | Path) -> int:
    """Convert an official ``.pth`` file to a table CSV at ``out``; returns the row count."""
    import torch

    source = Path(source)
    if not source.is_file():
        raise TableError(f"official NAS-Bench-201 file {source} {why_not_a_file(source)}")
    try:
        data = torch.load(source, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a bad file
        raise TableError(f"cannot read {source} as a NAS-Bench-201 file: {error}") from None
    if not isinstance(data, dict) or not {"meta_archs", "arch2infos"} <= set(data):
        raise TableError(f"{source} is not a NAS-Bench-201 file (no meta_archs/arch2infos)")
    meta_archs, arch2infos = data["meta_archs"], data["arch2infos"]
    if not isinstance(meta_archs, list | tuple) or not isinstance(arch2infos, dict) or not arch2infos:
        raise TableError(f"{source} is not a NAS-Bench-201 file (meta_archs is not a list of cells, or arch2infos "
                         "holds no record)")  # fmt: skip
    try:
        rows = convert_records(list(meta_archs), arch2infos)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise TableError(f"{source} holds a record that is not NAS-Bench-201's ({type(error).__name__}: {error})") from None
    if not any(row.get(column) is not None for row in rows for column in TABLE_COLUMNS):
        raise TableError(f"{source} holds no result in its records: not a NAS-Bench-201 results file?")
    atomic_write_text(out, rows_to_csv(rows))
    return len(rows)


PROG = "python -m tnas.oracles.convert"


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(
        prog=PROG,
        description="Convert the official NAS-Bench-201 .pth file into tnas's table CSV.",
        epilog="example: python -m tnas.oracles.convert NAS-Bench-201-v1_1-096897.pth "
        "--out ~/nb201-data/nb201/nb201_merged.csv  (then use --data-dir ~/nb201-data)",
    )
    parser.add_argument("source", help="the official file, e.g. NAS-Bench-201-v1_1-096897.pth")
    parser.add_argument("--out", required=True, help="CSV to write (DATA_DIR/nb201/nb201_merged.csv)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if not args.out or out.is_dir() or (out.parent.exists() and not out.parent.is_dir()):
        parser.error(f"--out {args.out!r} must name a CSV file in a folder, e.g. DATA_DIR/nb201/nb201_merged.csv")

    def convert() -> int:
        count = convert_file(args.source, out)
        print(f"wrote {count} cells to {out}")
        return 0

    return run_command(PROG, convert)


if __name__ == "__main__":
    sys.exit(main())
