"""Options of ``python -m tnas.meta_train`` that would change nothing are refused in one line
(exit code 2); resuming an interrupted run with ``--keep-epochs`` still works."""

from __future__ import annotations

import json

import pytest
import torch

from tests.synthetic_meta import small_config, synthetic_meta
from tnas.errors import ConfigError
from tnas.meta_train import load_model, meta_train
from tnas.meta_train import reptile as reptile_module
from tnas.meta_train.cli import build_parser, check_applicable, config_from_args, main
from tnas.meta_train.trainer import epoch_dir


@pytest.fixture
def tiny_cli(monkeypatch):
    """The command line on the synthetic meta-dataset: the settings of ``small_config`` with
    the given ``--epochs`` and ``--seed`` (its kernel has no flags of its own), no data read."""
    monkeypatch.setattr("tnas.meta_train.cli.config_from_args",
                        lambda args: small_config(epochs=args.epochs, seed=args.seed))  # fmt: skip
    monkeypatch.setattr("tnas.meta_train.trainer.build_meta_dataset", lambda *args, **kwargs: synthetic_meta())

    def call(out, *args: str) -> int:
        return main(["--out", str(out), "--no-progress", *args])

    return call


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def _kept(out) -> list[str]:
    return sorted(path.name for path in (out / "epochs").iterdir()) if (out / "epochs").exists() else []


@pytest.mark.parametrize("args", [[], ["--top-fraction", "0"], ["--top-quantile", "0.2"], ["--top-fraction", "0",
                                  "--top-quantile", "0.1"], ["--jobs", "2", "--members", "2"], ["--jobs", "1"]])  # fmt: skip
def test_options_that_change_the_run_are_accepted(args):
    parsed = build_parser().parse_args(args)
    check_applicable(parsed, config_from_args(parsed))


def test_keep_epochs_on_a_finished_run_that_did_not_keep_them_is_refused(tiny_cli, tmp_path, capsys):
    out = tmp_path / "plain"
    assert tiny_cli(out, "--epochs", "1") == 0
    capsys.readouterr()
    assert tiny_cli(out, "--epochs", "1", "--keep-epochs") == 2
    err = _one_line(capsys)
    assert f"--keep-epochs cannot change this run: {out} finished its 1 epochs without keeping their kernels" in err
    assert "meta-train into a new --out with --keep-epochs" in err
    assert not (out / "epochs").exists()
    assert tiny_cli(out, "--epochs", "1") == 0  # without it, the finished run is still accepted


def test_keep_epochs_on_a_finished_run_that_kept_them_is_accepted(tiny_cli, tmp_path, capsys, caplog):
    out = tmp_path / "kept"
    assert tiny_cli(out, "--epochs", "2", "--keep-epochs") == 0
    capsys.readouterr()
    assert tiny_cli(out, "--epochs", "2", "--keep-epochs") == 0
    shown = capsys.readouterr()
    assert "resumed after epoch 2" in shown.out and shown.err == "" and "not kept" not in caplog.text
    assert _kept(out) == ["001", "002"]
    (epoch_dir(out, 1) / "model.pt").unlink()  # a kept epoch lost: it cannot be made again
    assert tiny_cli(out, "--epochs", "2", "--keep-epochs") == 2
    assert "keeping only 1 of their kernels (not epoch(s) 1)" in _one_line(capsys)


def test_fewer_epochs_than_a_run_holds_are_refused(tiny_cli, tmp_path, capsys):
    out = tmp_path / "run"
    assert tiny_cli(out, "--epochs", "2") == 0
    capsys.readouterr()
    assert tiny_cli(out, "--epochs", "1") == 2
    err = _one_line(capsys)
    assert f"--epochs 1 cannot change this run: {out} already holds 2 meta-trained epochs" in err
    assert "repeat --epochs 2 (a higher one continues the run)" in err
    with pytest.raises(ConfigError, match="--epochs 1 cannot change this run"):  # the library alike
        meta_train(small_config(epochs=1), out, meta=synthetic_meta())
    with pytest.raises(ConfigError, match="--keep-epochs cannot change this run"):
        meta_train(small_config(epochs=2), out, meta=synthetic_meta(), keep_epochs=True)


