"""Parallel search: pending evaluations, the simulated backend, the journal, local workers."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from tests.fakes import CountingOracle, kill_driver_after
from tnas.errors import SearcherError
from tnas.oracles import TableOracle
from tnas.search import RunConfig, RunDirectory, make_searcher, run
from tnas.search.backends import BackendOptions
from tnas.search.journal import read_journal
from tnas.search.runner import observed_seed
from tnas.space import Cell, sample_unseen

GOLDEN = Path(__file__).parent / "golden"
FAST_METHODS = ("rs", "re", "ls", "bananas")
PENDING_METHODS = (*FAST_METHODS, "reinforce", "gp", "nasbowl", "optuna-tpe", "tnas-untrained", "zero-shot")
UNTRAINED = {"finetune_steps": 5}  # tnas-untrained, kept quick


class PendingChecker:
    """Wraps a searcher; fails the test if it ever proposes a pending cell, and records how
    many cells were pending at each ask."""

    def __init__(self, searcher):
        self.searcher, self.pending_sizes = searcher, []

    def ask(self, pending=()):
        cell = self.searcher.ask(pending)
        assert cell.index not in {c.index for c in pending}, "proposed a pending cell"
        self.pending_sizes.append(len(pending))
        return cell

    def tell(self, cell, evaluation):
        self.searcher.tell(cell, evaluation)


def _needs_library(method):
    if method == "optuna-tpe":
        pytest.importorskip("optuna")  # the peers extra


def _config(method="re", budget=40, **changes):
    options = UNTRAINED if method == "tnas-untrained" else {}
    base = RunConfig(method=method, dataset="cifar100", seed=3, budget=budget, fidelity=200, observe="mean",
                     options=options)  # fmt: skip
    return dataclasses.replace(base, **changes)


def _stable(rows):
    """Rows without the timing that differs between runs."""
    return [dataclasses.replace(row, overhead_s=0.0) for row in rows]


@pytest.fixture(scope="module")
def oracle(table):
    return TableOracle(table, "cifar100")


@pytest.mark.parametrize("method", PENDING_METHODS)
def test_several_workers_respect_the_budget_and_never_evaluate_a_cell_twice(oracle, method):
    _needs_library(method)
    budget = 10 if method in ("gp", "tnas-untrained") else 24
    config = _config(method, budget=budget, workers=6)
    counting = CountingOracle(oracle)
    searcher = PendingChecker(make_searcher(config))
    result = run(searcher, counting, config)
    assert len(result.rows) == budget == counting.calls == len(set(counting.evaluated))
    assert max(searcher.pending_sizes) == 5  # the others' evaluations were pending at each ask
    assert {row.worker for row in result.rows} == set(range(6))


@pytest.mark.parametrize("method", PENDING_METHODS)
def test_pending_cells_are_never_proposed(oracle, table, method):
    """Ask with many cells pending, including the ones the searcher would propose next."""
    _needs_library(method)
    config = _config(method)
    searcher = make_searcher(config)
    for _ in range(12):  # some observations first (past the random initial designs)
        cell = searcher.ask()
        searcher.tell(cell, oracle.evaluate(cell, fidelity=200, seed=None))
    would = make_searcher(config)
    for _ in range(12):
        cell = would.ask()
        would.tell(cell, oracle.evaluate(cell, fidelity=200, seed=None))
    next_cell = would.ask()
    import numpy as np

    rng = np.random.default_rng(0)
    pending = [next_cell, *(sample_unseen(rng, {next_cell.index}) for _ in range(15))]
    for _ in range(3):
        proposal = searcher.ask(pending)
        assert proposal.index not in {cell.index for cell in pending}
        pending.append(proposal)


def test_a_searcher_proposing_a_pending_cell_is_stopped(oracle):
    class Stubborn:
        def ask(self, pending=()):
            return Cell.from_index(7)

        def tell(self, cell, evaluation):
            pass

    with pytest.raises(SearcherError, match="being evaluated"):
        run(Stubborn(), oracle, _config(workers=2))


MACHINE_DEPENDENT = {"bananas": 10}
"""Methods whose trajectories depend on the CPU's float32 kernels (BANANAS's MLP ensembles:
another instruction set rounds differently and, with noisy observations, can flip a
choice), with the length of their machine-independent random initial design. Their golden
file is checked on that design only; the rest is checked against a plain ask/tell loop
run on this machine."""


def _sequential_loop(config, oracle, queries):
    """``(index, valid, recommended_index)`` of a strictly sequential ask/tell loop, as the runner observes."""
    searcher, rows = make_searcher(config), []
    for ticket in range(1, queries + 1):
        cell = searcher.ask()
        evaluation = oracle.evaluate(cell, fidelity=config.fidelity, seed=observed_seed(config, ticket, oracle, cell))
        searcher.tell(cell, evaluation)
        recommended = searcher.recommend() if hasattr(searcher, "recommend") else None
        rows.append((cell.index, evaluation.valid, recommended))
    return rows


@pytest.mark.parametrize("name", sorted(path.stem for path in GOLDEN.glob("*.csv")))
def test_one_worker_reproduces_the_trajectories_of_the_sequential_runner(oracle, tmp_path, name):
    """The golden files were written by the runner before parallel search existed."""
    method, observe = name.rsplit("-", 1)
    config = _config(method, budget=30, observe=observe)
    if method == "tnas-untrained":
        config = dataclasses.replace(config, options={"finetune_steps": 20})  # as the golden run
    run(make_searcher(config), oracle, config, tmp_path)
    with open(GOLDEN / f"{name}.csv") as golden, open(RunDirectory(tmp_path).trajectory_path) as new:
        old_rows, new_rows = list(csv.DictReader(golden)), list(csv.DictReader(new))
    assert len(old_rows) == len(new_rows) == 30
    if method in MACHINE_DEPENDENT:
        design = MACHINE_DEPENDENT[method]
        assert [row["index"] for row in old_rows[:design]] == [row["index"] for row in new_rows[:design]]
        reference = _sequential_loop(config, oracle, 30)
        assert [(int(row["index"]), float(row["valid"])) for row in new_rows] == [(i, v) for i, v, _ in reference]
        for row, (_, _, recommended) in zip(new_rows, reference):
            if recommended is not None:  # otherwise the incumbent, checked with the indexes
                assert int(row["recommended_index"]) == recommended.index
        return
    choices = ("index", "valid", "test", "seed", "cost_s", "incumbent_index", "sim_cost_s", "recommended_index",
               "recommended_test")  # fmt: skip
    assert [[row[k] for k in choices] for row in old_rows] == [[row[k] for k in choices] for row in new_rows]
    for old, new in zip(old_rows, new_rows):  # model outputs: equal up to thread-count rounding
        for key in ("acquisition", "pred_mean", "pred_std"):
            assert (old[key] == new[key] == "") or float(old[key]) == pytest.approx(float(new[key]), rel=1e-4)


@pytest.mark.parametrize("method", ("re", "bananas", "tnas-untrained"))
def test_the_simulated_backend_is_deterministic(oracle, method):
    config = _config(method, budget=20, workers=4)
    first, second = (run(make_searcher(config), oracle, config) for _ in range(2))
    assert _stable(first.rows) == _stable(second.rows)
    rows = first.rows
    assert all(row.end_s == pytest.approx(row.start_s + row.cost_s) for row in rows)
    assert [row.end_s for row in rows] == sorted(row.end_s for row in rows)  # told in finishing order
    assert first.summary["wall_clock_s"] == rows[-1].end_s < rows[-1].sim_cost_s  # four workers at once


@pytest.mark.parametrize(("method", "kill_after"), [("rs", 3), ("rs", 11), ("re", 3), ("re", 11), ("ls", 11),
                                                    ("bananas", 13), ("tnas-untrained", 9)])
def test_a_killed_simulated_run_resumes_to_the_uninterrupted_trajectory(oracle, tmp_path, method, kill_after):
    config = _config(method, budget=20, workers=4, observe="seed")
    reference = run(make_searcher(config), oracle, config, tmp_path / "reference")
    killed = CountingOracle(oracle, fail_after=kill_after)
    with pytest.raises(KeyboardInterrupt):
        run(make_searcher(config), killed, config, tmp_path / "resumed")
    directory = RunDirectory(tmp_path / "resumed")
    in_flight = len(read_journal(directory.journal_path)) - len(directory.read_trajectory())
    assert in_flight > 0  # evaluations were running when it died
    resumed_oracle = CountingOracle(oracle)
    resumed = run(make_searcher(config), resumed_oracle, config, tmp_path / "resumed")
    assert _stable(directory.read_trajectory()) == _stable(reference.rows) == _stable(resumed.rows)
    finished_before = {row.index for row in resumed.rows[: resumed.replayed]}
    assert not finished_before & set(resumed_oracle.evaluated)  # finished evaluations are not repeated


def test_a_damaged_last_journal_line_is_cut_and_the_run_resumes(oracle, tmp_path):
    config = _config("re", budget=20, workers=4)
    reference = run(make_searcher(config), oracle, config, tmp_path / "reference")
    with pytest.raises(KeyboardInterrupt):
        run(make_searcher(config), CountingOracle(oracle, fail_after=9), config, tmp_path / "resumed")
    journal = RunDirectory(tmp_path / "resumed").journal_path
    journal.write_text(journal.read_text() + '{"ticket": 10, "ind')  # killed mid-write
    resumed = run(make_searcher(config), oracle, config, tmp_path / "resumed")
    assert _stable(resumed.rows) == _stable(reference.rows)
    assert all(json.loads(line) for line in journal.read_text().splitlines())


def test_several_workers_are_another_run(oracle, tmp_path):
    from tnas.errors import RunDirectoryError

    run(make_searcher(_config("rs", budget=5)), oracle, _config("rs", budget=5), tmp_path)
    with pytest.raises(RunDirectoryError, match="workers=4"):
        config = _config("rs", budget=5, workers=4)
        run(make_searcher(config), oracle, config, tmp_path)


def test_one_worker_keeps_the_identity_of_earlier_runs():
    assert "workers" not in _config().to_dict() and "backend" not in _config().to_dict()
    assert _config(workers=2).to_dict()["workers"] == 2


# ---------------------------------------------------------------------- local worker processes
class TableSpec:
    """Builds the table oracle in a worker process; ``crash_marker`` makes the first
    evaluation of the worker that creates the marker kill its own process."""

    def __init__(self, data_dir, crash_marker=None):
        self.data_dir, self.crash_marker = data_dir, crash_marker

    def build(self, device):
        from tnas.oracles import NB201Table

        oracle = TableOracle(NB201Table.load(self.data_dir), "cifar100")
        return _Crashing(oracle, self.crash_marker) if self.crash_marker else oracle


class _Crashing:
    def __init__(self, oracle, marker):
        self.oracle, self.marker, self.name = oracle, Path(marker), oracle.name

    def seeds(self, cell, *, fidelity):
        return self.oracle.seeds(cell, fidelity=fidelity)

    def evaluate(self, cell, *, fidelity, seed):
        try:
            self.marker.touch(exist_ok=False)
        except FileExistsError:
            return self.oracle.evaluate(cell, fidelity=fidelity, seed=seed)
        import os

        os._exit(1)  # the worker process dies mid-evaluation


def test_local_worker_processes_run_a_search_and_survive_a_crashed_worker(oracle, data_dir, tmp_path):
    config = _config("re", budget=12, workers=2, backend="local")
    spec = TableSpec(data_dir, crash_marker=tmp_path / "crashed")
    result = run(make_searcher(config), oracle, config, tmp_path / "run", worker_spec=spec,
                 backend_options=BackendOptions(threads=1))  # fmt: skip
    assert (tmp_path / "crashed").exists()  # one worker did die
    indexes = [row.index for row in result.rows]
    assert len(indexes) == 12 == len(set(indexes)) and not any(row.failure for row in result.rows)
    journal = read_journal(RunDirectory(tmp_path / "run").journal_path)
    assert [s.attempt for s in journal].count(2) == 1  # the crashed evaluation was resubmitted once
    assert result.summary["backend"] == "local" and result.summary["workers"] == 2


class _Broken:
    name = "cifar100"

    def seeds(self, cell, *, fidelity):
        return ()

    def evaluate(self, cell, *, fidelity, seed):
        raise RuntimeError("GPU fell off the bus")


class BrokenSpec:
    def build(self, device):
        return _Broken()


def test_a_worker_failing_every_time_is_recorded_as_a_failed_query(oracle, tmp_path):
    config = _config("rs", budget=3, workers=2, backend="local")
    result = run(make_searcher(config), oracle, config, worker_spec=BrokenSpec(),
                 backend_options=BackendOptions(threads=1, max_retries=1))  # fmt: skip
    assert len(result.rows) == 3 and all("GPU fell off the bus" in row.failure for row in result.rows)
    assert result.summary["failed_queries"] == 3


def test_a_run_from_before_the_journal_resumes_twice(oracle, tmp_path):
    """Extended once (the journal is written then, from the trajectory), killed, resumed."""
    config = _config("re", budget=10)
    run(make_searcher(config), oracle, config, tmp_path)
    directory = RunDirectory(tmp_path)
    directory.journal_path.unlink()
    directory.summary_path.unlink()
    longer = _config("re", budget=30)
    with pytest.raises(KeyboardInterrupt):
        run(make_searcher(longer), CountingOracle(oracle, fail_after=8), longer, tmp_path)
    resumed = run(make_searcher(longer), oracle, longer, tmp_path)
    reference = run(make_searcher(longer), oracle, longer)
    assert _stable(resumed.rows) == _stable(reference.rows)
    assert len(read_journal(directory.journal_path)) == 30


@pytest.mark.slow
def test_a_killed_driver_of_local_trainings_resumes_without_training_a_cell_twice(tmp_path, data_dir):
    import subprocess
    import sys

    command = [sys.executable, "-m", "tnas.search", "--dataset", "mnist", "--method", "rs", "--budget", "6",
               "--epochs", "1", "--train-subset", "2000", "--channels", "4", "--cells-per-stage", "1",
               "--device", "cpu", "--workers", "2", "--threads-per-worker", "1", "--results-cache",
               str(tmp_path / "cache"), "--out", str(tmp_path / "run"), "--no-progress", "--data-dir", str(data_dir)]  # fmt: skip
    directory = RunDirectory(tmp_path / "run")
    before = kill_driver_after(command, directory.path, rows=2)
    assert 2 <= len(before) < 6
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr
    rows = directory.read_trajectory()
    assert rows[: len(before)] == before and len(rows) == 6 == len({row.index for row in rows})
    assert len(list((tmp_path / "cache").rglob("cell*-seed*.json"))) == 6  # every training is in the cache


# ---------------------------------------------------------------------- the page's --runs
def _harness_runs(oracle, root, workers):
    """Two rs runs of a few queries where ``python -m benchmarks.nb201 --workers N`` puts them."""
    for seed in range(2):
        config = RunConfig(method="rs", dataset="cifar10", seed=seed, budget=4, fidelity=200, observe="mean",
                           workers=workers)  # fmt: skip
        run(make_searcher(config), oracle, config, root / "mean" / "cifar10" / "rs" / f"seed{seed}")


def test_the_parallel_page_refuses_a_worker_count_twice_or_one_the_runs_did_not_record(table, data_dir, tmp_path,
                                                                                        capsys):  # fmt: skip
    from benchmarks import parallel

    oracle = TableOracle(table, "cifar10")
    one, two = tmp_path / "w1", tmp_path / "w2"
    _harness_runs(oracle, one, 1)
    _harness_runs(oracle, two, 2)

    def report(*runs):
        return parallel.main(["report", "--runs", *runs, "--seeds", "2", "--results-page", str(tmp_path / "page.md"),
                              "--data-dir", str(data_dir)])  # fmt: skip

    for runs, message in (((f"2={one}", f"2={two}"), f"--runs gives 2 workers twice ({one} and {two})"),
                          ((f"1={one}", f"4={two}"), f"--runs 4={two}: {two / 'mean' / 'cifar10' / 'rs' / 'seed0'} "
                                                     f"was run with 2 workers, not 4; label the folder 2={two}"),
                          ((f"2={one}",), "was run with 1 worker, not 2"),
                          ((f"0={one}",), "expected WORKERS=FOLDER"),
                          ((f"1={one}", f"4={tmp_path / 'typo'}"), f"--runs: {tmp_path / 'typo'} is not a folder")):
        assert report(*runs) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "page.md").exists()
    assert report(f"1={one}", f"2={two}") == 0
    text = (tmp_path / "page.md").read_text()
    assert "| cifar10 | rs | 1 | " in text and "| cifar10 | rs | 2 | " in text
