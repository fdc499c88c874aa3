"""Search methods by name: what ``--method`` accepts.

Each entry builds a fresh searcher from a :class:`SearchContext`; each method's builder
lives beside it (TNAS's in :mod:`tnas.search.methods.tnas_setup`). :data:`METHODS` are the
black-box methods (many queries, the benchmark grid's); :data:`ONE_SHOT_METHODS` the
weight-sharing ones (one query: the cell derived from a trained supernet,
:mod:`tnas.search.methods.oneshot`). :func:`get_method` knows both.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tnas.errors import ConfigError
from tnas.oracles import NB201Table
from tnas.search.config import RunConfig
from tnas.search.methods.bananas import Bananas, BananasConfig
from tnas.search.methods.evolution import EvolutionConfig, RegularizedEvolution
from tnas.search.methods.gp_bo import GPBO, GPBOConfig
from tnas.search.methods.local_search import LocalSearch, LocalSearchConfig
from tnas.search.methods.nasbowl import NASBOWL, NASBOWLConfig
from tnas.search.methods.oneshot import build_one_shot, one_shot_config, one_shot_summary
from tnas.search.methods.peers import HEBOConfig, OptunaTPEConfig, build_hebo, build_optuna_tpe
from tnas.search.methods.random_search import RandomSearch
from tnas.search.methods.reinforce import Reinforce, ReinforceConfig
from tnas.search.methods.tnas import TNASConfig
from tnas.search.methods.tnas_setup import (
    TNAS_LEGACY_SETTINGS,
    UNTRAINED_SETTINGS,
    build_tnas,
    tnas_ignored_options,
    tnas_inert_settings,
    tnas_run_settings,
)
from tnas.search.methods.zero_shot import zero_shot_search
from tnas.search.protocol import Searcher
from tnas.search.settings_changes import (
    best_reading_returned,
    effective_settings,
    parallel_only,
    plain,
    settings_changes,
)
from tnas.space import FULL_SPACE, SearchSpace


@dataclass(frozen=True)
class SearchContext:
    """What a method factory may use to build its searcher.

    Attributes:
        config: the run's configuration (``config.options`` holds method settings).
        rng: the run's generator.
        data_dir: the data directory given by the user, if any.
        data_root: the folder of the full dataset (real-training runs), if any.
        progress: whether progress bars may be shown (e.g. meta-training on the spot).
        space: the cells the searcher may propose (the feasible cells of a constrained run,
            the cells a partial table holds).
        run_info: facts the factory wants recorded in ``config.json`` (filled in by it).
        run_dir: the run directory, for methods that keep state there (the one-shot
            methods' supernet); ``None`` when the run keeps none.
        device: where a method that trains networks itself runs them (``None``: cpu).
    """

    config: RunConfig
    rng: np.random.Generator
    data_dir: Path | None = None
    data_root: Path | None = None
    progress: bool = False
    space: SearchSpace = FULL_SPACE
    run_info: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    device: str | None = None


_ONE_WORKER = "it decides how proposals treat evaluations still running, and with one worker none is"
INERT_REASONS: dict[str, str] = {
    "pending": _ONE_WORKER,
    "constant_liar": _ONE_WORKER,
    "recommend_plausible": "it guards the posterior-mean recommendation, which this run does not make "
    "(exact observations under --observe mean, or recommend=observed)",
    "ucb_beta": "it weights the ucb acquisition, which this run does not use",
}
"""Why a setting is inert (see ``Method.inert_settings``), for the messages that refuse it."""


@dataclass(frozen=True)
class Method:
    """A registered search method.

    Attributes:
        name: the ``--method`` value.
        summary: one line for ``--help``.
        build: factory returning a fresh searcher.
        settings: the method's settings, recorded in ``config.json``.
        one_shot: a weight-sharing method (one query: its derived cell).
        tnas_family: TNAS or one of its ablations: the method takes TNAS's surrogate and
            search options (``--surrogate``, ``--members``, ``--init``...).
        legacy_settings: setting -> the value runs made before it was recorded used (see
            :mod:`tnas.search.settings_changes`); a setting added later without one makes
            every run recorded without it stale.
        inert_settings: the settings that cannot change a given run (its configuration and
            effective settings in, names out); left out when a run's record is compared.
        forced_settings: settings the method imposes over the run's options
            (``tnas-untrained``'s candidate pool).
        ignored_options: the run options the method cannot act on, whatever their value,
            given the run's options (``tnas-prior``'s BO settings), each with the reason; a
            command line that sets one is refused rather than silently ignored.
        run_settings: the defaults that differ for some runs (TNAS's constrained defaults:
            a constrained run searches with the source term and feature patience), over
            :attr:`settings`; see :meth:`settings_for`.
    """

    name: str
    summary: str
    build: Callable[[SearchContext], Searcher]
    settings: dict[str, Any]
    one_shot: bool = False
    tnas_family: bool = False
    legacy_settings: Mapping[str, Any] = field(default_factory=dict)
    inert_settings: Callable[[RunConfig, Mapping[str, Any]], frozenset[str]] = lambda config, settings: frozenset()
    forced_settings: Mapping[str, Any] = field(default_factory=dict)
    ignored_options: Callable[[Mapping[str, Any]], Mapping[str, str]] = lambda options: {}
    run_settings: Callable[[RunConfig], Mapping[str, Any]] = lambda config: {}

    def settings_for(self, config: RunConfig) -> dict[str, Any]:
        """The method's default settings for a run of ``config``: :attr:`settings`, with the
        :attr:`run_settings` the run calls for; what ``config.json`` records as the run's
        ``method_settings`` and what its options override."""
        return {**self.settings, **self.run_settings(config)}

    def unusable_options(self, config: RunConfig) -> dict[str, str]:
        """The options of ``config`` this method cannot act on in that run, each with the
        reason: :attr:`ignored_options` and the :attr:`inert_settings` of the run, except
        ``recommend`` (inert only when the run returns what it asks for, the best reading)."""
        effective = effective_settings(self.settings_for(config), config.options, self.forced_settings)
        reasons = dict(self.ignored_options(config.options))
        for name in sorted(self.inert_settings(config, effective) - {"recommend"}):
            reasons.setdefault(name, INERT_REASONS.get(name, "it has no effect on this run"))
        return reasons

    def changes_since(self, config: RunConfig, recorded: Mapping[str, Any] | None,
                      recorded_options: Mapping[str, Any] | None = None) -> list[str]:  # fmt: skip
        """How a run of ``config`` recorded with default settings ``recorded`` (its
        ``config.json``'s ``method_settings``) and options ``recorded_options`` (default:
        ``config``'s) would be searched differently by this code; empty when it would not
        (see :func:`~tnas.search.settings_changes.settings_changes`)."""
        current = self.settings_for(config)
        effective = effective_settings(current, config.options, self.forced_settings)
        return settings_changes(recorded, current, config.options, legacy=self.legacy_settings,
                                inert=self.inert_settings(config, effective), forced=self.forced_settings,
                                recorded_options=recorded_options)  # fmt: skip

    def without_restated_defaults(self, config: RunConfig, recorded: Mapping[str, Any] | None = None, *,
                                  only: Collection[str] | None = None) -> RunConfig:  # fmt: skip
        """``config`` without the options that cannot make it another search: those that
        restate this method's default for that run (:meth:`settings_for`) or the default
        ``recorded`` with it (a run's ``method_settings``: the command line records some
        defaults as options), and those the method ignores (:attr:`ignored_options`,
        :attr:`forced_settings`), as if they had not been given; ``only``: among these
        option names alone. A one-shot method's options are kept (its defaults depend on its
        protocol)."""
        if self.one_shot:
            return config
        defaults, then = self.settings_for(config), recorded or {}
        ignored = set(self.ignored_options(config.options)) | set(self.forced_settings)

        def dropped(name: str, value: Any) -> bool:
            if only is not None and name not in only:
                return False
            return name in ignored or any(name in known and plain(value) == plain(known[name])
                                          for known in (defaults, then))  # fmt: skip

        options = {name: value for name, value in config.options.items() if not dropped(name, value)}
        return config if options == config.options else replace(config, options=options)


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("rs", "random search, uniform without replacement (Li & Talwalkar 2019)",
               lambda context: RandomSearch(context.rng, context.space), {}),
        Method("re", "regularized evolution, population 10, sample 3 (Real et al. 2019)",
               lambda context: RegularizedEvolution(context.rng, space=context.space), asdict(EvolutionConfig())),
        Method("ls", "local search, 10 random starts, best-improvement moves (White et al. 2021)",
               lambda context: LocalSearch(context.rng, space=context.space), asdict(LocalSearchConfig())),
        Method("tnas", "TNAS: BO with the meta-learned deep-kernel GP (Shala et al. 2023)",
               lambda context: build_tnas(context), asdict(TNASConfig()), tnas_family=True,
               legacy_settings=TNAS_LEGACY_SETTINGS, inert_settings=tnas_inert_settings,
               ignored_options=partial(tnas_ignored_options, "meta"),
               run_settings=partial(tnas_run_settings, "meta")),
        Method("tnas-untrained", "TNAS ablation: the same deep kernel without meta-training",
               lambda context: build_tnas(context, "untrained"), asdict(TNASConfig(**UNTRAINED_SETTINGS)),
               tnas_family=True, legacy_settings=TNAS_LEGACY_SETTINGS, inert_settings=tnas_inert_settings,
               forced_settings=UNTRAINED_SETTINGS, ignored_options=partial(tnas_ignored_options, "untrained"),
               run_settings=partial(tnas_run_settings, "untrained")),
        Method("tnas-nodata", "TNAS ablation: a surrogate meta-trained without the dataset encoder",
               lambda context: build_tnas(context, "no-dataset"), asdict(TNASConfig()), tnas_family=True,
               legacy_settings=TNAS_LEGACY_SETTINGS, inert_settings=tnas_inert_settings,
               ignored_options=partial(tnas_ignored_options, "no-dataset"),
               run_settings=partial(tnas_run_settings, "no-dataset")),
        Method("tnas-prior", "TNAS ablation: cells in the order of the meta-learned prior, no BO (as MetaD2A)",
               lambda context: build_tnas(context, "prior"), {"source_weight": TNASConfig().source_weight},
               tnas_family=True, legacy_settings=TNAS_LEGACY_SETTINGS,
               ignored_options=partial(tnas_ignored_options, "prior"),
               run_settings=partial(tnas_run_settings, "prior")),
        Method("zero-shot", "zero-shot transfer: cells by the source tables' mean validation, no learning",
               lambda context: zero_shot_search(NB201Table.load(context.data_dir), context.config.dataset,
                                                context.space), {}),
        Method("bananas", "BANANAS: path encoding, MLP ensemble, ITS on mutations (White et al. 2021)",
               lambda context: Bananas(context.rng, space=context.space), asdict(BananasConfig()),
               legacy_settings={"recommend": "observed"}, inert_settings=best_reading_returned),
        Method("gp", "GP-BO: SingleTaskGP on one-hot cells, LogEI (BoTorch, Balandat et al. 2020)",
               lambda context: GPBO(context.rng, gp_config(context.config.options), context.space),
               asdict(GPBOConfig()), legacy_settings={"pending": "believer", "recommend": "observed"},
               inert_settings=lambda config, settings: (parallel_only(config, "pending")
                                                        | best_reading_returned(config, settings))),
        Method("optuna-tpe", "peer: Optuna's TPESampler, ask/tell on 6 categorical edges (Akiba et al. 2019)",
               lambda context: build_optuna_tpe(context), asdict(OptunaTPEConfig()),
               legacy_settings={"constant_liar": True},
               inert_settings=lambda config, settings: parallel_only(config, "constant_liar")),
        Method("hebo", "peer: HEBO (warped GP, MACE, NSGA-II), ask/tell on 6 edges (Cowen-Rivers et al. 2022)",
               lambda context: build_hebo(context), asdict(HEBOConfig())),
        Method("reinforce", "REINFORCE: softmax policy per edge, EMA baseline, Adam 0.001 (NAS-Bench-201 paper)",
               lambda context: Reinforce(context.rng, space=context.space), asdict(ReinforceConfig())),
        Method("nasbowl", "NASBOWL: GP with a Weisfeiler-Lehman graph kernel, EI on mutations (Ru et al. 2021)",
               lambda context: NASBOWL(context.rng, space=context.space), asdict(NASBOWLConfig()),
               legacy_settings={"recommend": "observed"}, inert_settings=best_reading_returned),
    )
}  # fmt: skip


def _one_shot_method(algorithm: str) -> Method:
    return Method(algorithm, one_shot_summary(algorithm), lambda context: build_one_shot(context, algorithm),
                  one_shot_config(algorithm, {}).to_dict(), one_shot=True)  # fmt: skip


ONE_SHOT_METHODS: dict[str, Method] = {name: _one_shot_method(name) for name in ("darts-v1", "darts-v2", "gdas")}


def gp_config(options: dict[str, Any]) -> GPBOConfig:
    """GP-BO's settings from a run's options (empty: the defaults)."""
    try:
        return GPBOConfig(**options)
    except TypeError as error:
        raise ConfigError(f"unknown GP-BO option: {error}") from None


def _registered(name: str) -> Method | None:
    return METHODS.get(name) or ONE_SHOT_METHODS.get(name)


def get_method(name: str) -> Method:
    """The method called ``name``."""
    method = _registered(name)
    if method is None:
        raise ConfigError(f"unknown method {name!r}; methods: {', '.join([*METHODS, *ONE_SHOT_METHODS])}")
    return method


def stale_settings(config: RunConfig, record: Mapping[str, Any] | None) -> list[str]:
    """How this code would search a run of ``config`` recorded in ``config.json`` as
    ``record`` differently from how it was searched (``Method.changes_since``; a one-shot
    method: its protocol's settings, recorded under ``one_shot``); empty when it would not,
    when the record holds no settings to judge by, or when its method is not registered here."""
    method = _registered(config.method)
    if method is None or not record:
        return []
    if method.one_shot:
        recorded = (record.get("one_shot") or {}).get("settings")
        if recorded is None:
            return []
        return settings_changes(recorded, one_shot_config(config.method, config.options).to_dict(), {}, legacy={})
    if "method_settings" not in record:
        return []
    recorded_options = (record.get("config") or {}).get("options")
    return method.changes_since(config, record["method_settings"],
                                recorded_options if isinstance(recorded_options, dict) else None)


def run_differences(stored: RunConfig, config: RunConfig, recorded: Mapping[str, Any] | None = None) -> list[str]:
    """How ``config`` is another run than ``stored`` (:meth:`RunConfig.differences`), options
    that restate a default aside (``Method.without_restated_defaults``; ``recorded``: the
    stored run's ``method_settings``, the defaults when it was made). So a run recorded with
    ``--source-weight 0.25`` spelt out is the run the same command makes where 0.25 became the
    default, and one whose record spells out a default that has changed since is the same run
    as the command without the flag: a changed default is :func:`stale_settings`' business,
    not the run's identity."""
    method = _registered(config.method)
    if method is not None and stored.method == config.method:
        then = recorded or {}
        given = method.without_restated_defaults(config)
        kept = method.without_restated_defaults(stored, then).options
        # an option given now is compared with what the stored run searched with: its own
        # value of it, restated default or not, else the default recorded with it
        searched = {**then, **stored.options}
        kept = {**kept, **{name: searched[name] for name in given.options if name in searched}}
        stored, config = replace(stored, options=kept), given
    return stored.differences(config)


def command_config(config: RunConfig, recorded: Mapping[str, Any] | None = None) -> RunConfig:
    """The configuration of the command that makes the run of ``config`` with this code:
    its options less those that restate a default, today's or the one ``recorded`` with the
    run (``Method.without_restated_defaults``); what a run's own record is judged against
    for staleness (a default of its day, spelt out, follows the default)."""
    method = _registered(config.method)
    if method is None:
        return config
    return method.without_restated_defaults(config, recorded)


def same_run(stored: RunConfig, config: RunConfig, recorded: Mapping[str, Any] | None = None) -> bool:
    """Whether ``config`` continues the run recorded as ``stored`` (:func:`run_differences`)."""
    return not run_differences(stored, config, recorded)


def registered_settings(config: RunConfig) -> dict[str, Any] | None:
    """The default settings of ``config.method`` for a run of ``config`` (``Method.settings_for``;
    ``None``: not a registered method)."""
    method = _registered(config.method)
    return None if method is None else method.settings_for(config)


def make_searcher(config: RunConfig, *, data_dir: Path | None = None, data_root: Path | None = None,
                  progress: bool = False, run_info: dict[str, Any] | None = None,
                  space: SearchSpace | None = None, run_dir: Path | None = None,
                  device: str | None = None) -> Searcher:  # fmt: skip
    """A fresh searcher for ``config``, seeded with ``config.seed``, proposing cells of ``space``.

    ``run_info``, if given, receives what the method wants recorded in ``config.json``.
    ``run_dir`` and ``device``: see :class:`SearchContext` (the one-shot methods need them).
    ``space=None`` is every cell for an unconstrained NAS-Bench-201 run, and otherwise the
    run's own space (its oracle is built to find it: pass the space you have to save that).
    """
    if space is None:
        space = FULL_SPACE
        if config.constraints or config.oracle == "user":
            from tnas.search.oracle_setup import build_oracle, search_space

            space = search_space(config, build_oracle(config, data_dir=data_dir)[0], data_dir)
    context = SearchContext(config=config, rng=np.random.default_rng(config.seed), data_dir=data_dir,
                            data_root=data_root, progress=progress, space=space,
                            run_info=run_info if run_info is not None else {}, run_dir=run_dir,
                            device=device)  # fmt: skip
    return get_method(config.method).build(context)
