"""Atomic file writes (a killed process never leaves a half-written file behind), strict
JSON reading (damage is one ``ValueError``, whatever form it takes) and the check that an
output folder holds nothing but what its program writes there."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through ``write(file)`` into a temporary file, then rename it.

    The temporary file lives in the same directory, so the final ``os.replace`` is atomic:
    readers see either the old content or the new one, never a mix.
    """
    path = Path(path)
    if path.is_dir():  # else the rename fails naming the temporary file, which the user never chose
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON to ``path``."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def foreign_entries(folder: str | Path, own: Iterable[str]) -> list[str]:
    """The entries of ``folder`` (sorted names) that are not among ``own``, the names its
    program writes there; hidden entries (an interrupted atomic write's temporary file,
    ``.DS_Store``) are not counted. ``[]`` when ``folder`` does not exist or is not a folder."""
    folder, own = Path(folder), set(own)
    if not folder.is_dir():
        return []
    return sorted(entry.name for entry in folder.iterdir() if not entry.name.startswith(".") and entry.name not in own)


def why_not_a_file(path: str | Path) -> str:
    """Why ``path``, which is not a readable file, cannot be read: ``does not exist`` or
    ``is a folder, not a file``."""
    return "is a folder, not a file" if Path(path).is_dir() else "does not exist"


def describe_entries(names: list[str], shown: int = 3) -> str:
    """``a, b, c and 4 more`` for a list of entry names."""
    listed = ", ".join(names[:shown])
    return listed + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = sorted({key for key in keys if keys.count(key) > 1})
        raise ValueError(f"key(s) {', '.join(map(repr, twice))} given more than once")
    return dict(pairs)


def parse_json(text: str) -> Any:
    """``json.loads`` for files tnas reads back, with every kind of damage as ``ValueError``.

    Besides malformed JSON (``json.JSONDecodeError``, a ``ValueError``): nesting too deep to
    parse, integers too long to convert, duplicated keys in an object, and strings holding
    lone surrogates (which no UTF-8 file can hold back).

    Raises:
        ValueError: the text is not such JSON; the message says why.
    """
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone surrogate (not UTF-8)") from None
    return data
