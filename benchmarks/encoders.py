"""Encoder figures: encoding all 15,625 cells, featurising and encoding each dataset.

Usage::

    python -m benchmarks.encoders [--data-dir DIR] [--repeats 5] [--samples-per-class 20]

Cells: build the torch-geometric batch of all cells and run the architecture encoder
(default sizes, no gradient), median over ``repeats``. Datasets: draw
``samples-per-class`` images per class, featurise them (EfficientNet-Lite0 at 224 px)
and run the dataset encoder; *cold* starts from an empty feature cache (network loading
included), *warm* repeats the same call with the cache filled.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

from tnas.cli_common import OneLineErrorParser, path_argument, positive_int, run_command
from tnas.datasets import DATASETS, DatasetNotFoundError, get_dataset
from tnas.encoders import (
    ArchEncoder,
    DatasetEncoder,
    ImageFeaturizer,
    cells_to_batch,
    dataset_inputs,
)
from tnas.errors import DataNotFoundError
from tnas.space import all_cells

PROG = "python -m benchmarks.encoders"


def time_cells(repeats: int) -> list[float]:
    """Seconds to encode all cells (batch building included), one figure per repeat."""
    torch.manual_seed(0)
    encoder = ArchEncoder().eval()
    cells = all_cells()
    seconds = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            start = time.perf_counter()
            codes = encoder(cells_to_batch(cells))
            seconds.append(time.perf_counter() - start)
    assert codes.shape[0] == len(cells)
    return seconds[1:]  # the first call warms up torch's kernels


def time_dataset(name: str, data_dir: str | None, samples_per_class: int, cache: str) -> tuple[float, float, int]:
    """(cold seconds, warm seconds, images featurised) for one dataset."""
    dataset = get_dataset(name, data_dir=data_dir)
    torch.manual_seed(0)
    encoder = DatasetEncoder().eval()
    timings = []
    for _ in range(2):
        featurizer = ImageFeaturizer(cache_dir=cache)  # a fresh object: the network loads again
        start = time.perf_counter()
        features, mask = dataset_inputs(dataset, featurizer, np.random.default_rng(0), samples_per_class)
        with torch.no_grad():
            encoder(features[None], mask[None])
        timings.append(time.perf_counter() - start)
    featurised = len(dataset.parent.images) if dataset.parent is not None else int(mask.sum())
    return timings[0], timings[1], featurised


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--data-dir", type=path_argument, default=None,
                        help="folder holding the data (default: the usual lookup, see the README's Data section)")
    parser.add_argument("--repeats", type=positive_int, default=5,
                        help="encodings of all cells timed; the median is printed (default: 5)")
    parser.add_argument("--samples-per-class", type=positive_int, default=20,
                        help="images per class featurised and encoded for each dataset (default: 20)")
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if args.data_dir is not None and not args.data_dir.is_dir():  # else every dataset is skipped, exit 0
        raise DataNotFoundError(f"--data-dir {args.data_dir} is not a folder; give the folder holding the data")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    seconds = time_cells(args.repeats)
    print(f"architecture encoder, all 15,625 cells: median {statistics.median(seconds):.3f} s "
          f"[{min(seconds):.3f}, {max(seconds):.3f}] over {args.repeats} runs")  # fmt: skip

    print(f"\ndataset encoder, {args.samples_per_class} images per class:")
    print(f"  {'dataset':<16}{'images':>8}{'cold':>10}{'warm':>10}")
    names = [name for name, spec in DATASETS.items() if spec.from_sample is not None] + ["metad2a-task-0"]
    for name in names:
        with tempfile.TemporaryDirectory() as cache:  # each dataset starts cold
            try:
                cold, warm, count = time_dataset(name, args.data_dir, args.samples_per_class, cache)
            except DatasetNotFoundError as error:
                print(f"  {name:<16} skipped: {error}")
                continue
        print(f"  {name:<16}{count:>8}{cold:>9.2f}s{warm:>9.3f}s")
    print("  (metad2a-task-N: cold featurises the whole 1,000-image ImageNet sample once for all tasks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
