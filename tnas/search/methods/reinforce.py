"""REINFORCE: a policy-gradient controller over the six edges (Williams 1992; Zoph & Le 2017).

As the NAS-Bench-201 paper ran it (Dong & Yang, ICLR 2020; their ``reinforce.py`` in
AutoDL-Projects): a factorised categorical policy, one softmax over the five operations per
edge, logits initialised at ``1e-3 * N(0, 1)``; each query samples one operation per edge;
the reward is the observed validation accuracy (%); the baseline is an exponential moving
average of the rewards (momentum 0.9, bias-corrected as theirs is), updated with the new
reward before the step; the loss ``-log pi(cell) * (reward - baseline)`` takes one Adam step
at learning rate 0.001 (the paper's setting; NATS-Bench later used 0.01). The method returns
its best observed cell.

A sample that was already evaluated is answered from the runner's cache without counting a
query and still updates the policy (the original counts it as a step too). Evaluations
pending (several workers): a sample that is pending is drawn again (up to
``max_resamples`` times, then a random free cell is taken), and each finished evaluation
updates the policy as it comes back, with the policy's current log-probability of that cell.
In a constrained search space an infeasible sample is drawn again the same way (rejection
sampling from the policy restricted to the feasible cells; after ``max_resamples``
rejections a random feasible cell is taken, so under a very tight limit the method is
close to random search).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tnas.errors import ConfigError
from tnas.oracles import Evaluation
from tnas.search.methods.threads import single_threaded
from tnas.search.protocol import pending_indexes
from tnas.space import FULL_SPACE, NUM_EDGES, NUM_OPS, Cell, SearchSpace


@dataclass(frozen=True)
class ReinforceConfig:
    """Settings of REINFORCE (the NAS-Bench-201 paper's; see the module docstring)."""

    learning_rate: float = 0.001
    ema_momentum: float = 0.9
    init_scale: float = 1e-3
    max_resamples: int = 100

    def __post_init__(self) -> None:
        if not self.learning_rate > 0 or not 0 <= self.ema_momentum < 1 or self.init_scale < 0:
            raise ConfigError("learning_rate must be > 0, ema_momentum in [0, 1), init_scale >= 0")
        if self.max_resamples < 1:
            raise ConfigError(f"max_resamples must be positive, got {self.max_resamples}")


class Reinforce:
    """Ask/tell REINFORCE with a factorised softmax policy over the edges' operations."""

    def __init__(self, rng: np.random.Generator, config: ReinforceConfig = ReinforceConfig(),
                 space: SearchSpace = FULL_SPACE) -> None:  # fmt: skip
        self.config = config
        self._rng = rng
        self._space = space
        init = rng.standard_normal((NUM_EDGES, NUM_OPS)) * config.init_scale
        self.logits = torch.nn.Parameter(torch.as_tensor(init, dtype=torch.float64))  # 6 x 5
        self._optimizer = torch.optim.Adam([self.logits], lr=config.learning_rate)
        self._numerator = self._denominator = 0.0  # the bias-corrected moving average
        self._seen: set[int] = set()

    def probabilities(self) -> np.ndarray:
        """The policy: ``6 x 5`` probabilities, one row per edge (arch-string order)."""
        with torch.no_grad():
            return torch.softmax(self.logits, dim=-1).numpy()

    @property
    def baseline(self) -> float | None:
        """The moving average of the rewards (``None`` before the first)."""
        return self._numerator / self._denominator if self._denominator else None

    def ask(self, pending: Sequence[Cell] = ()) -> Cell:
        busy = pending_indexes(pending)
        probabilities = self.probabilities()
        for _ in range(self.config.max_resamples):
            draws = self._rng.random(NUM_EDGES)
            ops = tuple(int(min(np.searchsorted(np.cumsum(row), draw, side="right"), NUM_OPS - 1))
                        for row, draw in zip(probabilities, draws))  # fmt: skip
            cell = Cell(ops)
            if cell.index not in busy and cell in self._space:
                return cell
        return self._space.sample_unseen(self._rng, self._seen | busy)

    def tell(self, cell: Cell, evaluation: Evaluation) -> None:
        self._seen.add(cell.index)
        reward = evaluation.valid
        momentum = self.config.ema_momentum
        self._numerator = momentum * self._numerator + (1 - momentum) * reward
        self._denominator = momentum * self._denominator + (1 - momentum)
        advantage = reward - self._numerator / self._denominator
        with single_threaded():
            log_probabilities = torch.log_softmax(self.logits, dim=-1)
            log_prob = log_probabilities[torch.arange(NUM_EDGES), torch.tensor(cell.ops)].sum()
            loss = -log_prob * advantage
            self._optimizer.zero_grad()
            loss.backward()
            self._optimizer.step()
