"""``python -m tnas.search``: run one search method on one NAS-Bench-201 task."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tnas.cli_common import OneLineErrorParser, help_listing, options_given, path_argument, run_command
from tnas.constraints import Constraints
from tnas.datasets import ALIASES, DATASETS, TASK_PREFIX, canonical_name
from tnas.errors import ConfigError
from tnas.oracles import FIDELITIES, TASKS, NB201Table, Oracle
from tnas.oracles.user_table import read_sidecar, resolve_spec, table_dataset
from tnas.search.backends import BackendOptions
from tnas.search.config import BACKENDS, OBSERVATION_POLICIES, ORACLES, RunConfig
from tnas.search.methods import METHODS, ONE_SHOT_METHODS, get_method, make_searcher
from tnas.search.methods.pending import PENDING_STRATEGIES
from tnas.search.methods.tnas import ACQUISITIONS, INITS, RECOMMENDATIONS, TNASConfig
from tnas.search.methods.tnas_setup import CONSTRAINED_SETTINGS, DATASET_CODES
from tnas.search.oracle_setup import (
    OracleSpec,
    TrainOracleOptions,
    build_oracle,
    default_oracle,
    resolve_device,
    search_space,
    table_task_name,
)
from tnas.search.protocol import Searcher
from tnas.search.runner import RunResult, run
from tnas.search.surrogates import DEFAULT_MEMBERS
from tnas.space import FULL_SPACE, SearchSpace
from tnas.train.oneshot import PROTOCOLS

PROG = "python -m tnas.search"
DEFAULT_BUDGET = 100
"""Queries of a search without ``--budget`` (a one-shot method makes one)."""


def _plausible(text: str) -> float | None:
    """``--recommend-plausible``: ``all`` or a number of noise standard deviations >= 0."""
    if text.strip().lower() == "all":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'all' or a number >= 0, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected 'all' or a number >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    datasets = help_listing({name: task.description for name, task in TASKS.items()})
    trainable = help_listing({name: spec.description for name, spec in DATASETS.items()
                              if spec.name not in ("imagenet16-120", "imagenet-sample")})  # fmt: skip
    oracles = help_listing(ORACLES)
    methods = help_listing({name: method.summary for name, method in METHODS.items()})
    one_shot = help_listing({name: method.summary for name, method in ONE_SHOT_METHODS.items()})
    policies = help_listing(OBSERVATION_POLICIES)
    backends = help_listing(BACKENDS)
    parser = OneLineErrorParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Search the NAS-Bench-201 space for the best cell on a dataset. Each query looks a\n"
            "cell up in the benchmark table, or (--oracle train) really trains its network: the\n"
            "method observes validation accuracy, the report quotes the test accuracy of the\n"
            "cell it would return (best validation)."
        ),
        epilog=(
            f"table datasets (default --oracle table):\n{datasets}\n\n"
            f"datasets to train on (--oracle train, the default for them):\n{trainable}\n\n"
            f"oracles (--oracle):\n{oracles}\n\nmethods:\n{methods}\n\n"
            f"one-shot methods (a supernet trained on the dataset's images, then one query: the derived cell):\n"
            f"{one_shot}\n\n"
            f"observation policies (--observe):\n{policies}\n\n"
            f"backends (--backend, with --workers N):\n{backends}\n\n"
            "outputs (in --out): config.json, journal.jsonl (every evaluation submitted to a worker),\n"
            "trajectory.csv (one row per query, in the order they finished), summary.json.\n"
            "Re-running the same command resumes an interrupted run without repeating a query;\n"
            "with --oracle train every finished training is also kept in the trainings cache\n"
            "($TNAS_CACHE_DIR/trainings or --results-cache), so a killed search never retrains it.\n\n"
            "examples:\n"
            f"  {PROG} --dataset cifar100 --method re --budget 100 --seed 0\n"
            f"  {PROG} --dataset cifar10 --method rs --observe seed --out runs/c10-rs\n"
            f"  {PROG} --dataset cifar10 --method darts-v1   # supernet on the CIFAR-10 sample, minutes\n"
            f"  {PROG} --dataset cifar10 --method gdas --protocol nb201 --data-root ~/data/cifar10 --device cuda\n"
            f"  {PROG} --dataset svhn --method tnas --data-root ~/data/svhn --budget 30 --epochs 50\n"
            f"  {PROG} --dataset mnist --method tnas --budget 10 --epochs 2 --train-subset 3000 \\\n"
            "      --channels 8 --cells-per-stage 1 --device cpu\n"
            f"  {PROG} --dataset imagenet16-120 --method tnas --workers 16   # simulated, seconds\n"
            f"  {PROG} --dataset cifar100 --method tnas --max-latency-ms 5 --latency-device fpga\n"
            f"  {PROG} --table lab.csv --valid-column val_acc --method tnas\n"
            f"  {PROG} --dataset svhn --method tnas --data-root ~/data/svhn --workers 4 \\\n"
            "      --devices cuda:0,cuda:1,cuda:2,cuda:3\n"
            f"  {PROG} --dataset svhn --method tnas --data-root /shared/svhn --workers 8 --backend ray \\\n"
            "      --ray-address auto --gpus-per-trial 1"
        ),
    )
    parser.add_argument("--dataset", default=None,
                        help="task to search (see below; required, except with --table FILE, whose task is "
                             "the sidecar's \"dataset\" or else the file's name: lab.csv -> lab)")
    parser.add_argument("--method", required=True, help="search method (see below)")
    parser.add_argument("--budget", type=int, default=None,
                        help="number of queries (default: 100; one-shot methods: 1, their derived cell)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the run (default: 0)")
    parser.add_argument(
        "--fidelity", type=int, choices=FIDELITIES, default=None,
        help="table oracle: training epochs whose results are observed (default: 200)",
    )  # fmt: skip
    parser.add_argument(
        "--observe", choices=tuple(OBSERVATION_POLICIES), default="mean",
        help="what a query observes (default: mean)",
    )  # fmt: skip
    parser.add_argument(
        "--max-sim-hours", type=float, default=None,
        help="also stop once this many simulated training hours are spent (default: no limit; the budget alone)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=path_argument, default=None,
        help="run directory (default: runs/DATASET/METHOD/seedSEED; runs/DATASET/train/METHOD/seedSEED "
        "with --oracle train, runs/DATASET/user/METHOD/seedSEED with --table)",
    )  # fmt: skip
    parser.add_argument(
        "--data-dir", type=Path, default=None,
        help="folder holding nb201/nb201_merged.csv (default: $TNAS_DATA_DIR, then ../shared/data)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--oracle", choices=tuple(ORACLES), default=None,
                        help="what answers queries (default: table where one exists, else train)")
    _add_training_arguments(parser.add_argument_group("real training (--oracle train)"))
    _add_user_table_arguments(parser.add_argument_group(
        "your own table (--table FILE: a CSV of cells by index and/or arch_str, numeric metric columns)"))
    _add_parallel_arguments(parser.add_argument_group("parallel search (--workers N)"))
    _add_constraint_arguments(parser.add_argument_group(
        "hardware and size constraints (known: every method proposes only cells that meet them)"))
    _add_one_shot_arguments(parser.add_argument_group(
        "one-shot methods (--method darts-v1, darts-v2, gdas; the search data: the dataset's train / validation "
        "split, its offline sample or --data-root)"))
    tnas = parser.add_argument_group("TNAS (--method tnas and its ablations tnas-nodata, tnas-prior, tnas-untrained)")
    defaults = TNASConfig()
    tnas.add_argument("--surrogate", type=Path, default=None,
                      help="meta-trained surrogate: a python -m tnas.meta_train --out DIR (one model or an "
                      f"ensemble, --members); default: an ensemble of {DEFAULT_MEMBERS} meta-trained without the "
                      "target, cached, or meta-trained now (under 10 minutes on 2 cores, once)")
    tnas.add_argument("--members", type=int, default=None,
                      help=f"members of the default surrogate (default: {DEFAULT_MEMBERS}; 1: a single "
                      "meta-trained model)")
    tnas.add_argument("--surrogate-seed", type=int, default=0,
                      help="which draw of the default surrogate: k uses meta-training seeds k*M..k*M+M-1 "
                      "(default: 0, the shipped default)")
    tnas.add_argument("--last-epochs", type=int, default=0, metavar="K",
                      help="search with the last K epochs' kernels of every member instead of each member's "
                      "selected epoch (members meta-trained with --keep-epochs; default: 0, the selected epoch)")
    tnas.add_argument("--sample-seed", type=int, default=None,
                      help="seed of the sample of the target's images that encodes it (default: the run seed)")
    tnas.add_argument("--recommend", choices=RECOMMENDATIONS, default=defaults.recommend,
                      help="cell the search returns: the best observed, the evaluated cell of best posterior "
                      "mean, or auto: posterior mean when each query observes one training seed (default: auto)")
    tnas.add_argument("--recommend-plausible", type=_plausible, default=defaults.recommend_plausible, metavar="Z",
                      help="with the posterior-mean recommendation, consider only the evaluated cells observed "
                      "within Z noise standard deviations of the best observation, or 'all' (default: "
                      f"{'all' if defaults.recommend_plausible is None else format(defaults.recommend_plausible, 'g')})")
    tnas.add_argument("--acquisition", choices=ACQUISITIONS, default=defaults.acquisition,
                      help=f"acquisition function (default: {defaults.acquisition})")
    tnas.add_argument("--init", choices=INITS, default=defaults.init,
                      help="initial design: top cells of the prior mean, random cells, or the source tables' "
                      "top cells (sources: the zero-shot order) (default: prior)")
    tnas.add_argument("--source-weight", type=float, default=None, metavar="W",
                      help="blend the average of the NAS-Bench-201 tables the surrogate meta-trained on (for a default "
                      "surrogate the zero-shot order) into the GP's prior mean: "
                      "(1 - W) meta-learned prior + W sources to start with, both weights then fitted to the "
                      "observations; the initial design and the candidate pool follow the blend (tnas-prior walks "
                      f"it); 0 to 1 (default: {defaults.source_weight:g}; "
                      f"{CONSTRAINED_SETTINGS['source_weight']:g} for a run with constraints)")
    tnas.add_argument("--init-size", type=int, default=defaults.init_size,
                      help=f"cells in the initial design (default: {defaults.init_size})")
    tnas.add_argument("--batch-size", type=int, default=defaults.batch_size,
                      help=f"q, cells proposed per acquisition (q > 1: qLogNEI / qUCB; default: {defaults.batch_size})")
    tnas.add_argument("--finetune-steps", type=int, default=defaults.finetune_steps,
                      help="Adam steps fitting the GP to the observations before each proposal, from the "
                      f"meta-trained values: the head (mean calibration, kernel scales, noise; learning rate "
                      f"{defaults.finetune_lr}) and the feature MLP; 0 keeps the meta-trained GP (with --warm-steps W > 0, the "
                      "fits after the first still take W steps) "
                      f"(default: {defaults.finetune_steps})")
    tnas.add_argument("--finetune-feature-lr", type=float, default=defaults.finetune_feature_lr,
                      help="Adam learning rate of the feature MLP while fine-tuning; 0 keeps it as meta-trained "
                      f"and fine-tunes only the GP head (default: {defaults.finetune_feature_lr})")
    tnas.add_argument("--feature-patience", type=int, default=None, metavar="P",
                      help="fine-tune only the GP head until the best observation has not improved for P "
                      "observations in a row, the feature MLP too from then on; 0 fine-tunes the feature MLP "
                      "from the first fit (default: 0; "
                      f"{CONSTRAINED_SETTINGS['feature_patience']} for a run with constraints)")
    tnas.add_argument("--candidate-pool", type=int, default=defaults.candidate_pool,
                      help="score only this many cells of highest prior mean, the meta-learned prior as a trust "
                      f"region (0: every unevaluated cell; default: {defaults.candidate_pool})")
    tnas.add_argument("--refit-growth", type=float, default=defaults.refit_growth,
                      help="fine-tune again once the observations have grown by this fraction; in between, "
                      f"condition the last fit on all observations (0: before every proposal; default: "
                      f"{defaults.refit_growth})")
    tnas.add_argument("--warm-steps", type=int, default=defaults.warm_steps,
                      help="start each fit after the first from the previous fit and take this many steps "
                      f"(0: every fit from the meta-trained values; default: {defaults.warm_steps})")
    tnas.add_argument("--pending", choices=PENDING_STRATEGIES, default=defaults.pending,
                      help="with evaluations running: condition the GP on them at its posterior mean (believer, "
                      f"kriging believer) or integrate over them (x_pending, BoTorch's X_pending; default: "
                      f"{defaults.pending})")
    tnas.add_argument("--dataset-code", choices=DATASET_CODES, default=None,
                      help="what encodes the target: its image sample (images), or the mean dataset code of the "
                      "shipped cifar10 / cifar100 / imagenet16-120 samples other than the target (mean: a task "
                      "without images); default: images when the registry has the dataset, else mean")
    tnas.add_argument("--allow-target-in-meta-train", action="store_true",
                      help="accept a surrogate whose meta-training saw the target dataset")  # fmt: skip
    return parser


def _add_training_arguments(group: argparse._ArgumentGroup) -> None:
    defaults = TrainOracleOptions()
    group.add_argument("--data-root", type=Path, default=None,
                       help="folder holding the full dataset in its usual layout (torchvision CIFAR/SVHN, "
                       "MNIST/Fashion-MNIST IDX files, DIR/train/<class>/<image> folders); default: the "
                       "offline sample in the data directory, where there is one")
    group.add_argument("--epochs", type=int, default=defaults.epochs,
                       help=f"training epochs per cell (default: {defaults.epochs}, NAS-Bench-201's schedule)")
    group.add_argument("--train-subset", type=int, default=None,
                       help="train on this many random training images (default: all)")
    group.add_argument("--train-batch-size", type=int, default=defaults.batch_size,
                       help=f"training batch size (default: {defaults.batch_size})")
    group.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                       help=f"initial SGD learning rate, cosine-decayed (default: {defaults.learning_rate})")
    group.add_argument("--channels", type=int, default=defaults.channels,
                       help=f"channels C of the first stage (default: {defaults.channels})")
    group.add_argument("--cells-per-stage", type=int, default=defaults.cells_per_stage,
                       help=f"cells N per stage (default: {defaults.cells_per_stage})")
    group.add_argument("--train-seeds", default="0",
                       help="comma-separated training seeds per cell; --observe mean averages them (default: 0)")
    group.add_argument("--valid-fraction", type=float, default=defaults.valid_fraction,
                       help=f"share of each class held out for validation (default: {defaults.valid_fraction})")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1... (default: cuda if available, else cpu)")
    group.add_argument("--results-cache", type=Path, default=None,
                       help="trainings cache folder (default: $TNAS_CACHE_DIR/trainings)")
    group.add_argument("--retry-failed", action="store_true", help="train again cells whose training failed")


def _add_one_shot_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--protocol", choices=tuple(PROTOCOLS), default="cpu",
                       help="supernet size and schedule: cpu (C 8, N 1; DARTS 12 epochs, GDAS 60: minutes on 2 "
                       "cores) or nb201 (the NAS-Bench-201 paper's C 16, N 5; DARTS 50 epochs, GDAS 250; for a GPU) "
                       "(default: cpu)")
    group.add_argument("--search-epochs", type=int, default=None, help="supernet epochs (default: the protocol's)")


def _add_user_table_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--table", type=Path, default=None,
                       help="search your own results table instead of NAS-Bench-201's (--dataset names the task; "
                       "cells missing from the table are never proposed)")
    group.add_argument("--valid-column", default=None, help="the column a search observes")
    group.add_argument("--test-column", default=None, help="the column the report quotes (default: the observed one)")
    group.add_argument("--cost-column", default=None,
                       help="training seconds per query, for the simulated clock (default: none, free)")
    group.add_argument("--params-column", default=None, help="parameters in millions, for --max-params")


def _add_parallel_arguments(group: argparse._ArgumentGroup) -> None:
    defaults = BackendOptions()
    group.add_argument("--workers", type=int, default=1,
                       help="evaluations running at once (default: 1, a sequential search)")
    group.add_argument("--backend", choices=tuple(BACKENDS), default=None,
                       help="what runs them (default: simulated for table oracles, local for real training)")
    group.add_argument("--devices", default=None,
                       help="local backend: comma-separated devices, worker i takes device i mod n "
                       "(e.g. cuda:0,cuda:1; default: --device for every worker)")
    group.add_argument("--threads-per-worker", type=int, default=None,
                       help="torch threads of each worker (default: the cores split between local workers; 1 on Ray)")
    group.add_argument("--ray-address", default=None,
                       help="Ray cluster to join: auto or HOST:PORT (default: start Ray on this machine for the run)")
    group.add_argument("--gpus-per-trial", type=float, default=defaults.gpus_per_trial,
                       help="Ray: GPUs reserved for each training (default: 0, train on the CPU)")
    group.add_argument("--max-retries", type=int, default=defaults.max_retries,
                       help="times an evaluation whose worker died is tried again before it is recorded as a "
                       f"failed query (default: {defaults.max_retries})")


def _add_constraint_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--max-latency-ms", type=float, default=None,
                       help="latency limit in milliseconds on --latency-device (measured per cell)")
    group.add_argument("--latency-device", default=None,
                       help="device of the latency table: the shipped HELP measurements hold 1080ti_1/_32/_256, "
                       "2080ti_*, titan_rtx_*, titanx_*, titanxp_* (GPU, batch size), gold_6226, gold_6240, "
                       "silver_4114, silver_4210r (CPUs), pixel2, pixel3, samsung_a50, samsung_s7, essential_ph_1 "
                       "(phones), raspi4, eyeriss, fpga")
    group.add_argument("--latency-table", type=Path, default=None,
                       help="your own latency CSV (columns index and/or arch_str, then <device>_ms; cells without a "
                       "value are infeasible); default: DATA_DIR/hardware/nb201_latency_help.csv")
    group.add_argument("--max-params", type=float, default=None, metavar="MB",
                       help="limit on the parameters, in millions (the table's params_MB)")
    group.add_argument("--max-flops", type=float, default=None, metavar="MFLOPS",
                       help="limit on the forward FLOPs of one image, in millions (computed from the cell)")


def constraint_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run's constraints from the command line (``{}``: none)."""
    table = str(args.latency_table.expanduser().resolve()) if args.latency_table else None
    return Constraints(max_latency_ms=args.max_latency_ms, latency_device=args.latency_device,
                       latency_table=table, max_params_mb=args.max_params,
                       max_flops_m=args.max_flops).to_dict()  # fmt: skip


