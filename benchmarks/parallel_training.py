"""``python -m benchmarks.parallel_training``: real training on 1 and 2 workers, local and Ray.

Trains tiny NAS-Bench-201 networks on the offline MNIST sample (the training oracle, the
same cells in the same order: random search with one seed proposes the same cells whatever
the number of workers) with one torch thread per worker, once on one worker and once on
two, for the ``local`` backend (worker processes) and the ``ray`` backend (a Ray instance
started for the run), each run with an empty trainings cache. Prints per run the
wall-clock from the start of the run (workers' start-up included) to its summary, the
speed-up of two workers over one, and whether both runs recorded the same trainings (cells,
seeds, validation and test accuracy) in their caches.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tnas.cli_common import OneLineErrorParser, run_command

PROG = "python -m benchmarks.parallel_training"


def one_run(backend: str, workers: int, args: argparse.Namespace, scratch: Path) -> tuple[float, dict]:
    """Wall-clock seconds of one search and the trainings its cache holds."""
    import torch

    from tnas.search import RunConfig, run
    from tnas.search.backends import BackendOptions
    from tnas.search.cli import build_run
    from tnas.search.oracle_setup import OracleSpec, TrainOracleOptions

    torch.set_num_threads(1)  # the driver's own evaluations (one local worker) get one thread too
    cache = scratch / f"cache-{backend}-{workers}"
    options = TrainOracleOptions(epochs=args.epochs, train_subset=args.train_subset, channels=args.channels,
                                 cells_per_stage=1, batch_size=128)  # fmt: skip
    config = RunConfig(method="rs", dataset="mnist", seed=0, budget=args.budget, fidelity=args.epochs,
                       observe="mean", oracle="train", oracle_options=options.to_dict(), workers=workers,
                       backend=backend)  # fmt: skip
    start = time.perf_counter()
    prepared = build_run(config, data_dir=args.data_dir, device="cpu", results_cache=cache)
    spec = OracleSpec(config, data_dir=args.data_dir, results_cache=cache)
    result = run(prepared.searcher, prepared.oracle, config, scratch / f"run-{backend}-{workers}",
                 run_info=prepared.run_info, worker_spec=spec,
                 backend_options=BackendOptions(device="cpu", threads=1))  # fmt: skip
    seconds = time.perf_counter() - start
    trainings = {(record.index, record.seed): (record.status, record.valid, record.test)
                 for record in prepared.oracle.cache.records()}  # fmt: skip
    assert len(result.rows) == args.budget
    return seconds, trainings


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="local,ray", help="comma-separated: local, ray (default: both)")
    parser.add_argument("--budget", type=int, default=12, help="cells trained per run (default: 12)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-subset", type=int, default=3000)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--data-dir", type=Path, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        for backend in args.backends.split(","):
            one, trainings_one = one_run(backend, 1, args, scratch)
            two, trainings_two = one_run(backend, 2, args, scratch)
            same = trainings_one == trainings_two
            print(f"{backend}: 1 worker {one:.1f} s, 2 workers {two:.1f} s, speed-up {one / two:.2f}x; "
                  f"{len(trainings_one)} trainings each, same results in both caches: {same}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
