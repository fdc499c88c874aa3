"""Extra meta-training sources: run directories of earlier searches and tables of your own."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tnas.errors import ConfigError, DataFileError
from tnas.meta_train import MetaTrainConfig
from tnas.meta_train.cli import main as meta_main
from tnas.meta_train.sources import MIN_CELLS, SourceSpec, read_source
from tnas.oracles import TableOracle
from tnas.rundir import RunDirectory
from tnas.search import RunConfig, make_searcher, run
from tnas.search.cli import main as search_main

TINY = ["--epochs", "1", "--steps-per-epoch", "2", "--inner-steps", "1", "--batch-size", "16", "--samples-per-class",
        "1", "--widths", "8", "--arch-hidden-dim", "8", "--dataset-hidden-dim", "8", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def history(table, tmp_path_factory):
    """A 40-query run of regularized evolution on CIFAR-100: what an earlier search left."""
    out = tmp_path_factory.mktemp("history") / "c100-re"
    config = RunConfig(method="re", dataset="cifar100", seed=0, budget=40, fidelity=200, observe="mean")
    run(make_searcher(config), TableOracle(table, "cifar100"), config, out)
    return out


def _user_table(path, table, every=300):
    rows = ["arch_str,acc"]
    from tnas.space import Cell

    values = table.column("c10v_valid_200")
    rows += [f"{Cell.from_index(i).arch_str},{values[i]}" for i in range(0, 15625, every)]
    path.write_text("\n".join(rows) + "\n")
    path.with_suffix(".json").write_text(json.dumps({"valid_column": "acc", "dataset": "my-sensor-task"}))
    return path


def test_a_run_directory_is_a_source_of_its_dataset_and_its_observations(history, table):
    spec = SourceSpec.parse(str(history))
    assert spec.dataset == "cifar100" and spec.name == f"cifar100@{history.parent.name}/c100-re"
    data = read_source(spec)
    rows = RunDirectory(history).read_trajectory()
    assert sorted(data.cells.tolist()) == sorted({row.index for row in rows}) and len(data.cells) == 40
    assert np.allclose(data.values, table.column("c100_valid_200")[data.cells])
    assert SourceSpec.parse(f"{history}=svhn").dataset == "svhn"  # named explicitly
    assert SourceSpec.parse(f"{history}=CIFAR10-valid").dataset == "cifar10"  # aliases resolved


def test_a_table_is_a_source_of_the_dataset_its_sidecar_names(table, tmp_path):
    path = _user_table(tmp_path / "sensor.csv", table)
    spec = SourceSpec.parse(str(path))
    assert spec.dataset == "my-sensor-task" and len(read_source(spec).cells) == len(range(0, 15625, 300))


def test_bad_sources_are_refused_in_one_line(history, tmp_path):
    with pytest.raises(ConfigError, match="no such run directory or table"):
        SourceSpec.parse(str(tmp_path / "nothing"))
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(ConfigError, match="holds config.json"):
        SourceSpec.parse(str(tmp_path / "empty-dir"))
    short = tmp_path / "short"
    short.mkdir()
    (short / "config.json").write_text((history / "config.json").read_text())
    lines = (history / "trajectory.csv").read_text().splitlines(keepends=True)
    (short / "trajectory.csv").write_text("".join(lines[: MIN_CELLS - 2]))
    with pytest.raises(DataFileError, match=f"needs at least {MIN_CELLS}"):
        read_source(SourceSpec.parse(str(short)))
    for change in ({"oracle_options": ["not", "a", "dict"]}, {"dataset": 7}, {"dataset": ["a"]}):
        record = json.loads((history / "config.json").read_text())
        record["config"].update(change)
        (short / "config.json").write_text(json.dumps(record))
        with pytest.raises(DataFileError, match="is damaged"):
            read_source(SourceSpec.parse(str(short)))
    (short / "config.json").write_text((history / "config.json").read_text())
    (short / "trajectory.csv").write_bytes(b"\x00\x01binary\xff")
    with pytest.raises(DataFileError, match="unreadable") as error:
        read_source(SourceSpec.parse(str(short)))
    assert "\n" not in str(error.value)


def test_sources_let_everything_shipped_be_excluded_and_are_recorded(history):
    with pytest.raises(ConfigError, match="nothing to meta-train on"):
        MetaTrainConfig(exclude=("metad2a", "cifar10", "cifar100", "imagenet16-120"))
    config = MetaTrainConfig(exclude=("metad2a", "cifar10", "cifar100", "imagenet16-120"), sources=(str(history),))
    assert config.sources == (f"{history}=cifar100",)
    assert MetaTrainConfig.from_dict(config.to_dict()) == config
    older = {k: v for k, v in MetaTrainConfig(exclude=("cifar100",)).to_dict().items() if k != "sources"}
    assert MetaTrainConfig.from_dict(older).sources == ()  # written before sources existed


@pytest.mark.slow
def test_meta_training_on_a_history_and_a_table_then_searching_refuses_their_datasets(history, table, data_dir,
                                                                                     tmp_path, capsys):  # fmt: skip
    sensor = _user_table(tmp_path / "sensor.csv", table)
    out = tmp_path / "surrogate"
    assert meta_main(["--exclude", "cifar10,cifar100,imagenet16-120", "--source", str(history), "--source",
                      str(sensor), "--out", str(out), "--data-dir", str(data_dir), *TINY]) == 0  # fmt: skip
    record = json.loads((out / "config.json").read_text())
    assert record["sources"] == ["metad2a", f"cifar100@{history.parent.name}/c100-re",
                                 f"my-sensor-task@{tmp_path.name}/sensor"]  # fmt: skip
    assert set(record["statistics"]) == set(record["sources"])
    capsys.readouterr()
    common = ["--method", "tnas", "--surrogate", str(out), "--budget", "6", "--finetune-steps", "2", "--data-dir",
              str(data_dir), "--no-progress"]  # fmt: skip
    assert search_main([*common, "--dataset", "cifar100", "--out", str(tmp_path / "c100")]) == 2
    assert "earlier search or table of cifar100" in capsys.readouterr().err
    assert search_main([*common, "--dataset", "cifar10", "--out", str(tmp_path / "c10")]) == 0
    surrogate = json.loads((tmp_path / "c10" / "config.json").read_text())["surrogate"]
    assert surrogate["extra_sources"] == ["cifar100", "my-sensor-task"] and not surrogate["target_in_meta_train"]


def test_the_meta_training_cli_refuses_a_missing_source_in_one_line(tmp_path, capsys):
    assert meta_main(["--source", str(tmp_path / "nope"), "--out", str(tmp_path / "m"), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such run directory or table" in err


def test_a_source_whose_cells_all_have_one_value_is_refused(tmp_path):
    path = tmp_path / "flat.csv"
    path.write_text("index,acc\n" + "".join(f"{i},50\n" for i in range(20)))
    path.with_suffix(".json").write_text(json.dumps({"valid_column": "acc"}))
    with pytest.raises(DataFileError, match="same value"):
        read_source(SourceSpec.parse(str(path)))
    path.write_text("index,acc\n" + "".join(f"{i},{1e300 if i < 2 else 50}\n" for i in range(20)))
    with pytest.raises(DataFileError, match="too large to standardise") as error:  # finite, but the spread overflows
        read_source(SourceSpec.parse(str(path)))
    assert "\n" not in str(error.value)
