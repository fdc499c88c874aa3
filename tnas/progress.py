"""Progress bars on stderr: redrawn live in a terminal, a line a minute in a log file."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

__all__ = ["LOG_INTERVAL_S", "progress_bar"]

LOG_INTERVAL_S = 60.0
"""Seconds between two redraws when stderr is not a terminal (a log file, CI, ``nohup``):
a 10-minute meta-training writes ten lines there instead of hundreds."""


def progress_bar(iterable: Any = None, **options: Any) -> tqdm:
    """``tqdm(iterable, **options)`` on stderr, redrawn at most every :data:`LOG_INTERVAL_S`
    seconds when stderr is not a terminal (unless ``options`` set ``mininterval``)."""
    if not sys.stderr.isatty():
        options.setdefault("mininterval", LOG_INTERVAL_S)
    return tqdm(iterable, **options)
