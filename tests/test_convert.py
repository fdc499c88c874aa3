"""The converter reads a small file in the official NAS-Bench-201 format (built here with
``nas_201_api``'s own classes and saved with ``torch.save``, as the official file is)."""

from __future__ import annotations

import pytest
import torch
from nas_201_api.api_utils import ArchResults, ResultsCount

from tnas.oracles import NB201Table, TableOracle
from tnas.oracles.convert import main as convert_main
from tnas.space import NUM_CELLS, Cell

EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}


def _accuracy(index: int, dataset: str, setname: str, seed: int, epochs: int) -> float:
    """A recognisable accuracy for every (cell, dataset, set, seed, schedule)."""
    dataset_part = list(EVAL_SETS).index(dataset) * 10
    set_part = ("x-valid", "x-test", "ori-test", "train").index(setname)
    return 40.0 + dataset_part + set_part + (seed - 777) / 1000 + index / 100 + (epochs == 200) * 2


def _trial(index: int, dataset: str, seed: int, epochs: int) -> ResultsCount:
    last = epochs - 1
    train = {e: _accuracy(index, dataset, "train", seed, epochs) if e == last else 10.0 for e in range(epochs)}
    result = ResultsCount(
        name=dataset, state_dict=None, train_accs=train, train_losses={e: 1.0 for e in range(epochs)},
        params=0.1 + index / 1000, flop=10.0, arch_config={"arch_str": Cell.from_index(index).arch_str},
        seed=seed, epochs=epochs, latency=[0.01 + seed / 1e6],
    )  # fmt: skip
    result.update_train_info(train, train, {e: 1.0 for e in range(epochs)}, {e: 1.5 + index for e in range(epochs)})
    accs, losses, times = {}, {}, {}
    for setname in EVAL_SETS[dataset]:
        for epoch in range(epochs):
            key = f"{setname}@{epoch}"
            accs[key] = _accuracy(index, dataset, setname, seed, epochs) if epoch == last else 5.0
            losses[key], times[key] = 1.0, 0.1
    result.update_eval(accs, losses, times)
    return result


def _arch_results(index: int, epochs: int, seeds: tuple[int, ...]) -> dict:
    results = ArchResults(index, Cell.from_index(index).arch_str)
    for dataset in EVAL_SETS:
        for seed in seeds:
            results.update(dataset, seed, _trial(index, dataset, seed, epochs))
    return results.state_dict()


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    seeds_of = {0: (777, 888, 999), 6111: (777, 999), 15624: (888, 999)}
    data = {
        "meta_archs": [Cell.from_index(i).arch_str for i in range(NUM_CELLS)],
        "arch2infos": {
            index: {"full": _arch_results(index, 200, seeds), "less": _arch_results(index, 12, seeds)}
            for index, seeds in seeds_of.items()
        },
        "evaluated_indexes": set(seeds_of),
    }
    path = tmp_path_factory.mktemp("official") / "NAS-Bench-201-fixture.pth"
    torch.save(data, path)
    return path


def test_converted_table_holds_the_official_values(official_file, tmp_path, capsys):
    out = tmp_path / "nb201" / "nb201_merged.csv"
    assert convert_main([str(official_file), "--out", str(out)]) == 0
    assert "wrote 3 cells" in capsys.readouterr().out
    table = NB201Table.from_csv(out, use_cache=False)
    assert len(table) == 3
    c100 = TableOracle(table, "cifar100")
    cell = Cell.from_index(6111)  # trained with seeds 777 and 999: two seed slots
    mean = c100.evaluate(cell, fidelity=200, seed=None)
    assert mean.valid == pytest.approx((_accuracy(6111, "cifar100", "x-valid", 777, 200)
                                        + _accuracy(6111, "cifar100", "x-valid", 999, 200)) / 2, abs=1e-6)
    assert mean.test == pytest.approx(_accuracy(6111, "cifar100", "x-test", 888, 200), abs=1e-6)
    assert c100.seeds(cell, fidelity=200) == (0, 1)
    assert c100.evaluate(cell, fidelity=200, seed=1).valid == pytest.approx(
        _accuracy(6111, "cifar100", "x-valid", 999, 200), abs=1e-6)
    assert mean.cost_s == pytest.approx(200 * (1.5 + 6111), abs=1e-3)
    assert mean.params_mb == pytest.approx(0.1 + 6.111, abs=1e-6)
    c10 = TableOracle(table, "cifar10").evaluate(Cell.from_index(0), fidelity=200, seed=None)
    assert c10.valid == pytest.approx(_accuracy(0, "cifar10-valid", "x-valid", 888, 200), abs=1e-6)
    assert c10.test == pytest.approx(_accuracy(0, "cifar10", "ori-test", 888, 200), abs=1e-6)
    short = TableOracle(table, "imagenet16-120").evaluate(Cell.from_index(15624), fidelity=12, seed=None)
    assert short.valid == pytest.approx(_accuracy(15624, "ImageNet16-120", "x-valid", 943.5, 12), abs=1e-6)
    assert short.test == pytest.approx(_accuracy(15624, "ImageNet16-120", "x-test", 943.5, 200), abs=1e-6)
    assert table.column("in16_test_12")[15624] == pytest.approx(
        _accuracy(15624, "ImageNet16-120", "x-test", 943.5, 12), abs=1e-6)  # kept in the table, never reported
    assert TableOracle(table, "cifar10").seeds(Cell.from_index(0), fidelity=200) == (0, 1, 2)


def test_converter_rejects_bad_files_with_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.pth"
    assert convert_main([str(missing), "--out", str(tmp_path / "t.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert convert_main([str(tmp_path), "--out", str(tmp_path / "t.csv")]) == 2
    assert "is a folder, not a file" in capsys.readouterr().err
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00garbage")
    assert convert_main([str(garbage), "--out", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read" in err
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize("data", [{"meta_archs": [Cell.from_index(0).arch_str], "arch2infos": {}},
                                  {"meta_archs": [Cell.from_index(0).arch_str], "arch2infos": {0: {"full": {}, "less": {}}}},
                                  {"meta_archs": [Cell.from_index(0).arch_str], "arch2infos": {0: 5}},
                                  {"meta_archs": [Cell.from_index(0).arch_str], "arch2infos": {"x": {}}},
                                  {"meta_archs": 5, "arch2infos": {0: {}}}])
def test_converter_rejects_files_whose_records_are_not_nas_bench_201s(tmp_path, capsys, data):
    path = tmp_path / "odd.pth"
    torch.save(data, path)
    assert convert_main([str(path), "--out", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NAS-Bench-201" in err
    assert not (tmp_path / "t.csv").exists()


def test_converter_refuses_an_out_that_is_a_folder_before_reading_anything(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        convert_main([str(tmp_path / "never-read.pth"), "--out", str(tmp_path)])
    assert exit_.value.code == 2 and "must name a CSV file" in capsys.readouterr().err
