"""Peer libraries as search methods: Optuna's TPE and HEBO, driven through their own ask/tell APIs.

Both adapters search the same space as every other method: six categorical parameters
``edge0`` .. ``edge5`` (arch-string edge order), each one of the five operation names of
:data:`~tnas.space.OPERATIONS`. Nothing of NAS-Bench-201's structure (the index, the DAG,
neighbourhoods) is given to the peer; it sees the cells as a plain categorical space.

- ``optuna-tpe``: Optuna's ``TPESampler`` (tree-structured Parzen estimator; Bergstra et
  al., NeurIPS 2011; Akiba et al., KDD 2019 for Optuna) in a maximising in-memory study,
  driven by ``study.ask(distributions)`` / ``study.tell(trial, value)``. Settings are
  Optuna 5.0's defaults, passed explicitly where older versions differ: 10 random startup
  trials, 24 EI candidates, multivariate TPE (the default for one objective since Optuna
  5.0; independent TPE before), ``gamma(n) = min(ceil(0.1 n), 25)`` good trials, flat
  weights for the latest 25 trials, prior weight 1.0. The sampler's seed is drawn from
  the run's generator.
- ``hebo``: HEBO (Cowen-Rivers et al., "HEBO: Pushing the Limits of Sample-Efficient
  Hyper-parameter Optimisation", JAIR 2022) with its defaults: a GP with input and output
  warping, the MACE acquisition (UCB, EI and PI as a multi-objective problem) optimised by
  NSGA-II (population 100, 100 generations), after ``1 + #parameters = 7`` scrambled Sobol
  points (HEBO's ``rand_sample`` default). HEBO minimises, so it is told the negated
  validation accuracy. One suggestion per query (``suggest(n_suggestions=1)``) when nothing
  is pending.

Repeats: peers that may propose a repeat are answered from the runner's cache without
counting a new query. The runner then calls :meth:`tell` with the cached evaluation, and
the adapter feeds it to the peer as an ordinary observation (TPE gets a completed trial
with that value, HEBO one more row), so the peer learns the value and moves on; the
summary counts these as ``repeats_answered_from_cache``. TPE samples each proposal from
its Parzen estimators without excluding evaluated cells, so it does repeat, more often as
its model sharpens; HEBO drops evaluated points from NSGA-II's result and rarely does.

Evaluations pending (several workers): TPE asks with its trials of the pending cells
still running, and the sampler's ``constant_liar`` (Optuna's own support for parallel
optimisation; no effect when nothing is running) lets the running trials count as bad
ones, so parallel asks spread out. A proposal of a pending cell is told to Optuna as a
failed trial and asked again (after 100 such proposals a random free cell is taken). HEBO
is asked for ``1 + #pending`` suggestions at once (its batch ``suggest``, which spreads a
batch over the MACE Pareto front) and the first that is not pending is taken.

Constrained search space: Optuna's proposal of an infeasible cell is told as a failed
trial and asked again, like a pending one; HEBO takes its first feasible suggestion. When
none is feasible, a random feasible cell is taken.

Determinism: TPE draws only from the sampler's own seeded generator. HEBO draws from
numpy's and torch's global generators (GP initialisation and training, NSGA-II, the final
pick) and seeds its Sobol engine with ``scramble_seed``; every :meth:`HEBOSearcher.ask`
runs with both global generators seeded from the run's generator inside a block that
restores their previous states, and on one torch thread, so the same seed and the same
answers give the same proposals and the caller's generators are left as they were.
Importing HEBO sets torch's thread count to one for the whole process (a module-level
``torch.set_num_threads`` in ``hebo.optimizers.hebo``); the builder restores the count, and
keeps pymoo's one-time "compiled modules" notice off stdout.

Optional dependency: Optuna and HEBO are imported when a searcher is built, not with
tnas; a missing library is a :class:`~tnas.errors.ConfigError` naming the extra
``tnas[peers]`` to install. The library version and the settings are recorded in the
run's ``config.json`` under ``"peer"``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from tnas.errors import ConfigError, SearcherError
from tnas.oracles import Evaluation
from tnas.search.methods.threads import single_threaded
from tnas.search.protocol import pending_indexes
from tnas.space import FULL_SPACE, NUM_EDGES, OPERATIONS, Cell, SearchSpace

EDGE_NAMES: tuple[str, ...] = tuple(f"edge{edge}" for edge in range(NUM_EDGES))
"""The peers' parameter names, one per edge in arch-string order."""

_INSTALL_HINT = "pip install 'tnas[peers]'"