def _interrupt_in_epoch(monkeypatch, epoch: int, steps_per_epoch: int = 3):
    original, calls = reptile_module.reptile_update, {"n": 0}

    def dying_update(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == (epoch - 1) * steps_per_epoch + 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr("tnas.meta_train.trainer.reptile_update", dying_update)
    return lambda: monkeypatch.setattr("tnas.meta_train.trainer.reptile_update", original)


def test_an_interrupted_run_resumed_with_keep_epochs_keeps_them(tiny_cli, tmp_path, capsys, caplog, monkeypatch):
    reference = meta_train(small_config(epochs=2), tmp_path / "reference", meta=synthetic_meta(), keep_epochs=True)
    out = tmp_path / "resumed"
    restore = _interrupt_in_epoch(monkeypatch, 2)
    assert tiny_cli(out, "--epochs", "2", "--keep-epochs") == 130  # killed in epoch 2
    restore()
    assert _kept(out) == ["001"]
    capsys.readouterr()
    assert tiny_cli(out, "--epochs", "2", "--keep-epochs") == 0  # the same command resumes
    shown = capsys.readouterr()
    assert "resumed after epoch 1" in shown.out and "not kept" not in caplog.text
    assert _kept(out) == ["001", "002"]
    for epoch in (1, 2):  # the kept kernels are those of an uninterrupted run
        left, right = load_model(epoch_dir(out, epoch)), load_model(epoch_dir(tmp_path / "reference", epoch))
        for name, value in left.kernel.state_dict().items():
            assert torch.equal(value, right.kernel.state_dict()[name]), name
    assert load_model(out).epoch == reference.best_epoch
    assert tiny_cli(out, "--epochs", "2", "--keep-epochs") == 0  # finished, every epoch kept: accepted


def test_keep_epochs_added_when_resuming_an_interrupted_run_keeps_the_epochs_to_come(tiny_cli, tmp_path, capsys,
                                                                                     caplog, monkeypatch):  # fmt: skip
    out = tmp_path / "run"
    restore = _interrupt_in_epoch(monkeypatch, 2)
    assert tiny_cli(out, "--epochs", "2") == 130
    restore()
    capsys.readouterr()
    assert tiny_cli(out, "--epochs", "2", "--keep-epochs") == 0
    assert "resumed after epoch 1" in capsys.readouterr().out
    assert "epoch(s) 1 were meta-trained without --keep-epochs and are not kept" in caplog.text  # a note on stderr
    assert _kept(out) == ["002"]


def test_an_ensemble_refuses_keep_epochs_before_training_any_member(tiny_cli, tmp_path, capsys):
    out = tmp_path / "ensemble"
    assert tiny_cli(out, "--epochs", "1", "--members", "2") == 0
    capsys.readouterr()
    for path in sorted((out / "member1").iterdir()):
        path.unlink()  # member1 not trained yet, member0 finished without its epochs
    for jobs in ("1", "2"):  # in this process, before any member's process starts
        assert tiny_cli(out, "--epochs", "1", "--members", "2", "--keep-epochs", "--jobs", jobs) == 2
        assert f"--keep-epochs cannot change this run: {out / 'member0'} finished its 1 epochs" in _one_line(capsys)
        assert not (out / "member1" / "checkpoint.pt").exists()


def test_the_benchmark_refuses_keep_epochs_for_finished_members_that_did_not_keep_them(tmp_path, capsys):
    from benchmarks.meta_train import main as benchmark_main
    from tnas.search.surrogates import default_surrogate_dir

    root = tmp_path / "surrogates"
    directory = root / default_surrogate_dir("cifar100", seed=0, members=1, use_dataset=True).name
    meta_train(small_config(epochs=1), directory, meta=synthetic_meta())
    args = ["--surrogates", "1", "--members", "1", "--variants", "tnas", "--exclusions", "cifar100", "--out", str(root)]
    assert benchmark_main([*args, "--keep-epochs"]) == 2
    err = _one_line(capsys)
    assert f"--keep-epochs cannot change 1 finished member(s) ({directory})" in err and "new --out" in err


def _search_run(out) -> None:
    """A search's run directory: ``config.json`` (with its method), a trajectory and a summary."""
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({"format": 1, "config": {"method": "rs", "dataset": "cifar100"}}))
    (out / "trajectory.csv").write_text("query,index\n1,7\n")
    (out / "summary.json").write_text("{}")


def test_a_folder_holding_something_else_is_refused_and_left_as_it_was(tiny_cli, tmp_path, capsys):
    search_run, only_config, runs, single, ensemble = (tmp_path / name for name in
                                                       ("search", "config-only", "runs", "single", "ensemble"))  # fmt: skip
    _search_run(search_run)
    only_config.mkdir()  # a search killed before its first query: its config.json alone
    (only_config / "config.json").write_text(json.dumps({"format": 1, "config": {"method": "rs"}}))
    _search_run(runs / "rs-0")
    single.mkdir()  # what a single model's run and an ensemble hold (never read: refused on sight)
    for name in ("config.json", "metrics.csv", "checkpoint.pt", "model.pt"):
        (single / name).write_text("{}")
    for name in ("member0", "member1"):
        (ensemble / name).mkdir(parents=True)
    (ensemble / "ensemble.json").write_text("{}")
    for members, other in (("1", ensemble), ("2", single)):  # other: the other kind of meta-training output
        for out in (search_run, only_config, runs, other):
            before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
            assert tiny_cli(out, "--epochs", "1", "--members", members) == 2, out
            err = _one_line(capsys)
            assert str(out) in err and "new or empty --out" in err, err
            assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


def test_a_run_killed_in_its_first_epoch_resumes_though_it_has_no_checkpoint(tiny_cli, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    restore = _interrupt_in_epoch(monkeypatch, 1)
    assert tiny_cli(out, "--epochs", "1") == 130
    restore()
    assert (out / "config.json").is_file() and not (out / "checkpoint.pt").exists()
    assert tiny_cli(out, "--epochs", "1") == 0


@pytest.mark.parametrize("args", [["--jobs", "0", "--members", "2"], ["--jobs", "-1", "--members", "2"],
                                  ["--members", "0"], ["--inner-lr", "inf"], ["--inner-lr", "nan"]])  # fmt: skip
def test_counts_below_one_and_a_learning_rate_that_is_not_finite_are_refused_before_any_work(args, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:  # argparse's own exit for a flag's type
        status = main(["--out", str(tmp_path / "run"), "--no-progress", *args])
        raise SystemExit(status)  # a ConfigError from the configuration: run_command's status
    assert stopped.value.code == 2
    _one_line(capsys)
    assert not (tmp_path / "run").exists()
