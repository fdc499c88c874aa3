from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from linear_operator.utils.errors import NotPSDError

from tests.synthetic_meta import small_config, synthetic_meta
from tnas.errors import ConfigError
from tnas.meta_train import CheckpointError, MetaTrainConfig, load_model, meta_train
from tnas.meta_train import reptile as reptile_module
from tnas.meta_train.cli import main
from tnas.meta_train.ensemble import last_epochs, load_surrogate
from tnas.meta_train.reptile import reptile_update
from tnas.meta_train.trainer import epoch_dir


def test_reptile_moves_exactly_epsilon_towards_the_inner_weights():
    parameters = [torch.nn.Parameter(torch.tensor([1.0, 2.0])), torch.nn.Parameter(torch.tensor([[0.5]]))]
    targets = {"a": [torch.tensor([3.0, -2.0]), torch.tensor([[1.5]])],
               "b": [torch.tensor([1.0, 6.0]), torch.tensor([[-0.5]])]}  # fmt: skip
    seen_starts = []

    def inner_loop(task):
        seen_starts.append([p.detach().clone() for p in parameters])
        with torch.no_grad():
            for parameter, target in zip(parameters, targets[task]):
                parameter.copy_(target)

    reptile_update(parameters, ["a"], inner_loop, outer_step=0.25)
    torch.testing.assert_close(parameters[0].detach(), torch.tensor([1.5, 1.0]))  # 1 + .25 * (3 - 1), ...
    torch.testing.assert_close(parameters[1].detach(), torch.tensor([[0.75]]))
    start = [p.detach().clone() for p in parameters]
    reptile_update(parameters, ["a", "b"], inner_loop, outer_step=0.5)
    for task_start in seen_starts[1:]:  # every task adapts from the same starting weights
        for value, expected in zip(task_start, start):
            torch.testing.assert_close(value, expected)
    mean_target = [(ta + tb) / 2 for ta, tb in zip(targets["a"], targets["b"])]
    for parameter, before, target in zip(parameters, start, mean_target):
        torch.testing.assert_close(parameter.detach(), before + 0.5 * (target - before))


def test_a_meta_training_step_equals_one_inner_loop_scaled_by_epsilon(tmp_path):
    """With one task per step, the outer update is w + eps * (inner-loop weights - w)."""
    from tnas.meta_train.reptile import BatchLoss, StepReport, make_inner_loop
    from tnas.models import DeepKernel

    meta = synthetic_meta()
    config = small_config()
    torch.manual_seed(0)
    kernel = DeepKernel(config.kernel)
    parameters = list(kernel.parameters())
    start = [p.detach().clone() for p in parameters]
    loss = BatchLoss(kernel, meta.bank, config.batch_size, torch.device("cpu"))
    report = StepReport([], 0)
    inner = make_inner_loop(parameters, loss, np.random.default_rng(1), inner_steps=3, inner_lr=0.01, report=report)
    inner(meta.train[1])
    adapted = [p.detach().clone() for p in parameters]
    with torch.no_grad():
        for parameter, value in zip(parameters, start):
            parameter.copy_(value)
    inner = make_inner_loop(parameters, loss, np.random.default_rng(1), inner_steps=3, inner_lr=0.01, report=report)
    reptile_update(parameters, [meta.train[1]], inner, outer_step=0.3)
    for parameter, before, after in zip(parameters, start, adapted):
        torch.testing.assert_close(parameter.detach(), before + 0.3 * (after - before))
    assert any(not torch.equal(a, b) for a, b in zip(adapted, start))


def test_batches_draw_the_top_fraction_from_the_sources_best_triples():
    from tnas.meta_train.reptile import BatchLoss
    from tnas.models import DeepKernel

    source = synthetic_meta().train[1]  # 300 triples
    cut = np.quantile(source.targets, 0.9)
    loss = BatchLoss(DeepKernel(small_config().kernel), synthetic_meta().bank, 40, torch.device("cpu"),
                     top_fraction=0.25, top_quantile=0.1)  # fmt: skip
    rng = np.random.default_rng(0)
    for _ in range(20):
        rows = loss.sample_rows(source, rng)
        assert len(rows) == len(set(rows.tolist())) == 40
        assert (source.targets[rows] >= cut).sum() == 10  # 25% of 40, none of the rest from the top
    uniform = BatchLoss(DeepKernel(small_config().kernel), synthetic_meta().bank, 40, torch.device("cpu"))
    shares = [(source.targets[uniform.sample_rows(source, rng)] >= cut).mean() for _ in range(200)]
    assert 0.07 < np.mean(shares) < 0.13  # uniform batches: about the top decile's share


