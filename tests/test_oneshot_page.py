"""benchmarks.oneshot's page: derived cells looked up on the three tables, drift, black-box costs."""

from __future__ import annotations

import csv
import json

import pytest

from benchmarks.oneshot import black_box_costs, main, parameter_free_share, render_page
from tnas.oracles import TableOracle
from tnas.space import Cell

SKIPS = Cell.from_ops(["skip_connect"] * 6)
CONVS = Cell.from_ops(["nor_conv_3x3"] * 6)


def _one_shot_run(out, method, seed, cells, seconds):
    folder = out / method / f"seed{seed}" / "oneshot"
    folder.mkdir(parents=True)
    epochs = [{"derived_index": cell.index} for cell in cells]
    (folder / "search.json").write_text(json.dumps({"derived_index": cells[-1].index, "search_seconds": seconds,
                                                    "device": "cpu", "epochs": epochs}))  # fmt: skip


def _black_box_run(root, method, seed, returned_tests, hours_per_query):
    folder = root / "mean" / "cifar10" / method / f"seed{seed}"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text("{}")
    with open(folder / "trajectory.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query", "recommended_test", "sim_cost_s"])
        for query, test in enumerate(returned_tests, 1):
            writer.writerow([query, test, query * hours_per_query * 3600])


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


def test_the_command_refuses_black_box_methods(capsys):
    assert main(["--methods", "rs", "--report-only"]) == 2
    assert "one-shot methods" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--protocol", "gpu"])
