"""The one-shot methods as searchers: DARTS-V1, DARTS-V2 and GDAS through the ordinary runner.

A weight-sharing search (:mod:`tnas.train.oneshot`) trains the supernet on the dataset's
images, then derives one cell. Run through ``python -m tnas.search --method darts-v1``, the
search happens inside the searcher's first ``ask()``, which returns the derived cell; the
runner then evaluates that cell as the run's one query (table lookup, NAS-Bench-201's
protocol for one-shot methods, or real training with ``--oracle train``) and writes the
usual run directory. The supernet's state lives in ``RUN_DIR/oneshot/`` (checkpoint after
every epoch, ``epochs.csv`` with the derived cell per epoch, ``alphas.csv`` with the
architecture weights per epoch, ``search.json`` once finished), so a killed run resumes
its search where it stopped and a finished one is never searched again.

The search data are the dataset's train and validation splits as the real-training oracle
cuts them (:func:`tnas.datasets.splits.get_splits`): a registry dataset's offline sample,
or the full dataset under ``data_root``. The method's options (``RunConfig.options``):
``protocol`` (``cpu`` or ``nb201``), ``epochs`` (overrides the protocol's), ``data_root``
and ``valid_fraction`` (table runs; a real-training run uses its oracle's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tnas.datasets import canonical_name
from tnas.datasets.splits import SplitConfig, get_splits
from tnas.errors import ConfigError, SearcherError
from tnas.oracles import Evaluation
from tnas.space import Cell
from tnas.train.oneshot import ALGORITHMS, OneShotConfig, OneShotResult, search

STATE_FOLDER = "oneshot"
OPTION_NAMES = ("protocol", "epochs", "data_root", "valid_fraction")


class OneShotSearcher:
    """Proposes the cell a weight-sharing search derives, once; ``search`` runs on the first ask."""

    def __init__(self, run_search: Callable[[], OneShotResult]) -> None:
        self._run_search = run_search
        self.result: OneShotResult | None = None
        self._told = False

    def ask(self, pending: Sequence[Cell] = ()) -> Cell:
        if self._told or pending:
            raise SearcherError("a one-shot search derives a single cell: its run has one query (--budget 1)")
        if self.result is None:
            self.result = self._run_search()
        return self.result.cell

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        self._told = True


def one_shot_config(algorithm: str, options: dict[str, Any]) -> OneShotConfig:
    """The search settings of a run's options (see the module docstring)."""
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise ConfigError(f"unknown one-shot option(s) {', '.join(unknown)}; options: {', '.join(OPTION_NAMES)}")
    overrides = {"epochs": options["epochs"]} if options.get("epochs") is not None else {}
    return OneShotConfig.for_protocol(algorithm, options.get("protocol", "cpu"), **overrides)


def build_one_shot(context: Any, algorithm: str) -> OneShotSearcher:
    """The searcher of ``algorithm`` for a :class:`~tnas.search.methods.SearchContext`.

    Raises:
        ConfigError: a budget other than one query, several workers, constraints, or no
            run directory to keep the search in.
        DatasetNotFoundError: the dataset has no images to search on.
    """
    config = context.config
    if config.budget != 1 or config.workers != 1:
        raise ConfigError(f"{algorithm} derives one cell from its supernet: run it with --budget 1 and one worker")
    if config.constraints:
        raise ConfigError(f"{algorithm} derives the argmax cell without regard to limits: leave out the constraints")
    if context.run_dir is None:
        raise ConfigError(f"{algorithm} keeps its supernet in the run directory: give the run an --out folder")
    settings = one_shot_config(algorithm, config.options)
    trained = config.oracle == "train"
    source = config.oracle_options if trained else config.options
    data_root = source.get("data_root") or (str(context.data_root) if context.data_root else None)
    split = SplitConfig(valid_fraction=source.get("valid_fraction", SplitConfig().valid_fraction))
    splits = get_splits(canonical_name(config.dataset), data_dir=context.data_dir, data_root=data_root, config=split)
    device = context.device or "cpu"
    state_dir = Path(context.run_dir) / STATE_FOLDER
    context.run_info["one_shot"] = {
        "algorithm": algorithm, "settings": settings.to_dict(), "device": device, "state": str(state_dir),
        "search_data": {"dataset": splits.name, "source": splits.source, **splits.sizes()},
    }  # fmt: skip

    def run_search() -> OneShotResult:
        result = search(settings, splits, seed=config.seed, state_dir=state_dir, device=device,
                        progress=context.progress)  # fmt: skip
        context.run_info["one_shot"]["search_seconds"] = result.seconds
        return result

    return OneShotSearcher(run_search)


def one_shot_summary(algorithm: str) -> str:
    """The ``--help`` line of a one-shot method."""
    return f"one-shot: {ALGORITHMS[algorithm]}; one query, the derived cell"