def test_prior_figures_rank_the_best_cell_and_the_top_percent():
    from tnas.meta_train.validation import prior_figures

    accuracy = np.linspace(10.0, 94.0, 1000)
    exact = prior_figures(accuracy * 2 + 1, accuracy)
    assert exact["best_prior_rank"] == 0 and exact["best_in_top10"] == 1.0
    assert exact["prior_spearman"] == pytest.approx(1.0) and exact["top1pct_spearman"] == pytest.approx(1.0)
    swapped = accuracy.copy()
    swapped[-10:] = swapped[-10:][::-1]  # the top 1% in reverse order, the rest in order
    figures = prior_figures(swapped, accuracy)
    assert figures["best_prior_rank"] == 9 and figures["best_in_top10"] == 1.0
    assert figures["top1pct_spearman"] == pytest.approx(-1.0) and figures["prior_spearman"] > 0.99
    assert prior_figures(-accuracy, accuracy)["best_prior_rank"] == 999


def test_runs_written_before_top_batches_resume_as_uniform_batches(tmp_path):
    """A checkpoint whose stored settings lack top_fraction was trained with uniform batches."""
    from tnas.meta_train.checkpoint import CHECKPOINT_FILE

    _train(tmp_path, epochs=1, top_fraction=0.0)
    state = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=False)
    for key in ("top_fraction", "top_quantile"):
        del state["config"][key]
    torch.save(state, tmp_path / CHECKPOINT_FILE)
    assert _train(tmp_path, epochs=2, top_fraction=0.0).resumed_from == 1
    with pytest.raises(CheckpointError, match="top_fraction"):
        _train(tmp_path, epochs=3, top_fraction=0.25)  # another setting


@pytest.mark.parametrize("damage", [{"epoch": "x"}, {"epoch": float("nan")}, "no metrics", {"best": {"score": 1.0}},
                                    {"rng": "{bad"}, {"rng": 5}, {"config": [1]}, {"kernel": {"nothing": torch.zeros(1)}},
                                    {"metrics": []}, {"metrics": [{"a": 1}]}, "best score text", "best epoch 99",
                                    "nan weights"])
def test_a_checkpoint_with_damaged_fields_is_a_one_line_error(tmp_path, damage):
    from tnas.meta_train.checkpoint import CHECKPOINT_FILE

    _train(tmp_path, epochs=1)
    state = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=False)
    if damage == "no metrics":
        del state["metrics"]
    elif damage in ("best score text", "best epoch 99"):
        state["best"] = {**state["best"], **({"score": "x"} if "text" in damage else {"epoch": 99})}
    elif damage == "nan weights":
        state["kernel"] = {name: torch.full_like(value, float("nan")) if value.is_floating_point() else value
                           for name, value in state["kernel"].items()}  # fmt: skip
    else:
        state.update(damage)
    torch.save(state, tmp_path / CHECKPOINT_FILE)
    with pytest.raises(CheckpointError, match="is damaged") as error:
        _train(tmp_path, epochs=2)
    assert "\n" not in str(error.value)


def test_top_cells_rank_is_the_mean_prior_rank_of_the_best_cells():
    from tnas.meta_train.validation import top_cells_rank

    accuracy = np.arange(100.0)
    assert top_cells_rank(accuracy, accuracy) == pytest.approx(4.5)  # ranks 0..9
    assert top_cells_rank(-accuracy, accuracy) == pytest.approx(94.5)  # ranks 90..99
    assert top_cells_rank(np.zeros(100), accuracy) == 0  # ties count as ahead of no one


def test_top_cells_selection_keeps_the_eligible_epoch_that_ranks_the_sources_best_cells_highest(tmp_path):
    from tnas.meta_train.validation import selection_starts

    meta = synthetic_meta(full_table=True)
    result = meta_train(small_config(epochs=5), tmp_path / "top", meta=meta)
    assert selection_starts(5, "top-cells") == 2 and selection_starts(5, "spearman") == 1
    eligible = [row for row in result.metrics if row["epoch"] >= 2]
    expected = max(eligible, key=lambda row: -np.log1p(row["cifar10-valid_top10_prior_rank"]))
    assert result.best_epoch == expected["epoch"] == load_model(tmp_path / "top").epoch
    spearman = meta_train(small_config(epochs=5, selection="spearman"), tmp_path / "spearman", meta=meta)
    assert [row["train_nll"] for row in spearman.metrics] == [row["train_nll"] for row in result.metrics]
    scores = [(row["metad2a_spearman"] + row["cifar10-valid_heldout_spearman"]) / 2 for row in spearman.metrics]
    assert spearman.best_epoch == int(np.argmax(scores)) + 1
    with pytest.raises(ConfigError, match="selection"):
        small_config(selection="best")


