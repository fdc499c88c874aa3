from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tnas.search.cli import main


def test_help_lists_datasets_methods_and_an_example(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for word in ("cifar10", "cifar10-valid", "cifar100", "imagenet16-120", "rs", "re", "ls", "examples:"):
        assert word in text


def test_a_run_writes_its_directory_and_a_summary(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--dataset", "cifar10", "--method", "re", "--budget", "20", "--seed", "1", "--out", str(out),
            "--data-dir", str(data_dir), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "best cell" in text and "test" in text and "GPU-hours" in text
    summary = json.loads((out / "summary.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert summary["queries"] == 20 and summary["dataset"] == "cifar10" and summary["fidelity"] == 200
    assert config["config"]["observe"] == "mean" and config["method_settings"]["population_size"] == 10
    assert config["oracle"]["source"].endswith("nb201_merged.csv")
    assert (out / "trajectory.csv").read_text().count("\n") == 21
    assert main(args) == 0  # the same command again finds the finished run
    assert "20 queries (20 replayed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "nosuch", "--method", "rs"], "unknown dataset 'nosuch'"),
        (["--dataset", "svhn", "--method", "rs", "--oracle", "table"], "no NAS-Bench-201 table for 'svhn'"),
        (["--dataset", "cifar10", "--method", "darts"], "unknown method 'darts'"),
        (["--dataset", "cifar10", "--method", "rs", "--budget", "0"], "budget must be a positive"),
        (["--dataset", "cifar10", "--method", "rs", "--budget", "-3"], "budget must be a positive"),
        (["--dataset", "cifar10", "--method", "rs", "--budget", "ten"], "invalid int value"),
        (["--dataset", "cifar10", "--method", "rs", "--fidelity", "50"], "invalid choice"),
        (["--dataset", "cifar10", "--method", "rs", "--fidelity", "12", "--observe", "seed"], "--observe seed"),
        (["--method", "rs"], "--dataset"),
        (["--dataset", "cifar10", "--method", "tnas", "--last-epochs", "-1"], "--last-epochs must be >= 0"),
        (["--dataset", "cifar10", "--method", "rs", "--max-sim-hours", "inf"], "positive number of hours"),
        (["--dataset", "cifar10", "--method", "rs", "--budget", "5", "--workers", "99999999"], "at most as many workers"),
        (["--dataset", "cifar10", "--method", "rs", "--acquisition", "ucb"], "--acquisition sets the TNAS methods"),
        (["--dataset", "cifar10", "--method", "re", "--source-weight", "0.5", "--members", "3"],
         "--members, --source-weight set the TNAS methods"),
        (["--dataset", "cifar10", "--method", "rs", "--epochs", "5", "--channels", "8"],
         "--epochs, --channels cannot change this run: this run looks its queries up in the benchmark table"),
        (["--dataset", "cifar10", "--method", "darts-v1", "--epochs", "3"], "supernet epochs are --search-epochs"),
        (["--dataset", "cifar10", "--method", "rs", "--workers", "4", "--devices", "cpu"],
         "--devices cannot change this run: it places local workers that train cells"),
        (["--dataset", "cifar10", "--method", "rs", "--ray-address", "auto"], "it goes with --backend ray"),
        (["--dataset", "cifar10", "--method", "rs", "--max-retries", "5"], "simulated workers do not die"),
        (["--dataset", "cifar10", "--method", "tnas-prior", "--acquisition", "ucb", "--source-weight", "0.5"],
         "--acquisition cannot change this run: tnas-prior ranks the cells by the meta-learned prior alone"),
        (["--dataset", "cifar10", "--method", "tnas-untrained", "--members", "3"],
         "--members cannot change this run: tnas-untrained searches with a kernel that was never meta-trained"),
        (["--dataset", "cifar10", "--method", "tnas", "--surrogate", "x", "--members", "3", "--surrogate-seed", "2"],
         "--members, --surrogate-seed cannot change this run: the surrogate is a given directory"),
        (["--dataset", "cifar10", "--method", "tnas-nodata", "--sample-seed", "3"],
         "--sample-seed cannot change this run: tnas-nodata's kernel was meta-trained without the dataset encoder"),
        (["--dataset", "cifar10", "--method", "tnas", "--allow-target-in-meta-train"],
         "the default surrogate is meta-trained without the target"),
        (["--dataset", "cifar10", "--method", "tnas", "--pending", "x_pending"], "--pending cannot change this run: it decides how proposals treat evaluations still running, and with one worker none is"),
        (["--dataset", "cifar10", "--method", "tnas", "--budget", "8", "--batch-size", "99999999"],
         "use at most --batch-size 8"),
        (["--dataset", "cifar10", "--method", "tnas", "--batch-size", "500"], "the budget of 100 queries"),
        (["--dataset", "cifar10", "--method", "tnas", "--finetune-feature-lr", "inf"], "must be a finite number"),
        (["--dataset", "cifar10", "--method", "tnas", "--refit-growth", "nan"], "must be a finite number"),
        (["--dataset", "cifar10", "--method", "rs", "--workers", "2", "--backend", "ray", "--gpus-per-trial", "nan"],
         "--gpus-per-trial must be a finite number >= 0"),
        (["--dataset", "digits", "--method", "rs", "--oracle", "train", "--learning-rate", "inf"],
         "learning_rate finite"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(data_dir, tmp_path, capsys, args, message):
    code = _exit_code(lambda: main([*args, "--data-dir", str(data_dir), "--out", str(tmp_path / "x")]))
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_missing_data_is_one_line_with_exit_code_2(tmp_path, capsys):
    code = main(["--dataset", "cifar100", "--method", "rs", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nb201/nb201_merged.csv" in err and "tnas.oracles.convert" in err


def test_as_a_module_in_a_subprocess(data_dir, tmp_path):
    ok = subprocess.run(
        [sys.executable, "-m", "tnas.search", "--dataset", "imagenet16-120", "--method", "ls", "--budget", "15",
         "--data-dir", str(data_dir), "--out", str(tmp_path / "ok")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "ls on imagenet16-120" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "tnas.search", "--dataset", "nosuch", "--method", "ls"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def _exit_code(call):
    try:
        return call()
    except SystemExit as exit_:
        return exit_.code


def test_command_lines_put_large_tensors_on_huge_pages_unless_the_user_says_otherwise(monkeypatch):
    from tnas.cli_common import HUGE_PAGES_VARIABLE, run_command

    monkeypatch.delenv(HUGE_PAGES_VARIABLE, raising=False)
    assert run_command("prog", lambda: 0) == 0
    assert os.environ[HUGE_PAGES_VARIABLE] == "1"
    monkeypatch.setenv(HUGE_PAGES_VARIABLE, "0")
    run_command("prog", lambda: 0)
    assert os.environ[HUGE_PAGES_VARIABLE] == "0"


def test_command_lines_show_the_librarys_log_messages_on_stderr_and_leave_no_handler(monkeypatch, capsys):
    import logging

    from tnas.cli_common import LIBRARY_LOGGER, run_command

    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # a plain process: no logging configured
    library = logging.getLogger(LIBRARY_LOGGER)
    before = (list(library.handlers), library.level)

    def body() -> int:
        logging.getLogger("tnas.search.surrogates").info("meta-training the default surrogate")
        logging.getLogger("tnas.search.surrogates").debug("not shown")
        logging.getLogger("elsewhere").info("not ours")
        return 0

    assert run_command("prog", body) == 0
    captured = capsys.readouterr()
    assert captured.err == "meta-training the default surrogate\n" and captured.out == ""
    assert (list(library.handlers), library.level) == before


def test_a_program_with_its_own_logging_keeps_it(monkeypatch, capsys):
    import logging

    from tnas.cli_common import LIBRARY_LOGGER, run_command

    own = logging.StreamHandler()
    monkeypatch.setattr(logging.getLogger(), "handlers", [own])
    seen = []
    run_command("prog", lambda: seen.append(list(logging.getLogger(LIBRARY_LOGGER).handlers)) or 0)
    assert seen == [[]]


def test_an_empty_out_is_refused_rather_than_writing_into_the_current_folder(data_dir, capsys):
    code = _exit_code(lambda: main(["--dataset", "cifar10", "--method", "rs", "--out", "", "--data-dir",
                                    str(data_dir)]))  # fmt: skip
    assert code == 2 and "--out: an empty path" in capsys.readouterr().err


def test_a_file_system_error_on_a_given_path_is_one_line_with_exit_code_2(capsys):
    from tnas.cli_common import run_command

    def body() -> int:
        raise IsADirectoryError(21, "Is a directory", "/tmp/page.md")

    assert run_command("prog", body) == 2
    err = capsys.readouterr().err
    assert err == "prog: error: cannot use /tmp/page.md: Is a directory; give a path to a folder or file that can " \
                  "be written there\n"


@pytest.mark.parametrize(("module", "args", "message"), [
    ("benchmarks.meta_train", ["--surrogates", "0"], "--surrogates: 0 is below 1"),
    ("benchmarks.meta_train", ["--skip-training", "--members", "0"], "--members: 0 is below 1"),
    ("benchmarks.meta_train", ["--exclusions", "bogus"], "--exclusions 'bogus'"),
    ("benchmarks.meta_train", ["--skip-training", "--keep-epochs", "--jobs", "2"],
     "--keep-epochs, --jobs cannot change a --skip-training run"),
    ("benchmarks.history", ["--draws", "0"], "--draws: 0 is below 1"),
    ("benchmarks.tnas_search", ["--runs", "0"], "--runs: 0 is below 1"),
    ("benchmarks.parallel", ["overhead", "--pending", "0"], "--pending: 0 is below 1"),
    ("benchmarks.constrained", ["--settings", ",", "--report-only"], "unknown or no setting(s) ','"),
    ("benchmarks.foundation", ["--dataset", "nosuch", "--repeats", "1"], "unknown dataset 'nosuch'"),
    ("benchmarks.encoders", ["--repeats", "0"], "--repeats: 0 is below 1"),
    ("benchmarks.encoders", ["--samples-per-class", "0"], "--samples-per-class: 0 is below 1"),
    ("benchmarks.training", ["--cells", "abc"], "--cells: 'abc' is not a whole number"),
    ("benchmarks.training", ["--cells", "1,15625"], "cell index 15625 is not below 15625"),
    ("benchmarks.training", ["--steps", "0"], "--steps: 0 is below 1"),
    ("tnas.meta_train.cli", ["--members", "2", "--jobs", "0"], "--jobs: 0 is below 1"),
    ("tnas.meta_train.cli", ["--exclude", "cifar100", "--device", "bogus"], "is not a torch device"),
])  # fmt: skip
def test_other_commands_refuse_bad_counts_and_devices_in_one_line(module, args, message, tmp_path, capsys):
    import importlib

    command = importlib.import_module(module)
    code = _exit_code(lambda: command.main([*args, "--out", str(tmp_path / "out")] if module == "tnas.meta_train.cli"
                                           else args))  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
