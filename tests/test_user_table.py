"""Tables of your own: the schema, the sidecar, damaged files, searches (TNAS without images too)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.test_tnas_search import _meta_train_tiny
from tnas.errors import ConfigError, DataFileError, TableError
from tnas.oracles.user_table import UserTable, UserTableOracle, UserTableSpec, resolve_spec
from tnas.rundir import RunDirectory
from tnas.search.cli import main
from tnas.space import Cell


def _write_table(path: Path, table, *, every: int = 7, by: str = "arch_str") -> list[int]:
    """A CIFAR-100 table of every ``every``-th cell under made-up column names; the indexes written."""
    valid, test, seconds = (table.column(name) for name in ("c100_valid_200", "c100_test_200", "c100_train_time_200_s"))
    indexes = list(range(0, 15625, every))
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([by, "val_acc", "test_acc", "seconds", "comment"])
        for index in indexes:
            key = Cell.from_index(index).arch_str if by == "arch_str" else index
            writer.writerow([key, valid[index], test[index], seconds[index], "from NB201"])
    return indexes


@pytest.fixture()
def user_table(table, tmp_path) -> tuple[Path, list[int]]:
    path = tmp_path / "results.csv"
    indexes = _write_table(path, table)
    path.with_suffix(".json").write_text(json.dumps({"valid_column": "val_acc", "test_column": "test_acc",
                                                     "cost_column": "seconds"}))  # fmt: skip
    return path, indexes


def test_the_sidecar_names_the_columns_and_the_command_line_wins(user_table):
    path, _ = user_table
    assert resolve_spec(path) == UserTableSpec(str(path.resolve()), "val_acc", "test_acc", "seconds")
    assert resolve_spec(path, test_column="val_acc").test_column == "val_acc"
    path.with_suffix(".json").unlink()
    with pytest.raises(ConfigError, match="--valid-column COL"):
        resolve_spec(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\x00\xff{", "unreadable"), (b"[1, 2]", "JSON object"), (b'{"valid": "x"}', "unknown key"),
     (b'{"valid_column": 3}', "column name"), (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
     (b'{"valid_column": "a", "valid_column": "b"}', "more than once"), (b'{"valid_column": "\\ud800"}', "surrogate"),
     (b'{"valid_column": ' + b"9" * 5000 + b"}", "unreadable"),
     (b'{"valid_column": "acc\\nsecond line"}', "one line of printable text")],
)
def test_a_damaged_sidecar_gives_a_one_line_error(user_table, content, message):
    path, _ = user_table
    path.with_suffix(".json").write_bytes(content)
    with pytest.raises(DataFileError, match=message) as error:
        resolve_spec(path)
    assert "\n" not in str(error.value)


def test_a_user_table_answers_from_its_columns_and_holds_only_its_cells(user_table, table):
    path, indexes = user_table
    loaded = UserTable.load(resolve_spec(path))
    assert len(loaded) == len(indexes) and loaded.present[indexes].all()
    oracle = UserTableOracle(loaded, "my-task")
    evaluation = oracle.evaluate(Cell.from_index(indexes[3]), fidelity=200, seed=None)
    assert evaluation.valid == table.column("c100_valid_200")[indexes[3]]
    assert evaluation.cost_s == table.column("c100_train_time_200_s")[indexes[3]] and oracle.seeds(Cell.from_index(0), fidelity=1) == ()
    with pytest.raises(TableError, match="has no val_acc"):
        oracle.evaluate(Cell.from_index(1), fidelity=200, seed=None)


def test_a_user_table_by_index_is_read_through_its_binary_cache(table, tmp_path, monkeypatch):
    monkeypatch.setenv("TNAS_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "by-index.csv"
    indexes = _write_table(path, table, every=50, by="index")
    spec = UserTableSpec(str(path), "val_acc")
    assert len(UserTable.load(spec)) == len(indexes)
    (cache,) = (tmp_path / "cache").glob("user-table-*.npz")
    cache.write_bytes(os.urandom(300))  # a damaged cache entry is parsed again
    assert len(UserTable.load(spec)) == len(indexes) and cache.stat().st_size > 1000


@pytest.mark.parametrize(
    ("damage", "message"),
    [("missing column", r"lacks column\(s\) val_acc"), ("truncated", "fields where the header has"),
     ("binary", "not UTF-8"), ("empty", "is empty"), ("duplicated cell", "appears twice"),
     ("nan everywhere", "holds no cell with a value"), ("infinite", "leave it empty"),
     ("negative cost", "negative values")],
)
def test_a_damaged_user_table_gives_a_one_line_error(table, tmp_path, damage, message):
    path = tmp_path / "t.csv"
    _write_table(path, table, every=500)
    lines = path.read_text().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    cells = rows[0].rstrip("\n").split(",")
    content = {
        "missing column": header.replace("val_acc", "accuracy") + "".join(rows),
        "truncated": "".join(lines)[:-15],
        "binary": os.urandom(2000),
        "empty": "",
        "duplicated cell": header + rows[0] + rows[0],
        "nan everywhere": header + "".join(",".join([r.split(",")[0], "nan", *r.split(",")[2:]]) for r in rows),
        "infinite": header + ",".join([cells[0], "inf", *cells[2:]]) + "\n",
        "negative cost": header + ",".join([*cells[:3], "-5", cells[4]]) + "\n",
    }[damage]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(TableError, match=message) as error:
        UserTable.load(UserTableSpec(str(path), "val_acc", "test_acc", "seconds"), use_cache=False)
    assert "\n" not in str(error.value)


def test_the_cli_searches_a_user_table_and_says_what_it_observed(user_table, data_dir, tmp_path, capsys):
    path, indexes = user_table
    out = tmp_path / "run"
    assert main(["--table", str(path), "--dataset", "my-task", "--method", "re", "--budget", "25",
                 "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "re on my-task" in text and "(column val_acc, 200 epochs)" in text
    rows = RunDirectory(out).read_trajectory()
    assert len(rows) == 25 and {row.index for row in rows} <= set(indexes)
    config = json.loads((out / "config.json").read_text())
    assert config["oracle"]["kind"] == "user-table" and config["oracle"]["cells"] == len(indexes)
    assert config["config"]["oracle"] == "user" and config["config"]["oracle_options"]["valid_column"] == "val_acc"
    assert main(["--table", str(path), "--dataset", "my-task", "--method", "re", "--budget", "25",
                 "--out", str(out), "--no-progress"]) == 0  # resumes the finished run


def test_without_dataset_a_user_tables_task_is_its_sidecars_dataset_else_its_file_name(user_table, tmp_path,
                                                                                         capsys):  # fmt: skip
    path, _ = user_table
    search = ["--table", str(path), "--method", "rs", "--budget", "3", "--no-progress"]
    assert main([*search, "--out", str(tmp_path / "stem")]) == 0
    assert "rs on results, seed 0" in capsys.readouterr().out  # results.csv
    sidecar = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**sidecar, "dataset": "Lab-Task"}))
    assert main([*search, "--out", str(tmp_path / "sidecar")]) == 0
    assert "rs on lab-task, seed 0" in capsys.readouterr().out
    assert json.loads((tmp_path / "sidecar" / "config.json").read_text())["config"]["dataset"] == "lab-task"
    assert main(["--method", "rs", "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--dataset is required" in err and "--table FILE" in err
    # a file named like a dataset tnas knows (here an alias) is not taken for it unless said so
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    fmnist = path.rename(path.with_name("fmnist.csv"))
    fmnist.with_suffix(".json").write_text(json.dumps(sidecar))
    assert main(["--table", str(fmnist), *search[2:], "--out", str(tmp_path / "alias")]) == 2
    assert "also the dataset 'fashion-mnist'" in capsys.readouterr().err
    fmnist.with_suffix(".json").write_text(json.dumps({**sidecar, "dataset": "  "}))
    assert main(["--table", str(fmnist), *search[2:], "--out", str(tmp_path / "blank")]) == 2
    assert "dataset must name something" in capsys.readouterr().err


def test_a_user_table_takes_latency_constraints_and_refuses_what_it_cannot_count(user_table, data_dir, tmp_path,
                                                                                 capsys):  # fmt: skip
    path, indexes = user_table
    common = ["--table", str(path), "--dataset", "my-task", "--method", "rs", "--budget", "10", "--data-dir",
              str(data_dir), "--no-progress"]  # fmt: skip
    out = tmp_path / "fpga"
    assert main([*common, "--out", str(out), "--max-latency-ms", "4", "--latency-device", "fpga"]) == 0
    assert all(row.latency_ms <= 4 and row.index in indexes for row in RunDirectory(out).read_trajectory())
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "flops"), "--max-flops", "50"]) == 2
    assert "count the network of an NB201 task" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--observe", "seed"], "--observe mean"), (["--oracle", "train"], "leave out --oracle train"),
     (["--budget", "3000"], "exceeds the 2233 cells"), (["--valid-column", "nope"], "lacks column(s) nope")],
)
def test_the_cli_exits_2_with_one_line_on_bad_user_table_runs(user_table, tmp_path, capsys, extra, message):
    path, _ = user_table
    code = main(["--table", str(path), "--dataset", "my-task", "--method", "rs", "--out", str(tmp_path / "r"),
                 "--no-progress", *extra])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err


def test_column_options_without_a_table_are_refused(tmp_path, capsys):
    assert main(["--dataset", "cifar10", "--method", "rs", "--valid-column", "x", "--no-progress",
                 "--out", str(tmp_path / "r")]) == 2  # fmt: skip
    assert "go with --table FILE" in capsys.readouterr().err


def test_tnas_searches_a_user_table_of_a_task_without_images(user_table, data_dir, tmp_path, capsys):
    path, indexes = user_table
    surrogate = _meta_train_tiny(tmp_path / "tiny", data_dir)
    out = tmp_path / "tnas"
    assert main(["--table", str(path), "--dataset", "my-tabular-task", "--method", "tnas", "--surrogate",
                 str(surrogate), "--budget", "8", "--finetune-steps", "2", "--data-dir", str(data_dir),
                 "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "target code  mean of cifar10, cifar100, imagenet16-120 (no images of my-tabular-task used)" in text
    config = json.loads((out / "config.json").read_text())
    assert config["target_sample"]["images"] is False
    assert config["target_sample"]["dataset_code"] == "mean of cifar10, cifar100, imagenet16-120"
    assert {row.index for row in RunDirectory(out).read_trajectory()} <= set(indexes)


def test_the_mean_code_of_one_dataset_is_its_code(data_dir):
    """A target encoded by the mean of one dataset's code is encoded by that code (B = 1 is exact)."""
    import torch

    from tnas.models import DeepKernel
    from tnas.models.surrogate import encoder_codes_of_all_cells

    torch.manual_seed(0)
    kernel = DeepKernel().eval()
    features = torch.randn(2, 3, 4, kernel.config.dataset.feature_dim)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    one = encoder_codes_of_all_cells(kernel, features[:1], mask[:1])
    both = encoder_codes_of_all_cells(kernel, features, mask)
    with torch.no_grad():
        codes, single = kernel.dataset_codes(features, mask), kernel.dataset_codes(features[:1], mask[:1])
    width = codes.shape[1]
    assert torch.equal(one[:, -width:], single.expand(15625, -1))  # as before the mean existed
    assert np.allclose(both[0, -width:].numpy(), codes.mean(dim=0).numpy())


def test_a_table_with_a_byte_order_mark_and_a_trailing_blank_line_reads(table, tmp_path):
    path = tmp_path / "excel.csv"
    _write_table(path, table, every=1000)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes() + b"\r\n\r\n")
    assert len(UserTable.load(UserTableSpec(str(path), "val_acc"), use_cache=False)) == 16
