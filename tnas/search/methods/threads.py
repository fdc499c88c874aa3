"""Torch thread settings shared by the searchers that fit small models on every query."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tnas.threads import torch_threads


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch's CPU kernels on one thread inside the block, restoring the count after.

    The models here are tiny (tens of rows, 20 to 30 columns): intra-op parallelism only
    adds synchronisation, and on a busy machine threads waiting for cores made fits ten to
    fifty times slower (measured: a GP fit on 50 cells 19 s on 2 threads, 1.3 s on one).
    """
    with torch_threads(1):
        yield