def test_runs_written_before_top_cells_selection_resume_with_spearman_selection(tmp_path):
    from tnas.meta_train.checkpoint import CHECKPOINT_FILE

    _train(tmp_path, epochs=1, selection="spearman")
    state = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=False)
    del state["config"]["selection"]
    torch.save(state, tmp_path / CHECKPOINT_FILE)
    with pytest.raises(CheckpointError, match="selection"):
        _train(tmp_path, epochs=2)
    assert _train(tmp_path, epochs=2, selection="spearman").resumed_from == 1


def _train(out, meta=None, **changes):
    return meta_train(small_config(**changes), out, meta=meta or synthetic_meta())


def test_metrics_model_and_determinism(tmp_path):
    first = _train(tmp_path / "a")
    second = _train(tmp_path / "b")
    assert first.metrics == second.metrics
    assert (tmp_path / "a" / "metrics.csv").read_text() == (tmp_path / "b" / "metrics.csv").read_text()
    columns = (tmp_path / "a" / "metrics.csv").read_text().splitlines()[0].split(",")
    for column in ("epoch", "train_nll", "skipped_batches", "metad2a_pearson", "metad2a_spearman",
                   "cifar100_prior_spearman", "cifar100_post10_spearman", "cifar100_best_in_top10",
                   "cifar100_best_prior_rank", "cifar100_top1pct_spearman"):  # fmt: skip
        assert column in columns
    model = load_model(tmp_path / "a")
    assert model.exclude == ("cifar100",) and model.epoch == first.best_epoch
    assert set(model.statistics) == {"metad2a", "cifar10-valid"}
    other = load_model(tmp_path / "b")
    for (name, value), (_, again) in zip(model.kernel.state_dict().items(), other.kernel.state_dict().items()):
        assert torch.equal(value, again), name
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["config"]["exclude"] == ["cifar100"] and "versions" in config


def test_meta_training_learns_the_synthetic_task(tmp_path):
    result = _train(tmp_path, epochs=4, steps_per_epoch=10)
    assert result.metrics[-1]["cifar100_prior_spearman"] > 0.5
    assert result.metrics[-1]["train_nll"] < result.metrics[0]["train_nll"]


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    reference = _train(tmp_path / "reference", epochs=3)
    calls = {"n": 0}
    original = reptile_module.reptile_update

    def dying_update(*args, **kwargs):  # killed in the middle of epoch 3 (3 steps per epoch)
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr("tnas.meta_train.trainer.reptile_update", dying_update)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "resumed", epochs=3)
    monkeypatch.setattr("tnas.meta_train.trainer.reptile_update", original)
    resumed = _train(tmp_path / "resumed", epochs=3)
    assert resumed.resumed_from == 2
    assert resumed.metrics == reference.metrics
    ref_model, res_model = load_model(tmp_path / "reference"), load_model(tmp_path / "resumed")
    for value, again in zip(ref_model.kernel.state_dict().values(), res_model.kernel.state_dict().values()):
        assert torch.equal(value, again)


def test_numerical_failures_skip_the_batch_and_are_counted(tmp_path, monkeypatch):
    original = reptile_module.negative_log_marginal_likelihood
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] % 4 == 0:
            raise NotPSDError("Matrix not positive definite after repeatedly adding jitter")
        return original(*args, **kwargs)

    monkeypatch.setattr(reptile_module, "negative_log_marginal_likelihood", flaky)
    result = _train(tmp_path, epochs=1, steps_per_epoch=4)
    assert result.metrics[0]["skipped_batches"] == 4  # 16 inner steps, every 4th fails
    assert np.isfinite(result.metrics[0]["train_nll"])


def test_changed_settings_in_the_same_directory_are_refused(tmp_path):
    _train(tmp_path, epochs=1)
    with pytest.raises(CheckpointError, match="inner_lr"):
        _train(tmp_path, epochs=2, inner_lr=0.5)


