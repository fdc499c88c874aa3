"""BANANAS: Bayesian optimization with a neural-network ensemble on the path encoding.

Reference: White, Neiswanger & Savani, "BANANAS: Bayesian Optimization with Neural
Architectures for Neural Architecture Search", AAAI 2021 (code: naszilla/bananas; also
NASLib's ``Bananas`` optimizer). Loop: evaluate ``num_init`` random cells; then, at every
query, train an ensemble of MLPs on the path encodings of all evaluated cells, build
candidates by mutating the best cells, score each with independent Thompson sampling
(ITS: one draw from a Gaussian with the ensemble's mean and standard deviation) and
propose the candidate with the highest draw.

Defaults and where they come from:

- Predictor: the BANANAS paper's meta neural net (naszilla ``meta_neuralnet_params
  ('standard')``): an ensemble of 5 MLPs, 10 hidden layers of width 20, ReLU, trained with
  Adam (lr 0.01) on the mean absolute error for 150 epochs in batches of 32, without
  regularisation. NASLib's ``FeedforwardPredictor`` trains 20 x 20 layers for 500 epochs
  (lr 0.001, L1 penalty 0.2 on the output weights) in an ensemble of 3; that is about
  five times slower on CPU for no reported gain on NAS-Bench-201, so the paper's settings
  are used. As in NASLib, weights get Xavier-uniform and biases zero initialisation.
  Targets are standardised by the observations' mean and deviation before training (an
  affine change that the MAE loss is equivariant to, for faster convergence); the
  predictions are mapped back to accuracy (%).
- Candidates (``num_candidates = 100``, ``max_mutations = 1``, NASLib's defaults): the
  unevaluated cells at most ``max_mutations`` edge edits away from the best evaluated
  cells, taking parents best first until ``num_candidates`` distinct cells are pooled (as
  naszilla's ``get_candidates`` walks down the best architectures), then ``num_candidates``
  of the pool chosen at random. With one edit a parent offers at most 24 cells, so NASLib's
  two parents could not give 100 distinct candidates; about five parents do.
- One proposal per refit (NASLib's ``k = 10`` proposes ten cells per fit; one query per fit
  is the paper's sequential setting and the more sample-efficient one).

Evaluations pending (several workers): pending cells are left out of the random initial
design and of the candidates; each free worker draws its own Thompson sample, so parallel
proposals differ without further coordination (the ITS batch mode of the paper).
In a constrained search space infeasible mutations are left out of the candidates and
the initial design is drawn among the feasible cells.

Path encoding: a path is an input-to-output route through the cell DAG (edges 0->1, 0->2,
1->2, 0->3, 1->3, 2->3), written as the sequence of its operations; the encoding has one
binary feature per possible operation sequence of length 1 to 3 (as in BANANAS, two routes
with the same sequence share a feature). A ``none`` edge outputs zeros, so no signal flows
along a route through it: such routes are excluded and ``none`` is not in the path
vocabulary, leaving 4 + 4^2 + 4^3 = 84 features. (NASLib's NB-201 path encoding instead
treats ``none`` as an ordinary operation, 5 + 5^2 + 5^3 = 155 features with exactly four
routes active in every cell; excluding ``none`` maps cells that compute the same function
to the same code, e.g. every cell whose input never reaches the output to all zeros.)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from tnas.errors import ConfigError
from tnas.search.methods.observations import ObservingSearcher, check_recommend_policy
from tnas.search.methods.threads import single_threaded
from tnas.search.protocol import pending_indexes
from tnas.space import EDGES, FULL_SPACE, OPERATIONS, Cell, SearchSpace, neighbours

INPUT_NODE = 0
OUTPUT_NODE = max(to for to, _ in EDGES)
NONE_OP = OPERATIONS.index("none")


def _routes_from(node: int) -> Iterator[tuple[int, ...]]:
    """Routes from ``node`` to the output node, as edge positions (arch-string order)."""
    if node == OUTPUT_NODE:
        yield ()
        return
    for position, (to, source) in enumerate(EDGES):
        if source == node:
            for rest in _routes_from(to):
                yield (position, *rest)


ROUTES: tuple[tuple[int, ...], ...] = tuple(sorted(_routes_from(INPUT_NODE), key=lambda r: (len(r), r)))
"""All input-to-output routes of the cell DAG as edge positions: ((3,), (0, 4), (1, 5), (0, 2, 5))."""

PATH_OPS: tuple[int, ...] = tuple(op for op in range(len(OPERATIONS)) if op != NONE_OP)
"""Operation ids that can lie on a path (all but ``none``)."""

PATH_FEATURES: tuple[tuple[int, ...], ...] = tuple(
    sequence
    for length in range(1, max(map(len, ROUTES)) + 1)
    for sequence in itertools.product(PATH_OPS, repeat=length)
)
"""The operation sequences of the path encoding, one feature each (84 for NAS-Bench-201)."""

_FEATURE_POSITION = {sequence: position for position, sequence in enumerate(PATH_FEATURES)}


def cell_paths(cell: Cell) -> list[tuple[int, ...]]:
    """Operation-id sequences of the routes of ``cell`` that carry signal (no ``none`` edge).

    One entry per active route, in :data:`ROUTES` order; two routes may give equal sequences.
    """
    paths = [tuple(cell.ops[edge] for edge in route) for route in ROUTES]
    return [path for path in paths if NONE_OP not in path]


def path_encoding(cells: Sequence[Cell]) -> Tensor:
    """Binary path encodings of ``cells``.

    Returns:
        A float32 tensor of shape ``len(cells) x len(PATH_FEATURES)`` (n x 84) with a one
        where the cell has a path with that operation sequence.
    """
    encoding = torch.zeros(len(cells), len(PATH_FEATURES))
    for row, cell in enumerate(cells):
        for path in cell_paths(cell):
            encoding[row, _FEATURE_POSITION[path]] = 1.0
    return encoding


@dataclass(frozen=True)
class BananasConfig:
    """Settings of BANANAS (see the module docstring for their sources).

    Attributes:
        num_init: random cells evaluated before the first model-based proposal.
        num_candidates: candidates scored by the acquisition per query.
        max_mutations: largest number of edge edits from a parent to a candidate.
        num_ensemble: MLPs in the ensemble.
        num_layers: hidden layers of each MLP.
        layer_width: units per hidden layer.
        epochs: training epochs per query.
        batch_size: minibatch size.
        lr: Adam's learning rate.
        recommend: ``auto`` (the evaluated cell of best ensemble mean when observations are
            noisy, else the best observed), ``posterior`` or ``observed``.
    """

    num_init: int = 10
    num_candidates: int = 100
    max_mutations: int = 1
    num_ensemble: int = 5
    num_layers: int = 10
    layer_width: int = 20
    epochs: int = 150
    batch_size: int = 32
    lr: float = 0.01
    recommend: str = "auto"

    def __post_init__(self) -> None:
        check_recommend_policy(self.recommend)
        positive = ("num_init", "num_candidates", "max_mutations", "num_layers", "layer_width", "epochs",
                    "batch_size")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_ensemble < 2:
            raise ConfigError(f"num_ensemble must be at least 2, got {self.num_ensemble}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")


# ---------------------------------------------------------------------- the MLP ensemble
Layers = list[tuple[Tensor, Tensor]]
"""An ensemble's layers: per layer a weight ``E x fan_in x fan_out`` and a bias ``E x 1 x fan_out``."""