def backend_options(args: argparse.Namespace, device: str | None) -> BackendOptions:
    """The backend settings of the command line (they do not change a run's answers)."""
    devices = tuple(part.strip() for part in args.devices.split(",") if part.strip()) if args.devices else None
    for one in devices or ():
        resolve_device(one)
    return BackendOptions(devices=devices, device=device, threads=args.threads_per_worker,
                          ray_address=args.ray_address, gpus_per_trial=args.gpus_per_trial,
                          max_retries=args.max_retries)  # fmt: skip


def _train_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--train-seeds must be comma-separated integers, got {text!r}") from None
    return seeds


def oracle_settings(args: argparse.Namespace, oracle: str) -> tuple[int, dict[str, Any]]:
    """The run's fidelity and oracle options from the command line."""
    if oracle == "user":
        if args.data_root is not None:
            raise ConfigError("--data-root is for --oracle train; a table of your own is read from --table")
        spec = resolve_spec(args.table, valid_column=args.valid_column, test_column=args.test_column,
                            cost_column=args.cost_column, params_column=args.params_column)  # fmt: skip
        return (args.fidelity or 200), spec.to_dict()
    if any(value is not None for value in (args.valid_column, args.test_column, args.cost_column,
                                           args.params_column)):  # fmt: skip
        raise ConfigError("--valid-column, --test-column, --cost-column and --params-column go with --table FILE")
    if oracle == "table":
        if args.data_root is not None and not get_method(args.method).one_shot:
            raise ConfigError("--data-root is for --oracle train; the table oracle reads the benchmark table")
        return (args.fidelity or 200), {}
    if args.fidelity is not None and args.fidelity != args.epochs:
        raise ConfigError("with --oracle train the fidelity is the training epochs: use --epochs, not --fidelity")
    options = TrainOracleOptions(
        epochs=args.epochs, batch_size=args.train_batch_size, learning_rate=args.learning_rate,
        train_subset=args.train_subset, channels=args.channels, cells_per_stage=args.cells_per_stage,
        train_seeds=_train_seeds(args.train_seeds), valid_fraction=args.valid_fraction,
        data_root=str(args.data_root.expanduser().resolve()) if args.data_root else None,
    )  # fmt: skip
    return args.epochs, options.to_dict()