def test_bad_configurations_are_refused():
    with pytest.raises(ConfigError, match="cannot exclude 'svhn'"):
        MetaTrainConfig(exclude=("svhn",))
    with pytest.raises(ConfigError, match="nothing to meta-train"):
        MetaTrainConfig(exclude=("cifar10", "cifar100", "imagenet16-120", "metad2a"))
    with pytest.raises(ConfigError, match="epsilon"):
        MetaTrainConfig(outer_step=1.5)
    with pytest.raises(ConfigError, match="top_fraction"):
        MetaTrainConfig(top_fraction=1.0)
    with pytest.raises(ConfigError, match="top_quantile"):
        MetaTrainConfig(top_quantile=0.0)
    legacy = {key: value for key, value in small_config().to_dict().items() if not key.startswith("top_")}
    assert MetaTrainConfig.from_dict(legacy).top_fraction == 0.0  # stored before top batches existed
    assert MetaTrainConfig(exclude=("cifar10", "cifar10-valid")).exclude == ("cifar10-valid",)
    config = small_config()
    assert MetaTrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--exclude", "svhn"], "cannot exclude 'svhn'"),
        (["--exclude", "cifar10,cifar100,imagenet16-120,metad2a"], "nothing to meta-train"),
        (["--epochs", "0"], "epochs must be at least 1"),
        (["--widths", "a,b"], "comma-separated integers"),
        (["--top-fraction", "1.5"], "top_fraction must be in [0, 1)"),
        (["--jobs", "2"], "--jobs 2 cannot change this run: --jobs runs ensemble members side by side and goes "
                          "with --members M > 1"),
        (["--top-fraction", "0", "--top-quantile", "0.2"], "--top-quantile 0.2 cannot change this run: with "
                                                           "--top-fraction 0 batches are uniform"),
    ],
)
def test_cli_user_errors_are_one_line_with_exit_code_2(tmp_path, capsys, args, message):
    try:
        code = main([*args, "--out", str(tmp_path / "m"), "--no-progress"])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_cli_reports_a_corrupt_checkpoint(tmp_path, capsys):
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    assert main(["--exclude", "cifar100", "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and err.count("\n") == 1


def test_loading_a_missing_or_corrupt_model_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "absent")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"\x00")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(tmp_path)
    torch.save({"format": 1, "kernel": {}, "kernel_config": {"widths": [4]}}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_model(tmp_path)


@pytest.mark.parametrize("damage", [{"epoch": "x"}, {"exclude": 5}, {"exclude": "cifar100"}, {"statistics": [1]},
                                    {"validation": [1]}, {"meta_train_config": [1]},
                                    {"meta_train_config": {"samples_per_class": "abc"}}, "nan weights", "a list",
                                    {"statistics": {"metad2a": 5}}, {"statistics": {"cifar10-valid": {"mean": "x"}}},
                                    {"meta_train_config": {"seed": "x"}}, {"meta_train_config": {"sources": 5}},
                                    {"meta_train_config": {"samples_per_class": 0}}])
def test_a_model_file_with_damaged_fields_is_a_clear_error(tmp_path, damage):
    from tnas.meta_train import MetaTrainConfig
    from tnas.meta_train.checkpoint import FORMAT, MODEL_FILE, save
    from tnas.models.deep_kernel import DeepKernel

    config = MetaTrainConfig(exclude=("cifar100",))
    kernel = DeepKernel(config.kernel)
    payload = {"format": FORMAT, "kernel": kernel.state_dict(), "kernel_config": config.to_dict()["kernel"],
               "exclude": ["cifar100"], "statistics": {}, "epoch": 3, "validation": {},
               "meta_train_config": config.to_dict()}  # fmt: skip
    save(tmp_path / MODEL_FILE, payload)
    assert load_model(tmp_path).epoch == 3  # the undamaged file loads
    if damage == "nan weights":
        payload["kernel"] = {name: torch.full_like(value, float("nan")) if value.is_floating_point() else value
                             for name, value in payload["kernel"].items()}  # fmt: skip
    elif damage == "a list":
        payload = [payload]
    else:
        payload.update(damage)
    save(tmp_path / MODEL_FILE, payload)
    with pytest.raises(CheckpointError, match="not a tnas meta-training file" if damage == "a list" else "does not fit") as error:
        load_model(tmp_path)
    assert "\n" not in str(error.value)


def test_end_to_end_on_the_real_data(data_dir, tmp_path, capsys):
    """A tiny meta-training run from the command line on the real records and tables."""
    out = tmp_path / "no-cifar100"
    args = ["--exclude", "cifar100", "--out", str(out), "--data-dir", str(data_dir), "--epochs", "1",
            "--steps-per-epoch", "2", "--inner-steps", "1", "--batch-size", "16", "--samples-per-class", "1",
            "--widths", "8", "--arch-hidden-dim", "8", "--dataset-hidden-dim", "8", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "model.pt is epoch 1" in capsys.readouterr().out
    header, row = (out / "metrics.csv").read_text().splitlines()
    values = dict(zip(header.split(","), row.split(",")))
    assert -1 <= float(values["cifar100_prior_spearman"]) <= 1 and -1 <= float(values["metad2a_spearman"]) <= 1
    for source in ("cifar10-valid", "imagenet16-120"):  # the whole training tables rank their best cells
        assert 0 <= float(values[f"{source}_top10_prior_rank"]) < 15625
    assert "cifar100_top10_prior_rank" not in values  # the excluded target never selects
    model = load_model(out)
    assert model.exclude == ("cifar100",)
    assert set(model.statistics) == {"metad2a", "cifar10-valid", "imagenet16-120"}
    stats = model.statistics["cifar10-valid"]
    assert 50 < stats["mean"] < 90 and stats["std"] > 1
    assert main(args) == 0  # finished: the same command returns at once
    assert "meta-trained 1 epochs" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing array", "nan accuracy"])
def test_damaged_metad2a_records_give_a_one_line_error_before_any_work(data_dir, tmp_path, damage):
    import os

    import numpy as np

    from tnas.errors import DataFileError
    from tnas.meta_train.data import METAD2A_FILE, build_meta_dataset

    target = tmp_path / METAD2A_FILE
    target.parent.mkdir(parents=True)
    good = (data_dir / METAD2A_FILE).read_bytes()
    if damage in ("truncated", "garbage"):
        target.write_bytes(good[: len(good) // 3] if damage == "truncated" else os.urandom(3000))
    else:
        with np.load(data_dir / METAD2A_FILE, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        if damage == "missing array":
            del arrays["acc"]
        else:
            arrays["acc"] = arrays["acc"].astype(np.float64)
            arrays["acc"][3] = np.nan
        np.savez(target, **arrays)
    with pytest.raises(DataFileError) as error:
        build_meta_dataset((), seed=0, samples_per_class=2, data_dir=tmp_path)
    assert str(target) in str(error.value) and "\n" not in str(error.value)


def test_kept_epochs_are_loadable_and_do_not_change_the_run(tmp_path):
    plain = _train(tmp_path / "plain", epochs=3)
    kept = meta_train(small_config(epochs=3), tmp_path / "kept", meta=synthetic_meta(), keep_epochs=True)
    assert kept.metrics == plain.metrics
    assert sorted(path.name for path in (tmp_path / "kept" / "epochs").iterdir()) == ["001", "002", "003"]
    best = load_model(epoch_dir(tmp_path / "kept", kept.best_epoch))
    model = load_model(tmp_path / "kept")
    assert best.epoch == model.epoch == kept.best_epoch
    for (name, value), (_, again) in zip(best.kernel.state_dict().items(), model.kernel.state_dict().items()):
        assert torch.equal(value, again), name
    assert not (tmp_path / "plain" / "epochs").exists()
    surrogate = last_epochs(load_surrogate(tmp_path / "kept"), 2)
    assert [member.epoch for member in surrogate.members] == [2, 3] and len(surrogate.kernels) == 2
    assert last_epochs(load_surrogate(tmp_path / "kept"), 0).members[0].epoch == kept.best_epoch
    with pytest.raises(CheckpointError, match="keeps no kernel of epoch 0"):
        last_epochs(load_surrogate(tmp_path / "kept"), 4)
    with pytest.raises(CheckpointError, match="--keep-epochs"):
        last_epochs(load_surrogate(tmp_path / "plain"), 1)


def test_a_finished_run_that_lost_its_model_file_writes_it_again_from_its_checkpoint(tmp_path):
    _train(tmp_path, epochs=2)
    before = load_model(tmp_path)
    (tmp_path / "model.pt").unlink()
    assert _train(tmp_path, epochs=2).resumed_from == 2  # nothing trained again
    again = load_model(tmp_path)
    assert again.epoch == before.epoch and again.validation == before.validation
    for name, value in before.kernel.state_dict().items():
        assert torch.equal(value, again.kernel.state_dict()[name]), name


def test_a_model_meta_trained_on_a_source_since_moved_still_loads(tmp_path):
    from tnas.meta_train import MetaTrainConfig
    from tnas.meta_train.checkpoint import FORMAT, MODEL_FILE, save
    from tnas.models.deep_kernel import DeepKernel

    config = MetaTrainConfig(exclude=("cifar100",))
    settings = {**config.to_dict(), "sources": [str(tmp_path / "gone" / "table.csv") + "=cifar10"]}
    save(tmp_path / MODEL_FILE, {"format": FORMAT, "kernel": DeepKernel(config.kernel).state_dict(),
                                 "kernel_config": config.to_dict()["kernel"], "exclude": ["cifar100"],
                                 "statistics": {}, "epoch": 3, "validation": {}, "meta_train_config": settings})
    assert load_model(tmp_path).settings["sources"] == settings["sources"]
