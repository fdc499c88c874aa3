"""Training throughput of NAS-Bench-201 networks (images per second).

Usage::

    python -m benchmarks.training [--cells 1462,6111,4317,7994] [--steps 6] [--batch-size 256]
                                  [--channels 16] [--cells-per-stage 5] [--json OUT]

Trains the network of each cell for ``--steps`` SGD steps of the NAS-Bench-201 protocol
(batch 256, random crop and flip, 32 x 32 colour images; the images are random, which does
not change the arithmetic) through :func:`tnas.train.train_and_evaluate`, after one
warm-up run, and prints training images per second. On the CPU with the threads torch
uses by default; on CUDA, when there is one, with and without mixed precision
(channels-last on). The evaluation of the (one-image) validation and test sets is
included and negligible.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from tnas.cli_common import OneLineErrorParser, cell_indexes, path_argument, positive_int, run_command
from tnas.space import Cell
from tnas.train import NetworkConfig, TrainConfig, count_parameters_mb, train_and_evaluate

PROG = "python -m benchmarks.training"

DEFAULT_CELLS = (1462, 6111, 4317, 7994)
"""All 3x3 convolutions (heaviest), the CIFAR-10 optimum, all 1x1 convolutions, pooling and skips only."""


def throughput(cell: Cell, device: str, *, steps: int, batch_size: int, network: NetworkConfig,
               mixed_precision: bool) -> float:  # fmt: skip
    """Training images per second of ``cell``'s network on ``device``."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (steps * batch_size, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, network.num_classes, len(images))
    one = (images[:1], labels[:1])
    config = TrainConfig(epochs=1, batch_size=batch_size, mixed_precision=mixed_precision)
    warm = (images[:batch_size], labels[:batch_size])
    train_and_evaluate(cell, warm, one, one, num_classes=network.num_classes, seed=0, config=config,
                       network=network, device=device)  # fmt: skip
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_and_evaluate(cell, (images, labels), one, one, num_classes=network.num_classes, seed=0, config=config,
                       network=network, device=device)  # fmt: skip
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return len(images) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--cells", type=cell_indexes, default=DEFAULT_CELLS,
                        help="official cell indexes, comma-separated (default: "
                        f"{','.join(map(str, DEFAULT_CELLS))})")  # fmt: skip
    parser.add_argument("--steps", type=positive_int, default=6, help="SGD steps measured per cell (default: 6)")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="training batch size (default: 256)")
    parser.add_argument("--channels", type=positive_int, default=16,
                        help="channels of the first stage (default: 16, NAS-Bench-201's)")
    parser.add_argument("--cells-per-stage", type=positive_int, default=5,
                        help="cells per stage (default: 5, NAS-Bench-201's)")
    parser.add_argument("--json", type=path_argument, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    network = NetworkConfig(channels=args.channels, cells_per_stage=args.cells_per_stage, num_classes=10)
    settings = [("cpu", False)]
    if torch.cuda.is_available():
        settings += [("cuda", False), ("cuda", True)]
    print(f"NAS-Bench-201 network C={args.channels} N={args.cells_per_stage}, batch {args.batch_size}, "
          f"{args.steps} steps, torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no CUDA device"))  # fmt: skip
    print(f"{'cell':>6} {'params MB':>9} {'device':>6} {'AMP':>4} {'images/s':>9} {'s/epoch (50k)':>13}")
    figures = []
    for index in args.cells:
        cell = Cell.from_index(index)
        for device, amp in settings:
            rate = throughput(cell, device, steps=args.steps, batch_size=args.batch_size, network=network,
                              mixed_precision=amp)  # fmt: skip
            params = count_parameters_mb(cell, network)
            print(f"{index:>6} {params:>9.3f} {device:>6} {'on' if amp else 'off':>4} {rate:>9.0f} {50_000 / rate:>13.1f}")
            figures.append({"cell": index, "arch": cell.arch_str, "params_mb": params, "device": device,
                            "mixed_precision": amp, "images_per_s": rate})  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
