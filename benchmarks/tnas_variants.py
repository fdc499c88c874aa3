"""Screen TNAS settings on the tables: queries to the best cell over the meta-trained surrogates.

Usage::

    python -m benchmarks.tnas_variants --variant base='{}' --variant warm='{"warm_steps": 20}'
                                       [--surrogates 5] [--sample-seeds 1]
                                       [--datasets cifar10,cifar100,imagenet16-120] [--budget 100]

Each variant is a name and a JSON object of TNAS settings (``TNASConfig`` fields, plus the
surrogate options such as ``members``, and ``method``: ``tnas`` by default, or
``tnas-nodata`` / ``tnas-prior`` / ``tnas-untrained`` for the ablations); a setting the
variant's method cannot act on is refused, as ``surrogate_seed`` and ``sample_seed`` are
(the screen sets them). Every variant runs, per dataset,
once per default surrogate ``k < --surrogates`` (meta-trained without the dataset; made on
the spot if absent, see ``python -m benchmarks.meta_train``) and per target image sample
seed, under ``observe=mean``, through TNAS's ask/tell until the incumbent is the
dataset's best-validation cell or the budget is spent. It prints, per variant and dataset,
the queries to the best cell (median, max, how many runs reached it; never = budget + 1 in
the median), the mean incumbent test accuracy after 10 queries, the per-surrogate queries
(best, median, worst surrogate) and the mean optimizer seconds per run. This is how the
shipped defaults were chosen; ``python -m benchmarks.nb201`` then measures them next to the
other methods with the full protocol.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from benchmarks.aggregate import best_cells
from tnas.cli_common import OneLineErrorParser, positive_int, run_command
from tnas.errors import ConfigError
from tnas.oracles import NB201Table, TableOracle
from tnas.search import RunConfig, make_searcher
from tnas.search.cli import default_method_options
from tnas.search.methods import get_method

PROG = "python -m benchmarks.tnas_variants"

DATASETS = ("cifar10", "cifar100", "imagenet16-120")


def search_to_best(config: RunConfig, oracle: TableOracle, best: set[int]) -> dict[str, float | None]:
    """One TNAS search until its incumbent is a best cell: queries to it and test at 10."""
    searcher = make_searcher(config)
    incumbent_valid, incumbent_test, test_at_10, found = -np.inf, float("nan"), None, None
    start = time.perf_counter()
    for query in range(1, config.budget + 1):
        cell = searcher.ask()
        evaluation = oracle.evaluate(cell, fidelity=200, seed=None)
        searcher.tell(cell, evaluation)
        if evaluation.valid > incumbent_valid:
            incumbent_valid, incumbent_test, incumbent = evaluation.valid, evaluation.test, cell.index
        if query == 10:
            test_at_10 = incumbent_test
        if incumbent in best:
            found = query
            break
    return {"to_best": found, "test10": incumbent_test if test_at_10 is None else test_at_10,
            "seconds": time.perf_counter() - start}  # fmt: skip


def _variant(text: str) -> tuple[str, dict]:
    name, _, settings = text.partition("=")
    try:
        options = json.loads(settings or "{}")
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"variant {name!r}: {error}") from None
    if not name or not isinstance(options, dict):
        raise argparse.ArgumentTypeError("a variant is NAME='{json object}'")
    return name, options


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--variant", type=_variant, action="append", required=True)
    parser.add_argument("--surrogates", type=positive_int, default=5)
    parser.add_argument("--sample-seeds", type=positive_int, default=1, help="target image samples per surrogate")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--budget", type=positive_int, default=100)
    parser.add_argument("--json", default=None, help="append one JSON line per run to this file")
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: _run(args))


def check_variant(name: str, settings: dict, budget: int) -> None:
    """Refuse a variant whose settings could not change its screen.

    Raises:
        ConfigError: a method outside the TNAS family; a setting its method cannot act on in
            these searches (``Method.unusable_options``: ``tnas-prior``'s BO settings,
            ``pending`` with one worker, ``ucb_beta`` without ``ucb``...) or that only chooses
            the returned cell (the screen follows the incumbent); ``surrogate_seed`` /
            ``sample_seed`` (set by the screen).
    """
    method = get_method(str(settings.get("method", "tnas")))
    if not method.tnas_family:
        raise ConfigError(f"variant {name!r}: method {method.name} is not TNAS or one of its ablations")
    options = {key: value for key, value in settings.items() if key != "method"}
    screened = sorted({"surrogate_seed", "sample_seed"} & set(options))
    if screened:
        raise ConfigError(f"variant {name!r}: {', '.join(screened)} {'is' if len(screened) == 1 else 'are'} set by "
                          "the screen (--surrogates, --sample-seeds); leave it out")  # fmt: skip
    config = RunConfig(method=method.name, dataset=DATASETS[0], seed=0, budget=budget, fidelity=200,
                       observe="mean", options={**default_method_options(method.name), **options})  # fmt: skip
    unusable = method.unusable_options(config)
    for key in options:
        if key in unusable:
            raise ConfigError(f"variant {name!r}: {key} cannot change a {method.name} search ({unusable[key]})")
        if key in ("recommend", "recommend_plausible"):
            raise ConfigError(f"variant {name!r}: {key} cannot change the screen, which follows the incumbent")


def variant_draws(name: str, settings: dict, args: argparse.Namespace) -> tuple[int, int]:
    """How many surrogates and target samples the variant's searches can differ over: one
    surrogate for a given ``surrogate`` directory or ``tnas-untrained`` (none meta-trained),
    one sample for ``tnas-nodata`` (its kernel never sees it); a note says so."""
    method = str(settings.get("method", "tnas"))
    surrogates = 1 if "surrogate" in settings or method == "tnas-untrained" else args.surrogates
    samples = 1 if method == "tnas-nodata" else args.sample_seeds
    if (surrogates, samples) != (args.surrogates, args.sample_seeds):
        print(f"note: variant {name!r} runs {surrogates} surrogate(s) x {samples} sample(s): the others would repeat "
              "the same search", file=sys.stderr)  # fmt: skip
    return surrogates, samples


def _run(args: argparse.Namespace) -> int:
    for name, settings in args.variant:
        check_variant(name, settings, args.budget)
    table = NB201Table.load()
    for name, settings in args.variant:
        surrogates, samples = variant_draws(name, settings, args)
        for dataset in args.datasets.split(","):
            oracle = TableOracle(table, dataset)
            best = set(best_cells(oracle.valid_values(200)).tolist())
            per_surrogate: dict[int, list[float]] = {}
            rows = []
            for k in range(surrogates):
                for sample in range(samples):
                    method = settings.get("method", "tnas")
                    options = {**default_method_options(method), "surrogate_seed": k, "sample_seed": sample,
                               **{key: value for key, value in settings.items() if key != "method"}}  # fmt: skip
                    config = RunConfig(method=method, dataset=dataset, seed=0, budget=args.budget, fidelity=200,
                                       observe="mean", options=options)  # fmt: skip
                    row = {"variant": name, "dataset": dataset, "surrogate": k, "sample": sample,
                           **search_to_best(config, oracle, best)}  # fmt: skip
                    rows.append(row)
                    per_surrogate.setdefault(k, []).append(row["to_best"] or args.budget + 1)
                    if args.json:
                        with open(args.json, "a") as file:
                            file.write(json.dumps(row) + "\n")
            queries = [row["to_best"] or args.budget + 1 for row in rows]
            medians = sorted(float(np.median(values)) for values in per_surrogate.values())
            print(f"{name:<14}{dataset:<16} to best: median {np.median(queries):5.1f}, max {max(queries):4d}, "
                  f"reached {sum(row['to_best'] is not None for row in rows)}/{len(rows)}; "
                  f"test@10 {np.mean([row['test10'] for row in rows]):.2f}; per surrogate best/median/worst "
                  f"{medians[0]:g}/{medians[len(medians) // 2]:g}/{medians[-1]:g}; "
                  f"{np.mean([row['seconds'] for row in rows]):.1f} s per run", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
