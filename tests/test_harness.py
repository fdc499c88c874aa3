"""The NAS-Bench-201 benchmark harness: aggregation, resume, results page, user errors."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.aggregate import (
    GridSpec,
    Report,
    RunData,
    aggregate_method,
    average_ranks,
    best_cells,
    build_report,
    checkpoints,
    collect_runs,
    common_time_grid,
    dataset_ranks,
    load_run,
    mean_and_se,
    queries_to_best,
    regret_curves,
    run_path,
    step_values_at,
    summarize_to_best,
)
from benchmarks.nb201 import main, make_run
from benchmarks.results_page import PageInputs, format_stat, format_to_best, missing_lines, render_page
from tnas.compare import find_runs
from tnas.errors import RunDirectoryError
from tnas.rundir import RunDirectory, TrajectoryRow, append_row
from tnas.search.config import RunConfig

# A toy "table" of 6 cells: cell 3 is the best by seed-mean validation.
VALID = np.array([80.0, 85.0, 70.0, 90.0, 88.0, 60.0])
TEST = np.array([81.0, 86.0, 71.0, 91.0, 89.0, 61.0])


def _run(seed: int, incumbents: list[int], tests: list[float] | None = None, costs: list[float] | None = None,
         overhead: float = 1.0) -> RunData:  # fmt: skip
    n = len(incumbents)
    return RunData(
        seed=seed,
        incumbent_index=np.array(incumbents),
        incumbent_test=np.array(tests if tests is not None else [TEST[i] for i in incumbents], dtype=float),
        sim_cost_s=np.array(costs if costs is not None else [3600.0 * (q + 1) for q in range(n)]),
        overhead_s=overhead,
    )


def write_run(path: Path, *, method: str, dataset: str, seed: int, incumbents: list[int],
              observed_valid: list[float], overhead: float, finished: bool = True,
              observe: str = "seed") -> None:  # fmt: skip
    """A run directory written by hand (``observed_valid``: the noisy single-seed numbers)."""
    directory = RunDirectory(path)
    config = {"method": method, "dataset": dataset, "seed": seed, "budget": len(incumbents), "fidelity": 200,
              "observe": observe, "max_sim_hours": None, "options": {}}  # fmt: skip
    directory.path.mkdir(parents=True)
    surrogate = (
        {"surrogate": {"exclude": ["cifar100"], "origin": "default (cache)"}} if method == "tnas" else {}
    )
    directory.write_config({"format": 1, "config": config, "method_settings": {}, **surrogate})
    with directory.open_trajectory(0) as file:
        for query, (index, valid) in enumerate(zip(incumbents, observed_valid, strict=True), start=1):
            append_row(file, TrajectoryRow(
                query=query, index=index, arch="|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", valid=valid,
                test=float(TEST[index]), seed=0, cost_s=100.0, params_mb=0.1, incumbent_index=index,
                incumbent_valid=valid, incumbent_test=float(TEST[index]), sim_cost_s=100.0 * query,
                overhead_s=overhead * query / len(incumbents)))  # fmt: skip
    if finished:
        summary = {"method": method, "dataset": dataset, "seed": seed, "queries": len(incumbents),
                   "fidelity": 200, "observe": observe, "overhead_s": overhead, "config": config,
                   "versions": {"numpy": "9.9"}}  # fmt: skip
        directory.write_summary(summary)


# ---------------------------------------------------------------------------- statistics
def test_mean_and_standard_error_use_ddof_1_and_nan_for_one_seed():
    stat = mean_and_se(np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 9.0]]))
    assert stat.n == 2
    np.testing.assert_allclose(stat.mean, [2.0, 3.0, 6.0])
    np.testing.assert_allclose(stat.se, [1.0, 1.0, 3.0])  # std(ddof=1) / sqrt(2)
    three = mean_and_se(np.array([1.0, 2.0, 6.0]))
    assert float(three.mean) == 3.0 and math.isclose(float(three.se), math.sqrt(7.0) / math.sqrt(3.0))
    single = mean_and_se(np.array([[5.0, 6.0]]))
    np.testing.assert_allclose(single.mean, [5.0, 6.0])
    assert np.isnan(single.se).all()
    assert format_stat(5.0, float("nan")) == "5.00 \u00b1 n/a"


def test_regret_uses_the_tables_seed_mean_validation_of_the_incumbent():
    np.testing.assert_allclose(
        regret_curves(np.array([[0, 1, 3], [2, 4, 4]]), VALID), [[10, 5, 0], [20, 2, 2]]
    )
    assert best_cells(np.array([1.0, 3.0, np.nan, 3.0])).tolist() == [1, 3]  # ties all count, NaN ignored


def test_queries_to_best_first_hit_never_and_ties():
    best = best_cells(VALID)
    assert queries_to_best(np.array([0, 1, 3, 3]), best) == 3
    assert queries_to_best(np.array([0, 3, 4, 4]), best) == 2  # first hit, even if displaced later
    assert queries_to_best(np.array([0, 1, 4]), best) is None
    assert queries_to_best(np.array([0, 2]), np.array([2, 5])) == 2
    summary = summarize_to_best([2, None, 3])
    assert (summary.median, summary.max, summary.reached, summary.n) == (3.0, math.inf, 2, 3)
    assert format_to_best(summary, 50) == "median 3, max >50 (2/3)"
    mostly_never = summarize_to_best([None, None, 7])
    assert mostly_never.median == math.inf and mostly_never.reached == 1
    assert summarize_to_best([2, 5, 4, 10]).median == 4.5


def test_aggregate_method_gives_known_curves():
    runs = [_run(1, [0, 1, 3, 3], overhead=3.0), _run(0, [2, 4, 4, 3], overhead=1.0),
            _run(2, [1, 1, 1, 1], overhead=2.0)]  # fmt: skip
    a = aggregate_method("mean", "toy", "rs", runs, VALID)
    assert a.seeds == (0, 1, 2) and a.budget == 4
    regrets = np.array([[20, 2, 2, 0], [10, 5, 0, 0], [5, 5, 5, 5]], dtype=float)  # by seed
    np.testing.assert_allclose(a.regret.mean, regrets.mean(axis=0))
    np.testing.assert_allclose(a.regret.se, regrets.std(axis=0, ddof=1) / math.sqrt(3))
    tests = np.array([[71, 89, 89, 91], [81, 86, 91, 91], [86, 86, 86, 86]], dtype=float)
    np.testing.assert_allclose(a.test.mean, tests.mean(axis=0))
    assert a.to_best.per_seed == (4, 3, None) and a.to_best.median == 4.0 and a.to_best.max == math.inf
    assert float(a.overhead_s.mean) == 2.0 and math.isclose(float(a.overhead_s.se), 1 / math.sqrt(3))
    np.testing.assert_allclose(a.sim_hours.mean, [1, 2, 3, 4])
    np.testing.assert_allclose(a.hours_grid[[0, -1]], [1.0, 4.0])


def test_the_returned_cell_and_the_spread_over_surrogates_are_aggregated():
    from benchmarks.results_page import surrogate_spread_table

    def tnas_run(seed, incumbents, recommended_tests, surrogate_seed):
        config = {"config": {"options": {"surrogate": None, "surrogate_seed": surrogate_seed}}}
        return dataclasses.replace(_run(seed, incumbents), config=config,
                                   recommended_test=np.array(recommended_tests, dtype=float))  # fmt: skip

    runs = [tnas_run(0, [0, 3, 3], [81.0, 81.0, 89.0], 0), tnas_run(1, [2, 2, 3], [71.0, 71.0, 91.0], 1),
            tnas_run(2, [3, 3, 3], [91.0, 91.0, 91.0], 0), tnas_run(3, [1, 1, 1], [86.0, 86.0, 86.0], 1)]  # fmt: skip
    a = aggregate_method("seed", "toy", "tnas", runs, VALID)
    np.testing.assert_allclose(a.recommended.mean, [82.25, 82.25, 89.25])  # what the method returns ...
    np.testing.assert_allclose(a.test.mean, [82.25, 84.75, 89.75])  # ... next to its incumbent
    assert sorted(a.by_surrogate) == [0, 1]
    assert a.by_surrogate[0][0].per_seed == (2, 1) and a.by_surrogate[1][0].per_seed == (3, None)
    report = Report(spec=GridSpec(observes=("seed",), datasets=("toy",), methods=("tnas",), seeds=(0, 1, 2, 3),
                                  budget=3, fidelity=200, surrogates=2),
                    aggregates={("seed", "toy", "tnas"): a}, ranks={}, references={}, missing=(), runs={})  # fmt: skip
    table = surrogate_spread_table(report, "seed")
    assert "best: #0 1.5 (2/2), @3 90.00, @3 90.00" in table and "worst: #1 >3 (1/2)" in table
    no_spread = dataclasses.replace(report, aggregates={("seed", "toy", "tnas"): aggregate_method(
        "seed", "toy", "tnas", [_run(0, [0, 3, 3])], VALID)})  # fmt: skip
    assert surrogate_spread_table(no_spread, "seed") is None


def test_regret_on_the_gpu_hours_axis_is_a_step_function_on_the_common_support():
    costs = [np.array([10.0, 20.0, 40.0]), np.array([15.0, 30.0, 35.0])]
    grid = common_time_grid(costs, points=5)
    assert grid[0] == 15.0 and grid[-1] == 35.0
    values = step_values_at(np.array([5.0, 10.0, 19.9, 20.0, 50.0]), costs[0], np.array([3.0, 2.0, 1.0]))
    np.testing.assert_array_equal(values, [np.nan, 3.0, 3.0, 2.0, 1.0])
    assert common_time_grid([np.array([1.0, 2.0]), np.array([5.0, 6.0])]).size == 0  # no overlap


def test_average_ranks_per_seed_index_with_ties():
    ranks = average_ranks({
        "a": np.array([[3.0, 5.0], [1.0, 5.0]]),
        "b": np.array([[2.0, 5.0], [2.0, 4.0]]),
        "c": np.array([[1.0, 5.0], [0.0, 3.0]]),
    })  # fmt: skip
    np.testing.assert_allclose(ranks["a"], [1.5, 1.5])  # seed 0: 1, seed 1: 2 | seed 0: tie (2), seed 1: 1
    np.testing.assert_allclose(ranks["b"], [1.5, 2.0])
    np.testing.assert_allclose(ranks["c"], [3.0, 2.5])
    assert checkpoints(100) == (10, 25, 50, 100) and checkpoints(15) == (10, 15) and checkpoints(5) == (5,)


def test_run_directories_are_read_with_table_regret_and_missing_runs_listed(tmp_path):
    out = tmp_path / "results"
    # observe=seed: the observed incumbent_valid (single seed) is noise; the regret ignores it
    write_run(run_path(out, "seed", "toy", "rs", 0), method="rs", dataset="toy", seed=0,
              incumbents=[0, 1, 3], observed_valid=[99.0, 99.5, 99.9], overhead=1.0)  # fmt: skip
    write_run(run_path(out, "seed", "toy", "rs", 1), method="rs", dataset="toy", seed=1,
              incumbents=[2, 4, 4], observed_valid=[1.0, 2.0, 2.0], overhead=3.0)  # fmt: skip
    write_run(
        run_path(out, "seed", "toy", "rs", 2),
        method="rs",
        dataset="toy",
        seed=2,
        incumbents=[2, 4],
        observed_valid=[1.0, 2.0],
        overhead=3.0,
        finished=False,
    )  # interrupted
    write_run(run_path(out, "seed", "toy", "tnas", 0), method="tnas", dataset="toy", seed=0,
              incumbents=[3, 3, 3], observed_valid=[50.0, 50.0, 50.0], overhead=7.0)  # fmt: skip
    spec = GridSpec(observes=("seed",), datasets=("toy",), methods=("rs", "tnas", "ls"), seeds=(0, 1, 2),
                    budget=3, fidelity=200)  # fmt: skip
    assert load_run(run_path(out, "seed", "toy", "rs", 2), budget=3) is None
    assert load_run(run_path(out, "seed", "toy", "rs", 0), budget=3, expect={"fidelity": 12}) is None
    assert load_run(run_path(out, "seed", "toy", "rs", 0), budget=4) is None  # fewer queries than asked
    assert load_run(run_path(out, "seed", "toy", "rs", 0), budget=2).incumbent_index.tolist() == [0, 1]
    runs, missing = collect_runs(out, spec)
    assert sorted(runs) == [("seed", "toy", "rs"), ("seed", "toy", "tnas")]
    assert [(m.method, m.seeds) for m in missing] == [("rs", (2,)), ("tnas", (1, 2)), ("ls", (0, 1, 2))]
    report = build_report(out, spec, {"toy": (VALID, TEST)})
    rs = report.aggregates[("seed", "toy", "rs")]
    np.testing.assert_allclose(rs.regret.mean, [15.0, 3.5, 1.0])  # (10, 5, 0) and (20, 2, 2)
    np.testing.assert_allclose(rs.regret.se, [5.0, 1.5, 1.0])
    np.testing.assert_allclose(rs.test.mean, [76.0, 87.5, 90.0])
    assert rs.to_best.per_seed == (3, None) and float(rs.overhead_s.mean) == 2.0
    tnas = report.aggregates[("seed", "toy", "tnas")]
    assert tnas.to_best.per_seed == (1,) and np.isnan(tnas.regret.se).all()
    assert ("seed", "toy") not in report.ranks  # tnas has fewer seeds than rs: only rs is left to rank
    ranks, seeds = dataset_ranks([rs, tnas])  # ranked over the seeds both finished
    assert (
        seeds == (0,)
        and ranks["tnas"].tolist() == [1.0, 1.0, 1.5]
        and ranks["rs"].tolist() == [2.0, 2.0, 1.5]
    )
    assert report.references["toy"].best_indices == (3,) and report.references["toy"].best_test == 91.0
    assert missing_lines(report)[0] == "- missing: observe=seed dataset=toy method=rs seeds 2 (1 of 3)"
    inputs = PageInputs(
        command="python -m benchmarks.nb201 X",
        report_command="python -m benchmarks.nb201 X -r",
        figures={},
        page_path=tmp_path / "RESULTS.md",
        table_source="nb201/nb201_merged.csv",
    )
    page = render_page(report, inputs)
    assert "`toy` (observe=seed, seeds 0): meta-trained without cifar100 (surrogate: default (cache))" in page
    assert "- missing: observe=seed dataset=toy method=ls seeds 0, 1, 2 (3 of 3)" in page
    assert "to best: median 1, max 1 (1/1)" in page and "n/a" in page and "- numpy 9.9" in page
    assert "python -m benchmarks.nb201 X\n" in page and "No figure" in page
    glance = next(line for line in page.splitlines() if line.startswith("| `rs` | 90.00"))
    assert glance.endswith("(best cell: >3, 1/2) | 2 |")  # one of rs's two seeds reached the best cell


# ---------------------------------------------------------------------------- the harness on the real table
def _grid(out: Path, page: Path, data_dir: Path, *extra: str, methods: str = "rs,re") -> list[str]:
    return ["--methods", methods, "--datasets", "cifar10", "--seeds", "2", "--budget", "15",
            "--out", str(out), "--results-page", str(page), "--data-dir", str(data_dir), "--no-progress",
            *extra]  # fmt: skip


def _trajectories(out: Path) -> dict[str, list[TrajectoryRow]]:
    """Every run's rows, without the measured (machine-dependent) optimizer seconds."""
    return {
        str(path.parent.relative_to(out)): [dataclasses.replace(row, overhead_s=0.0)
                                            for row in RunDirectory(path.parent).read_trajectory()]
        for path in sorted(out.rglob("trajectory.csv"))
    }  # fmt: skip


