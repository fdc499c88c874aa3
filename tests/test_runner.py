from __future__ import annotations

import dataclasses
import json

import pytest

from tests.fakes import CountingOracle
from tnas.errors import RunDirectoryError, SearcherError
from tnas.oracles import TableOracle
from tnas.search import RunConfig, RunDirectory, make_searcher, run
from tnas.space import Cell

BASELINES = ("ls", "re", "rs")


def _config(method="re", budget=40, **changes):
    base = RunConfig(method=method, dataset="cifar100", seed=3, budget=budget, fidelity=200, observe="mean")
    return dataclasses.replace(base, **changes)


def _without_overhead(rows):
    return [dataclasses.replace(row, overhead_s=0.0) for row in rows]


@pytest.fixture(scope="module")
def oracle(table):
    return TableOracle(table, "cifar100")


@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("observe", ["mean", "seed"])
def test_resume_after_a_kill_equals_an_uninterrupted_run(oracle, tmp_path, method, observe):
    config = _config(method, observe=observe)
    reference = run(make_searcher(config), oracle, config, tmp_path / "reference")
    killed = CountingOracle(oracle, fail_after=17)
    with pytest.raises(KeyboardInterrupt):
        run(make_searcher(config), killed, config, tmp_path / "resumed")
    assert len(RunDirectory(tmp_path / "resumed").read_trajectory()) == 17
    resumed_oracle = CountingOracle(oracle)
    resumed = run(make_searcher(config), resumed_oracle, config, tmp_path / "resumed")
    assert killed.calls + resumed_oracle.calls == config.budget  # nothing lost, nothing repeated
    assert resumed.replayed == 17
    on_disk = RunDirectory(tmp_path / "resumed").read_trajectory()
    assert _without_overhead(on_disk) == _without_overhead(reference.rows) == _without_overhead(resumed.rows)
    summary = dict(resumed.summary)
    expected = dict(reference.summary)
    for key in ("overhead_s", "versions"):
        summary.pop(key), expected.pop(key)
    assert summary == expected
    assert RunDirectory(tmp_path / "resumed").read_summary()["best_index"] == reference.summary["best_index"]


def test_a_partial_last_line_is_dropped_and_the_query_redone(oracle, tmp_path):
    config = _config("ls")
    reference = run(make_searcher(config), oracle, config)
    with pytest.raises(KeyboardInterrupt):
        run(make_searcher(config), CountingOracle(oracle, fail_after=9), config, tmp_path)
    trajectory = RunDirectory(tmp_path).trajectory_path
    with open(trajectory, "a") as file:
        file.write("10,1234,|none~0|+|no")  # a row cut short by the kill
    before = trajectory.read_text()
    assert len(RunDirectory(tmp_path).read_trajectory()) == 9 and trajectory.read_text() == before  # readers never write
    resumed = run(make_searcher(config), oracle, config, tmp_path)
    assert _without_overhead(resumed.rows) == _without_overhead(reference.rows)
    assert trajectory.read_text().count("\n") == config.budget + 1


def test_raising_the_budget_continues_a_finished_run(oracle, tmp_path):
    small, large = _config("re", budget=15), _config("re", budget=40)
    run(make_searcher(small), oracle, small, tmp_path)
    counting = CountingOracle(oracle)
    extended = run(make_searcher(large), counting, large, tmp_path)
    assert counting.calls == 25
    reference = run(make_searcher(large), oracle, large)
    assert _without_overhead(extended.rows) == _without_overhead(reference.rows)


def test_a_finished_run_is_not_run_again(oracle, tmp_path):
    config = _config("rs", budget=10)
    first = run(make_searcher(config), oracle, config, tmp_path)
    counting = CountingOracle(oracle)
    again = run(make_searcher(config), counting, config, tmp_path)
    assert counting.calls == 0 and again.summary == first.summary


def test_another_run_in_the_same_directory_is_refused(oracle, tmp_path):
    run(make_searcher(_config("rs", budget=5)), oracle, _config("rs", budget=5), tmp_path)
    with pytest.raises(RunDirectoryError, match="holds another run"):
        run(make_searcher(_config("re", budget=5)), oracle, _config("re", budget=5), tmp_path)
    with pytest.raises(RunDirectoryError, match="more than the budget"):
        run(make_searcher(_config("rs", budget=3)), oracle, _config("rs", budget=3), tmp_path)


def test_a_searcher_that_diverges_from_the_record_is_refused(oracle, tmp_path):
    config = _config("rs", budget=10)
    with pytest.raises(KeyboardInterrupt):
        run(make_searcher(config), CountingOracle(oracle, fail_after=5), config, tmp_path)
    other = make_searcher(dataclasses.replace(config, seed=99))
    with pytest.raises(RunDirectoryError, match="submission 1 was cell"):
        run(other, oracle, config, tmp_path)