TNAS_FLAGS = ("surrogate", "members", "surrogate_seed", "last_epochs", "sample_seed", "recommend",
              "recommend_plausible", "acquisition", "init", "source_weight", "init_size", "batch_size",
              "finetune_steps", "finetune_feature_lr", "feature_patience", "candidate_pool", "refit_growth",
              "warm_steps", "pending", "dataset_code", "allow_target_in_meta_train")
"""The options of the TNAS group (argparse names): they set the TNAS methods only."""

TRAINING_FLAGS = ("epochs", "train_subset", "train_batch_size", "learning_rate", "channels", "cells_per_stage",
                  "train_seeds", "valid_fraction", "device", "results_cache", "retry_failed")
"""The options of the real-training group that set the training oracle (``--data-root`` has
its own message); a one-shot method also trains its supernet on ``--device`` with
``--valid-fraction`` of the images held out."""

ONE_SHOT_TRAINING_FLAGS = ("device", "valid_fraction")


def _flags_given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    """The options among ``names`` (argparse names) set to something other than their default."""
    return options_given(build_parser(), args, names)


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _refuse(names: list[str], why: str) -> None:
    """Raise :class:`ConfigError` naming the options ``names`` that cannot act on this run."""
    if names:
        flags = ", ".join(_flag(name) for name in names)
        raise ConfigError(f"{flags} cannot change this run: {why}; leave {'it' if len(names) == 1 else 'them'} out")


