"""Search methods by name: what ``--method`` accepts.

Each entry builds a fresh searcher from a :class:`SearchContext`. Later methods (TNAS,
BANANAS, GP-BO) register here too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tnas.errors import ConfigError
from tnas.search.config import RunConfig
from tnas.search.methods.bananas import Bananas, BananasConfig
from tnas.search.methods.evolution import EvolutionConfig, RegularizedEvolution
from tnas.search.methods.gp_bo import GPBO, GPBOConfig
from tnas.search.methods.local_search import LocalSearch, LocalSearchConfig
from tnas.search.methods.peers import HEBOConfig, OptunaTPEConfig, build_hebo, build_optuna_tpe
from tnas.search.methods.random_search import RandomSearch
from tnas.search.methods.tnas import TNASConfig
from tnas.search.protocol import Searcher


DATASET_SAMPLE_SEED = 0
"""Seed of the per-class image sample that encodes a search's dataset: fixed, so that every
run on a dataset sees the same dataset code (and its features are featurised once)."""


TNAS_VARIANTS: dict[str, str] = {
    "meta": "the meta-trained deep kernel (TNAS)",
    "untrained": "ablation: the same deep kernel, randomly initialised (seeded by the run), no meta-training",
    "no-dataset": "ablation: the meta-trained deep kernel with the dataset code zeroed (no dataset encoder)",
}


def build_tnas(context: SearchContext, variant: str = "meta") -> Searcher:
    """TNAS on the run's dataset with the surrogate named by ``config.options``.

    ``variant`` (a key of :data:`TNAS_VARIANTS`) selects the full method or an ablation;
    everything else (dataset encoding, initial design, fine-tuning, acquisition) is shared.
    """
    import torch

    from tnas.datasets import get_dataset
    from tnas.encoders import ImageFeaturizer, dataset_inputs
    from tnas.meta_train import MetaTrainConfig
    from tnas.models import DeepKernel
    from tnas.search.methods.tnas import TNASSearcher, target_scale_of
    from tnas.search.surrogates import resolve_surrogate

    options = dict(context.config.options)
    surrogate = options.pop("surrogate", None)
    allow = bool(options.pop("allow_target_in_meta_train", False))
    try:
        config = TNASConfig(**options)
    except TypeError as error:
        raise ConfigError(f"unknown TNAS option: {error}") from None
    if variant == "untrained":
        defaults = MetaTrainConfig()
        with torch.random.fork_rng():
            torch.manual_seed(context.config.seed)
            kernel = DeepKernel(defaults.kernel).eval()
        samples_per_class, scale = defaults.samples_per_class, None
        context.run_info["surrogate"] = {"path": None, "origin": "untrained (random initialisation, run seed)",
                                         "exclude": [], "meta_trained": False}  # fmt: skip
    else:
        model, info = resolve_surrogate(context.config.dataset, surrogate, allow_target=allow,
                                        data_dir=context.data_dir, progress=context.progress)  # fmt: skip
        kernel, samples_per_class = model.kernel, model.samples_per_class
        scale = target_scale_of(model.statistics)
        if variant == "no-dataset":
            kernel.config = replace(kernel.config, use_dataset=False)
        context.run_info["surrogate"] = {**info, "variant": variant, "target_scale": scale}
    dataset = get_dataset(context.config.dataset, data_dir=context.data_dir, data_root=context.data_root)
    sample_rng = np.random.default_rng(DATASET_SAMPLE_SEED)  # the dataset's fixed sample, whatever the run seed
    features, mask = dataset_inputs(dataset, ImageFeaturizer(), sample_rng, samples_per_class,
                                    progress=context.progress)  # fmt: skip
    return TNASSearcher(kernel, features[None], mask[None], context.rng, config, target_scale=scale)


@dataclass(frozen=True)
class SearchContext:
    """What a method factory may use to build its searcher.

    Attributes:
        config: the run's configuration (``config.options`` holds method settings).
        rng: the run's generator.
        data_dir: the data directory given by the user, if any.
        data_root: the folder of the full dataset (real-training runs), if any.
        progress: whether progress bars may be shown (e.g. meta-training on the spot).
        run_info: facts the factory wants recorded in ``config.json`` (filled in by it).
    """

    config: RunConfig
    rng: np.random.Generator
    data_dir: Path | None = None
    data_root: Path | None = None
    progress: bool = False
    run_info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """A registered search method.

    Attributes:
        name: the ``--method`` value.
        summary: one line for ``--help``.
        build: factory returning a fresh searcher.
        settings: the method's settings, recorded in ``config.json``.
    """

    name: str
    summary: str
    build: Callable[[SearchContext], Searcher]
    settings: dict[str, Any]


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("rs", "random search, uniform without replacement (Li & Talwalkar 2019)",
               lambda context: RandomSearch(context.rng), {}),
        Method("re", "regularized evolution, population 10, sample 3 (Real et al. 2019)",
               lambda context: RegularizedEvolution(context.rng), asdict(EvolutionConfig())),
        Method("ls", "local search, 10 random starts, best-improvement moves (White et al. 2021)",
               lambda context: LocalSearch(context.rng), asdict(LocalSearchConfig())),
        Method("tnas", "TNAS: BO with the meta-learned deep-kernel GP (Shala et al. 2023)",
               lambda context: build_tnas(context), asdict(TNASConfig())),
        Method("tnas-untrained", "TNAS ablation: the same deep kernel without meta-training",
               lambda context: build_tnas(context, "untrained"), asdict(TNASConfig())),
        Method("tnas-nodata", "TNAS ablation: meta-trained kernel with the dataset code zeroed",
               lambda context: build_tnas(context, "no-dataset"), asdict(TNASConfig())),
        Method("bananas", "BANANAS: path encoding, MLP ensemble, ITS on mutations (White et al. 2021)",
               lambda context: Bananas(context.rng), asdict(BananasConfig())),
        Method("gp", "GP-BO: SingleTaskGP on one-hot cells, LogEI (BoTorch, Balandat et al. 2020)",
               lambda context: GPBO(context.rng), asdict(GPBOConfig())),
        Method("optuna-tpe", "peer: Optuna's TPESampler, ask/tell on 6 categorical edges (Akiba et al. 2019)",
               lambda context: build_optuna_tpe(context), asdict(OptunaTPEConfig())),
        Method("hebo", "peer: HEBO (warped GP, MACE, NSGA-II), ask/tell on 6 edges (Cowen-Rivers et al. 2022)",
               lambda context: build_hebo(context), asdict(HEBOConfig())),
    )
}  # fmt: skip


def get_method(name: str) -> Method:
    """The method called ``name``."""
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; methods: {', '.join(METHODS)}") from None


def make_searcher(config: RunConfig, *, data_dir: Path | None = None, data_root: Path | None = None,
                  progress: bool = False, run_info: dict[str, Any] | None = None) -> Searcher:  # fmt: skip
    """A fresh searcher for ``config``, seeded with ``config.seed``.

    ``run_info``, if given, receives what the method wants recorded in ``config.json``.
    """
    context = SearchContext(config=config, rng=np.random.default_rng(config.seed), data_dir=data_dir,
                            data_root=data_root, progress=progress,
                            run_info=run_info if run_info is not None else {})  # fmt: skip
    return get_method(config.method).build(context)