def _params(cell: Cell) -> dict[str, str]:
    """``cell`` as the peers' parameters: edge name -> operation name."""
    return dict(zip(EDGE_NAMES, cell.op_names))


def _cell(params: Any) -> Cell:
    """The cell of a peer's parameters (a mapping or a pandas row keyed by edge name)."""
    return Cell.from_ops([str(params[name]) for name in EDGE_NAMES])


# ---------------------------------------------------------------------- Optuna TPE
@dataclass(frozen=True)
class OptunaTPEConfig:
    """Settings of ``TPESampler`` (Optuna 5.0's defaults; see the module docstring).

    Attributes:
        n_startup_trials: random trials before TPE takes over.
        n_ei_candidates: candidates drawn from the good-trials estimator per proposal.
        multivariate: model the six edges jointly (Optuna >= 5.0's single-objective default).
        constant_liar: count running trials as bad ones when asking (parallel search).
    """

    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = True
    constant_liar: bool = True


@contextlib.contextmanager
def _quiet_logger(name: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise the level of logger ``name`` inside the block, restoring it after.

    Optuna logs every study creation and finished trial at INFO on its ``optuna`` logger;
    this silences them for the adapter's calls only, without changing Optuna's verbosity
    for the rest of the process.
    """
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(max(level, previous))
    try:
        yield
    finally:
        logger.setLevel(previous)


class OptunaTPE:
    """Ask/tell adapter for an Optuna study with a seeded ``TPESampler``."""

    def __init__(self, seed: int, config: OptunaTPEConfig = OptunaTPEConfig(),
                 space: SearchSpace = FULL_SPACE) -> None:  # fmt: skip
        import optuna  # the builder checked that it imports

        self.config = config
        self._space = space
        self._optuna = optuna
        self._distributions = {name: optuna.distributions.CategoricalDistribution(OPERATIONS)
                               for name in EDGE_NAMES}  # fmt: skip
        with warnings.catch_warnings():  # constant_liar is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(seed=seed, **asdict(config))
        with _quiet_logger("optuna"):
            self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self._running: dict[int, Any] = {}  # official index -> the running trial asked for it
        self._told: set[int] = set()
        self._fallback = np.random.default_rng(seed)  # only after 100 proposals of pending cells

    def ask(self, pending: Sequence[Cell] = ()) -> Cell:
        busy = pending_indexes(pending)
        with _quiet_logger("optuna"):
            for _ in range(100):
                trial = self.study.ask(self._distributions)
                cell = _cell(trial.params)
                if cell.index not in busy and cell in self._space:
                    self._running[cell.index] = trial
                    return cell
                self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
        cell = self._space.sample_unseen(self._fallback, self._told | busy)
        self._running[cell.index] = None
        return cell

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        """Complete the trial of ``cell`` with its validation accuracy (also for a cached repeat)."""
        self._told.add(cell.index)
        with _quiet_logger("optuna"):
            if self._running and cell.index not in self._running:
                raise SearcherError(f"optuna-tpe was told about cell {cell.index}, which it did not propose")
            trial = self._running.pop(cell.index, None)
            if trial is None:  # told without an ask, or a fallback cell: record it as a finished trial
                self.study.add_trial(self._optuna.trial.create_trial(
                    params=_params(cell), distributions=self._distributions, value=evaluation.valid))  # fmt: skip
            else:
                self.study.tell(trial, evaluation.valid)


def build_optuna_tpe(context: Any, config: OptunaTPEConfig = OptunaTPEConfig()) -> OptunaTPE:
    """An :class:`OptunaTPE` seeded from ``context.rng``; records Optuna's version in ``run_info``."""
    try:
        import optuna
    except ImportError as error:
        raise ConfigError(f"optuna-tpe needs Optuna: {_INSTALL_HINT} ({error})") from None
    seed = int(context.rng.integers(2**32))  # TPESampler seeds a numpy RandomState: 32 bits
    context.run_info["peer"] = {"library": "optuna", "version": optuna.__version__, "sampler": "TPESampler",
                                "seed": seed, **asdict(config)}  # fmt: skip
    return OptunaTPE(seed, config, context.space)


# ---------------------------------------------------------------------- HEBO
@dataclass(frozen=True)
class HEBOConfig:
    """Settings of HEBO (its defaults; see the module docstring).

    Attributes:
        rand_sample: Sobol points before the first model-based suggestion (HEBO's default,
            one more than the number of parameters).
        model_name: HEBO's surrogate (``"gp"``: its warped GP).
        es: HEBO's evolutionary optimiser of the acquisition.
    """

    rand_sample: int = 1 + NUM_EDGES
    model_name: str = "gp"
    es: str = "nsga2"


@contextlib.contextmanager
def seeded_global_rngs(seed: int) -> Iterator[None]:
    """Seed numpy's and torch's (CPU) global generators inside the block, restoring both after."""
    state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            np.random.seed(seed)
            torch.manual_seed(seed)
            yield
    finally:
        np.random.set_state(state)


class HEBOSearcher:
    """Ask/tell adapter for ``hebo.optimizers.hebo.HEBO`` (which minimises: told ``-valid``)."""

    def __init__(self, rng: np.random.Generator, config: HEBOConfig = HEBOConfig(), *,
                 scramble_seed: int | None = None, space: SearchSpace = FULL_SPACE) -> None:  # fmt: skip
        from hebo.design_space.design_space import DesignSpace  # the builder imported hebo
        from hebo.optimizers.hebo import HEBO

        self.config = config
        self._rng = rng
        self._space = space
        self._told: set[int] = set()
        self.scramble_seed = int(rng.integers(2**31)) if scramble_seed is None else scramble_seed
        space = DesignSpace().parse([{"name": name, "type": "cat", "categories": list(OPERATIONS)}
                                     for name in EDGE_NAMES])  # fmt: skip
        self.optimizer = HEBO(space, model_name=config.model_name, rand_sample=config.rand_sample,
                              es=config.es, scramble_seed=self.scramble_seed)  # fmt: skip
        self._columns = list(space.para_names)

    def ask(self, pending: Sequence[Cell] = ()) -> Cell:
        busy = pending_indexes(pending)
        seed = int(self._rng.integers(2**32))  # numpy's global generator takes 32-bit seeds
        with seeded_global_rngs(seed), single_threaded(), warnings.catch_warnings():
            # HEBO's own code builds a tensor from a list of arrays on every suggestion
            warnings.filterwarnings("ignore", "Creating a tensor from a list of numpy.ndarrays", UserWarning)
            suggestions = self.optimizer.suggest(n_suggestions=1 + len(busy))
        for position in range(len(suggestions)):
            cell = _cell(suggestions.iloc[position])
            if cell.index not in busy and cell in self._space:
                return cell
        if self._space.is_full:  # HEBO suggested only pending cells
            return self._space.sample_unseen(self._rng, busy)
        return self._space.sample_unseen(self._rng, self._told | busy)  # ... or infeasible ones

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        """Add ``cell`` with ``-valid`` to HEBO's data (also for a cached repeat)."""
        import pandas as pd

        self._told.add(cell.index)
        params = _params(cell)
        row = pd.DataFrame([[params[name] for name in self._columns]], columns=self._columns)
        self.optimizer.observe(row, np.array([[-evaluation.valid]]))


def _import_hebo() -> str:
    """Import HEBO, keeping torch's thread count and pymoo's stdout notice away; its version."""
    threads = torch.get_num_threads()
    try:
        import hebo
        import hebo.optimizers.hebo  # sets torch's thread count at import
    finally:
        torch.set_num_threads(threads)
    _quiet_pymoo()
    return str(getattr(hebo, "__version__", "unknown"))


def _quiet_pymoo() -> None:
    """Create pymoo's function loader without its "compiled modules" notice.

    pymoo (HEBO pins 0.6.0) prints a notice to stdout, where a command's output goes, the
    first time NSGA-II runs without its compiled extensions. The notice comes from the
    loader singleton's constructor, so the singleton is created here with the notice
    switched off, and pymoo's setting is put back.
    """
    try:
        from pymoo.config import Config
        from pymoo.util.function_loader import FunctionLoader
    except ImportError:  # another pymoo layout: leave it alone
        return
    previous = Config.warnings.get("not_compiled", True)
    Config.warnings["not_compiled"] = False
    try:
        FunctionLoader.get_instance()
    finally:
        Config.warnings["not_compiled"] = previous


def build_hebo(context: Any, config: HEBOConfig = HEBOConfig()) -> HEBOSearcher:
    """A :class:`HEBOSearcher` seeded from ``context.rng``; records HEBO's version in ``run_info``."""
    try:
        version = _import_hebo()
    except ImportError as error:
        raise ConfigError(f"hebo needs HEBO: {_INSTALL_HINT} ({error})") from None
    searcher = HEBOSearcher(context.rng, config, space=context.space)
    context.run_info["peer"] = {"library": "hebo", "version": version, "optimizer": "HEBO", "acquisition": "MACE",
                                "scramble_seed": searcher.scramble_seed, **asdict(config)}  # fmt: skip
    return searcher