def test_corrupt_files_are_reported(oracle, tmp_path):
    config = _config("rs", budget=5)
    run(make_searcher(config), oracle, config, tmp_path)
    (tmp_path / "summary.json").unlink()
    trajectory = tmp_path / "trajectory.csv"
    lines = trajectory.read_text().splitlines(keepends=True)
    trajectory.write_text(lines[0] + lines[1] + "2,notanumber" + lines[2][lines[2].index(",", 2):])
    with pytest.raises(RunDirectoryError, match="corrupt"):
        run(make_searcher(config), oracle, config, tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RunDirectoryError, match="unreadable"):
        run(make_searcher(config), oracle, config, tmp_path)


class Repeater:
    """Proposes cell 0, then cell 0 again, then cells 1, 2, ...: one repeat."""

    def __init__(self, repeat_forever=False):
        self.asked, self.told, self.repeat_forever = 0, [], repeat_forever

    def ask(self):
        self.asked += 1
        if self.repeat_forever:
            return Cell.from_index(0)
        return Cell.from_index(0 if self.asked <= 2 else self.asked - 2)

    def tell(self, cell, evaluation):
        self.told.append((cell.index, evaluation.valid))


def test_repeated_proposals_are_answered_from_the_cache_without_counting(oracle):
    config = _config("rs", budget=5)
    counting = CountingOracle(oracle)
    searcher = Repeater()
    result = run(searcher, counting, config)
    assert counting.calls == 5 and [row.index for row in result.rows] == [0, 1, 2, 3, 4]
    assert searcher.told[0] == searcher.told[1]  # the repeat got the cached answer
    assert result.summary["repeats_answered_from_cache"] == 1
    with pytest.raises(SearcherError, match="in a row"):
        run(Repeater(repeat_forever=True), oracle, config)


def test_incumbent_is_best_observed_validation_and_reports_its_test(oracle):
    config = _config("rs", budget=60, observe="seed")
    result = run(make_searcher(config), oracle, config)
    best = max(result.rows, key=lambda row: (row.valid, -row.query))
    last = result.rows[-1]
    assert (last.incumbent_index, last.incumbent_valid, last.incumbent_test) == (best.index, best.valid, best.test)
    assert result.summary["found_at_query"] == best.query
    assert all(row.seed in oracle.seeds(Cell.from_index(row.index), fidelity=200) for row in result.rows)
    assert len({row.seed for row in result.rows}) > 1
    sims = [row.sim_cost_s for row in result.rows]
    assert sims == sorted(sims) and sims[-1] == pytest.approx(sum(row.cost_s for row in result.rows))


def test_simulated_time_budget_stops_the_run(oracle):
    config = _config("rs", budget=1000, max_sim_hours=10.0)
    result = run(make_searcher(config), oracle, config)
    assert result.rows[-2].sim_cost_s < 36000 <= result.rows[-1].sim_cost_s
    assert result.summary["queries"] == len(result.rows) < 1000


class _Scripted:
    """Asks cells in a fixed order and recommends a fixed choice after every tell."""

    def __init__(self, cells, recommendation):
        self.cells, self.recommendation, self.told = list(cells), recommendation, []

    def ask(self):
        return self.cells[len(self.told)]

    def tell(self, cell, evaluation):
        self.told.append(cell)

    def recommend(self):
        return self.recommendation(self.told)


def test_a_recommendation_is_recorded_next_to_the_incumbent(oracle, tmp_path):
    cells = [Cell.from_index(i) for i in (11, 9930, 12, 13)]
    config = _config(budget=4)
    first = _Scripted(cells, lambda told: told[0])  # always the first cell, whatever was seen
    result = run(first, oracle, config, tmp_path / "run")
    assert [row.incumbent_index for row in result.rows][-1] == 9930
    assert {row.recommended_index for row in result.rows} == {11}
    assert result.rows[-1].recommended_test == oracle.evaluate(cells[0], fidelity=200, seed=None).test
    assert result.summary["recommended_index"] == 11 and result.summary["best_index"] == 9930
    assert RunDirectory(tmp_path / "run").read_trajectory() == list(result.rows)
    incumbent = run(_Scripted(cells, lambda told: None), oracle, config)  # None: the incumbent
    assert [row.recommended_index for row in incumbent.rows] == [row.incumbent_index for row in incumbent.rows]


def test_recommending_a_cell_never_evaluated_is_an_error(oracle):
    searcher = _Scripted([Cell.from_index(i) for i in (11, 12)], lambda told: Cell.from_index(5))
    with pytest.raises(SearcherError, match="recommends cell 5"):
        run(searcher, oracle, _config(budget=2))


