"""Search methods by name: what ``--method`` accepts.

Each entry builds a fresh searcher from a :class:`SearchContext`. Later methods (TNAS,
BANANAS, GP-BO) register here too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from tnas.errors import ConfigError
from tnas.search.config import RunConfig
from tnas.search.methods.evolution import EvolutionConfig, RegularizedEvolution
from tnas.search.methods.local_search import LocalSearch, LocalSearchConfig
from tnas.search.methods.random_search import RandomSearch
from tnas.search.protocol import Searcher


@dataclass(frozen=True)
class SearchContext:
    """What a method factory may use to build its searcher."""

    config: RunConfig
    rng: np.random.Generator


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
    )
}  # fmt: skip


def get_method(name: str) -> Method:
    """The method called ``name``."""
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; methods: {', '.join(METHODS)}") from None


def make_searcher(config: RunConfig) -> Searcher:
    """A fresh searcher for ``config``, seeded with ``config.seed``."""
    context = SearchContext(config=config, rng=np.random.default_rng(config.seed))
    return get_method(config.method).build(context)
