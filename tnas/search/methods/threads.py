"""Torch thread settings shared by the searchers that fit small models on every query."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch's CPU kernels on one thread inside the block, restoring the count after.

    The models here are tiny (tens of rows, 20 to 30 columns): intra-op parallelism only
    adds synchronisation, and on a busy machine threads waiting for cores made fits ten to
    fifty times slower (measured: a GP fit on 50 cells 19 s on 2 threads, 1.3 s on one).
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
