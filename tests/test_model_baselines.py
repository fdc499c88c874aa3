"""BANANAS, GP-BO and NASBOWL: encodings, registration, budget, determinism and a sanity bar on the table.

The GP's per-query fit is the slow part, so the longer runs build GP-BO directly with a
smaller L-BFGS cap (``FAST_GP``); the registered defaults run through ``make_searcher``
in the determinism test.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from tnas.errors import ConfigError
from tnas.oracles import TableOracle
from tnas.search import RunConfig, make_searcher, run
from tnas.search.methods import METHODS
from tnas.search.methods.bananas import (
    PATH_FEATURES,
    ROUTES,
    Bananas,
    BananasConfig,
    cell_paths,
    path_encoding,
)
from tnas.search.methods.gp_bo import GPBO, GPBOConfig, all_cells_one_hot, cell_of_one_hot, one_hot
from tnas.space import NUM_CELLS, OPERATIONS, Cell, all_cells, neighbours

MODEL_BASED = ("bananas", "gp", "nasbowl")
FAST_GP = GPBOConfig(fit_maxiter=50)


def _config(method, seed=0, budget=20, dataset="cifar100"):
    return RunConfig(method=method, dataset=dataset, seed=seed, budget=budget, fidelity=200, observe="mean")


def _searcher(method, seed):
    """A searcher for the longer runs: the registered one, but GP-BO with a cheaper fit."""
    if method == "gp":
        return GPBO(np.random.default_rng(seed), FAST_GP)
    return make_searcher(_config(method, seed))


def _run(table, method, seed=0, budget=20, searcher=None):
    config = _config(method, seed, budget)
    return run(searcher or make_searcher(config), TableOracle(table, "cifar100"), config)


# ---------------------------------------------------------------------- path encoding
def test_routes_and_path_vocabulary_follow_the_cell_dag():
    assert ROUTES == ((3,), (0, 4), (1, 5), (0, 2, 5))  # 0->3, 0->1->3, 0->2->3, 0->1->2->3
    assert len(PATH_FEATURES) == 4 + 4**2 + 4**3 == 84  # `none` breaks paths, so it is no path op
    assert len(set(PATH_FEATURES)) == len(PATH_FEATURES)


def test_path_encoding_of_known_cells():
    no_path = Cell.from_ops(["none"] * 6)
    skips = Cell.from_ops(["skip_connect"] * 6)
    skip = OPERATIONS.index("skip_connect")
    assert cell_paths(no_path) == []
    assert cell_paths(skips) == [(skip,), (skip, skip), (skip, skip), (skip, skip, skip)]
    codes = path_encoding([no_path, skips])
    assert codes.shape == (2, 84) and codes.dtype == torch.float32
    assert codes[0].sum() == 0
    assert codes[1].sum() == 3  # the two length-2 routes share one operation sequence
    # edges: 0->1 conv3, 0->2 conv1, 1->2 none, 0->3 skip, 1->3 avg, 2->3 conv3
    mixed = Cell.from_ops(
        ["nor_conv_3x3", "nor_conv_1x1", "none", "skip_connect", "avg_pool_3x3", "nor_conv_3x3"]
    )
    c1, c3, avg = (OPERATIONS.index(name) for name in ("nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"))
    assert cell_paths(mixed) == [(skip,), (c3, avg), (c1, c3)]  # 0->1->2->3 is cut by `none`
    assert path_encoding([mixed])[0].sum() == 3


def test_cells_whose_input_never_reaches_the_output_share_the_empty_code():
    cut = [cell for cell in all_cells()[:2000] if cell.ops[3] == cell.ops[4] == cell.ops[5] == 0]
    assert cut and path_encoding(cut).sum() == 0
    codes = path_encoding(all_cells()[:500])
    assert set(codes.unique().tolist()) <= {0.0, 1.0}


# ---------------------------------------------------------------------- one-hot encoding
def test_one_hot_of_all_cells_matches_the_official_index_order():
    choices = all_cells_one_hot()
    assert choices.shape == (NUM_CELLS, 30) and choices.dtype == torch.float64
    assert torch.all(choices.reshape(NUM_CELLS, 6, 5).sum(-1) == 1)
    assert len(torch.unique(choices, dim=0)) == NUM_CELLS
    for index in (0, 1, 777, 9_000, NUM_CELLS - 1):
        cell = Cell.from_index(index)
        assert torch.equal(choices[index], one_hot(np.array([cell.ops]))[0])
        assert choices[index].reshape(6, 5).argmax(-1).tolist() == list(cell.ops)
        assert cell_of_one_hot(choices[index]) == cell


# ---------------------------------------------------------------------- configs and registry
def test_both_methods_are_registered_with_their_settings():
    assert METHODS["bananas"].settings == asdict(BananasConfig())
    assert METHODS["gp"].settings == asdict(GPBOConfig())
    assert isinstance(make_searcher(_config("bananas")), Bananas)
    assert isinstance(make_searcher(_config("gp")), GPBO)


@pytest.mark.parametrize(
    "build",
    [
        lambda: BananasConfig(num_init=0),
        lambda: BananasConfig(num_candidates=0),
        lambda: BananasConfig(num_ensemble=1),
        lambda: BananasConfig(lr=0.0),
        lambda: GPBOConfig(num_init=1),
        lambda: GPBOConfig(fit_maxiter=0),
    ],
)
def test_bad_settings_are_refused(build):
    with pytest.raises(ConfigError):
        build()


# ---------------------------------------------------------------------- search behaviour
@pytest.mark.parametrize("method", MODEL_BASED)
def test_respects_the_budget_never_repeats_and_records_predictions(table, method):
    result = _run(table, method, budget=40, searcher=_searcher(method, 0))
    indexes = [row.index for row in result.rows]
    assert len(indexes) == 40 and len(set(indexes)) == 40
    assert result.summary["repeats_answered_from_cache"] == 0
    assert all(row.pred_mean is None for row in result.rows[:10])  # the random initial design
    for row in result.rows[10:]:
        assert 0 < row.pred_mean < 100 and row.pred_std >= 0 and np.isfinite(row.acquisition)


def test_bananas_proposes_mutations_of_evaluated_cells(table):
    rows = _run(table, "bananas", budget=25).rows
    for position in range(10, 25):
        evaluated = {row.index for row in rows[:position]}
        cell = Cell.from_index(rows[position].index)
        assert any(n.index in evaluated for n in neighbours(cell))


@pytest.mark.parametrize("method", MODEL_BASED)
def test_is_deterministic_under_a_seed_and_leaves_torch_alone(table, method):
    threads, state = torch.get_num_threads(), torch.random.get_rng_state()
    first = [row.index for row in _run(table, method, seed=4, budget=13).rows]
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(123)  # the global torch generator must not matter
    again = [row.index for row in _run(table, method, seed=4, budget=13).rows]
    other = [row.index for row in _run(table, method, seed=5, budget=13).rows]
    assert first == again and first != other


@pytest.mark.parametrize("method", MODEL_BASED)
def test_beats_the_median_cell_on_a_small_budget(table, method):
    oracle = TableOracle(table, "cifar100")
    median_test, median_valid = (
        float(np.median(oracle.test_values(200))),
        float(np.median(oracle.valid_values(200))),
    )
    for seed in range(2):
        result = _run(table, method, seed=seed, budget=20, searcher=_searcher(method, seed))
        assert result.summary["best_test"] > median_test, (method, seed)
        proposals = [row.valid for row in result.rows[10:]]  # the model's picks, not the random start
        assert np.median(proposals) > median_valid, (method, seed)


@pytest.mark.parametrize("method", MODEL_BASED)
def test_with_noisy_observations_recommends_an_evaluated_cell_of_best_posterior_mean(table, method):
    config = RunConfig(method=method, dataset="cifar100", seed=1, budget=14, fidelity=200, observe="seed")
    searcher = _searcher(method, 1)
    result = run(searcher, TableOracle(table, "cifar100"), config)
    for position, row in enumerate(result.rows):
        assert row.recommended_index in {r.index for r in result.rows[: position + 1]}
    evaluated = [row.index for row in result.rows]
    if method == "gp":  # the fitted GP's mean is largest at the recommended cell
        with torch.no_grad():
            means = searcher.model().posterior(all_cells_one_hot()[evaluated]).mean.reshape(-1)
        assert evaluated[int(torch.argmax(means))] == result.rows[-1].recommended_index