def test_a_trajectory_of_an_older_format_is_read_as_is_and_rewritten_only_to_append(oracle, tmp_path):
    small, large = _config("rs", budget=6), _config("rs", budget=9)
    run(make_searcher(small), oracle, small, tmp_path)
    path = RunDirectory(tmp_path).trajectory_path
    lines = path.read_text().splitlines()
    old = len(lines[0].split(",")) - 7  # written before the recommendation, clock and constraint columns existed
    path.write_text("\n".join(",".join(line.split(",")[:old]) for line in lines) + "\n")
    RunDirectory(tmp_path).journal_path.unlink()  # and before the journal
    before = path.read_text()
    rows = RunDirectory(tmp_path).read_trajectory()
    assert len(rows) == 6 and rows[0].recommended_index is None and path.read_text() == before
    extended = run(make_searcher(large), oracle, large, tmp_path)
    on_disk = RunDirectory(tmp_path).read_trajectory()
    assert path.read_text().splitlines()[0].endswith("recommended_test,start_s,end_s,worker,latency_ms,flops_m")
    assert [row.index for row in on_disk] == [row.index for row in extended.rows]
    assert on_disk[-1].recommended_index == extended.rows[-1].incumbent_index


@pytest.mark.parametrize("damage", ["binary config", "binary trajectory", "nan in trajectory", "truncated config",
                                    "deeply nested config", "config with a key twice", "journal line nested deeply",
                                    "text start time in journal", "infinite start time in journal",
                                    "seed slot in a journal of seed means", "infinite incumbent in trajectory",
                                    "config is a folder", "method settings not an object",
                                    "config not an object", "field past the csv limit in trajectory",
                                    "incumbent never evaluated in trajectory"])
def test_a_damaged_run_directory_gives_a_one_line_error(oracle, tmp_path, damage):
    import os

    config = _config("rs", budget=5)
    run(make_searcher(config), oracle, config, tmp_path)
    directory = RunDirectory(tmp_path)
    directory.summary_path.unlink()
    if damage == "binary config":
        directory.config_path.write_bytes(os.urandom(300))
    elif damage == "truncated config":
        directory.config_path.write_text(directory.config_path.read_text()[:50])
    elif damage == "deeply nested config":
        directory.config_path.write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "config with a key twice":
        directory.config_path.write_text('{"config": {}, "config": {}}')
    elif damage == "journal line nested deeply":
        lines = directory.journal_path.read_text().splitlines(keepends=True)
        directory.journal_path.write_text("".join([*lines[:2], "[" * 100_000 + "]" * 100_000 + "\n", *lines[3:]]))
    elif "journal" in damage:
        lines = directory.journal_path.read_text().splitlines(keepends=True)
        record = json.loads(lines[2])
        record.update({"text start time in journal": {"start_s": "abc"},
                       "infinite start time in journal": {"start_s": float("inf")},
                       "seed slot in a journal of seed means": {"seed": 0}}[damage])  # fmt: skip
        directory.journal_path.write_text("".join([*lines[:2], json.dumps(record) + "\n", *lines[3:]]))
        if damage == "seed slot in a journal of seed means":  # the evaluation was in flight: resubmitted
            rows = directory.trajectory_path.read_text().splitlines(keepends=True)
            directory.trajectory_path.write_text("".join(rows[:3]))
    elif damage == "infinite incumbent in trajectory":
        lines = directory.trajectory_path.read_text().splitlines(keepends=True)
        fields = lines[2].split(",")
        fields[lines[0].split(",").index("incumbent_valid")] = "inf"
        directory.trajectory_path.write_text("".join([*lines[:2], ",".join(fields), *lines[3:]]))
    elif damage in ("method settings not an object", "config not an object"):
        record = json.loads(directory.config_path.read_text())
        record["method_settings" if damage.startswith("method") else "config"] = 5
        directory.config_path.write_text(json.dumps(record))
    elif damage == "config is a folder":
        directory.config_path.unlink()
        directory.config_path.mkdir()
    elif damage == "binary trajectory":
        directory.trajectory_path.write_bytes(b"\xff\xfe" + os.urandom(300) + b"\n")
    elif damage in ("field past the csv limit in trajectory", "incumbent never evaluated in trajectory"):
        lines = directory.trajectory_path.read_text().splitlines(keepends=True)
        fields = lines[3].split(",")
        column = lines[0].split(",").index("arch" if "csv" in damage else "incumbent_index")
        fields[column] = '"' + "x" * 200_000 + '"' if "csv" in damage else "15000"
        directory.trajectory_path.write_text("".join([*lines[:3], ",".join(fields), *lines[4:]]))
    else:
        lines = directory.trajectory_path.read_text().splitlines(keepends=True)
        fields = lines[2].split(",")
        fields[3] = "nan"  # valid
        directory.trajectory_path.write_text("".join([*lines[:2], ",".join(fields), *lines[3:]]))
    with pytest.raises(RunDirectoryError) as error:
        run(make_searcher(config), oracle, config, tmp_path)
    assert "\n" not in str(error.value)