def _tnas_flags_given(args: argparse.Namespace) -> list[str]:
    """The TNAS options set to something other than their default on this command line."""
    return [_flag(name) for name in _flags_given(args, TNAS_FLAGS)]


def check_applicable(args: argparse.Namespace, config: RunConfig) -> None:
    """Refuse real-training and backend options that ``config`` would ignore.

    Raises:
        ConfigError: e.g. ``--epochs`` on a table search, ``--devices`` with simulated workers,
            ``--ray-address`` without ``--backend ray``.
    """
    if config.oracle != "train":
        one_shot = get_method(config.method).one_shot
        applicable = ONE_SHOT_TRAINING_FLAGS if one_shot else ()
        source = "your table" if config.oracle == "user" else "the benchmark table"
        refused = [name for name in _flags_given(args, TRAINING_FLAGS) if name not in applicable]
        hint = " (a one-shot method's supernet epochs are --search-epochs)" if one_shot and "epochs" in refused else ""
        _refuse(refused, f"this run looks its queries up in {source}, and real-training options go with --oracle "
                f"train{hint}")
    backend, trains = config.resolved_backend, config.oracle == "train"
    reasons = {
        "devices": (backend == "local" and trains, "it places local workers that train cells (--oracle train, "
                    "--backend local)"),
        "threads_per_worker": (backend in ("local", "ray") and trains, "it sets the threads of workers that "
                               "train cells (--oracle train, --backend local or ray)"),
        "ray_address": (backend == "ray", "it goes with --backend ray"),
        "gpus_per_trial": (backend == "ray", "it goes with --backend ray"),
        "max_retries": (backend != "simulated", "it retries evaluations whose worker died, and simulated "
                        "workers do not die"),
    }  # fmt: skip
    for name in _flags_given(args, tuple(reasons)):
        applies, why = reasons[name]
        if not applies:
            _refuse([name], f"{why}, and this run has the {backend} backend and the {config.oracle} oracle")


