"""Building TNAS and its ablations for a run: surrogate, target encoding, searcher.

Every variant shares the surrogate resolution (default surrogate from the cache, or
``--surrogate``), the encoding of the target dataset and TNAS's settings:

- ``meta`` (``tnas``): the meta-trained surrogate (by default an ensemble) and BO;
- ``no-dataset`` (``tnas-nodata``): a surrogate meta-trained *without* the dataset encoder
  (its GP never saw a dataset code), and the same BO;
- ``prior`` (``tnas-prior``): the cells in the order of the meta-trained prior mean, never
  updated on the target's observations (predictor-only transfer, as MetaD2A);
- ``untrained`` (``tnas-untrained``): the same deep kernel randomly initialised, and BO over
  all cells (a random prior defines no trust region: ``candidate_pool`` is ignored).

The target's image sample is drawn with ``sample_seed`` (default: the run seed), as a
user's own sample of their dataset would be drawn. A constrained run searches with its own
defaults (:data:`CONSTRAINED_SETTINGS`, through :func:`tnas_run_settings`).

A target without images (a table of your own for a task that is not an image dataset of
the registry, or one you cannot share) gets the mean dataset code of the shipped benchmark
datasets other than the target (``dataset_code="mean"``; chosen by measurement, see the
README's *Targets without images*). ``config.json`` records it under ``target_sample``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tnas.errors import ConfigError
from tnas.search.methods.tnas import TNASConfig
from tnas.search.settings_changes import best_reading_returned, parallel_only
from tnas.typecheck import check_field_types

if TYPE_CHECKING:
    from tnas.search.config import RunConfig
    from tnas.search.methods import SearchContext
    from tnas.search.protocol import Searcher

TNAS_VARIANTS: dict[str, str] = {
    "meta": "the meta-trained surrogate (TNAS)",
    "no-dataset": "ablation: a surrogate meta-trained without the dataset encoder",
    "prior": "ablation: cells in the order of the meta-learned prior mean, no update on observations",
    "untrained": "ablation: the same deep kernel, randomly initialised (seeded by the run), no meta-training",
}

SURROGATE_OPTIONS: dict[str, Any] = {
    "surrogate": None,
    "allow_target_in_meta_train": False,
    "surrogate_seed": 0,
    "members": None,
    "sample_seed": None,
    "dataset_code": None,
    "last_epochs": 0,
}
"""Run options that choose the surrogate and the target's sample (not searcher settings):
``surrogate`` a directory (``None``: the default); ``surrogate_seed`` which default
surrogate of the family; ``members`` its size (``None``: ``DEFAULT_MEMBERS``);
``sample_seed`` the seed of the target's image sample (``None``: the run seed);
``dataset_code`` what encodes the target: ``"images"`` its image sample, ``"mean"`` the mean
code of the shipped samples other than the target (:func:`tnas.encoders.inputs.stand_in_inputs`),
``None`` its images when the registry has the dataset, else (a table of your own) the mean;
``last_epochs`` K > 0 searches with the last K epochs' kernels of every member instead of
each member's selected epoch (members meta-trained with ``--keep-epochs``;
:func:`tnas.meta_train.ensemble.last_epochs`)."""

DATASET_CODES = ("images", "mean")


@dataclass(frozen=True)
class _SurrogateOptions:
    """The surrogate options as a dataclass, for their type check (:data:`SURROGATE_OPTIONS`)."""

    surrogate: str | None
    allow_target_in_meta_train: bool
    surrogate_seed: int
    members: int | None
    sample_seed: int | None
    dataset_code: str | None
    last_epochs: int


def check_surrogate_options(options: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` when a surrogate option is of the wrong type or range."""
    check_field_types(_SurrogateOptions(**options))
    if options["surrogate_seed"] < 0 or options["last_epochs"] < 0 or (options["members"] or 1) < 1:
        raise ConfigError("surrogate_seed and last_epochs must be >= 0, members >= 1")


