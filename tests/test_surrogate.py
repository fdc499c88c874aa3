from __future__ import annotations

import pytest
import torch
from botorch.acquisition import LogExpectedImprovement, qLogNoisyExpectedImprovement
from botorch.exceptions.errors import BotorchTensorDimensionError, InputDataError
from botorch.optim import optimize_acqf_discrete
from gpytorch.mlls import ExactMarginalLogLikelihood

from tests.synthetic_meta import FEATURES, small_config
from tnas.models import DeepKernel
from tnas.models.surrogate import TNASSurrogate, all_cell_inputs, cell_inputs
from tnas.space import Cell


def _surrogate(observed=(0, 5, 6111, 9930, 77)) -> TNASSurrogate:
    torch.manual_seed(0)
    kernel = DeepKernel(small_config().kernel).eval()
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(1, 4, 3, FEATURES, generator=generator)
    mask = torch.ones(1, 4, 3, dtype=torch.bool)
    train_X = cell_inputs([Cell.from_index(i) for i in observed])
    train_Y = torch.linspace(-1, 1, len(observed), dtype=torch.float64).unsqueeze(-1)
    return TNASSurrogate(kernel, features, mask, train_X, train_Y).eval()


def test_training_data_must_follow_botorch_conventions():
    kernel = DeepKernel(small_config().kernel).eval()
    features, mask = torch.zeros(1, 4, 3, FEATURES), torch.ones(1, 4, 3, dtype=torch.bool)
    train_X = cell_inputs([Cell.from_index(i) for i in (0, 5)])
    with pytest.raises(BotorchTensorDimensionError, match="n x 1"):  # no output dimension
        TNASSurrogate(kernel, features, mask, train_X, torch.zeros(2, dtype=torch.float64))
    with pytest.raises(BotorchTensorDimensionError, match="n x 1"):  # one observation too few
        TNASSurrogate(kernel, features, mask, train_X, torch.zeros(1, 1, dtype=torch.float64))
    with pytest.raises(InputDataError, match="dtype"):
        TNASSurrogate(kernel, features, mask, train_X, torch.zeros(2, 1, dtype=torch.float32))


@pytest.mark.slow
def test_posterior_over_all_cells_and_the_cache():
    model = _surrogate()
    with torch.no_grad():
        posterior = model.posterior(all_cell_inputs())
    assert posterior.mean.shape == (15625, 1) and posterior.mean.dtype == torch.float64
    assert (posterior.variance > 0).all()
    # the cached path (no grad, eval) equals the direct path (with grad)
    some = cell_inputs([Cell.from_index(i) for i in (1, 2, 3)])
    direct = model.posterior(some).mean.detach()
    with torch.no_grad():
        cached = model.posterior(some).mean
    torch.testing.assert_close(direct, cached)
    assert model.prior_mean().shape == (15625,)


def test_log_expected_improvement_with_optimize_acqf_discrete():
    model = _surrogate()
    acquisition = LogExpectedImprovement(model, best_f=model.train_targets.max())
    choices = all_cell_inputs()
    candidate, value = optimize_acqf_discrete(acquisition, q=1, choices=choices, X_avoid=model.train_inputs[0])
    index = int(candidate.item())
    assert 0 <= index < 15625 and index not in {0, 5, 6111, 9930, 77}
    assert torch.isfinite(value).all()
    with torch.no_grad():
        all_values = acquisition(choices.unsqueeze(1))
    all_values[[0, 5, 6111, 9930, 77]] = -float("inf")
    assert int(all_values.argmax()) == index


def test_q_batch_proposes_distinct_cells():
    model = _surrogate()
    acquisition = qLogNoisyExpectedImprovement(model, X_baseline=model.train_inputs[0])
    candidates, _ = optimize_acqf_discrete(acquisition, q=3, choices=all_cell_inputs()[:2000],
                                           X_avoid=model.train_inputs[0])  # fmt: skip
    indexes = [int(x) for x in candidates.squeeze(-1)]
    assert len(set(indexes)) == 3 and not set(indexes) & {0, 5, 77}


def test_fine_tuning_through_the_botorch_model_changes_the_cached_features():
    model = _surrogate()
    with torch.no_grad():
        before = model.posterior(all_cell_inputs()[:10]).mean.clone()
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    for _ in range(5):
        optimizer.zero_grad()
        loss = -mll(model(*model.train_inputs), model.train_targets)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = model.posterior(all_cell_inputs()[:10]).mean
    assert not torch.allclose(before, after)


def test_fast_marginal_path_equals_gpytorchs_batched_posterior():
    from botorch.models.gpytorch import GPyTorchModel

    model = _surrogate()
    X = all_cell_inputs()[::97].unsqueeze(1)  # b x 1 x 1, how optimize_acqf_discrete asks
    with torch.no_grad():
        fast = model.posterior(X)
        reference = GPyTorchModel.posterior(model, X)
    torch.testing.assert_close(fast.mean, reference.mean, atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(fast.variance, reference.variance, atol=1e-8, rtol=1e-6)


def test_posterior_of_a_singular_covariance_adds_jitter_and_nan_fails_typed():
    import warnings

    from gpytorch.kernels import RBFKernel, ScaleKernel
    from gpytorch.means import ZeroMean
    from linear_operator.utils.errors import NanError

    from tnas.models.deep_kernel import NUMERICAL_FAILURES, predictive_moments

    kernel, mean = ScaleKernel(RBFKernel()).double(), ZeroMean()
    train = torch.zeros(3, 2, dtype=torch.float64)  # three identical points and no noise: singular
    targets = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    test = torch.tensor([[0.0, 0.0], [5.0, 5.0]], dtype=torch.float64)
    zero_noise = torch.tensor(0.0, dtype=torch.float64)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")  # the jitter is the intended remedy: no warning reaches the user
        posterior_mean, variance = predictive_moments(mean, kernel, zero_noise, train, targets, test)
    torch.testing.assert_close(posterior_mean, torch.tensor([1.0, 0.0], dtype=torch.float64), atol=1e-4, rtol=0)
    assert variance[0] < 1e-4 < variance[1]
    with torch.no_grad(), pytest.raises(NanError):
        predictive_moments(mean, kernel, zero_noise, torch.full_like(train, float("nan")), targets, test)
    assert NanError in NUMERICAL_FAILURES
