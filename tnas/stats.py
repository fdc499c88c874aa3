"""Statistics over repeated runs, shared by ``tnas.compare`` and the benchmark harness."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stat:
    """Mean and standard error across ``n`` runs (arrays over queries, or scalars)."""

    mean: np.ndarray
    se: np.ndarray
    n: int


def mean_and_se(values: np.ndarray) -> Stat:
    """Mean and standard error over axis 0 (runs, e.g. seeds): ``n x ...`` to two ``...``
    arrays. The standard error is the sample standard deviation (``ddof=1``) over
    ``sqrt(n)``, and NaN for a single run (it has none).

    Raises:
        ValueError: no values (``n == 0``).
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n == 0:
        raise ValueError("no values to average")
    mean = values.mean(axis=0)
    se = values.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full_like(mean, np.nan)
    return Stat(mean=np.asarray(mean), se=np.asarray(se), n=n)