def split_options(options: Mapping[str, Any],
                  run_settings: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], TNASConfig]:  # fmt: skip
    """Surrogate options (with defaults) and the searcher's :class:`TNASConfig`: the
    ``options`` over the run's defaults (``run_settings``, e.g. :func:`tnas_run_settings`,
    over :class:`TNASConfig`'s)."""
    options = {**(run_settings or {}), **options}
    chosen = {name: options.pop(name, default) for name, default in SURROGATE_OPTIONS.items()}
    check_surrogate_options(chosen)
    known = {item.name for item in fields(TNASConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown TNAS option(s): {', '.join(unknown)}")
    return chosen, TNASConfig(**options)


UNTRAINED_SETTINGS: dict[str, Any] = {"candidate_pool": 0}
"""What ``tnas-untrained`` searches with on top of TNAS's settings: a random prior defines no
trust region, so every unevaluated cell is scored."""

TNAS_LEGACY_SETTINGS: dict[str, Any] = {
    "pending": "believer",
    "recommend_plausible": None,
    "source_weight": 0.0,
    "feature_patience": None,
}
"""The :class:`TNASConfig` fields added after runs were first recorded, with the value those
runs effectively used: pending cells as kriging believer (ignored with one worker), the
posterior-mean recommendation over every evaluated cell, no source term, the feature MLP
fine-tuned from the first fit (:mod:`tnas.search.settings_changes`). A field added from now
on gets its entry here, the value that keeps the runs made before it as they were."""


def tnas_inert_settings(config: RunConfig, settings: Mapping[str, Any]) -> frozenset[str]:
    """The TNAS settings that cannot change a run of ``config`` with effective ``settings``:
    ``pending`` with one worker; ``recommend`` (between ``auto`` and ``observed``) and
    ``recommend_plausible`` when the best observed cell is returned (exact observations, the
    seed means: the runner tells no seed slot); ``ucb_beta`` with another acquisition."""
    inert = set(parallel_only(config, "pending") | best_reading_returned(config, settings))
    if settings.get("recommend") == "observed" or "recommend" in inert:
        inert.add("recommend_plausible")
    if settings.get("acquisition") != "ucb":
        inert.add("ucb_beta")
    return frozenset(inert)


CONSTRAINED_SETTINGS: dict[str, Any] = {"source_weight": 0.25, "feature_patience": 13}
"""TNAS's defaults for a run with constraints (latency, parameters, FLOPs), over
:class:`TNASConfig`'s: the source term at weight 0.25 and the head alone fine-tuned until 13
observations bring no new best. Measured on HELP's 15 latency limits on CIFAR-100 (README,
*Why the source term is an option*): 11 of 15 settings within 10 queries of the best
feasible cell against 5 with the unconstrained defaults, on draws it was tuned on and on two
it was not; the meta-learned prior, trained on the best cells of unconstrained tables, ranks
the best *feasible* cells worse than the source tables do."""


def tnas_run_settings(variant: str, config: RunConfig) -> dict[str, Any]:
    """The defaults a run of ``config`` of ``variant`` (a key of :data:`TNAS_VARIANTS`)
    searches with over :class:`TNASConfig`'s: :data:`CONSTRAINED_SETTINGS` for a constrained
    run, less what the variant cannot act on (:func:`tnas_ignored_options`); none otherwise."""
    if not config.constraints:
        return {}
    ignored = tnas_ignored_options(variant, config.options)
    return {name: value for name, value in CONSTRAINED_SETTINGS.items() if name not in ignored}


SURROGATE_CHOICE = ("surrogate_seed", "members")
"""The options that choose a *default* surrogate (no effect with a ``surrogate`` directory)."""


def tnas_ignored_options(variant: str, options: Mapping[str, Any]) -> dict[str, str]:
    """The options of a run (surrogate options and :class:`TNASConfig` fields) that
    ``variant`` (a key of :data:`TNAS_VARIANTS`) cannot act on, whatever their value, given
    the run's other ``options``; each with the reason:

    - ``prior``: every searcher setting but ``source_weight`` (it ranks cells by the prior
      alone, no BO);
    - ``untrained``: what chooses a meta-trained surrogate, the candidate pool (forced to
      every cell) and ``source_weight`` (no meta-training tables to take a source term from);
    - ``no-dataset``: what chooses the target's dataset code (``sample_seed``,
      ``dataset_code``): its kernel never sees one;
    - with a ``surrogate`` directory: ``surrogate_seed`` and ``members``, which choose a
      default surrogate; without one, ``allow_target_in_meta_train`` (a default surrogate
      never saw the target).

    Settings that are inert only for some runs (``pending`` with one worker...) are
    :func:`tnas_inert_settings`.
    """
    ignored: dict[str, str] = {}
    if variant == "prior":
        why = "tnas-prior ranks the cells by the meta-learned prior alone, without BO"
        ignored |= dict.fromkeys(sorted({item.name for item in fields(TNASConfig)} - {"source_weight"}), why)
    if variant == "no-dataset":
        why = "tnas-nodata's kernel was meta-trained without the dataset encoder and never sees a dataset code"
        ignored |= dict.fromkeys(("sample_seed", "dataset_code"), why)
    if variant == "untrained":
        why = "tnas-untrained searches with a kernel that was never meta-trained, over every cell"
        ignored |= dict.fromkeys(("surrogate", "allow_target_in_meta_train", "last_epochs", *SURROGATE_CHOICE,
                                  *UNTRAINED_SETTINGS, "source_weight"), why)  # fmt: skip
    elif options.get("surrogate") is not None:
        ignored |= dict.fromkeys(SURROGATE_CHOICE, "the surrogate is a given directory, so no default surrogate is "
                                 "chosen")
    else:
        ignored["allow_target_in_meta_train"] = "the default surrogate is meta-trained without the target"
    return ignored


def build_tnas(context: SearchContext, variant: str = "meta") -> Searcher:
    """TNAS (or an ablation, a key of :data:`TNAS_VARIANTS`) on the run's dataset."""
    from tnas.datasets import get_dataset
    from tnas.encoders import ImageFeaturizer, dataset_inputs
    from tnas.encoders.inputs import stand_in_inputs
    from tnas.meta_train import MetaTrainConfig
    from tnas.meta_train.data import NB201_SOURCES
    from tnas.meta_train.ensemble import last_epochs
    from tnas.models import DeepKernel
    from tnas.search.methods.prior_ranking import PriorRanking
    from tnas.search.methods.tnas import TNASSearcher, blended_prior, codes_and_prior, target_scale_of
    from tnas.search.surrogates import DEFAULT_MEMBERS, resolve_surrogate

    chosen, config = split_options(context.config.options, tnas_run_settings(variant, context.config))
    sample_seed = context.config.seed if chosen["sample_seed"] is None else int(chosen["sample_seed"])
    if variant == "untrained":  # no meta-learned prior: no prior trust region either
        config = replace(config, **UNTRAINED_SETTINGS)
        defaults = MetaTrainConfig()
        with torch.random.fork_rng():
            torch.manual_seed(context.config.seed)
            kernels = [DeepKernel(defaults.kernel).eval()]
        samples_per_class, scale = defaults.samples_per_class, None
        meta_sources: tuple[str, ...] = ()
        context.run_info["surrogate"] = {"path": None, "origin": "untrained (random initialisation, run seed)",
                                         "exclude": [], "meta_trained": False}  # fmt: skip
    else:
        members = DEFAULT_MEMBERS if chosen["members"] is None else int(chosen["members"])
        surrogate, info = resolve_surrogate(
            context.config.dataset, chosen["surrogate"], seed=int(chosen["surrogate_seed"]), members=members,
            use_dataset=variant != "no-dataset", allow_target=bool(chosen["allow_target_in_meta_train"]),
            data_dir=context.data_dir, progress=context.progress,
        )  # fmt: skip
        if variant == "no-dataset" and info["uses_dataset_code"]:
            raise ConfigError(f"tnas-nodata needs a surrogate meta-trained without the dataset encoder "
                              f"(python -m tnas.meta_train --no-dataset-encoder); {surrogate.path} has one")  # fmt: skip
        if chosen["last_epochs"]:
            surrogate = last_epochs(surrogate, int(chosen["last_epochs"]))
            info = {**info, "last_epochs": int(chosen["last_epochs"]),
                    "epoch": [member.epoch for member in surrogate.members]}  # fmt: skip
        kernels, samples_per_class = surrogate.kernels, surrogate.samples_per_class
        scale = target_scale_of(surrogate.statistics)
        meta_sources = tuple(name for name in surrogate.statistics if name in NB201_SOURCES)
        context.run_info["surrogate"] = {**info, "variant": variant, "target_scale": scale}
    code = _dataset_code_source(context, chosen["dataset_code"])
    featurizer = ImageFeaturizer()
    if variant == "no-dataset":  # its kernel zeroes every dataset code: no image sample to featurise
        features, mask = _unseen_dataset_inputs(kernels[0], samples_per_class)
        context.run_info["target_sample"] = {"images": False, "dataset_code": "none, as the kernel was "
                                             "meta-trained without the dataset encoder"}  # fmt: skip
    elif code == "images":
        dataset = get_dataset(context.config.dataset, data_dir=context.data_dir, data_root=context.data_root)
        features, mask = dataset_inputs(dataset, featurizer, np.random.default_rng(sample_seed), samples_per_class,
                                        progress=context.progress)  # fmt: skip
        features, mask = features[None], mask[None]
        context.run_info["target_sample"] = {"seed": sample_seed, "samples_per_class": samples_per_class}
    else:
        features, mask, sources = stand_in_inputs(context.config.dataset, featurizer, sample_seed, samples_per_class,
                                                  data_dir=context.data_dir, progress=context.progress)  # fmt: skip
        context.run_info["target_sample"] = {"seed": sample_seed, "samples_per_class": samples_per_class,
                                             "images": False, "dataset_code": f"mean of {', '.join(sources)}"}  # fmt: skip
    config, source_order = _source_scores(context, config, meta_sources)
    if variant == "prior":  # the order of the searcher's prior, source term included
        prior, _ = blended_prior(codes_and_prior(kernels, features, mask)[1], source_order, config.source_weight)
        return PriorRanking(prior, context.space)
    kernel = kernels[0] if len(kernels) == 1 else kernels
    return TNASSearcher(kernel, features, mask, context.rng, config, target_scale=scale,
                        space=context.space, source_order=source_order)  # fmt: skip


def _unseen_dataset_inputs(kernel: Any, samples_per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero inputs of the dataset encoder, ``1 x 1 x samples_per_class x feature_dim`` and
    their mask, for a kernel meta-trained without it: it zeroes the code of any input, so
    ``tnas-nodata`` searches exactly as with the target's features without computing them."""
    if kernel.config.use_dataset:
        raise ConfigError("a kernel meta-trained with the dataset encoder needs the target's dataset code")
    dim = kernel.config.dataset.feature_dim
    return torch.zeros(1, 1, samples_per_class, dim), torch.ones(1, 1, samples_per_class, dtype=torch.bool)


def _source_scores(context: SearchContext, config: TNASConfig,
                   meta_sources: tuple[str, ...]) -> tuple[TNASConfig, torch.Tensor | None]:  # fmt: skip
    """The searcher's settings and the ``15625`` source scores it needs (``None``: none).

    The source term of ``source_weight`` averages the NAS-Bench-201 tables the surrogate
    meta-trained on (``meta_sources``), so that it adds no data the surrogate did not see;
    without such a table (a surrogate meta-trained on MetaD2A's records or your own data
    only, or ``tnas-untrained``) the term is off, and ``config.json`` says so. Otherwise
    ``init="sources"`` starts from the zero-shot method's order (every shipped table but
    the target's own; with the source term, from the term's tables).
    """
    from tnas.oracles import NB201Table
    from tnas.search.methods.zero_shot import source_average, zero_shot_sources

    if config.source_weight > 0 and not meta_sources:
        context.run_info["source_term"] = {"source_weight": 0.0, "requested": config.source_weight,
                                           "why": "the surrogate meta-trained on no NAS-Bench-201 table"}  # fmt: skip
        config = replace(config, source_weight=0.0)
    if config.source_weight > 0:
        sources = meta_sources
        context.run_info["source_term"] = {"source_weight": config.source_weight, "sources": list(sources)}
    elif config.init == "sources":
        sources = zero_shot_sources(context.config.dataset)
    else:
        return config, None
    if config.init == "sources":
        context.run_info["initial_design"] = {"init": "sources", "sources": list(sources)}
    return config, torch.as_tensor(source_average(NB201Table.load(context.data_dir), sources))


def _dataset_code_source(context: SearchContext, requested: str | None) -> str:
    """``images`` or ``mean`` (see ``SURROGATE_OPTIONS``), checked against the run's dataset."""
    from tnas.datasets import has_images

    if requested not in (None, *DATASET_CODES):
        raise ConfigError(f"dataset_code must be one of {', '.join(DATASET_CODES)}, got {requested!r}")
    if requested == "images" or (requested is None and has_images(context.config.dataset)):
        return "images"
    if requested is None and context.config.oracle != "user":
        return "images"  # get_dataset names what is missing
    return "mean"