def init_ensemble(input_dim: int, config: BananasConfig, generator: torch.Generator) -> Layers:
    """Xavier-uniform weights and zero biases for ``config.num_ensemble`` independent MLPs."""
    sizes = [input_dim] + [config.layer_width] * config.num_layers + [1]
    layers = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        weight = (torch.rand(config.num_ensemble, fan_in, fan_out, generator=generator) * 2 - 1) * bound
        bias = torch.zeros(config.num_ensemble, 1, fan_out)
        layers.append((weight.requires_grad_(), bias.requires_grad_()))
    return layers


def ensemble_forward(layers: Layers, x: Tensor) -> Tensor:
    """Outputs of every member.

    Args:
        layers: the ensemble (E members).
        x: inputs, ``E x B x d`` (one batch per member) or ``B x d`` (shared).

    Returns:
        ``E x B`` outputs.
    """
    hidden = x.expand(layers[0][0].shape[0], *x.shape) if x.dim() == 2 else x
    for weight, bias in layers[:-1]:
        hidden = torch.relu(torch.baddbmm(bias, hidden, weight))
    weight, bias = layers[-1]
    return torch.baddbmm(bias, hidden, weight).squeeze(-1)


def train_ensemble(x: Tensor, y: Tensor, config: BananasConfig, generator: torch.Generator) -> Layers:
    """Train the ensemble's members independently (own init, own minibatch order) on the MAE.

    The members are stacked in batched tensors; the loss is the sum of the members' losses
    and Adam is elementwise, so this equals training each member on its own.

    Args:
        x: ``n x d`` encodings.
        y: ``n`` targets.
        config: architecture and optimisation settings.
        generator: source of the initial weights and the minibatch orders.
    """
    layers = init_ensemble(x.shape[1], config, generator)
    optimizer = torch.optim.Adam([p for layer in layers for p in layer], lr=config.lr, foreach=True)
    n = x.shape[0]
    for _ in range(config.epochs):
        order = torch.stack([torch.randperm(n, generator=generator) for _ in range(config.num_ensemble)])
        for start in range(0, n, config.batch_size):
            batch = order[:, start : start + config.batch_size]  # E x B
            loss = (ensemble_forward(layers, x[batch]) - y[batch]).abs().mean(dim=1).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return [(weight.detach(), bias.detach()) for weight, bias in layers]


