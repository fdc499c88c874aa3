from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from tnas.errors import DataNotFoundError, SeedNotAvailableError, TableError
from tnas.oracles import TABLE_COLUMNS, NB201Table, TableOracle, get_task
from tnas.space import Cell


@pytest.mark.parametrize(
    ("task", "index", "test", "valid"),
    [
        ("cifar10", 6111, 94.373333, 91.606667),
        ("cifar10-valid", 6111, 91.09, 91.606667),
        ("cifar100", 9930, 73.513333, 73.493333),
        ("imagenet16-120", 857, 47.311111, 46.377778),
    ],
)
def test_optima_of_the_nas_bench_201_paper(table, task, index, test, valid):
    oracle = TableOracle(table, task)
    result = oracle.evaluate(Cell.from_index(index), fidelity=200, seed=None)
    assert result.test == pytest.approx(test, abs=1e-6)
    assert result.valid == pytest.approx(valid, abs=1e-6)
    if task != "cifar10-valid":
        assert int(np.nanargmax(oracle.test_values(200))) == index


def test_known_values_of_cell_zero(table):
    cell = Cell.from_index(0)
    c10 = TableOracle(table, "cifar10").evaluate(cell, fidelity=200, seed=None)
    assert (c10.valid, c10.test) == (81.982667, 85.863333)
    assert c10.cost_s == 1444.2186 and c10.params_mb == 0.129306
    seeds = [TableOracle(table, "cifar10").evaluate(cell, fidelity=200, seed=s).valid for s in range(3)]
    assert seeds == [82.092, 81.616, 82.24]
    assert np.mean(seeds) == pytest.approx(c10.valid, abs=1e-5)
    c100 = TableOracle(table, "cifar100").evaluate(cell, fidelity=12, seed=None)
    # NATS-Bench protocol: observe the 12-epoch validation, report the 200-epoch test
    assert (c100.valid, c100.test) == (31.84, 52.913333)
    assert c100.test == TableOracle(table, "cifar100").evaluate(cell, fidelity=200, seed=None).test
    assert c100.cost_s == pytest.approx(2888.4372 * 12 / 200)


def test_missing_seed_raises_and_is_not_substituted(table):
    oracle = TableOracle(table, "cifar100")
    two_seed = np.flatnonzero(np.isnan(table.column("c100_valid_200_seed2")))
    assert len(two_seed) == 7456
    cell = Cell.from_index(int(two_seed[0]))
    assert oracle.seeds(cell, fidelity=200) == (0, 1)
    with pytest.raises(SeedNotAvailableError, match=r"seed slot 2 .*available slots: \[0, 1\]"):
        oracle.evaluate(cell, fidelity=200, seed=2)
    with pytest.raises(SeedNotAvailableError, match="means only"):
        oracle.evaluate(cell, fidelity=12, seed=0)
    assert oracle.seeds(cell, fidelity=12) == ()


def test_unsupported_fidelity_and_task_combinations_are_explained(table):
    with pytest.raises(TableError, match="fidelity 50"):
        TableOracle(table, "cifar100").evaluate(Cell.from_index(1), fidelity=50, seed=None)
    short = TableOracle(table, "cifar10-valid").evaluate(Cell.from_index(1), fidelity=12, seed=None)
    assert short.test == table.column("c10v_test_200")[1]  # the 200-epoch test of the same runs
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        get_task("svhn")
    assert get_task("ImageNet16-120").name == "imagenet16-120"


def test_all_columns_are_complete_except_the_third_seed(table):
    assert len(table) == 15625 and table.present.all()
    for name in TABLE_COLUMNS:
        missing = int(np.isnan(table.column(name)).sum())
        assert missing == (7456 if name.endswith("seed2") else 0), name


def test_cache_is_written_and_gives_the_same_table(table_path, tmp_path, monkeypatch):
    monkeypatch.setenv("TNAS_CACHE_DIR", str(tmp_path))
    first = NB201Table.from_csv(table_path)
    cached = list(tmp_path.glob("nb201-table-*.npz"))
    assert len(cached) == 1
    second = NB201Table.from_csv(table_path)
    for name in TABLE_COLUMNS:
        np.testing.assert_array_equal(first.column(name), second.column(name))
    cached[0].write_bytes(b"not an npz")  # a damaged cache is rebuilt, not trusted
    third = NB201Table.from_csv(table_path)
    np.testing.assert_array_equal(first.column("c100_test_200"), third.column("c100_test_200"))