RUN_DEFAULTED = ("source_weight", "feature_patience")
"""TNAS settings whose default depends on the run (:data:`CONSTRAINED_SETTINGS`): recorded
only when given at another value than the run's default."""


def method_options(args: argparse.Namespace, method: str) -> dict[str, Any]:
    """The method-specific settings of a run (empty for the baselines); those of
    :data:`RUN_DEFAULTED` as given, to be dropped where they restate the run's default
    (``Method.without_restated_defaults``, once the run's configuration is known).

    Raises:
        ConfigError: TNAS options given for another method (those a TNAS variant cannot act on
            are :func:`check_method_options`'s).
    """
    if not get_method(method).tnas_family and (given := _tnas_flags_given(args)):
        raise ConfigError(f"{', '.join(given)} set{'s' if len(given) == 1 else ''} the TNAS methods (tnas, "
                          f"tnas-nodata, tnas-prior, tnas-untrained), not {method}; leave "
                          f"{'it' if len(given) == 1 else 'them'} out")  # fmt: skip
    if get_method(method).one_shot:
        if args.search_epochs is not None and args.search_epochs < 1:
            raise ConfigError(f"--search-epochs must be positive, got {args.search_epochs}")
        table = _oracle_kind(args) == "table"
        return {
            "protocol": args.protocol,
            **({"epochs": args.search_epochs} if args.search_epochs is not None else {}),
            **({"data_root": str(args.data_root.expanduser().resolve())} if table and args.data_root else {}),
            **({"valid_fraction": args.valid_fraction} if table else {}),
        }
    if args.protocol != "cpu" or args.search_epochs is not None:
        raise ConfigError("--protocol and --search-epochs go with the one-shot methods (darts-v1, darts-v2, gdas)")
    if not get_method(method).tnas_family:  # TNAS and its ablations share the settings
        return {}
    if args.members is not None and args.members < 1:
        raise ConfigError(f"--members must be at least 1, got {args.members}")
    if args.surrogate_seed < 0 or (args.sample_seed is not None and args.sample_seed < 0) or args.last_epochs < 0:
        raise ConfigError("--surrogate-seed, --sample-seed and --last-epochs must be >= 0")
    if args.feature_patience is not None and args.feature_patience < 0:
        raise ConfigError(f"--feature-patience must be >= 0 observations (0: the feature MLP from the first fit), "
                          f"got {args.feature_patience}")  # fmt: skip
    return {
        "surrogate": str(args.surrogate) if args.surrogate else None,
        "allow_target_in_meta_train": args.allow_target_in_meta_train,
        "surrogate_seed": args.surrogate_seed,
        "members": args.members,
        "sample_seed": args.sample_seed,
        "recommend": args.recommend,
        "acquisition": args.acquisition,
        "init": args.init,
        "init_size": args.init_size,
        "batch_size": args.batch_size,
        "finetune_steps": args.finetune_steps,
        "finetune_feature_lr": args.finetune_feature_lr,
        "warm_steps": args.warm_steps,
        "candidate_pool": args.candidate_pool,
        "refit_growth": args.refit_growth,
        # recorded only when chosen, so that runs made before the option existed keep their identity
        **({"pending": args.pending} if args.pending != TNASConfig().pending else {}),
        **({"dataset_code": args.dataset_code} if args.dataset_code is not None else {}),
        **({"last_epochs": args.last_epochs} if args.last_epochs else {}),
        **({"recommend_plausible": args.recommend_plausible}
           if args.recommend_plausible != TNASConfig().recommend_plausible else {}),
        **_given_settings(args, RUN_DEFAULTED),
    }