# ---------------------------------------------------------------------- the searcher
class Bananas(ObservingSearcher):
    """Ask/tell BANANAS with the path encoding and ITS over mutation candidates."""

    def __init__(self, rng: np.random.Generator, config: BananasConfig = BananasConfig(),
                 space: SearchSpace = FULL_SPACE) -> None:  # fmt: skip
        super().__init__(rng, config, space)
        self._trained: tuple[int, Layers, float, float] | None = None  # (observations, layers, shift, scale)

    def ask(self, pending: Sequence[Cell] = ()) -> Cell:
        busy = pending_indexes(pending)
        if (first := self._initial_design_cell(busy)) is not None:
            return first
        candidates = self.candidates(busy)
        mean, std = self.predict(candidates)
        draws = mean + std * self._rng.standard_normal(len(candidates))  # independent Thompson sampling
        best = int(np.argmax(draws))
        self.last_info = {"acquisition": float(draws[best]), "pred_mean": float(mean[best]),
                          "pred_std": float(std[best])}  # fmt: skip
        return candidates[best]

    def _model_means(self, indexes: list[int]) -> np.ndarray:
        return self.predict([Cell.from_index(index) for index in indexes])[0]  # the ensemble's mean

    def candidates(self, busy: frozenset[int] = frozenset()) -> list[Cell]:
        """Distinct unevaluated, not pending cells near the best evaluated ones (see the module docstring)."""
        pool: dict[int, Cell] = {}
        for index in sorted(self._valid, key=lambda i: (-self._valid[i], i)):
            for cell in self._ball(Cell.from_index(index)):
                if cell.index not in self._valid and cell.index not in busy and cell in self._space:
                    pool.setdefault(cell.index, cell)
            if len(pool) >= self.config.num_candidates:
                break
        cells = list(pool.values())
        if not cells:  # every cell near an evaluated one was evaluated: fall back to random
            return [self._space.sample_unseen(self._rng, self._valid.keys() | busy if busy else self._valid.keys())]
        if len(cells) > self.config.num_candidates:
            keep = np.sort(self._rng.choice(len(cells), size=self.config.num_candidates, replace=False))
            cells = [cells[int(i)] for i in keep]
        return cells

    def _ball(self, parent: Cell) -> list[Cell]:
        """Cells 1..max_mutations edits from ``parent``, nearest first, without duplicates."""
        found: dict[Cell, None] = {parent: None}
        frontier = [parent]
        for _ in range(self.config.max_mutations):
            frontier = [n for cell in frontier for n in neighbours(cell) if n not in found]
            found.update(dict.fromkeys(frontier))
        return list(found)[1:]

    def predict(self, cells: Sequence[Cell]) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and standard deviation (accuracy, %) of ``cells``, each of length ``len(cells)``.

        A fresh ensemble is trained on all observations (seeded from the searcher's
        generator) once per set of observations.
        """
        if self._trained is None or self._trained[0] != len(self._valid):
            indexes = list(self._valid)
            values = np.array([self._valid[i] for i in indexes])
            shift, scale = float(values.mean()), float(values.std()) or 1.0
            x = path_encoding([Cell.from_index(i) for i in indexes])
            y = torch.as_tensor((values - shift) / scale, dtype=torch.float32)
            generator = torch.Generator().manual_seed(int(self._rng.integers(2**63)))
            with single_threaded():
                self._trained = (len(indexes), train_ensemble(x, y, self.config, generator), shift, scale)
        _, layers, shift, scale = self._trained
        with single_threaded(), torch.no_grad():
            outputs = ensemble_forward(layers, path_encoding(cells)).double().numpy()  # E x C
        predictions = outputs * scale + shift
        return predictions.mean(axis=0), predictions.std(axis=0)