def test_table_arrays_are_read_only(table):
    with pytest.raises(ValueError):
        table.column("c10_test_200")[0] = 0.0


def test_data_dir_lookup_order(table_path, tmp_path, monkeypatch):
    data_dir = table_path.parents[1]
    monkeypatch.setenv("TNAS_DATA_DIR", str(data_dir))
    assert NB201Table.load().source == table_path.resolve()
    with pytest.raises(DataNotFoundError) as info:  # --data-dir wins over the environment
        NB201Table.load(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "nb201" / "nb201_merged.csv") in message
    assert "python -m tnas.oracles.convert" in message
    monkeypatch.setenv("TNAS_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match=r"\$TNAS_DATA_DIR"):
        NB201Table.load()


def test_a_table_whose_index_does_not_match_the_space_is_refused(table_path, tmp_path):
    lines = Path(table_path).read_text().splitlines(keepends=True)
    header, first, second = lines[0], lines[1], lines[2]
    swapped = second.replace(second.split(",")[0] + ",", first.split(",")[0] + ",", 1)
    bad = tmp_path / "bad.csv"
    bad.write_text(header + swapped)
    with pytest.raises(TableError, match="official NAS-Bench-201 index 0"):
        NB201Table.from_csv(bad, use_cache=False)
    missing = tmp_path / "missing.csv"
    missing.write_text("index,arch_str,ops\n")
    with pytest.raises(TableError, match="lacks column"):
        NB201Table.from_csv(missing, use_cache=False)


def test_partial_table_marks_missing_cells(table_path, tmp_path):
    lines = Path(table_path).read_text().splitlines(keepends=True)
    partial = tmp_path / "partial.csv"
    partial.write_text("".join(lines[:4]))
    small = NB201Table.from_csv(partial, use_cache=False)
    assert len(small) == 3 and Cell.from_index(2) in small and Cell.from_index(3) not in small
    assert math.isnan(small.column("c10_test_200")[3])
    with pytest.raises(TableError, match="not in table"):
        TableOracle(small, "cifar10").evaluate(Cell.from_index(3), fidelity=200, seed=None)
    assert os.environ["TNAS_CACHE_DIR"]


def test_a_table_without_12_epoch_columns_searches_at_200_epochs_and_explains_12(table, tmp_path):
    columns = {name: table.column(name) for name in TABLE_COLUMNS if not name.endswith("_12")}
    partial = NB201Table(columns, tmp_path / "no-12.csv")
    oracle = TableOracle(partial, "cifar100")
    assert oracle.evaluate(Cell.from_index(9930), fidelity=200, seed=None).valid == pytest.approx(73.493333)
    with pytest.raises(TableError, match=r"no 12-epoch validation accuracy for cifar100 \(column c100_valid_12"):
        oracle.evaluate(Cell.from_index(9930), fidelity=12, seed=None)
    with pytest.raises(TableError, match="--fidelity 200"):
        oracle.valid_values(12)


def _head(table_path, rows=20) -> list[str]:
    return Path(table_path).read_text().splitlines(keepends=True)[: rows + 1]


def _damaged(tmp_path, content: bytes | str) -> Path:
    path = tmp_path / "nb201" / "nb201_merged.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncated", "fields where the header has"),
        ("binary", "not UTF-8 text"),
        ("latin1", "not UTF-8 text"),
        ("nul", "fields where the header has"),
        ("empty", "is empty"),
        ("duplicated column", "more than once"),
        ("duplicated cell", "appears twice"),
        ("infinite value", "leave it empty"),
        ("text value", "not a number"),
    ],
)
def test_a_damaged_table_gives_a_one_line_error(table_path, tmp_path, damage, message):
    lines = _head(table_path)
    header, rows = lines[0], lines[1:]
    first = rows[0].rstrip("\n").split(",")
    content: bytes | str = {
        "truncated": "".join(lines)[: -len(rows[-1]) // 2],
        "binary": os.urandom(4096),
        "latin1": header + "".join(rows[:3]) + "caf\xe9,\n".encode("latin-1").decode("latin-1"),
        "nul": header + rows[0] + "\0\0\0\n",
        "empty": "",
        "duplicated column": header.rstrip("\n") + "," + header.split(",")[0] + "\n" + "".join(rows),
        "duplicated cell": header + rows[0] + rows[0],
        "infinite value": header + ",".join([*first[:-1], "inf"]) + "\n",
        "text value": header + ",".join([*first[:-1], "n/a"]) + "\n",
    }[damage]
    if damage == "latin1":
        content = content.encode("latin-1")
    path = _damaged(tmp_path, content)
    with pytest.raises(TableError, match=message) as error:
        NB201Table.from_csv(path, use_cache=False)
    assert "\n" not in str(error.value)


def test_the_search_cli_exits_2_with_one_line_on_a_damaged_table(table_path, tmp_path, capsys):
    from tnas.search.cli import main

    _damaged(tmp_path, "".join(_head(table_path))[:-40])
    assert main(["--dataset", "cifar10", "--method", "rs", "--budget", "3", "--data-dir", str(tmp_path),
                 "--out", str(tmp_path / "run"), "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fields where the header has" in err


def test_a_damaged_table_cache_is_recomputed(table_path, tmp_path, monkeypatch):
    monkeypatch.setenv("TNAS_CACHE_DIR", str(tmp_path / "cache"))
    path = _damaged(tmp_path, "".join(_head(table_path, rows=50)))
    NB201Table.from_csv(path)
    (cache,) = (tmp_path / "cache").glob("nb201-table-*.npz")
    for damage in (cache.read_bytes()[:100], b"", os.urandom(500)):
        cache.write_bytes(damage)
        assert len(NB201Table.from_csv(path)) == 50  # parsed again, cache rewritten
        assert cache.stat().st_size > 1000
    with np.load(cache) as stored:
        good = {name: stored[name] for name in stored.files}
    infinite = dict(good, c10_test_200=np.where(good["present"], np.inf, np.nan))
    text = dict(good, c10_test_200=good["c10_test_200"].astype(str))
    lacking = {name: array for name, array in good.items() if name != "c10_test_200"}
    emptied = dict(good, c10_test_200=np.full_like(good["c10_test_200"], np.nan))  # well formed, checksum kept
    unstamped = {name: array for name, array in good.items() if name != "__crc32__"}  # a copy from before checksums
    for damage in (infinite, text, lacking, dict(good, present=good["present"].astype(np.float64)), emptied,
                   unstamped):
        with open(cache, "wb") as file:
            np.savez(file, **damage)
        table = NB201Table.from_csv(path)
        assert len(table) == 50 and np.isfinite(table.column("c10_test_200")[table.present]).all()


@pytest.mark.parametrize(("column", "value", "message"),
                         [("c10_test_200", "", "is empty"), ("c10v_train_time_200_s", "", "is empty"),
                          ("c10v_train_time_200_s", "-5", r"is negative \(-5\)"),
                          ("c10v_params_MB", "-1", r"is negative \(-1\)")])
def test_a_query_whose_reported_values_are_empty_or_negative_is_a_one_line_error(table_path, tmp_path, column,
                                                                                   value, message):  # fmt: skip
    lines = _head(table_path)
    header = lines[0].rstrip("\n").split(",")
    first = lines[1].rstrip("\n").split(",")
    first[header.index(column)] = value
    path = _damaged(tmp_path, lines[0] + ",".join(first) + "\n" + "".join(lines[2:]))
    table = NB201Table.from_csv(path, use_cache=False)
    cell = Cell.from_index(int(first[header.index("index")]))
    with pytest.raises(TableError, match=f"{column} {message} for cell {cell.index}") as error:
        TableOracle(table, "cifar10").evaluate(cell, fidelity=200, seed=None)
    assert "\n" not in str(error.value)


def test_the_source_average_of_partial_tables_ranks_cells_no_source_holds_last(table_path, tmp_path):
    from tnas.search.methods.zero_shot import source_average

    lines = _head(table_path)
    header = lines[0].rstrip("\n").split(",")
    rows = [line.rstrip("\n").split(",") for line in lines[1:]]
    for column in ("c100_valid_200", "in16_valid_200"):
        rows[0][header.index(column)] = ""  # no source holds the first cell
    rows[1][header.index("c100_valid_200")] = ""  # one source holds the second
    table = NB201Table.from_csv(_damaged(tmp_path, lines[0] + "".join(",".join(row) + "\n" for row in rows)),
                                use_cache=False)  # fmt: skip
    average = source_average(table, ("cifar100", "imagenet16-120"))
    held = table.present.copy()
    assert np.isfinite(average[held]).all()
    first, second = (int(row[header.index("index")]) for row in rows[:2])
    assert average[first] == average[held].min()
    in16 = TableOracle(table, "imagenet16-120").valid_values(200)
    assert average[second] == pytest.approx((in16[second] - np.nanmean(in16)) / np.nanstd(in16))
