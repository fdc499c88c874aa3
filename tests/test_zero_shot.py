"""``zero-shot``: the source tables' average order, never the target's own table."""

from __future__ import annotations

import numpy as np
import pytest

from tnas.oracles import TableOracle
from tnas.search import RunConfig, make_searcher, run
from tnas.search.methods.zero_shot import source_average, zero_shot_sources


def _run(table, dataset: str, seed: int = 0, budget: int = 40, observe: str = "mean"):
    config = RunConfig(method="zero-shot", dataset=dataset, seed=seed, budget=budget, fidelity=200, observe=observe)
    return run(make_searcher(config), TableOracle(table, dataset), config)


def test_the_sources_are_the_other_nas_bench_201_tables():
    assert zero_shot_sources("cifar10") == ("cifar100", "imagenet16-120")  # cifar10 observes cifar10-valid's runs
    assert zero_shot_sources("cifar10-valid") == ("cifar100", "imagenet16-120")
    assert zero_shot_sources("cifar100") == ("cifar10-valid", "imagenet16-120")
    assert zero_shot_sources("imagenet16-120") == ("cifar10-valid", "cifar100")
    assert zero_shot_sources("lab-task") == ("cifar10-valid", "cifar100", "imagenet16-120")  # a table of your own


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "imagenet16-120"])
def test_it_walks_the_source_average_and_never_looks_at_the_target(table, dataset):
    rows = _run(table, dataset).rows
    average = source_average(table, zero_shot_sources(dataset))
    assert [row.index for row in rows] == np.argsort(-average, kind="stable")[:40].tolist()
    target = TableOracle(table, dataset).valid_values(200)
    assert not np.allclose(average, (target - target.mean()) / target.std())
    median = float(np.median(TableOracle(table, dataset).test_values(200)))
    assert rows[-1].incumbent_test > median


def test_it_is_the_same_walk_for_every_seed_and_never_repeats(table):
    first = _run(table, "cifar100", seed=0, budget=300)
    indexes = [row.index for row in first.rows]
    assert len(set(indexes)) == 300 and first.summary["repeats_answered_from_cache"] == 0
    assert [row.index for row in _run(table, "cifar100", seed=7, budget=300).rows] == indexes  # no random source
    noisy = _run(table, "cifar100", seed=7, budget=30, observe="seed")  # the seed reaches the observations only
    assert [row.index for row in noisy.rows] == indexes[:30]
    assert [row.valid for row in noisy.rows] != [row.valid for row in first.rows[:30]]
