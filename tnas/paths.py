"""Where tnas finds its data and keeps its caches.

Data directory lookup, in order: an explicit ``--data-dir``, the ``TNAS_DATA_DIR``
environment variable, then ``../shared/data`` beside the checkout (the repository that
holds the ``tnas`` package, or the current directory's parent). The first of the first two
that is set is used as given; only when neither is set are the defaults tried.
"""

from __future__ import annotations

import os
from pathlib import Path

from tnas.errors import DataNotFoundError

DATA_DIR_ENV = "TNAS_DATA_DIR"
CACHE_DIR_ENV = "TNAS_CACHE_DIR"


def default_data_dirs() -> list[Path]:
    """The ``shared/data`` folders beside the checkout, most specific first."""
    checkout = Path(__file__).resolve().parents[1]
    candidates = [checkout.parent / "shared" / "data", Path.cwd().resolve().parent / "shared" / "data"]
    unique: list[Path] = []
    for candidate in candidates:
        if candidate not in unique:
            unique.append(candidate)
    return unique


def find_data_file(relative: str, data_dir: str | Path | None = None, *, hint: str = "") -> Path:
    """Locate ``relative`` (e.g. ``nb201/nb201_merged.csv``) in the data directory.

    Args:
        relative: path of the file inside a data directory.
        data_dir: the user's ``--data-dir``, if given.
        hint: one sentence on how to obtain the file, appended to the error.

    Raises:
        DataNotFoundError: naming every place that was looked at.
    """
    env_value = os.environ.get(DATA_DIR_ENV)
    if data_dir is not None:
        places = [("--data-dir", Path(data_dir))]
    elif env_value:
        places = [(f"${DATA_DIR_ENV}", Path(env_value))]
    else:
        places = [("beside the checkout", path) for path in default_data_dirs()]
    for _, directory in places:
        candidate = directory / relative
        if candidate.is_file():
            return candidate
    looked = "; ".join(f"{origin}: {directory / relative}" for origin, directory in places)
    message = f"data file {relative} not found (looked in {looked})"
    if hint:
        message += f". {hint}"
    raise DataNotFoundError(message)


def cache_dir() -> Path:
    """Directory for derived caches: ``$TNAS_CACHE_DIR``, else ``$XDG_CACHE_HOME/tnas``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tnas"
