"""Peer libraries as search methods (Optuna TPE, HEBO): registration, budget, repeats, determinism.

The peers are an optional extra (``tnas[peers]``), so every test that drives one skips
when its library is missing; the missing-library error path runs either way. HEBO's
model-based suggestions take about a second or two each on CPU, so its runs are short: a
budget of 9 is its 7 Sobol points and 2 model-based proposals.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch

from tnas.errors import ConfigError, SearcherError
from tnas.oracles import Evaluation, TableOracle
from tnas.search import RunConfig, make_searcher, run
from tnas.search.methods import METHODS
from tnas.search.methods.peers import EDGE_NAMES, HEBOConfig, OptunaTPEConfig
from tnas.space import Cell

HEBO_BUDGET = 9  # 7 Sobol points (HEBO's default rand_sample) + 2 model-based suggestions


def _config(method, seed=0, budget=20):
    return RunConfig(
        method=method, dataset="cifar100", seed=seed, budget=budget, fidelity=200, observe="mean"
    )


def _run(table, method, seed=0, budget=20, searcher=None, run_info=None):
    config = _config(method, seed, budget)
    searcher = searcher or make_searcher(config, run_info=run_info)
    return run(searcher, TableOracle(table, "cifar100"), config)


def _indexes(result):
    return [row.index for row in result.rows]


def _evaluation(valid):
    return Evaluation(valid=valid, test=valid, cost_s=1.0, params_mb=0.1, fidelity=200, seed=None)


# ---------------------------------------------------------------------- registry and errors
def test_both_peers_are_registered_with_their_settings():
    assert METHODS["optuna-tpe"].settings == asdict(OptunaTPEConfig())
    assert METHODS["optuna-tpe"].settings["n_startup_trials"] == 10  # Optuna's default
    assert METHODS["hebo"].settings == asdict(HEBOConfig())
    assert METHODS["hebo"].settings["rand_sample"] == 1 + len(EDGE_NAMES)  # HEBO's default


@pytest.mark.parametrize(("method", "module"), [("optuna-tpe", "optuna"), ("hebo", "hebo")])
def test_a_missing_peer_library_is_a_one_line_config_error(monkeypatch, method, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import <module>` fail
    with pytest.raises(ConfigError, match=r"pip install 'tnas\[peers\]'") as error:
        make_searcher(_config(method))
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------------- Optuna TPE
def test_optuna_respects_the_budget_never_counts_a_repeat_and_records_its_version(table):
    optuna = pytest.importorskip("optuna")
    level = logging.getLogger("optuna").level
    run_info = {}
    result = _run(table, "optuna-tpe", budget=60, run_info=run_info)
    indexes = _indexes(result)
    assert len(indexes) == 60 and len(set(indexes)) == 60
    assert result.summary["repeats_answered_from_cache"] >= 0  # TPE does repeat; none is a query
    assert run_info["peer"]["library"] == "optuna" and run_info["peer"]["version"] == optuna.__version__
    assert run_info["peer"]["n_startup_trials"] == 10 and isinstance(run_info["peer"]["seed"], int)
    assert logging.getLogger("optuna").level == level  # silenced only inside the adapter's calls


def test_optuna_feeds_a_cached_repeat_back_as_an_ordinary_trial(table):
    pytest.importorskip("optuna")
    config = _config("optuna-tpe", budget=3)
    searcher = make_searcher(config)
    repeated = Cell.from_index(1234)
    for _ in range(2):  # the study proposes this cell twice in a row
        searcher.study.enqueue_trial(dict(zip(EDGE_NAMES, repeated.op_names)))
    result = run(searcher, TableOracle(table, "cifar100"), config)
    indexes = _indexes(result)
    assert indexes[0] == repeated.index and len(indexes) == len(set(indexes)) == 3
    assert result.summary["repeats_answered_from_cache"] == 1
    trials = searcher.study.trials
    assert len(trials) == 4 and all(trial.state.is_finished() for trial in trials)
    assert trials[0].params == trials[1].params
    assert trials[0].value == trials[1].value == result.rows[0].valid  # the cached value, told again


def test_optuna_refuses_to_be_told_about_a_cell_it_did_not_propose():
    pytest.importorskip("optuna")
    searcher = make_searcher(_config("optuna-tpe"))
    cell = searcher.ask()
    other = Cell.from_index((cell.index + 1) % 15625)
    with pytest.raises(SearcherError):
        searcher.tell(other, _evaluation(50.0))


def test_optuna_is_deterministic_under_a_seed(table):
    pytest.importorskip("optuna")
    first = _indexes(_run(table, "optuna-tpe", seed=3, budget=30))
    np.random.seed(7)  # the global generators must not matter
    again = _indexes(_run(table, "optuna-tpe", seed=3, budget=30))
    other = _indexes(_run(table, "optuna-tpe", seed=4, budget=30))
    assert first == again and first != other


# ---------------------------------------------------------------------- HEBO
def test_hebo_is_deterministic_respects_the_budget_and_leaves_global_state_alone(table):
    pytest.importorskip("hebo")
    threads, torch_state = torch.get_num_threads(), torch.random.get_rng_state()
    numpy_state = np.random.get_state()
    run_info = {}
    first = _run(table, "hebo", seed=2, budget=HEBO_BUDGET, run_info=run_info)
    assert torch.get_num_threads() == threads  # importing HEBO sets one thread; the builder restores
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
    indexes = _indexes(first)
    assert len(indexes) == HEBO_BUDGET and len(set(indexes)) == HEBO_BUDGET
    assert first.summary["repeats_answered_from_cache"] >= 0
    assert run_info["peer"]["library"] == "hebo" and run_info["peer"]["version"]
    assert run_info["peer"]["rand_sample"] == 7 and isinstance(run_info["peer"]["scramble_seed"], int)
    torch.manual_seed(123)  # the global generators must not matter
    np.random.seed(123)
    again = _indexes(_run(table, "hebo", seed=2, budget=HEBO_BUDGET))
    other = _indexes(_run(table, "hebo", seed=3, budget=HEBO_BUDGET))
    assert indexes == again and indexes != other


def test_hebo_feeds_a_cached_repeat_back_as_an_ordinary_observation(table, monkeypatch):
    pytest.importorskip("hebo")
    config = _config("hebo", budget=3)
    searcher = make_searcher(config)
    suggest = searcher.optimizer.suggest
    first = suggest(n_suggestions=1)
    answers = [first, first.copy()]  # the first two suggestions are the same cell
    monkeypatch.setattr(searcher.optimizer, "suggest",
                        lambda n_suggestions=1: answers.pop(0) if answers else suggest(n_suggestions))  # fmt: skip
    result = run(searcher, TableOracle(table, "cifar100"), config)
    indexes = _indexes(result)
    assert len(indexes) == len(set(indexes)) == 3
    assert result.summary["repeats_answered_from_cache"] == 1
    X, y = searcher.optimizer.X, searcher.optimizer.y
    assert len(X) == len(y) == 4  # three queries and the repeat
    assert X.iloc[0].tolist() == X.iloc[1].tolist() == list(Cell.from_index(indexes[0]).op_names)
    assert y[0, 0] == y[1, 0] == -result.rows[0].valid  # HEBO minimises: told the negated accuracy