def _given_settings(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    """The TNAS settings ``names`` given on the command line (``feature_patience`` 0: the
    feature MLP from the first fit, ``None``); :func:`run_config_of` drops those that restate
    the run's default, so that a run keeps its identity with or without them."""
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if given.get("feature_patience") == 0:
        given["feature_patience"] = None
    return given


def check_method_options(args: argparse.Namespace, config: RunConfig) -> None:
    """Refuse TNAS options the run of ``config`` cannot act on (``Method.unusable_options``),
    and a batch larger than the budget.

    Raises:
        ConfigError: e.g. ``--acquisition`` with ``tnas-prior``, ``--members`` with
            ``--surrogate``, ``--pending`` with one worker.
    """
    method = get_method(config.method)
    if not method.tnas_family:
        return
    given = _flags_given(args, TNAS_FLAGS)
    unusable = method.unusable_options(config)
    for why in dict.fromkeys(unusable.values()):
        _refuse([name for name in given if unusable.get(name) == why], why)
    if args.batch_size > config.budget:
        raise ConfigError(f"--batch-size {args.batch_size} proposes more cells at once than the budget of "
                          f"{config.budget} queries; use at most --batch-size {config.budget}")  # fmt: skip


def default_method_options(method: str) -> dict[str, Any]:
    """The method settings a run gets from this command line's defaults (no option given)."""
    args = build_parser().parse_args(["--dataset", next(iter(TASKS)), "--method", method])
    return method_options(args, method)


@dataclass(frozen=True)
class PreparedRun:
    """What :func:`~tnas.search.runner.run` needs besides the configuration and directory.

    Attributes:
        searcher: a fresh searcher for the run's configuration.
        oracle: the oracle of the run's dataset (table or real training).
        run_info: what ``config.json`` records besides the configuration: the method's
            settings, the oracle (kind and table file) and what the method added (TNAS: its
            surrogate).
        space: the cells the run may evaluate (its feasible cells when constrained).
    """

    searcher: Searcher
    oracle: Oracle
    run_info: dict[str, Any]
    space: SearchSpace = FULL_SPACE


def build_run(config: RunConfig, table: NB201Table | None = None, *, data_dir: Path | None = None,
              progress: bool = False, device: str | None = None, results_cache: Path | None = None,
              retry_failed: bool = False, run_dir: Path | None = None) -> PreparedRun:  # fmt: skip
    """Assemble one run as this command line does (the benchmark harness shares it).

    Args:
        table: the loaded table for ``oracle="table"`` runs (loaded here if ``None``).
        device, results_cache, retry_failed: real-training settings that do not change
            answers (see :func:`~tnas.search.oracle_setup.build_oracle`); ``device`` is
            also where a one-shot method trains its supernet.
        run_dir: the run directory (a one-shot method keeps its supernet there).

    Raises:
        TnasError: an unknown method or dataset, a fidelity the task lacks, missing data,
            or a method that cannot be built (e.g. a contaminated TNAS surrogate).
    """
    method = get_method(config.method)
    oracle_device = device if config.oracle == "train" else None
    oracle, oracle_info = build_oracle(config, table=table, data_dir=data_dir, device=oracle_device,
                                       results_cache=results_cache, progress=progress,
                                       retry_failed=retry_failed)  # fmt: skip
    run_info: dict[str, Any] = {"method_settings": method.settings_for(config), "oracle": oracle_info}
    space = search_space(config, oracle, data_dir)
    if not space.is_full:
        run_info["search_space"] = {"cells": len(space), "restricted_by": space.description}
    data_root = config.oracle_options.get("data_root")
    searcher = make_searcher(config, data_dir=data_dir, data_root=Path(data_root) if data_root else None,
                             progress=progress, run_info=run_info, space=space, run_dir=run_dir,
                             device=device)  # fmt: skip
    return PreparedRun(searcher=searcher, oracle=oracle, run_info=run_info, space=space)


def _oracle_kind(args: argparse.Namespace) -> str:
    """``user`` with ``--table``; else ``--oracle``, or the dataset's default."""
    if args.table is not None:
        if args.oracle not in (None, "user"):
            raise ConfigError(f"--table searches your own table: leave out --oracle {args.oracle}")
        return "user"
    if args.oracle == "user":
        raise ConfigError("--oracle user needs --table FILE")
    if args.dataset is None:
        raise ConfigError("--dataset is required (cifar10, cifar100, imagenet16-120, or a dataset of the registry "
                          "to train on), unless you search a table of your own with --table FILE")  # fmt: skip
    return args.oracle or default_oracle(args.dataset)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _search(args))


