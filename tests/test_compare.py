"""python -m tnas.compare: pooled curves and table of search runs, and its one-line errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tnas.compare import Run, group_runs, main
from tnas.rundir import RunDirectory
from tnas.search.cli import main as search

BUDGET = 15


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory) -> Path:
    """rs and re, seeds 0 and 1, on cifar100; one re run under --observe seed."""
    root = tmp_path_factory.mktemp("runs")
    for method in ("rs", "re"):
        for seed in (0, 1):
            assert search(["--dataset", "cifar100", "--method", method, "--budget", str(BUDGET), "--seed", str(seed),
                           "--out", str(root / f"{method}-{seed}"), "--data-dir", str(data_dir), "--no-progress"]) == 0
    assert search(["--dataset", "cifar100", "--method", "re", "--budget", "12", "--seed", "0", "--observe", "seed",
                   "--out", str(root / "noisy" / "re-0"), "--data-dir", str(data_dir), "--no-progress"]) == 0
    return root


def _one_line_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_a_folder_of_runs_gives_pooled_curves_a_table_and_a_plot(runs, tmp_path, capsys):
    out = tmp_path / "comparison"
    assert main([str(runs), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "cifar100, observe mean, 200 epochs" in text and "cifar100, observe seed, 200 epochs" in text
    with open(out / "comparison.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2 * BUDGET + 12  # rs and re to 15 queries, the noisy re run to 12
    figures = {(entry["task"], entry["method"]): entry for entry in json.loads((out / "comparison.json").read_text())["groups"]}
    mean_re = figures[("cifar100, observe mean, 200 epochs", "re")]
    assert mean_re["runs"] == 2 and mean_re["queries"] == BUDGET and sorted(mean_re["seeds"]) == [0, 1]
    returned = [RunDirectory(runs / f"re-{seed}").read_trajectory()[9].recommended_test for seed in (0, 1)]
    np.testing.assert_allclose(mean_re["returned_test"]["10"],
                               [np.mean(returned), np.std(returned, ddof=1) / np.sqrt(2)])  # fmt: skip
    final = [RunDirectory(runs / f"re-{seed}").read_trajectory()[-1].incumbent_valid for seed in (0, 1)]
    assert mean_re["best_valid"][0] == pytest.approx(np.mean(final))
    row = next(row for row in rows if row["method"] == "re" and row["query"] == "10" and "mean" in row["task"])
    assert float(row["returned_test_mean"]) == pytest.approx(np.mean(returned)) and row["runs"] == "2"
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a single run has no standard error: null in the JSON, empty in the CSV, n/a in the table
    single = figures[("cifar100, observe seed, 200 epochs", "re")]
    assert single["runs"] == 1 and single["best_valid"][1] is None and single["returned_test"]["10"][1] is None
    assert all(row["returned_test_se"] == "" for row in rows if "seed" in row["task"])
    assert "± n/a" in text


def test_the_default_output_is_the_runs_common_folder_and_unfinished_runs_are_left_out(runs, tmp_path, capsys):
    folder = tmp_path / "two"
    shutil.copytree(runs / "rs-0", folder / "rs-0")
    started = folder / "rs-1"
    started.mkdir()
    shutil.copy(runs / "rs-1" / "config.json", started / "config.json")  # a run with no query yet
    assert main([str(folder / "rs-0"), str(started), "--no-plot"]) == 0
    captured = capsys.readouterr()
    assert "no finished query yet" in captured.err and str(started) in captured.err
    assert (folder / "comparison.csv").is_file() and not (folder / "comparison.png").exists()


def test_runs_of_one_method_with_different_settings_are_told_apart():
    def run(seed: int, options: dict) -> Run:
        config = {"method": "tnas", "dataset": "cifar10", "seed": seed, "observe": "mean", "fidelity": 200,
                  "options": {"init": "prior", "init_size": 5, **options}}  # fmt: skip
        return Run(Path(f"/runs/{seed}-{options}"), config, ())

    from tnas.compare import _labels

    labels = _labels([run(0, {}), run(1, {"surrogate_seed": 1, "sample_seed": 1}), run(0, {"init": "random"})])
    assert sorted(labels.values()) == ["tnas (init=prior)", "tnas (init=prior)", "tnas (init=random)"]


def test_runs_searched_alike_are_pooled_whether_their_settings_were_spelt_out_or_defaults():
    from tnas.compare import _labels

    def run(seed: int, options: dict, settings: dict) -> Run:
        config = {"method": "tnas", "dataset": "cifar100", "seed": seed, "observe": "mean", "fidelity": 200,
                  "options": options, "constraints": {"max_latency_ms": 5.0, "latency_device": "fpga"}}  # fmt: skip
        return Run(Path(f"/runs/{seed}"), config, (), settings)

    recipe = run(0, {"source_weight": 0.25, "feature_patience": 13},
                 {"source_weight": 0.0, "feature_patience": None, "finetune_steps": 100})  # before they were defaults
    default = run(1, {}, {"source_weight": 0.25, "feature_patience": 13, "finetune_steps": 100})
    older = run(2, {}, {"source_weight": 0.0, "feature_patience": None, "finetune_steps": 100})  # the old defaults
    labels = _labels([recipe, default, older])
    assert labels[recipe.path] == labels[default.path] == "tnas (feature_patience=13, source_weight=0.25)"
    assert labels[older.path] == "tnas (feature_patience=None, source_weight=0.0)"


def test_settings_that_differ_only_between_tasks_do_not_label_runs():
    from tnas.compare import _labels

    def run(dataset: str, options: dict) -> Run:
        config = {"method": "tnas", "dataset": dataset, "seed": 0, "observe": "mean", "fidelity": 200,
                  "options": options}  # fmt: skip
        return Run(Path(f"/runs/{dataset}/{options['surrogate']}"), config, ())

    labels = _labels([run("cifar10", {"surrogate": None}), run("lab-task", {"surrogate": "/s/no-cifar100"}),
                      run("lab-task", {"surrogate": None})])  # fmt: skip
    assert labels[Path("/runs/cifar10/None")] == "tnas"
    assert sorted(label for path, label in labels.items() if path.parts[2] == "lab-task") == [
        "tnas (surrogate=/s/no-cifar100)", "tnas (surrogate=None)"]  # fmt: skip


def test_the_same_run_twice_is_refused(runs, tmp_path, capsys):
    shutil.copytree(runs / "re-0", tmp_path / "copy")
    err = _one_line_error([str(runs / "re-0"), str(tmp_path / "copy"), "--out", str(tmp_path)], capsys)
    assert "seed 0 more than once" in err


def test_bad_input_is_one_line_with_exit_status_2(runs, tmp_path, capsys):
    assert "does not exist" in _one_line_error([str(tmp_path / "nosuch")], capsys)
    (tmp_path / "empty").mkdir()
    assert "no run directory" in _one_line_error([str(tmp_path / "empty")], capsys)
    folder = tmp_path / "trajectory-a-folder"
    shutil.copytree(runs / "rs-0", folder)
    (folder / "trajectory.csv").unlink()
    (folder / "trajectory.csv").mkdir()
    assert "trajectory.csv is not a file" in _one_line_error([str(folder)], capsys)
    for damage in (b"query,index\n1,2,3\n", b"\xff\xfe\x00binary\n"):
        damaged = tmp_path / f"damaged-{len(damage)}"
        shutil.copytree(runs / "rs-0", damaged)
        (damaged / "trajectory.csv").write_bytes(damage)
        assert "trajectory.csv" in _one_line_error([str(damaged)], capsys)
    for change in ({"workers": "x"}, {"options": [1]}, {"constraints": [1]}, {"method": None}, {"budget": True},
                   {"max_sim_hours": "abc"}, {"backend": 3}):
        damaged = tmp_path / f"config-{next(iter(change))}"
        shutil.copytree(runs / "rs-0", damaged)
        record = json.loads((damaged / "config.json").read_text())
        record["config"].update(change)
        (damaged / "config.json").write_text(json.dumps(record))
        assert "config.json is damaged" in _one_line_error([str(damaged)], capsys)
    out_of_space = tmp_path / "index-out-of-space"
    shutil.copytree(runs / "rs-0", out_of_space)
    lines = (out_of_space / "trajectory.csv").read_text().splitlines(keepends=True)
    fields = lines[1].split(",")
    fields[1] = "99999"
    (out_of_space / "trajectory.csv").write_text("".join([lines[0], ",".join(fields), *lines[2:]]))
    assert "is not a cell index" in _one_line_error([str(out_of_space)], capsys)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"something": "else"}')  # e.g. a meta-training member's
    assert "not a tnas run" in _one_line_error([str(foreign)], capsys)  # named: refused
    shutil.copytree(runs / "rs-0", tmp_path / "mixed" / "rs-0")
    shutil.copytree(foreign, tmp_path / "mixed" / "surrogate" / "member0")
    assert main([str(tmp_path / "mixed"), "--no-plot"]) == 0  # found below a folder: passed over
    assert "rs " in capsys.readouterr().out


def test_a_path_without_a_run_beside_paths_with_runs_is_refused(runs, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    err = _one_line_error([str(tmp_path / "empty"), str(runs / "rs-0"), "--out", str(tmp_path)], capsys)
    assert f"no run directory (a folder with config.json) found in {tmp_path / 'empty'}" in err
    trajectory = runs / "rs-0" / "trajectory.csv"
    err = _one_line_error([str(runs / "re-0"), str(trajectory), "--out", str(tmp_path)], capsys)
    assert f"{trajectory} is a file, not a run directory" in err and f"({runs / 'rs-0'})" in err
    foreign = tmp_path / "surrogate" / "member0"
    foreign.mkdir(parents=True)
    (foreign / "config.json").write_text('{"something": "else"}')  # e.g. a meta-training member's
    err = _one_line_error([str(tmp_path / "surrogate"), str(runs / "rs-0"), "--out", str(tmp_path)], capsys)
    assert f"no tnas run in {tmp_path / 'surrogate'}" in err
    assert not (tmp_path / "comparison.csv").exists()
    # the same run directory twice is one run; an unfinished run is a run (a note, left out)
    started = tmp_path / "started"
    started.mkdir()
    shutil.copy(runs / "rs-1" / "config.json", started / "config.json")
    assert main([str(runs / "rs-0"), str(runs / "rs-0"), str(started), "--out", str(tmp_path / "out"),
                 "--no-plot"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "no finished query yet" in captured.err and "rs " in captured.out
    assert json.loads((tmp_path / "out" / "comparison.json").read_text())["groups"][0]["runs"] == 1


def test_group_runs_cuts_curves_to_the_shortest_run(runs):
    long = RunDirectory(runs / "rs-0")
    config = json.loads(long.config_path.read_text())["config"]
    rows = long.read_trajectory()
    group = group_runs([Run(runs / "a", {**config, "seed": 0}, tuple(rows)),
                        Run(runs / "b", {**config, "seed": 1}, tuple(rows[:7]))])[0]  # fmt: skip
    assert group.queries == 7 and group.best_valid.shape == (2, 7)
