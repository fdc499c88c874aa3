"""benchmarks.oneshot's page: derived cells looked up on the three tables, drift, black-box costs."""

from __future__ import annotations

import json

import pytest

from benchmarks.oneshot import black_box_costs, main, parameter_free_share, render_page, run_config
from tnas.oracles import TableOracle
from tnas.rundir import RunDirectory, TrajectoryRow, append_row
from tnas.space import Cell
from tnas.train.oneshot import EpochRecord

SKIPS = Cell.from_ops(["skip_connect"] * 6)
CONVS = Cell.from_ops(["nor_conv_3x3"] * 6)


def _one_shot_run(out, method, seed, cells, seconds, protocol="cpu"):
    folder = out / method / f"seed{seed}" / "oneshot"
    folder.mkdir(parents=True)
    RunDirectory(folder.parent).write_config({"format": 1, "config": run_config(method, seed, protocol).to_dict()})
    epochs = [EpochRecord(epoch=e, seconds=seconds / len(cells), train_loss=1.0, train_accuracy=50.0, valid_loss=1.0,
                          valid_accuracy=50.0, tau=None, probabilities=[[0.2] * 5] * 6, derived=cell).to_dict()
              for e, cell in enumerate(cells, 1)]  # fmt: skip
    (folder / "search.json").write_text(json.dumps({"identity": {}, "derived_index": cells[-1].index,
                                                    "search_seconds": seconds, "device": "cpu", "epochs": epochs}))


def _black_box_run(root, method, seed, returned_tests, hours_per_query):
    directory = RunDirectory(root / "mean" / "cifar10" / method / f"seed{seed}")
    with directory.open_trajectory(0) as handle:
        for query, test in enumerate(returned_tests, 1):
            append_row(handle, TrajectoryRow(
                query=query, index=query, arch=Cell.from_index(query).arch_str, valid=test, test=test, seed=None,
                cost_s=hours_per_query * 3600, params_mb=1.0, incumbent_index=query, incumbent_valid=test,
                incumbent_test=test, sim_cost_s=query * hours_per_query * 3600, overhead_s=0.0))  # fmt: skip
    directory.write_summary({"seed": seed})


def test_parameter_free_share():
    assert parameter_free_share(SKIPS) == 1.0 and parameter_free_share(CONVS) == 0.0


def test_black_box_costs_are_the_median_hours_and_queries_to_the_accuracy(tmp_path):
    _black_box_run(tmp_path, "rs", 0, [50.0, 80.0, 91.0], 0.5)
    _black_box_run(tmp_path, "rs", 1, [85.0, 92.0, 93.0], 0.5)
    _black_box_run(tmp_path, "rs", 2, [10.0, 20.0, 30.0], 0.5)  # never reaches it
    hours, queries, reached, total = black_box_costs([tmp_path], 90.0)["rs"]
    assert (hours, queries, reached, total) == (1.5, 3.0, 2, 3)  # medians of (1.5, 1.0, inf), (3, 2, inf)


def test_the_page_quotes_the_derived_cells_on_all_three_tables(table, tmp_path):
    out = tmp_path / "oneshot"
    _one_shot_run(out, "darts-v1", 0, [CONVS, SKIPS, SKIPS], 120.0)
    _one_shot_run(out, "darts-v1", 1, [CONVS, CONVS, SKIPS], 140.0)
    _black_box_run(tmp_path / "grid", "re", 0, [95.0], 0.25)
    page = render_page(["darts-v1", "gdas"], 2, "cpu", out, table, [tmp_path / "grid", tmp_path / "missing"])
    tests = [TableOracle(table, task).evaluate(SKIPS, fidelity=200, seed=None).test
             for task in ("cifar10", "cifar100", "imagenet16-120")]  # fmt: skip
    row = next(line for line in page.splitlines() if line.startswith("| `darts-v1` | 2 |"))
    assert f"{tests[0]:.2f} ± 0.00" in row and f"{tests[2]:.2f} ± 0.00" in row
    assert "| 130 ± 10 | 2/2 | 0.0 -> 6.0 of 6 | 54.30 / 15.61 / 16.32 |" in row
    assert "| `gdas` | 0 |" in page  # no runs: listed, not invented
    assert "0/6 -> 6/6 (x2)" in page and "0/6 (x2) -> 6/6" in page
    assert f"| `darts-v1` ({tests[0]:.2f}) | `re` | 0.25 | 1 | 1/1 |" in page
    other = render_page(["darts-v1"], 2, "nb201", out, table, [])  # runs of the cpu protocol are not these
    assert "| `darts-v1` | 0 |" in other


def test_the_command_refuses_black_box_methods(capsys):
    assert main(["--methods", "rs", "--report-only"]) == 2
    assert "one-shot methods" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--protocol", "gpu"])