def _table_task(table: Path) -> str:
    """The task of ``--table FILE`` without ``--dataset``: its sidecar's ``dataset``, else the
    file's name (:func:`~tnas.oracles.user_table.table_dataset`), which must not be a dataset
    tnas knows: a table called ``cifar100.csv`` would take CIFAR-100's images and exclusions
    without anyone saying so.

    Raises:
        ConfigError: the file's name is a registry dataset or an alias of one.
    """
    sidecar = read_sidecar(Path(table).expanduser().resolve())
    named = table_dataset(table, sidecar)
    known = canonical_name(named)
    if sidecar.get("dataset") is None and (known in DATASETS or known.startswith(TASK_PREFIX)):
        raise ConfigError(f"--table {table}: its file name is also the dataset {known!r}; say which task the table "
                          "measured with --dataset NAME, or as \"dataset\" in its sidecar")  # fmt: skip
    return named


def run_config_of(args: argparse.Namespace) -> RunConfig:
    """The run configuration of a parsed command line: its options are those given, less the
    TNAS settings that restate the run's own default (:data:`RUN_DEFAULTED`)."""
    oracle = _oracle_kind(args)
    named = args.dataset if args.dataset is not None else _table_task(args.table)
    dataset = table_task_name(named) if oracle == "table" else ALIASES.get(named.lower(), named.lower())
    method = get_method(args.method)
    fidelity, oracle_options = oracle_settings(args, oracle)
    budget = args.budget if args.budget is not None else 1 if method.one_shot else DEFAULT_BUDGET
    config = RunConfig(
        method=method.name,
        dataset=dataset,
        seed=args.seed,
        budget=budget,
        fidelity=fidelity,
        observe=args.observe,
        max_sim_hours=args.max_sim_hours,
        options=method_options(args, method.name),
        oracle=oracle,
        oracle_options=oracle_options,
        workers=args.workers,
        backend=args.backend,
        constraints=constraint_settings(args),
    )
    return method.without_restated_defaults(config, only=RUN_DEFAULTED)


def _search(args: argparse.Namespace) -> int:
    config = run_config_of(args)
    method, oracle, dataset = get_method(config.method), config.oracle, config.dataset
    device = resolve_device(args.device) if oracle == "train" or method.one_shot else None
    check_applicable(args, config)
    check_method_options(args, config)
    options = backend_options(args, device)
    default_out = Path("runs", dataset, *((oracle,) if oracle in ("train", "user") else ()), method.name)
    out = args.out or default_out / f"seed{args.seed}"
    prepared = build_run(config, data_dir=args.data_dir, progress=not args.no_progress, device=device,
                         results_cache=args.results_cache, retry_failed=args.retry_failed, run_dir=out)  # fmt: skip
    run_info = prepared.run_info
    spec = OracleSpec(config, data_dir=args.data_dir, results_cache=args.results_cache,
                      retry_failed=args.retry_failed)  # fmt: skip
    result = run(prepared.searcher, prepared.oracle, config, out, run_info=run_info,
                 progress=not args.no_progress, worker_spec=spec, backend_options=options,
                 space=prepared.space)  # fmt: skip
    print(format_summary(result, out, run_info))
    return 0


