"""Reading CSV files of per-cell numbers (results tables, latency tables), strictly.

Such a file has a header and one row per NAS-Bench-201 cell. Cells are named by the
official index (column ``index``), by the arch string (column ``arch_str``), or by both,
which must then agree. Numeric columns hold finite numbers; an empty cell, ``nan`` or
``NaN`` means "not measured". Cells missing from the file are allowed (a partial table).

Every kind of damage gives a :class:`~tnas.errors.TableError` with a one-line message
naming the file (and the line): empty, binary or not UTF-8, not CSV, missing or
duplicated columns, a row of another width (a truncated file), an unknown, mismatched or
duplicated cell, and values that are not finite numbers.

Parsed files are kept as a binary copy in the cache directory, keyed by the file's path,
size and modification time (:func:`cached_columns`), so a second load takes milliseconds.
"""

from __future__ import annotations

import csv
import hashlib
import math
import zlib
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

import numpy as np

from tnas import paths
from tnas.errors import CellFormatError, TableError
from tnas.io import atomic_write
from tnas.space import NUM_CELLS, Cell, official_index_order

KEY_COLUMNS: tuple[str, ...] = ("index", "arch_str")
"""Columns that name a row's cell."""
MISSING_VALUES = frozenset({"", "nan", "NaN"})
"""How a CSV cell says "not measured"."""
PRESENT = "present"
"""The key of the ``(15625,)`` boolean array of cells that have a row."""
CHECKSUM = "__crc32__"
"""The key, in a cached copy, of the CRC-32 of its columns (names and bytes): a copy whose
arrays were changed since it was written is parsed again, not read as the file's."""


def read_cell_csv(path: str | Path, *, numeric: Sequence[str] | None = None, required: Sequence[str] = (),
                  ignored: Sequence[str] = (), what: str = "table", hint: str = "") -> dict[str, np.ndarray]:  # fmt: skip
    """Parse a per-cell CSV into index-aligned float64 columns.

    Args:
        path: the CSV file.
        numeric: the numeric columns to read (others are ignored); ``None`` reads every
            column except the keys and ``ignored`` as numeric.
        required: columns that must be in the header (keys included).
        ignored: text columns to skip when ``numeric`` is ``None``.
        what: what the file is, for messages (``"table"``, ``"latency table"``).
        hint: what to do about a damaged file, appended to messages.

    Returns:
        Column name -> array of shape ``(15625,)`` by official index (NaN where a cell has
        no row or no value), plus :data:`PRESENT`, the cells that have a row.

    Raises:
        TableError: the file is damaged (see the module docstring).
    """
    path = Path(path)
    suffix = f"; {hint}" if hint else ""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:  # a byte-order mark (Excel) is not a name
            return _parse_rows(path, csv.reader(file), numeric, required, ignored, what, suffix)
    except UnicodeDecodeError as error:
        raise TableError(f"{what} {path} is not UTF-8 text (binary or wrongly encoded: {error.reason} at byte "
                         f"{error.start}){suffix}") from None  # fmt: skip
    except csv.Error as error:
        raise TableError(f"{what} {path} is not a CSV file ({error}){suffix}") from None
    except OSError as error:
        raise TableError(f"{what} {path} cannot be read ({error.strerror or error})") from None


def _parse_rows(path: Path, reader: Iterator[list[str]], numeric: Sequence[str] | None, required: Sequence[str],
                ignored: Sequence[str], what: str, suffix: str) -> dict[str, np.ndarray]:  # fmt: skip
    header = next(reader, None)
    if header is None:
        raise TableError(f"{what} {path} is empty{suffix}")
    missing = [name for name in required if name not in header]
    if missing:
        raise TableError(f"{what} {path} lacks column(s) {', '.join(missing)}{suffix}")
    if not any(key in header for key in KEY_COLUMNS):
        raise TableError(f"{what} {path} names no cell: it needs a column index (official NAS-Bench-201 index) "
                         f"or arch_str{suffix}")  # fmt: skip
    doubled = sorted({name for name in header if header.count(name) > 1})
    if doubled:
        raise TableError(f"{what} {path} has column(s) {', '.join(doubled)} more than once{suffix}")
    position = {name: header.index(name) for name in header}
    if numeric is None:
        numeric = [name for name in header if name not in KEY_COLUMNS and name not in ignored]
    reading = [(name, position[name]) for name in numeric if name in position]
    columns = {name: np.full(NUM_CELLS, np.nan) for name in numeric}
    present = np.zeros(NUM_CELLS, dtype=bool)
    for line, row in enumerate(reader, start=2):
        if not row:  # a blank line (a trailing newline too many)
            continue
        if len(row) != len(header):
            raise TableError(f"{path}:{line}: {len(row)} fields where the header has {len(header)} "
                             f"(a truncated or damaged file?){suffix}")  # fmt: skip
        index = _row_cell(path, line, row, position).index
        if present[index]:
            raise TableError(f"{path}:{line}: index {index} appears twice{suffix}")
        present[index] = True
        for name, column in reading:
            text = row[column].strip()
            if text in MISSING_VALUES:
                continue
            try:
                value = float(text)
            except ValueError:
                raise TableError(f"{path}:{line}: {name} is {text!r}, not a number{suffix}") from None
            if not math.isfinite(value):
                raise TableError(f"{path}:{line}: {name} is {text!r}; leave it empty if it was not measured")
            columns[name][index] = value
    if not present.any():
        raise TableError(f"{what} {path} holds no rows{suffix}")
    columns[PRESENT] = present
    return columns


