"""``python -m tnas.meta_train``: meta-train TNAS's deep-kernel GP with REPTILE."""

from __future__ import annotations

import argparse
from pathlib import Path

from tnas.cli_common import OneLineErrorParser, device_argument, path_argument, positive_int, run_command
from tnas.encoders import ArchEncoderConfig, DatasetEncoderConfig
from tnas.errors import ConfigError
from tnas.meta_train.config import SELECTIONS, MetaTrainConfig
from tnas.meta_train.data import EXCLUDABLE
from tnas.meta_train.ensemble import meta_train_ensemble
from tnas.meta_train.trainer import format_row, meta_train
from tnas.models.deep_kernel import KERNELS, MEANS, DeepKernelConfig

PROG = "python -m tnas.meta_train"


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    defaults = MetaTrainConfig()
    kernel = DeepKernelConfig()
    parser = OneLineErrorParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Meta-train the deep-kernel GP of TNAS with REPTILE on MetaD2A's records and the\n"
            "NAS-Bench-201 tables, leaving out the datasets you will search on (--exclude).\n"
            "After every epoch the GP is validated (metrics.csv) and checkpointed; model.pt is\n"
            "the best epoch by --selection (default top-cells: the epoch whose prior ranks the\n"
            "10 best cells of every NAS-Bench-201 training table highest, after the first fifth\n"
            "of the epochs), never by the excluded dataset.\n"
            "Re-running the same command resumes; raising --epochs continues a finished run."
        ),
        epilog=(
            f"sources (for --exclude): {', '.join(EXCLUDABLE)} (cifar10 = cifar10-valid)\n\n"
            "example:\n"
            f"  {PROG} --exclude cifar100 --out runs/meta/no-cifar100\n"
            f"  python -m tnas.search --dataset cifar100 --method tnas --surrogate runs/meta/no-cifar100"
        ),
    )
    parser.add_argument("--exclude", action="append", default=[], metavar="NAME[,NAME]",
                        help="source(s) left out of meta-training; repeatable or comma-separated")
    parser.add_argument("--source", action="append", default=[], metavar="PATH[=DATASET]",
                        help="an extra source: a run directory of python -m tnas.search (its trajectory: the cells "
                        "it evaluated and what it observed) or a table of your own (columns from its sidecar); "
                        "DATASET names its images (default: the run's dataset, the sidecar's \"dataset\" or the "
                        "file name; a dataset without images is encoded by the shipped samples' mean code). "
                        "Repeat for several")
    parser.add_argument("--out", type=path_argument, default=None, help="output directory (default: runs/meta/no-EXCLUDED, or runs/meta/all when nothing is excluded)")
    parser.add_argument("--data-dir", type=Path, default=None, help="data directory (default: the usual lookup)")
    parser.add_argument("--device", default="cpu", type=device_argument, help="torch device (default: cpu)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="seed of the weights and of every sampling step (members: seed, seed+1, ...; "
                        f"default: {defaults.seed})")
    parser.add_argument("--members", type=positive_int, default=1,
                        help="meta-train an ensemble of this many independent runs into OUT/member<j> "
                        "(python -m tnas.search uses an ensemble as one GP); default: 1, a single model")
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="members meta-trained at once, each in its own process on one thread (default: 1: "
                        "one after the other, on torch's threads); only with --members M > 1")
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help=f"epochs, each followed by validation and a checkpoint (default: {defaults.epochs})")
    group = parser.add_argument_group("REPTILE")
    group.add_argument("--steps-per-epoch", type=int, default=defaults.steps_per_epoch,
                       help=f"REPTILE meta-steps per epoch (default: {defaults.steps_per_epoch})")
    group.add_argument("--tasks-per-step", type=int, default=defaults.tasks_per_step,
                       help=f"sources adapted to in each meta-step (default: {defaults.tasks_per_step})")
    group.add_argument("--inner-steps", type=int, default=defaults.inner_steps,
                       help=f"Adam steps of each inner loop (default: {defaults.inner_steps})")
    group.add_argument("--inner-lr", type=float, default=defaults.inner_lr,
                       help=f"Adam learning rate of the inner loops (default: {defaults.inner_lr:g})")
    group.add_argument("--outer-step", type=float, default=defaults.outer_step,
                       help=f"epsilon of the outer update w <- w + epsilon (w' - w) (default: {defaults.outer_step:g})")
    group.add_argument("--no-anneal", action="store_true", help="keep epsilon constant instead of decaying it to 0")
    group.add_argument("--batch-size", type=int, default=defaults.batch_size,
                       help=f"triples per GP mini-batch, one exact GP each (default: {defaults.batch_size})")
    group.add_argument("--top-fraction", type=float, default=defaults.top_fraction,
                       help="share of every batch drawn from the source's best cells (0: uniform batches; "
                       f"default: {defaults.top_fraction:g})")
    group.add_argument("--top-quantile", type=float, default=defaults.top_quantile,
                       help=f"the best cells of a source: this top fraction of it by accuracy (default: "
                       f"{defaults.top_quantile:g}); only with --top-fraction > 0")
    group.add_argument("--samples-per-class", type=int, default=defaults.samples_per_class,
                       help=f"images per class fed to the dataset encoder (default: {defaults.samples_per_class})")
    group.add_argument("--conditioning-cells", type=int, default=defaults.conditioning_cells,
                       help="validation only: cells of an excluded NAS-Bench-201 table the GP is told before its "
                       f"post10 Spearman is measured in metrics.csv; never changes the model (default: "
                       f"{defaults.conditioning_cells})")
    group.add_argument("--selection", choices=SELECTIONS, default=defaults.selection,
                       help="which epoch model.pt keeps: top-cells (default): the one whose prior ranks the "
                            "NAS-Bench-201 training tables' 10 best cells highest, after the first fifth of the "
                            "epochs (spearman when no NAS-Bench-201 table is trained on); spearman: the best "
                            "held-out Spearman (MetaD2A records and held-out cells)")
    group = parser.add_argument_group("model")
    group.add_argument("--widths", type=_widths, default=kernel.widths, help=f"MLP xi widths (default: {','.join(map(str, kernel.widths))})")
    group.add_argument("--kernel", choices=KERNELS, default=kernel.kernel,
                       help=f"base kernel on the deep features (default: {kernel.kernel})")
    group.add_argument("--mean", choices=MEANS, default=kernel.mean,
                       help=f"the GP's prior mean: learned on the deep features, or constant (default: {kernel.mean})")
    group.add_argument("--arch-code-dim", type=int, default=kernel.arch.code_dim,
                       help=f"size of the GRU architecture encoder's code (default: {kernel.arch.code_dim})")
    group.add_argument("--arch-hidden-dim", type=int, default=kernel.arch.hidden_dim,
                       help=f"GRU hidden size of the architecture encoder (default: {kernel.arch.hidden_dim})")
    group.add_argument("--dataset-code-dim", type=int, default=kernel.dataset.code_dim,
                       help=f"size of the Set-Transformer dataset code (default: {kernel.dataset.code_dim})")
    group.add_argument("--dataset-hidden-dim", type=int, default=kernel.dataset.hidden_dim,
                       help=f"hidden size of the Set-Transformer dataset encoder (default: {kernel.dataset.hidden_dim})")
    group.add_argument("--no-dataset-encoder", action="store_true", help="zero the dataset code (ablation)")
    parser.add_argument("--keep-epochs", action="store_true",
                        help="also keep every epoch's kernel as OUT/epochs/NNN/model.pt (loadable as a surrogate directory, "
                             "about 2.5 MB), e.g. to study epoch selection or ensemble epochs; a resumed run keeps "
                             "the epochs still to train (a finished run that did not keep its epochs is refused)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def config_from_args(args: argparse.Namespace) -> MetaTrainConfig:
    exclude = tuple(name.strip() for item in args.exclude for name in item.split(",") if name.strip())
    kernel = DeepKernelConfig(
        arch=ArchEncoderConfig(code_dim=args.arch_code_dim, hidden_dim=args.arch_hidden_dim),
        dataset=DatasetEncoderConfig(code_dim=args.dataset_code_dim, hidden_dim=args.dataset_hidden_dim),
        widths=args.widths, kernel=args.kernel, mean=args.mean, use_dataset=not args.no_dataset_encoder,
    )  # fmt: skip
    return MetaTrainConfig(
        exclude=exclude, sources=tuple(args.source), seed=args.seed, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
        tasks_per_step=args.tasks_per_step, inner_steps=args.inner_steps, inner_lr=args.inner_lr,
        outer_step=args.outer_step, anneal_outer_step=not args.no_anneal, batch_size=args.batch_size,
        top_fraction=args.top_fraction, top_quantile=args.top_quantile, samples_per_class=args.samples_per_class,
        conditioning_cells=args.conditioning_cells, selection=args.selection, kernel=kernel,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _meta_train(args), on_interrupt="run the same command again to resume from the "
                       "last epoch")  # fmt: skip


def check_applicable(args: argparse.Namespace, config: MetaTrainConfig) -> None:
    """Refuse options that this command line would ignore.

    Raises:
        ConfigError: ``--jobs`` above 1 for a single model, or ``--top-quantile`` (other
            than its default) with uniform batches (``--top-fraction 0``).
    """
    if args.jobs > 1 and args.members == 1:
        raise ConfigError(f"--jobs {args.jobs} cannot change this run: --jobs runs ensemble members side by side and "
                          "goes with --members M > 1; leave it out to meta-train a single model")  # fmt: skip
    if config.top_fraction == 0 and config.top_quantile != MetaTrainConfig().top_quantile:
        raise ConfigError(f"--top-quantile {args.top_quantile:g} cannot change this run: with --top-fraction 0 "
                          "batches are uniform and never look at the best cells; give --top-fraction F > 0 to "
                          "draw that share of every batch from them, or leave --top-quantile out")  # fmt: skip


def _meta_train(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    out = args.out or Path("runs") / "meta" / ("no-" + "-".join(config.exclude) if config.exclude else "all")
    check_applicable(args, config)
    options = {"data_dir": args.data_dir, "device": args.device, "progress": not args.no_progress,
               "keep_epochs": args.keep_epochs}  # fmt: skip
    if args.members == 1:
        results = [meta_train(config, out, **options)]
    else:
        results = meta_train_ensemble(config, out, args.members, jobs=args.jobs, **options)
    for position, result in enumerate(results):
        best = next(row for row in result.metrics if row["epoch"] == result.best_epoch)
        resumed = f", resumed after epoch {result.resumed_from}" if result.resumed_from else ""
        member = f"member {position} (seed {config.seed + position}): " if len(results) > 1 else ""
        print(f"{member}meta-trained {len(result.metrics)} epochs in {result.seconds:.0f} s{resumed}; "
              f"model.pt is epoch {result.best_epoch}")  # fmt: skip
        print(f"  {format_row(best)}")
    print(f"  output: {out}")
    return 0
