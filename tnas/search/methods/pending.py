"""How a GP-based searcher proposes while other evaluations are still running.

Two standard ways, both on the GP fitted to the finished evaluations:

* ``believer`` (kriging believer, Ginsbourger et al. 2010): condition the GP, with its
  fitted hyperparameters, on the pending cells as if they had been observed at its
  posterior mean there, and score the candidates with the usual analytic acquisition. The
  mean is unchanged, the variance near pending cells shrinks, so the next proposal moves
  away from them. One extra Cholesky factor per proposal: the fast path.
* ``x_pending``: BoTorch's ``X_pending``: a Monte-Carlo acquisition (qLogNEI, qUCB) that
  integrates over the joint posterior of the candidate and the pending cells (the
  candidate only scores for what it adds beyond what the pending ones are expected to
  bring), at the cost of quasi-MC samples of a joint posterior per candidate.

TNAS and GP-BO take ``believer`` by default; the README's *Parallel search* section gives
the measurement behind that choice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from gpytorch.models import ExactGP
from torch import Tensor

PENDING_STRATEGIES = ("believer", "x_pending")


@contextmanager
def kriging_believer(model: ExactGP, pending_X: Tensor) -> Iterator[ExactGP]:
    """``model`` conditioned on ``pending_X`` (``p x d``) at its own posterior mean, inside the block.

    The hyperparameters are those of the fit; the training data is restored on exit.
    Targets are believed in the model's training space (after any outcome transform).
    """
    inputs, targets = model.train_inputs[0], model.train_targets
    with torch.no_grad():
        believed = model(pending_X).mean.reshape(-1).to(targets)
    model.set_train_data(torch.cat([inputs, pending_X.to(inputs)]), torch.cat([targets, believed]), strict=False)
    try:
        yield model
    finally:
        model.set_train_data(inputs, targets, strict=False)
