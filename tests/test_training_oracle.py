from __future__ import annotations

import json

import numpy as np
import pytest

from tnas.datasets import DatasetNotFoundError
from tnas.datasets.splits import SplitConfig, get_splits
from tnas.errors import ConfigError
from tnas.oracles.training import TrainingOracle
from tnas.rundir import RunDirectory
from tnas.search import RunConfig, make_searcher, run
from tnas.search.cli import main
from tnas.space import Cell
from tnas.train import TrainConfig
from tnas.train import trainer as trainer_module

SMALL = {"train_config": TrainConfig(epochs=1, batch_size=64, learning_rate=0.05), "channels": 4, "cells_per_stage": 1}
TRAIN_ARGS = ["--epochs", "1", "--train-batch-size", "64", "--learning-rate", "0.05", "--channels", "4",
              "--cells-per-stage", "1", "--device", "cpu", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def digits(data_dir):
    return get_splits("digits", data_dir=data_dir)


def test_splits_are_disjoint_stratified_and_fixed(data_dir):
    splits = get_splits("digits", data_dir=data_dir)
    assert splits.sizes() == {"train": 1079, "valid": 359, "test": 359}
    rows = [tuple(image.tobytes()) for part in (splits.train, splits.valid, splits.test) for image in part[0]]
    assert len(rows) == 1797  # every image in exactly one split (digits has a few duplicates: count, not set)
    for part in (splits.valid, splits.test):
        assert set(np.bincount(part[1], minlength=10)) <= {35, 36, 37}  # 20% of each class
    again = get_splits("digits", data_dir=data_dir)
    assert np.array_equal(again.valid[0], splits.valid[0])
    other = get_splits("digits", data_dir=data_dir, config=SplitConfig(split_seed=1))
    assert not np.array_equal(other.valid[0], splits.valid[0])


def test_a_dataset_with_a_test_split_keeps_it(data_dir):
    splits = get_splits("cifar10", data_dir=data_dir)
    assert splits.sizes() == {"train": 2400, "valid": 600, "test": 1000}
    mnist = get_splits("mnist", data_dir=data_dir)  # the MNIST test set, cut three ways
    assert mnist.sizes() == {"train": 6000, "valid": 2000, "test": 2000} and mnist.image_shape == (28, 28, 1)


def test_too_few_images_per_class_and_missing_data_are_clear(data_dir, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="at least 3 per class"):
        get_splits("imagenet16-120", data_dir=data_dir)
    with pytest.raises(DatasetNotFoundError, match="train_32x32.mat"):
        get_splits("svhn", data_dir=data_dir)
    with pytest.raises(DatasetNotFoundError, match="--data-root"):
        get_splits("svhn", data_dir=data_dir, data_root=tmp_path)
    with pytest.raises(ConfigError):
        SplitConfig(valid_fraction=0.6)


def test_the_oracle_trains_once_and_answers_from_its_cache(digits, tmp_path):
    oracle = TrainingOracle(digits, cache_root=tmp_path, train_seeds=(0, 1), **SMALL)
    cell = Cell.from_index(6111)
    mean = oracle.evaluate(cell, fidelity=1, seed=None)
    assert oracle.trainings_run == 2 and mean.failure is None
    one = oracle.evaluate(cell, fidelity=1, seed=1)
    assert oracle.trainings_run == 2  # from the cache
    zero = TrainingOracle(digits, cache_root=tmp_path, train_seeds=(0, 1), **SMALL).evaluate(cell, fidelity=1, seed=0)
    assert mean.valid == pytest.approx((zero.valid + one.valid) / 2)
    assert mean.cost_s == pytest.approx(zero.cost_s + one.cost_s)
    assert oracle.seeds(cell, fidelity=1) == (0, 1)
    stored = json.loads(oracle.cache.path(cell, 0).read_text())
    assert stored["status"] == "ok" and stored["index"] == 6111 and stored["device"] == "cpu"
    assert json.loads((oracle.cache.folder / "setup.json").read_text())["train"]["epochs"] == 1
    with pytest.raises(ConfigError, match="epochs"):
        oracle.evaluate(cell, fidelity=200, seed=None)
    with pytest.raises(ConfigError, match="seed"):
        oracle.evaluate(cell, fidelity=1, seed=5)


def test_another_training_setup_is_another_cache_entry(digits, tmp_path):
    first = TrainingOracle(digits, cache_root=tmp_path, **SMALL)
    other = TrainingOracle(digits, cache_root=tmp_path, **{**SMALL, "channels": 8})
    assert first.cache.folder != other.cache.folder


def test_a_diverging_training_is_recorded_as_failed_and_not_retried(digits, tmp_path, capsys):
    wild = dict(SMALL, train_config=TrainConfig(epochs=1, batch_size=64, learning_rate=1e12))
    messages: list[str] = []
    oracle = TrainingOracle(digits, cache_root=tmp_path, log=messages.append, **wild)
    evaluation = oracle.evaluate(Cell.from_index(6111), fidelity=1, seed=None)
    assert evaluation.failure is not None and "diverged" in evaluation.failure
    assert evaluation.valid == pytest.approx(10.0)  # chance level on 10 classes
    assert len(messages) == 1 and "failed" in messages[0] and "chance" in messages[0]
    again = TrainingOracle(digits, cache_root=tmp_path, log=messages.append, **wild)
    again.evaluate(Cell.from_index(6111), fidelity=1, seed=None)
    assert again.trainings_run == 0
    retry = TrainingOracle(digits, cache_root=tmp_path, log=messages.append, retry_failed=True, **wild)
    retry.evaluate(Cell.from_index(6111), fidelity=1, seed=None)
    assert retry.trainings_run == 1


def test_out_of_memory_is_recorded_as_failed(digits, tmp_path, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("tnas.oracles.training.train_and_evaluate", out_of_memory)
    oracle = TrainingOracle(digits, cache_root=tmp_path, log=lambda text: None, **SMALL)
    evaluation = oracle.evaluate(Cell.from_index(3), fidelity=1, seed=None)
    assert evaluation.failure.startswith("seed 0: out of memory")
    assert json.loads(oracle.cache.path(Cell.from_index(3), 0).read_text())["status"] == "failed"


def test_a_search_records_failures_and_goes_on(digits, tmp_path, monkeypatch):
    real = trainer_module.train_and_evaluate

    def fails_on_one_cell(cell, *args, **kwargs):
        if cell.index == failing:
            raise FloatingPointError(f"the training loss of cell {cell.index} became nan")
        return real(cell, *args, **kwargs)

    config = RunConfig(method="rs", dataset="digits", seed=3, budget=4, fidelity=1, observe="mean", oracle="train")
    failing = make_searcher(config).ask().index  # the first proposal fails
    monkeypatch.setattr("tnas.oracles.training.train_and_evaluate", fails_on_one_cell)
    oracle = TrainingOracle(digits, cache_root=tmp_path / "cache", log=lambda text: None, **SMALL)
    result = run(make_searcher(config), oracle, config, tmp_path / "run")
    assert len(result.rows) == 4 and result.rows[0].failure.startswith("seed 0: diverged")
    assert all(row.failure is None for row in result.rows[1:])
    assert result.summary["failed_queries"] == 1
    assert RunDirectory(tmp_path / "run").read_trajectory()[0].failure == result.rows[0].failure


def test_a_killed_search_resumes_without_retraining_finished_cells(data_dir, tmp_path, monkeypatch):
    real = trainer_module.train_and_evaluate
    trained: list[tuple[int, int]] = []

    def counting(cell, *args, **kwargs):
        if len(trained) == kill_after:
            raise KeyboardInterrupt  # the user's ^C (or a kill) in the middle of a training
        trained.append((cell.index, kwargs["seed"]))
        return real(cell, *args, **kwargs)

    monkeypatch.setattr("tnas.oracles.training.train_and_evaluate", counting)
    args = ["--dataset", "digits", "--method", "re", "--budget", "5", "--train-seeds", "0,1",
            "--results-cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"), *TRAIN_ARGS]  # fmt: skip
    kill_after = 5  # query 3's first seed is finished, its second is not
    assert main(args + ["--data-dir", str(data_dir)]) == 130
    assert len(RunDirectory(tmp_path / "run").read_trajectory()) == 2
    finished = list(trained)
    kill_after = -1
    assert main(args + ["--data-dir", str(data_dir)]) == 0
    assert trained[:5] == finished and len(trained) == len(set(trained)) == 10  # 5 queries x 2 seeds, once each
    assert trained[5] == (finished[4][0], 1)  # the interrupted query trains only its missing seed
    rows = RunDirectory(tmp_path / "run").read_trajectory()
    assert [row.query for row in rows] == [1, 2, 3, 4, 5]


def test_cli_trains_on_digits_and_reports(data_dir, tmp_path, capsys):
    args = ["--dataset", "digits", "--method", "rs", "--budget", "2", "--data-dir", str(data_dir),
            "--results-cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"), *TRAIN_ARGS]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "rs on digits" in out and "min on cpu" in out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["config"]["oracle"] == "train" and config["config"]["fidelity"] == 1
    assert config["oracle"]["kind"] == "train" and config["oracle"]["splits"]["valid"] == 359


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dataset", "svhn"], "train_32x32.mat"),
        (["--dataset", "svhn", "--data-root", "/nonexistent"], "is not a folder"),
        (["--dataset", "imagenet16-120", "--oracle", "train"], "at least 3 per class"),
        (["--dataset", "digits", "--oracle", "table"], "no NAS-Bench-201 table"),
        (["--dataset", "cifar100", "--data-root", "/tmp"], "--data-root is for --oracle train"),
        (["--dataset", "digits", "--train-seeds", "a"], "--train-seeds"),
        (["--dataset", "digits", "--fidelity", "12"], "use --epochs"),
        (["--dataset", "digits", "--device", "cuda:0"], "CUDA is not available"),
        (["--dataset", "nosuch"], "unknown dataset"),
    ],
)
def test_training_cli_user_errors_are_one_line_exit_2(data_dir, tmp_path, capsys, extra, message):
    if "cuda" in extra[-1]:
        pytest.importorskip("torch")
        import torch

        if torch.cuda.is_available():
            pytest.skip("CUDA is available here")
    args = ["--method", "rs", "--budget", "2", "--data-dir", str(data_dir), "--out", str(tmp_path / "run"),
            "--results-cache", str(tmp_path / "cache"), "--no-progress", *extra]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_a_constrained_real_training_search_counts_the_network_it_trains(digits, data_dir, tmp_path):
    from tnas.constraints import NetworkGeometry, flops_m_of_all_cells, params_mb_of_all_cells
    from tnas.search.oracle_setup import search_space
    from tnas.train.network import count_parameters_mb

    oracle = TrainingOracle(digits, cache_root=tmp_path / "cache", log=lambda text: None, **SMALL)
    config = RunConfig(method="rs", dataset="digits", seed=0, budget=3, fidelity=1, observe="mean", oracle="train",
                       constraints={"max_flops_m": 0.08, "max_params_mb": 0.01})  # fmt: skip
    space = search_space(config, oracle, data_dir)
    height, _, channels = digits.image_shape
    geometry = NetworkGeometry(resolution=height, num_classes=digits.num_classes, in_channels=channels,
                               channels=4, cells_per_stage=1)  # fmt: skip
    assert space.quantities["flops_m"].tolist() == flops_m_of_all_cells(geometry).tolist()
    assert 0 < len(space) < 15625 and all(params_mb_of_all_cells(geometry)[space.indexes] <= 0.01)
    result = run(make_searcher(config, space=space), oracle, config, tmp_path / "run", space=space)
    assert all(count_parameters_mb(Cell.from_index(row.index), oracle.network) <= 0.01 for row in result.rows)
    assert all(row.flops_m <= 0.08 for row in result.rows)


@pytest.mark.parametrize("damage", [{"valid": "x"}, {"valid": None}, {"test": [1]}, {"seconds": "2"},
                                    {"seconds": -50}, {"valid": float("nan")}, {"status": "okay"}, {"index": 7},
                                    {"valid": 250.0}])  # fmt: skip
def test_a_damaged_training_record_is_trained_again_with_a_one_line_note(tmp_path, caplog, damage):
    from tnas.train.results import TrainingCache, TrainingRecord

    cache = TrainingCache(tmp_path, "digits", {"setup": 1})
    cell = Cell.from_index(6111)
    record = TrainingRecord.now(status="ok", index=cell.index, arch=cell.arch_str, seed=0, valid=90.0, test=89.0,
                                seconds=2.0, final_loss=0.1, error=None, device="cpu")  # fmt: skip
    cache.put(record)
    assert cache.get(cell, 0) == record
    cache.path(cell, 0).write_text(json.dumps({**json.loads(cache.path(cell, 0).read_text()), **damage}))
    assert cache.get(cell, 0) is None  # absent: the oracle trains the cell again
    (note,) = [entry.getMessage() for entry in caplog.records if "damaged training record" in entry.getMessage()]
    assert "\n" not in note