def test_a_damaged_summary_of_a_finished_run_is_written_again_from_its_trajectory(oracle, tmp_path):
    config = _config("rs", budget=5)
    first = run(make_searcher(config), oracle, config, tmp_path)
    directory = RunDirectory(tmp_path)
    for damage in ({"best_test": None}, {"best_test": float("nan")}, {"queries": "five"}, {"best_arch": 3},
                   {"queries": 4}, {"best_index": 99999}, {"best_arch": "garbage\nsecond line"}, "[1, 2]", "{"):
        if isinstance(damage, str):  # not a JSON object at all
            directory.summary_path.write_text(damage)
        else:  # a summary of another trajectory than the one on disk, or a figure that is no number
            directory.write_summary({**directory.read_summary(), **damage})
        counting = CountingOracle(oracle)
        again = run(make_searcher(config), counting, config, tmp_path)
        assert counting.calls == 0  # nothing evaluated again
        assert again.summary["best_test"] == first.summary["best_test"] == directory.read_summary()["best_test"]
        assert directory.read_summary()["queries"] == 5
    rows = directory.trajectory_path.read_text().splitlines(keepends=True)
    directory.trajectory_path.write_text("".join(rows[:3]))  # cut to 2 queries; the summary still says 5
    counting = CountingOracle(oracle)
    again = run(make_searcher(config), counting, config, tmp_path)
    assert counting.calls == 3 and again.replayed == 2 and directory.read_summary()["queries"] == 5


def test_an_out_that_is_a_file_is_refused_in_one_line(oracle, tmp_path):
    config = _config("rs", budget=5)
    (tmp_path / "afile").write_text("not a run")
    with pytest.raises(RunDirectoryError, match="is a file, not a run directory"):
        run(make_searcher(config), oracle, config, tmp_path / "afile")


def test_a_folder_that_holds_no_run_is_never_written_into(oracle, tmp_path):
    config = _config("rs", budget=3)
    run(make_searcher(config), oracle, config, tmp_path / "runs" / "rs-0")
    meta = tmp_path / "meta"  # a meta-training output
    (meta / "member0").mkdir(parents=True)
    (meta / "ensemble.json").write_text("{}")
    journal_only = tmp_path / "journal-only"
    journal_only.mkdir()
    (journal_only / "journal.jsonl").write_text("")
    for folder in (tmp_path / "runs", meta, journal_only):
        before = sorted(path.relative_to(folder) for path in folder.rglob("*"))
        with pytest.raises(RunDirectoryError, match="but no tnas run .*new or empty folder"):
            run(make_searcher(config), oracle, config, folder)
        assert sorted(path.relative_to(folder) for path in folder.rglob("*")) == before
    hidden = tmp_path / "hidden"  # hidden entries (an interrupted write's temporary file) do not count
    hidden.mkdir()
    (hidden / ".config.json.abc.tmp").write_text("")
    assert len(run(make_searcher(config), oracle, config, hidden).rows) == 3


def test_a_time_limit_the_recorded_queries_broke_is_refused_on_resume(oracle, tmp_path):
    config = _config("rs", budget=12)
    rows = run(make_searcher(config), oracle, config, tmp_path / "run").rows
    broken = rows[5].sim_cost_s / 3600.0  # the run spent this before its 7th query: a fresh run would stop there
    with pytest.raises(RunDirectoryError, match="would have stopped it sooner"):
        run(make_searcher(config), oracle, dataclasses.replace(config, max_sim_hours=broken), tmp_path / "run")
    assert RunDirectory(tmp_path / "run").read_config()["config"]["max_sim_hours"] is None
    kept = rows[-2].sim_cost_s / 3600.0 * 1.001  # every query started under it: the same run
    limited = dataclasses.replace(config, max_sim_hours=kept)
    assert run(make_searcher(limited), oracle, limited, tmp_path / "run").replayed == 12
    fresh = run(make_searcher(limited), oracle, limited, tmp_path / "fresh")
    assert [row.index for row in fresh.rows] == [row.index for row in rows]


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", ".", "..", "two\nlines", " ", "nul\x00"])
def test_a_dataset_name_that_is_not_a_plain_name_is_refused(name):
    from tnas.errors import ConfigError

    with pytest.raises(ConfigError, match="a dataset is a plain name"):  # it names the run's folder
        _config("rs", dataset=name, oracle="user")