def _row_cell(path: Path, line: int, row: list[str], position: dict[str, int]) -> Cell:
    """The cell a row names, by index and/or arch string (which must agree)."""
    by_index = by_arch = None
    if "index" in position:
        try:
            by_index = Cell.from_index(int(row[position["index"]]))
        except (ValueError, CellFormatError) as error:
            raise TableError(f"{path}:{line}: bad index ({error})") from None
        if by_index.code != official_index_order()[by_index.index]:  # pragma: no cover - a broken index order
            raise TableError(f"{path}:{line}: index {by_index.index} is not an official NAS-Bench-201 index")
    if "arch_str" in position:
        try:
            by_arch = Cell.from_arch_str(row[position["arch_str"]].strip())
        except CellFormatError as error:
            raise TableError(f"{path}:{line}: bad arch_str ({error})") from None
    if by_index is not None and by_arch is not None and by_index != by_arch:
        raise TableError(
            f"{path}:{line}: index {by_index.index} names {row[position['arch_str']]!r}, but the official "
            f"NAS-Bench-201 index {by_index.index} is {by_index.arch_str!r}"
        )
    cell = by_index or by_arch
    assert cell is not None  # the header has a key column
    return cell


def cached_columns(path: str | Path, kind: str, version: int, parse: Callable[[Path], dict[str, np.ndarray]],
                   *, use_cache: bool = True, required: Collection[str] = ()) -> dict[str, np.ndarray]:  # fmt: skip
    """``parse(path)``, through a binary copy in the cache directory.

    The copy is keyed by ``kind``, ``version`` and the file's path, size and modification
    time. A damaged copy (unreadable, not what ``parse`` returns: a boolean ``present``
    and float64 columns of one value per cell, finite or NaN, holding the ``required``
    names, or arrays that no longer match the checksum written with them) is parsed again
    and rewritten; an unwritable cache only costs speed.
    """
    path = Path(path).resolve()
    cache_file = _cache_file(path, kind, version) if use_cache else None
    if cache_file is not None and cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as stored:
                columns = {name: stored[name] for name in stored.files if name != CHECKSUM}
                checksum = stored[CHECKSUM] if CHECKSUM in stored.files else None
            if (checksum is not None and checksum.shape == () and int(checksum) == _checksum(columns)
                    and _sound_columns(columns, required)):  # fmt: skip
                return columns
        except Exception:  # noqa: BLE001, S110 - any failure to read a cache entry (a mangled header, a bad
            pass  # deflate stream, a shape too large to allocate) means a damaged entry, rebuilt below
        cache_file.unlink(missing_ok=True)  # a damaged cache is rebuilt below
    columns = parse(path)
    if cache_file is not None:
        try:
            stamp = {CHECKSUM: np.array(_checksum(columns), dtype=np.uint64)}
            atomic_write(cache_file, lambda file: np.savez(file, **columns, **stamp))
        except OSError:
            pass
    return columns


def _checksum(columns: dict[str, np.ndarray]) -> int:
    """CRC-32 of the columns' names, dtypes and bytes, in name order."""
    crc = 0
    for name in sorted(columns):
        crc = zlib.crc32(f"{name}|{columns[name].dtype.str}".encode(), crc)
        crc = zlib.crc32(np.ascontiguousarray(columns[name]).tobytes(), crc)
    return crc


def _sound_columns(columns: dict[str, np.ndarray], required: Collection[str]) -> bool:
    """Whether cached ``columns`` are what a parse returns (see :func:`cached_columns`)."""
    if PRESENT not in columns or columns[PRESENT].dtype != np.bool_ or not set(required) <= set(columns):
        return False
    if any(array.shape != (NUM_CELLS,) for array in columns.values()):
        return False
    values = [array for name, array in columns.items() if name != PRESENT]
    return all(array.dtype == np.float64 and not np.isinf(array).any() for array in values)


def _cache_file(source: Path, kind: str, version: int) -> Path:
    stat = source.stat()
    key = f"{version}|{source}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return paths.cache_dir() / f"{kind}-{digest}.npz"
