"""Torch's CPU thread count, set for one block and restored after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch's CPU kernels on ``count`` threads inside the block, restoring the count after.

    ``count`` 0 leaves the current setting alone.
    """
    threads = torch.get_num_threads()
    if count == 0 or count == threads:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