@pytest.fixture(scope="module")
def full_grid(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grid rs,re x cifar10 x 2 seeds x 15 queries, run without interruption."""
    root = tmp_path_factory.mktemp("full")
    assert main(_grid(root / "results", root / "RESULTS.md", data_dir)) == 0
    return root


def test_the_grid_writes_run_directories_a_page_and_figures(full_grid, capsys):
    out = full_grid / "results"
    runs = sorted(str(p.relative_to(out)) for p in out.glob("*/*/*/seed*"))
    assert runs == [
        "mean/cifar10/re/seed0",
        "mean/cifar10/re/seed1",
        "mean/cifar10/rs/seed0",
        "mean/cifar10/rs/seed1",
    ]
    config = json.loads((out / "mean/cifar10/re/seed1/config.json").read_text())
    assert config["method_settings"]["population_size"] == 10 and config["oracle"]["kind"] == "table"
    assert config["oracle"]["source"].endswith("nb201_merged.csv") and config["config"]["budget"] == 15
    summary = json.loads((out / "mean/cifar10/re/seed1/summary.json").read_text())
    assert summary["queries"] == 15 and summary["observe"] == "mean"
    page = (full_grid / "RESULTS.md").read_text()
    assert "| `rs` |" in page and "| `re` |" in page and "@10:" in page and "@15:" in page
    assert "None: every grid cell has its 2 finished seeds." in page
    assert "--methods rs,re --datasets cifar10 --seeds 2 --budget 15 --observe mean --fidelity 200" in page
    assert "93.92" in page and "44.57" in page  # the NAS-Bench-201 paper's reference figures
    for stem in ("regret-queries", "regret-gpu-hours", "test-queries", "rank-queries"):
        assert (full_grid / "figures" / f"mean-{stem}.png").stat().st_size > 1000
        assert (full_grid / "figures" / f"mean-{stem}.pdf").is_file()
        assert f"](figures/mean-{stem}.png)" in page


def test_an_interrupted_grid_resumes_to_the_same_trajectories(full_grid, data_dir, tmp_path, capsys):
    out, page = tmp_path / "results", tmp_path / "RESULTS.md"
    assert main(_grid(out, page, data_dir, methods="rs")) == 0  # part of the grid
    assert "2 runs made, 0 already finished" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "mean" / "cifar10").iterdir()) == ["rs"]
    assert main(_grid(out, page, data_dir)) == 0
    assert "2 runs made, 2 already finished" in capsys.readouterr().out
    # kill re/seed1 in the middle: 7 complete rows, half a row, no summary
    killed = RunDirectory(run_path(out, "mean", "cifar10", "re", 1))
    lines = killed.trajectory_path.read_text().splitlines(keepends=True)
    killed.trajectory_path.write_text("".join(lines[:8]) + lines[8][:20])
    killed.summary_path.unlink()
    shutil.rmtree(run_path(out, "mean", "cifar10", "rs", 0))  # and one never started
    finished = run_path(out, "mean", "cifar10", "re", 0) / "trajectory.csv"
    before = finished.stat().st_mtime_ns
    assert main(_grid(out, page, data_dir)) == 0
    assert "2 runs made, 2 already finished" in capsys.readouterr().out
    assert finished.stat().st_mtime_ns == before  # a finished run is not touched
    assert _trajectories(out) == _trajectories(full_grid / "results")
    assert json.loads(killed.summary_path.read_text())["queries"] == 15


def test_a_run_claimed_by_another_process_is_left_to_it(full_grid, data_dir, tmp_path, capsys):
    out, page = tmp_path / "results", tmp_path / "RESULTS.md"
    claimed = run_path(out, "mean", "cifar10", "re", 1)
    other = subprocess.Popen([sys.executable, "-c", (
        "import sys; from pathlib import Path; from benchmarks.nb201 import claim_run\n"
        f"with claim_run(Path({str(claimed)!r})) as ok:\n"
        "    print(ok, flush=True); sys.stdin.read()"
    )], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])  # fmt: skip
    try:
        assert other.stdout.readline().strip() == "True"  # the other process holds re/seed1
        assert main(_grid(out, page, data_dir)) == 0
        assert "3 runs made, 0 already finished, 1 left to other harness processes" in capsys.readouterr().out
        assert not (claimed / "summary.json").exists()
    finally:
        other.communicate("")  # releases the claim and ends
    assert main(_grid(out, page, data_dir)) == 0
    assert "1 runs made, 3 already finished" in capsys.readouterr().out
    assert _trajectories(out) == _trajectories(full_grid / "results")


def test_a_smaller_budget_reuses_longer_finished_runs(full_grid, data_dir, tmp_path, capsys):
    out = tmp_path / "results"
    shutil.copytree(full_grid / "results", out)
    assert main([*_grid(out, tmp_path / "RESULTS.md", data_dir), "--budget", "10"]) == 0
    assert "0 runs made, 4 already finished" in capsys.readouterr().out
    assert (
        "@10:" in (tmp_path / "RESULTS.md").read_text()
        and "@15:" not in (tmp_path / "RESULTS.md").read_text()
    )


def test_a_finished_run_with_a_damaged_trajectory_stops_the_grid_in_one_line(full_grid, data_dir, tmp_path, capsys):
    out = tmp_path / "results"
    shutil.copytree(full_grid / "results", out)
    (out / "mean/cifar10/re/seed1/trajectory.csv").write_bytes(b"\xff\xfe\x00binary\n")
    assert main(_grid(out, tmp_path / "RESULTS.md", data_dir)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "re/seed1/trajectory.csv is unreadable" in err


def test_a_run_searched_with_other_settings_is_listed_then_moved_aside_and_run_anew(
    full_grid, data_dir, tmp_path, capsys
):
    out, page = tmp_path / "results", tmp_path / "RESULTS.md"
    shutil.copytree(full_grid / "results", out)
    stale = RunDirectory(run_path(out, "mean", "cifar10", "re", 1))
    record = json.loads(stale.config_path.read_text())
    record["method_settings"]["population_size"] = 20  # as if the default had been 20 when it ran
    stale.config_path.write_text(json.dumps(record))
    old_rows = stale.read_trajectory()
    assert main([*_grid(out, page, data_dir), "--report-only"]) == 0
    assert ("- stale: observe=mean dataset=cifar10 method=re seeds 1: population_size: 20 -> 10"
            in page.read_text())  # fmt: skip
    capsys.readouterr()
    assert main(_grid(out, page, data_dir)) == 0
    captured = capsys.readouterr()
    assert "1 runs made (1 anew: their old settings were moved aside), 3 already finished" in captured.out
    assert "population_size: 20 -> 10" in captured.err and "seed1.stale-1" in captured.err
    assert RunDirectory(stale.path.with_name("seed1.stale-1")).read_trajectory() == old_rows  # nothing lost
    assert _trajectories(out) == {**_trajectories(full_grid / "results"),
                                  "mean/cifar10/re/seed1.stale-1": _trajectories(out)["mean/cifar10/re/seed1.stale-1"]}  # fmt: skip
    assert "None: every run was searched with this version's settings." in page.read_text()
    assert not [path for path in find_runs([out]) if ".stale-" in str(path)]  # tnas.compare skips it


def test_the_page_lists_a_run_whose_record_spelt_out_a_default_since_changed_as_stale(full_grid, data_dir, tmp_path):
    out, page = tmp_path / "results", tmp_path / "RESULTS.md"
    shutil.copytree(full_grid / "results", out)
    stale = RunDirectory(run_path(out, "mean", "cifar10", "re", 1))
    for path in (stale.config_path, stale.summary_path):  # as if the command had written 20 out, the default then
        record = json.loads(path.read_text())
        record["config"]["options"] = {"population_size": 20}
        if "method_settings" in record:
            record["method_settings"]["population_size"] = 20
        path.write_text(json.dumps(record))
    assert main([*_grid(out, page, data_dir), "--report-only"]) == 0
    assert ("- stale: observe=mean dataset=cifar10 method=re seeds 1: population_size: 20 -> 10"
            in page.read_text())  # fmt: skip


def test_make_run_refuses_a_stale_run_others_rest_on_and_a_folder_holding_another_run(
    full_grid, data_dir, table, tmp_path
):
    out = tmp_path / "results"
    shutil.copytree(full_grid / "results", out)
    path = run_path(out, "mean", "cifar10", "re", 1)
    config = RunConfig(**json.loads((path / "config.json").read_text())["config"])
    record = json.loads((path / "config.json").read_text())
    record["method_settings"]["sample_size"] = 5
    (path / "config.json").write_text(json.dumps(record))
    with pytest.raises(RunDirectoryError, match=r"sample_size: 5 -> 3.*later results rest on it"):
        make_run(path, dataclasses.replace(config, budget=20), table, data_dir=data_dir, redo_stale=False)
    other = run_path(out, "mean", "cifar10", "rs", 0)
    with pytest.raises(RunDirectoryError, match="holds another run"):  # not taken for a stale one
        make_run(other, dataclasses.replace(config, budget=20), table, data_dir=data_dir)
    assert sorted(p.name for p in other.parent.iterdir() if p.is_dir()) == ["seed0", "seed1"]


def test_report_only_writes_the_page_and_figures_and_lists_missing_runs(
    full_grid, data_dir, tmp_path, capsys
):
    page = tmp_path / "site" / "RESULTS.md"
    args = [*_grid(full_grid / "results", page, data_dir), "--seeds", "3", "--report-only"]
    assert main(args) == 0
    assert "report only" in capsys.readouterr().out
    text = page.read_text()
    assert "- missing: observe=mean dataset=cifar10 method=rs seeds 2 (1 of 3)" in text
    assert "- missing: observe=mean dataset=cifar10 method=re seeds 2 (1 of 3)" in text
    assert "**2 of 3 seeds**" in text and "--report-only" in text
    assert sorted(p.name for p in (tmp_path / "site" / "figures").glob("*.png")) == [
        "mean-rank-queries.png",
        "mean-regret-gpu-hours.png",
        "mean-regret-queries.png",
        "mean-test-queries.png",
    ]
    assert not (full_grid / "results" / "mean" / "cifar10" / "rs" / "seed2").exists()  # no run was started


def test_report_only_leaves_out_runs_made_with_other_settings(full_grid, data_dir, tmp_path, capsys):
    page = tmp_path / "RESULTS.md"
    for extra, other in (([], ()), (["--workers", "2"], ("rs", "re"))):  # runs made with one worker
        assert main([*_grid(full_grid / "results", page, data_dir), *extra, "--report-only"]) == 0
        assert f"; {2 * len(other)} runs missing" in capsys.readouterr().out
        text = page.read_text()
        for method in ("rs", "re"):
            line = (f"- missing: observe=mean dataset=cifar10 method={method} seeds 0, 1 (2 of 2): their run "
                    "directories hold runs of other settings")  # fmt: skip
            assert (line in text) == (method in other)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "rs,darts"], "unknown method 'darts'"),
        (["--datasets", "cifar10,svhn"], "unknown dataset 'svhn'"),
        (["--observe", "median"], "unknown observation policy 'median'"),
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--budget", "0"], "budget must be a positive"),
        (["--observe", "seed", "--fidelity", "12"], "--observe seed needs --fidelity 200"),
        (["--fidelity", "50"], "invalid choice"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2_before_any_run(data_dir, tmp_path, capsys, args, message):
    out = tmp_path / "results"
    argv = ["--methods", "rs", "--datasets", "cifar10", "--seeds", "1", "--budget", "5", "--out", str(out),
            "--results-page", str(tmp_path / "R.md"), "--data-dir", str(data_dir), "--no-progress",
            *args]  # fmt: skip
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "R.md").exists()


def test_help_describes_outputs_and_protocol(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for words in (
        "OUT/<observe>/<dataset>/<method>/seed<k>",
        "RESULTS.md",
        "--report-only",
        "regret",
        "rs",
        "re",
    ):
        assert words in text


def test_tnas_run_seeds_cycle_through_the_surrogates_and_draw_the_target_sample():
    from benchmarks.nb201 import run_config

    spec = GridSpec(observes=("mean",), datasets=("cifar10",), methods=("tnas", "rs"), seeds=tuple(range(10)),
                    budget=20, fidelity=200, surrogates=5)  # fmt: skip
    options = [run_config(spec, "mean", "cifar10", "tnas", seed).options for seed in range(10)]
    assert [o["surrogate_seed"] for o in options] == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    assert [o["sample_seed"] for o in options] == list(range(10))
    assert run_config(spec, "mean", "cifar10", "tnas-prior", 6).options["surrogate_seed"] == 1
    assert run_config(spec, "mean", "cifar10", "tnas-untrained", 6).options["surrogate_seed"] == 0  # unused
    assert run_config(spec, "mean", "cifar10", "rs", 6).options == {}


def test_set_changes_a_methods_default_options_and_bad_settings_are_one_line_errors(data_dir, tmp_path, capsys):
    from benchmarks.nb201 import build_parser, resolve_config, run_config

    args = build_parser().parse_args(["--methods", "tnas-nodata,rs", "--set", "tnas-nodata:members=1",
                                      "--set", "tnas-nodata:acquisition=ucb"])  # fmt: skip
    spec = resolve_config(args).spec
    options = run_config(spec, "mean", "cifar10", "tnas-nodata", 3).options
    assert options["members"] == 1 and options["acquisition"] == "ucb" and options["surrogate_seed"] == 3
    for bad, message in ((["--set", "rs:members=1"], "rs has no option 'members'"),
                         (["--set", "gp:num_init=3"], "for a method of the grid"),
                         (["--set", "tnas-nodata:members"], "METHOD:OPTION=VALUE"),
                         (["--set", "tnas-prior:acquisition=ucb"], "--set tnas-prior:acquisition cannot change a tnas-prior run of this grid: tnas-prior ranks"),
                         (["--set", "tnas-untrained:members=3"], "--set tnas-untrained:members cannot change a tnas-untrained run"),
                         (["--set", "tnas-nodata:pending=x_pending"], "--set tnas-nodata:pending cannot change a tnas-nodata run of this grid: it decides how proposals"),
                         (["--set", "tnas-nodata:ucb_beta=3"], "ucb_beta cannot change a tnas-nodata run of this grid: it weights the ucb acquisition"),
                         (["--set", "tnas-nodata:surrogate=x", "--set", "tnas-prior:surrogate=x", "--surrogates", "3"],
                          "--surrogates 3 cycles through default surrogates"),
                         (["--set", "tnas-nodata:surrogate=x", "--set", "tnas-nodata:members=2"],
                          "members cannot change a tnas-nodata run of this grid: the surrogate is a given directory")):
        methods = "tnas-nodata,rs,tnas-prior,tnas-untrained"
        code = main(["--methods", methods, *bad, "--out", str(tmp_path), "--data-dir", str(data_dir)])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1


def test_the_grid_runs_with_simulated_workers_and_the_parallel_page_reads_it(data_dir, tmp_path, capsys):
    from benchmarks import parallel

    one, four = tmp_path / "w1", tmp_path / "w4"
    assert main(_grid(one, tmp_path / "w1.md", data_dir, "--budget", "30", methods="rs,re")) == 0
    assert main(_grid(four, tmp_path / "w4.md", data_dir, "--budget", "30", "--workers", "4", methods="rs,re")) == 0
    summary = json.loads((run_path(four, "mean", "cifar10", "re", 1) / "summary.json").read_text())
    assert summary["workers"] == 4 and summary["backend"] == "simulated" and summary["config"]["workers"] == 4
    sequential = json.loads((run_path(one, "mean", "cifar10", "re", 1) / "summary.json").read_text())
    assert summary["wall_clock_s"] < sequential["wall_clock_s"] / 2  # four at once
    page = tmp_path / "parallel.md"
    argv = ["report", "--runs", f"1={one}", f"4={four}", "--seeds", "2", "--results-page", str(page),
            "--data-dir", str(data_dir)]  # fmt: skip
    assert parallel.main(argv) == 0
    text = page.read_text()
    assert "| cifar10 | re | 4 | " in text and "| cifar10 | rs | 1 | " in text
    assert (tmp_path / "figures" / "parallel-regret-wallclock.png").is_file()
    assert "runs missing" in capsys.readouterr().out


def test_the_grid_takes_a_table_of_your_own_as_a_dataset(table, data_dir, tmp_path, capsys):
    from tests.test_user_table import _write_table

    path = tmp_path / "lab.csv"
    indexes = _write_table(path, table, every=11)
    path.with_suffix(".json").write_text(json.dumps({"valid_column": "val_acc", "dataset": "lab-task"}))
    page, out = tmp_path / "RESULTS.md", tmp_path / "runs"
    assert main(["--methods", "rs,re", "--datasets", str(path), "--seeds", "2", "--budget", "6", "--observe", "mean",
                 "--out", str(out), "--results-page", str(page), "--data-dir", str(data_dir),
                 "--no-progress"]) == 0  # fmt: skip
    assert "`lab-task`: a table of your own (`lab.csv`)" in page.read_text() and str(path) in page.read_text()
    rows = RunDirectory(out / "mean" / "lab-task" / "re" / "seed1").read_trajectory()
    assert len(rows) == 6 and {row.index for row in rows} <= set(indexes)
    capsys.readouterr()
    assert main(["--methods", "rs", "--datasets", str(tmp_path / "none.csv"), "--out", str(out)]) == 2
    assert "no such table" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variant", "extra", "message"),
    [
        ('p={"method": "tnas-prior", "acquisition": "ucb"}', [], "acquisition cannot change a tnas-prior search"),
        ('s={"surrogate_seed": 0}', [], "surrogate_seed is set by the screen"),
        ('b={"ucb_beta": 3}', [], "ucb_beta cannot change a tnas search (it weights the ucb acquisition"),
        ('w={"pending": "x_pending"}', [], "pending cannot change a tnas search (it decides how proposals"),
        ('r={"recommend": "posterior"}', [], "which follows the incumbent"),
        ('x={"method": "rs"}', [], "is not TNAS or one of its ablations"),
    ],
)
def test_the_settings_screen_refuses_variants_it_could_not_screen(variant, extra, message, capsys):
    from benchmarks.tnas_variants import main as screen

    assert screen(["--variant", variant, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--surrogate", "DIR", "--options", '{"members": 3}'], "--options members: it cannot change"),
        (["--options", '{"pending": "x_pending"}'], "--options pending: it cannot change these searches (it decides how proposals"),
    ],
)
def test_the_overhead_benchmark_refuses_settings_it_could_not_time(args, message, capsys):
    from benchmarks.tnas_search import main as overhead

    assert overhead(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_the_settings_screen_runs_a_variant_once_where_draws_would_repeat_it(capsys):
    import argparse

    from benchmarks.tnas_variants import variant_draws

    args = argparse.Namespace(surrogates=5, sample_seeds=3)
    assert variant_draws("t", {}, args) == (5, 3)
    assert variant_draws("d", {"surrogate": "DIR"}, args) == (1, 3)
    assert variant_draws("u", {"method": "tnas-untrained"}, args) == (1, 3)
    assert variant_draws("n", {"method": "tnas-nodata"}, args) == (5, 1)
    assert capsys.readouterr().err.count("note: variant") == 3


def test_a_run_with_more_workers_than_the_pages_budget_is_another_run_not_a_crash(tmp_path):
    from benchmarks.aggregate import holds_run_of

    wide = RunConfig(method="rs", dataset="cifar10", seed=0, budget=100, fidelity=200, observe="mean", workers=16)
    RunDirectory(tmp_path).write_config({"format": 1, "config": wide.to_dict()})
    page = RunConfig(method="rs", dataset="cifar10", seed=0, budget=10, fidelity=200, observe="mean")
    assert not holds_run_of(tmp_path, page) and holds_run_of(tmp_path, dataclasses.replace(page, budget=20, workers=16))


def test_a_grid_run_whose_record_spelt_out_a_default_since_changed_is_redone_not_refused(full_grid, data_dir, table,
                                                                                          tmp_path, capsys):  # fmt: skip
    """The command line records TNAS's defaults as options (``acquisition``...); when such a
    default changes, its runs are stale (moved aside and run anew), not 'another run' nor
    finished. Shown on an RE run whose record spells out the default of its day."""
    out = tmp_path / "results"
    shutil.copytree(full_grid / "results", out)
    path = run_path(out, "mean", "cifar10", "re", 1)
    config = RunConfig(**json.loads((path / "config.json").read_text())["config"])
    for name in ("config.json", "summary.json"):  # as if the command had written 20 out, the default then
        record = json.loads((path / name).read_text())
        record["config"]["options"] = {"population_size": 20}
        if "method_settings" in record:
            record["method_settings"]["population_size"] = 20
        (path / name).write_text(json.dumps(record))
    assert make_run(path, config, table, data_dir=data_dir) == "remade"
    assert "population_size: 20 -> 10" in capsys.readouterr().err
    assert (path.with_name("seed1.stale-1") / "config.json").exists()
