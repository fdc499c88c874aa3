from __future__ import annotations

import numpy as np
import pytest
import torch

from tnas.errors import ConfigError
from tnas.oracles import TableOracle
from tnas.search import RunConfig, make_searcher, run

BASELINES = ("ls", "re", "rs", "reinforce")  # model-free methods; TNAS has its own tests
from tnas.search.methods.evolution import EvolutionConfig
from tnas.search.methods.local_search import LocalSearchConfig
from tnas.space import Cell, neighbours


def _run(table, method, dataset="cifar100", seed=0, budget=30):
    config = RunConfig(method=method, dataset=dataset, seed=seed, budget=budget, fidelity=200, observe="mean")
    return run(make_searcher(config), TableOracle(table, dataset), config)


@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "imagenet16-120"])
def test_each_baseline_beats_the_median_cell_on_a_small_budget(table, method, dataset):
    median = float(np.median(TableOracle(table, dataset).test_values(200)))
    for seed in range(5):
        result = _run(table, method, dataset, seed=seed, budget=30)
        assert result.summary["best_test"] > median, (method, dataset, seed)


@pytest.mark.parametrize("method", BASELINES)
def test_each_baseline_respects_the_budget_and_never_repeats(table, method):
    result = _run(table, method, budget=300)
    indexes = [row.index for row in result.rows]
    assert len(indexes) == 300 and len(set(indexes)) == 300
    if method != "reinforce":  # its policy samples with replacement; repeats are answered from the cache
        assert result.summary["repeats_answered_from_cache"] == 0


@pytest.mark.parametrize("method", BASELINES)
def test_each_baseline_is_deterministic_under_a_seed(table, method):
    first = [row.index for row in _run(table, method, seed=4).rows]
    again = [row.index for row in _run(table, method, seed=4).rows]
    other = [row.index for row in _run(table, method, seed=5).rows]
    assert first == again and first != other


def test_local_search_climbs_from_the_best_random_start(table):
    rows = _run(table, "ls", budget=34).rows
    start = max(rows[:10], key=lambda row: row.valid)
    assert {row.index for row in rows[10:34]} == {cell.index for cell in neighbours(Cell.from_index(start.index))}


def test_evolution_children_are_one_edge_from_a_population_member(table):
    rows = _run(table, "re", budget=60).rows
    for position in range(10, 60):
        window = rows[max(0, position - 10) : position]  # the population before the child
        child = Cell.from_index(rows[position].index)
        parents = [Cell.from_index(row.index) for row in window]
        assert any(child in neighbours(parent) for parent in parents)


def test_evolution_beats_random_search_on_average(table):
    re_tests = [_run(table, "re", seed=s, budget=100).summary["best_test"] for s in range(10)]
    rs_tests = [_run(table, "rs", seed=s, budget=100).summary["best_test"] for s in range(10)]
    assert np.mean(re_tests) > np.mean(rs_tests)


def test_bad_method_settings_are_refused():
    with pytest.raises(ConfigError):
        EvolutionConfig(population_size=5, sample_size=6)
    with pytest.raises(ConfigError):
        LocalSearchConfig(num_init=0)


def test_reinforce_moves_the_policy_towards_rewards_above_the_baseline():
    from tnas.oracles import Evaluation
    from tnas.search.methods.reinforce import Reinforce

    def evaluation(valid):
        return Evaluation(valid=valid, test=valid, cost_s=1.0, params_mb=1.0, fidelity=200, seed=None)

    searcher = Reinforce(np.random.default_rng(0))
    good, bad = Cell((3,) * 6), Cell((1,) * 6)  # all 3x3 convolutions, all skips
    searcher.tell(bad, evaluation(50.0))  # the first reward is the baseline: no move
    start = searcher.probabilities()
    for _ in range(20):
        searcher.tell(good, evaluation(90.0))  # above the baseline: more likely
        searcher.tell(bad, evaluation(10.0))  # below it: less likely
    end = searcher.probabilities()
    assert (end[:, 3] > start[:, 3]).all() and (end[:, 1] < start[:, 1]).all()
    assert np.allclose(end.sum(axis=1), 1.0)
    assert 10.0 < searcher.baseline < 90.0


def test_reinforce_samples_follow_the_policy():
    from tnas.search.methods.reinforce import Reinforce

    searcher = Reinforce(np.random.default_rng(1))
    with torch.no_grad():
        searcher.logits.zero_()
        searcher.logits[:, 2] = 4.0  # op 2 has probability e^4 / (e^4 + 4) = 0.93 on every edge
    counts = np.zeros(5)
    for _ in range(500):
        for op in searcher.ask().ops:
            counts[op] += 1
    assert abs(counts[2] / counts.sum() - searcher.probabilities()[0, 2]) < 0.02