def format_summary(result: RunResult, out: Path, run_info: dict[str, Any] | None = None) -> str:
    """A short human-readable summary of a finished run."""
    summary: dict[str, Any] = result.summary
    surrogate = (run_info or {}).get("surrogate")
    trained = (run_info or {}).get("oracle") if (run_info or {}).get("oracle", {}).get("kind") == "train" else None
    observed = "seed mean" if summary["observe"] == "mean" else "one seed per query"
    columns = (run_info or {}).get("oracle", {}).get("columns")
    if columns:  # a table of your own
        observed = f"column {columns['valid_column']}"
    resumed = f" ({result.replayed} replayed from an earlier run)" if result.replayed else ""
    return "\n".join(
        [
            f"{summary['method']} on {summary['dataset']}, seed {summary['seed']}: "
            f"{summary['queries']} queries{resumed}",
            f"  best cell    #{summary['best_index']} {summary['best_arch']}",
            f"  validation   {summary['best_valid']:.2f}% ({observed}, {summary['fidelity']} epochs)",
            f"  test         {summary['best_test']:.2f}%",
            f"  found at     query {summary['found_at_query']}",
            *([f"  recommended  #{summary['recommended_index']} (best posterior mean of the evaluated cells), "
               f"test {summary['recommended_test']:.2f}%"]
              if summary.get("recommended_index", summary["best_index"]) != summary["best_index"] else []),
            (f"  simulated    {summary['sim_gpu_hours']:.1f} GPU-hours of training" if not trained else
             f"  training     {summary['sim_cost_s'] / 60:.1f} min on {trained['device']}"
             + (f", {summary['failed_queries']} failed (chance accuracy)" if summary.get("failed_queries") else "")),
            *([_workers_line(summary)] if summary.get("workers", 1) > 1 else []),
            *([_constraints_line(summary)] if summary.get("constraints") else []),
            f"  overhead     {summary['overhead_s']:.3f} s in the optimizer",
            *([_surrogate_line(surrogate)] if surrogate else []),
            *([_source_term_line(term)] if (term := (run_info or {}).get("source_term")) else []),
            *([_one_shot_line(one_shot)] if (one_shot := (run_info or {}).get("one_shot")) else []),
            *([f"  target code  {sample['dataset_code']} (no images of {summary['dataset']} used)"]
              if (sample := (run_info or {}).get("target_sample", {})).get("images") is False else []),
            f"  run dir      {out}",
        ]
    )


def _workers_line(summary: dict[str, Any]) -> str:
    clock = "simulated" if summary["backend"] == "simulated" else "real"
    seconds = summary["wall_clock_s"]
    wall = f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"
    return (f"  workers      {summary['workers']} ({summary['backend']}): {wall} wall-clock ({clock}), "
            f"{100 * summary['worker_utilisation']:.0f}% utilisation")


def _constraints_line(summary: dict[str, Any]) -> str:
    limits = Constraints.from_dict(summary["constraints"])
    returned = [f"{summary[key]:.3g} {unit}" for key, unit in (("recommended_latency_ms", "ms"),
                ("recommended_params_mb", "M params"), ("recommended_flops_m", "MFLOPs")) if key in summary]  # fmt: skip
    return (f"  constraints  {limits.describe()}: {summary['feasible_cells']:,} feasible cells; returned cell "
            f"{', '.join(returned)}")


def _source_term_line(term: dict[str, Any]) -> str:
    """TNAS's source term (``run_info["source_term"]``): its weight and tables, or why it is off."""
    if not term["source_weight"]:
        return f"  source term  off ({term['why']}; its weight would be {term['requested']:g})"
    return f"  source term  weight {term['source_weight']:g} on {', '.join(term['sources'])}"


def _one_shot_line(one_shot: dict[str, Any]) -> str:
    settings, data = one_shot["settings"], one_shot["search_data"]
    seconds = one_shot.get("search_seconds")
    cost = f"{seconds:.0f} s of search on {one_shot['device']}" if seconds is not None else "searched earlier"
    return (f"  supernet     {one_shot['algorithm']}, C {settings['channels']} N {settings['cells_per_stage']}, "
            f"{settings['epochs']} epochs on {data['dataset']} ({data['train']} train / {data['valid']} validation "
            f"images): {cost}; per epoch in {one_shot['state']}/epochs.csv")


def _surrogate_line(surrogate: dict[str, Any]) -> str:
    if surrogate.get("path") is None:  # tnas-untrained
        return f"  surrogate    {surrogate.get('origin', 'none')}"
    excluded = f"meta-trained without {', '.join(surrogate['exclude'])}" if surrogate["exclude"] else (
        "meta-trained on every shipped source")
    return f"  surrogate    {surrogate['path']} ({_members(surrogate)}{excluded})"


def _members(surrogate: dict[str, Any]) -> str:
    count = surrogate.get("members", 1)
    return f"ensemble of {count}, " if count > 1 else ""
