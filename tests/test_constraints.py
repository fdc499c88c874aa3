"""Hardware and size constraints: footprints, latency tables, feasible search spaces."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tnas.constraints import (
    TASK_GEOMETRY,
    Constraints,
    LatencyTable,
    NetworkGeometry,
    constrained_space,
    flops_m_of_all_cells,
    params_mb_of_all_cells,
)
from tnas.errors import ConfigError, SearcherError, TableError
from tnas.oracles import TableOracle
from tnas.search import RunConfig, make_searcher, run
from tnas.search.cli import build_run
from tnas.space import NUM_CELLS, Cell, SearchSpace
from tnas.train.network import NB201Network, NetworkConfig, count_parameters_mb

EYERISS_3MS = {"max_latency_ms": 3.0, "latency_device": "eyeriss"}  # 728 feasible cells on CIFAR-100
TIGHT = {"max_latency_ms": 2.5, "latency_device": "eyeriss", "max_params_mb": 0.3}  # 656 cells, sparse neighbourhoods


# ---------------------------------------------------------------------- footprints
def _hooked_flops(cell: Cell, geometry: NetworkGeometry) -> float:
    """FLOPs counted by forward hooks on the real network (convolutions and the classifier:
    multiply-accumulates plus bias; average pooling: one operation per pooled input element)."""
    network = NB201Network(cell, _network_config(geometry))
    total = [0.0]

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total[0] += output.numel() * kernel
        elif isinstance(module, torch.nn.Linear):
            total[0] += module.in_features * module.out_features + module.out_features
        elif isinstance(module, torch.nn.AvgPool2d):
            size = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
            total[0] += output.numel() * size * size
        elif isinstance(module, torch.nn.AdaptiveAvgPool2d):
            total[0] += inputs[0].numel()

    for module in network.modules():
        module.register_forward_hook(hook)
    with torch.no_grad():
        network(torch.zeros(1, geometry.in_channels, geometry.resolution, geometry.resolution))
    return total[0] / 1e6


def _network_config(geometry: NetworkGeometry) -> NetworkConfig:
    return NetworkConfig(channels=geometry.channels, cells_per_stage=geometry.cells_per_stage,
                         num_classes=geometry.num_classes, in_channels=geometry.in_channels)  # fmt: skip


GEOMETRIES = {**TASK_GEOMETRY, "mnist-small": NetworkGeometry(28, 10, in_channels=1, channels=8, cells_per_stage=1)}


@pytest.mark.parametrize("index", [0, 1, 9930, 15624])
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_flops_and_parameters_are_those_of_the_network_built(index, name):
    geometry = GEOMETRIES[name]
    cell = Cell.from_index(index)
    assert flops_m_of_all_cells(geometry)[index] == pytest.approx(_hooked_flops(cell, geometry), rel=1e-12)
    assert params_mb_of_all_cells(geometry)[index] == pytest.approx(
        count_parameters_mb(cell, _network_config(geometry)), rel=1e-12)


def test_parameters_match_the_table_and_convolution_flops_match_metad2a(table, data_dir):
    params = params_mb_of_all_cells(TASK_GEOMETRY["cifar100"])
    assert int(np.isclose(params, table.column("c100_params_MB"), atol=1e-6).sum()) == 15475  # as the network
    flops = flops_m_of_all_cells(TASK_GEOMETRY["cifar10"])
    assert flops.min() == pytest.approx(7.81, abs=0.01) and flops.max() == pytest.approx(220.15, abs=0.01)
    # MetaD2A's normalised FLOPs count the convolutions only: they are an affine map of ours without pooling
    with open(data_dir / "metad2a_meta_train" / "metad2a_meta_train_nb201.csv") as file:
        rows = list(csv.DictReader(file))
    indexes = np.array([Cell.from_arch_str(row["arch_str"]).index for row in rows])
    reported = np.array([float(row["flops_norm"]) for row in rows])
    pooling = _pooling_flops(indexes)
    design = np.stack([flops[indexes] - pooling, np.ones(len(indexes))], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, reported, rcond=None)
    assert np.abs(design @ coefficients - reported).max() < 1e-5


def _pooling_flops(indexes: np.ndarray) -> np.ndarray:
    """MFLOPs the avg-pool edges add (CIFAR-10 geometry): 5 cells x 9 x width x pixels per stage."""
    per_edge = sum(5 * 9 * width * side * side for width, side in ((16, 32), (32, 16), (64, 8))) / 1e6
    counts = np.array([sum(op == "avg_pool_3x3" for op in Cell.from_index(int(i)).op_names) for i in indexes])
    return counts * per_edge


# ---------------------------------------------------------------------- latency tables
@pytest.fixture(scope="module")
def latency(data_dir):
    return LatencyTable.load(data_dir=data_dir)


def test_the_shipped_latency_table_has_27_devices_for_every_cell(latency):
    assert len(latency.devices) == 27 and {"pixel2", "fpga", "eyeriss", "titan_rtx_256"} <= set(latency.devices)
    values = latency.latency_ms("fpga")
    assert values.shape == (NUM_CELLS,) and np.isfinite(values).all() and values[0] == pytest.approx(2.57296)
    with pytest.raises(ConfigError, match="no latency measurements for device 'tpu'.*pixel2"):
        latency.latency_ms("tpu")


def _latency_lines(data_dir: Path, rows: int = 30) -> list[str]:
    with open(data_dir / "hardware" / "nb201_latency_help.csv") as file:
        return [next(file) for _ in range(rows + 1)]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncated", "fields where the header has"),
        ("binary", "not UTF-8 text"),
        ("latin1", "not UTF-8 text"),
        ("empty", "is empty"),
        ("header only", "holds no rows"),
        ("duplicated column", "more than once"),
        ("duplicated cell", "appears twice"),
        ("infinite value", "leave it empty"),
        ("text value", "not a number"),
        ("negative value", "negative latencies"),
        ("unknown column", "neither index, arch_str nor"),
        ("no key", "names no cell"),
        ("wrong arch", "official NAS-Bench-201 index"),
        ("empty device column", "hold no value"),
    ],
)
def test_a_damaged_latency_table_gives_a_one_line_error(data_dir, tmp_path, damage, message):
    lines = _latency_lines(data_dir)
    header, rows = lines[0], lines[1:]
    first = rows[0].rstrip("\n").split(",")
    content: bytes | str = {
        "truncated": "".join(lines)[: -len(rows[-1]) // 2],
        "binary": os.urandom(4096),
        "latin1": (header + "".join(rows[:3]) + "caf\xe9\n").encode("latin-1"),
        "empty": "",
        "header only": header,
        "duplicated column": header.rstrip("\n") + ",fpga_ms\n" + "".join(r.rstrip("\n") + ",1\n" for r in rows),
        "duplicated cell": header + rows[0] + rows[0],
        "infinite value": header + ",".join([*first[:-1], "inf"]) + "\n",
        "text value": header + ",".join([*first[:-1], "fast"]) + "\n",
        "negative value": header + ",".join([*first[:-1], "-1.0"]) + "\n",
        "unknown column": header.rstrip("\n") + ",notes\n" + "".join(r.rstrip("\n") + ",x\n" for r in rows),
        "no key": "fpga_ms\n1.0\n",
        "wrong arch": header + ",".join([first[0], Cell.from_index(1).arch_str, *first[2:]]) + "\n",
        "empty device column": header.rstrip("\n") + ",jetson_ms\n" + "".join(r.rstrip("\n") + ",\n" for r in rows),
    }[damage]
    path = tmp_path / "latency.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(TableError, match=message) as error:
        LatencyTable.load(path, use_cache=False)
    assert "\n" not in str(error.value)


def test_a_damaged_latency_cache_is_recomputed(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TNAS_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "latency.csv"
    path.write_text("".join(_latency_lines(data_dir, rows=40)))
    LatencyTable.load(path)
    (cache,) = (tmp_path / "cache").glob("latency-table-*.npz")
    for damage in (cache.read_bytes()[:100], b"", os.urandom(500)):
        cache.write_bytes(damage)
        assert int(np.isfinite(LatencyTable.load(path).latency_ms("fpga")).sum()) == 40
        assert cache.stat().st_size > 1000


def test_a_users_latency_table_by_arch_string_leaves_unmeasured_cells_infeasible(tmp_path):
    path = tmp_path / "my-phone.csv"
    cells = [Cell.from_index(i) for i in (3, 70, 9930, 15000)]
    path.write_text("arch_str,phone_ms\n" + "".join(f"{c.arch_str},{ms}\n" for c, ms in zip(cells, (4, 9, 12, ""))))
    limits = Constraints(max_latency_ms=10, latency_device="phone", latency_table=str(path))
    space = constrained_space(limits, TASK_GEOMETRY["cifar10"])
    assert sorted(space.indexes.tolist()) == [3, 70] and space.quantities_of(cells[1]) == {"latency_ms": 9.0}


# ---------------------------------------------------------------------- constraints and spaces
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_latency_ms": 5.0}, "needs both --max-latency-ms and --latency-device"),
        ({"latency_device": "fpga"}, "needs both"),
        ({"max_latency_ms": -1.0, "latency_device": "fpga"}, "positive number"),
        ({"max_params_mb": float("nan")}, "positive number"),
        ({"max_flops_m": 0}, "positive number"),
        ({"max_speed": 3}, "unknown constraint"),
    ],
)
def test_bad_constraints_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(method="rs", dataset="cifar100", seed=0, budget=5, fidelity=200, observe="mean",
                  constraints=values)  # fmt: skip


def test_an_unconstrained_run_keeps_its_identity():
    config = RunConfig(method="rs", dataset="cifar100", seed=0, budget=5, fidelity=200, observe="mean")
    assert "constraints" not in config.to_dict() and RunConfig(**config.to_dict()) == config
    constrained = dataclasses.replace(config, constraints=EYERISS_3MS)
    assert RunConfig(**constrained.to_dict()) == constrained and not constrained.same_run_as(config)


def test_impossible_limits_and_budgets_beyond_the_feasible_cells_are_refused(table, data_dir):
    base = RunConfig(method="rs", dataset="cifar100", seed=0, budget=5, fidelity=200, observe="mean")
    with pytest.raises(ConfigError, match=r"no cell meets latency <= 0.01 ms on fpga \(latency_ms ranges 1.13"):
        build_run(dataclasses.replace(base, constraints={"max_latency_ms": 0.01, "latency_device": "fpga"}), table,
                  data_dir=data_dir)  # fmt: skip
    with pytest.raises(ConfigError, match="--budget 800 exceeds the 728 cells"):
        build_run(dataclasses.replace(base, budget=800, constraints=EYERISS_3MS), table, data_dir=data_dir)


def test_the_search_space_helpers_stay_inside_the_space():
    mask = np.zeros(NUM_CELLS, dtype=bool)
    mask[[5, 6, 7, 3000]] = True
    space = SearchSpace(mask, description="four cells")
    rng = np.random.default_rng(0)
    assert {space.sample_unseen(rng, {5}).index for _ in range(50)} == {6, 7, 3000}
    assert sorted(cell.index for cell in space.permuted(rng)) == [5, 6, 7, 3000]
    assert all(n in space for n in space.neighbours(Cell.from_index(5)))
    with pytest.raises(ValueError, match="every cell of the search space"):
        space.sample_unseen(rng, {5, 6, 7, 3000})
    with pytest.raises(ValueError, match="no cell meets nothing"):
        SearchSpace(np.zeros(NUM_CELLS, dtype=bool), description="nothing")


# ---------------------------------------------------------------------- every method, constrained
CONSTRAINED_METHODS = ("rs", "re", "ls", "bananas", "reinforce", "gp", "nasbowl", "zero-shot",
                       pytest.param("tnas-untrained", marks=pytest.mark.slow),  # featurises a CIFAR-100 sample
                       "optuna-tpe", "hebo")  # fmt: skip


@pytest.mark.parametrize("method", CONSTRAINED_METHODS)
@pytest.mark.parametrize("constraints", [EYERISS_3MS, TIGHT], ids=["eyeriss-3ms", "tight"])
def test_every_method_proposes_only_feasible_cells(table, data_dir, method, constraints):
    if method in ("optuna-tpe", "hebo"):
        pytest.importorskip({"optuna-tpe": "optuna", "hebo": "hebo"}[method])
    budget = 8 if method in ("hebo", "gp", "tnas-untrained") else 25
    # the image sample of tests/test_parallel.py's runs (seed 3): featurised once per session (2 minutes on 2 cores)
    options = {"finetune_steps": 5, "sample_seed": 3} if method == "tnas-untrained" else {}
    config = RunConfig(method=method, dataset="cifar100", seed=1, budget=budget, fidelity=200, observe="mean",
                       options=options, constraints=constraints)  # fmt: skip
    prepared = build_run(config, table, data_dir=data_dir)
    result = run(prepared.searcher, prepared.oracle, config, space=prepared.space)
    assert len(result.rows) == budget and len({row.index for row in result.rows}) == budget
    assert all(row.index in prepared.space for row in result.rows)
    assert all(row.latency_ms is not None and row.latency_ms <= constraints["max_latency_ms"] for row in result.rows)
    if "max_params_mb" in constraints:
        assert all(row.params_mb <= constraints["max_params_mb"] for row in result.rows)
    assert result.summary["constraints"] == constraints and result.summary["feasible_cells"] == len(prepared.space)
    assert result.summary["recommended_latency_ms"] <= constraints["max_latency_ms"]


def test_several_workers_stay_feasible(table, data_dir):
    config = RunConfig(method="re", dataset="cifar100", seed=2, budget=30, fidelity=200, observe="mean",
                       workers=4, constraints=TIGHT)  # fmt: skip
    prepared = build_run(config, table, data_dir=data_dir)
    result = run(prepared.searcher, prepared.oracle, config, space=prepared.space)
    assert all(row.index in prepared.space for row in result.rows) and len(result.rows) == 30


def test_a_proposal_outside_the_search_space_stops_the_run(table):
    class Outsider:
        def ask(self, pending=()):
            return Cell.from_index(7)

        def tell(self, cell, evaluation):
            pass

    mask = np.ones(NUM_CELLS, dtype=bool)
    mask[7] = False
    config = RunConfig(method="rs", dataset="cifar100", seed=0, budget=3, fidelity=200, observe="mean")
    with pytest.raises(SearcherError, match="outside the search space .without cell 7"):
        run(Outsider(), TableOracle(table, "cifar100"), config, space=SearchSpace(mask, description="without cell 7"))


def test_a_constrained_run_records_its_quantities_and_resumes(table, data_dir, tmp_path):
    limits = {"max_flops_m": 60.0, "max_latency_ms": 18.0, "latency_device": "pixel2"}
    config = RunConfig(method="re", dataset="cifar10", seed=0, budget=12, fidelity=200, observe="mean",
                       constraints=limits)  # fmt: skip
    prepared = build_run(config, table, data_dir=data_dir)
    first = run(prepared.searcher, prepared.oracle, dataclasses.replace(config, budget=6), tmp_path,
                run_info=prepared.run_info, space=prepared.space)  # fmt: skip
    assert all(row.flops_m <= 60 and row.latency_ms <= 18 for row in first.rows)
    flops = flops_m_of_all_cells(TASK_GEOMETRY["cifar10"])
    assert [row.flops_m for row in first.rows] == [float(flops[row.index]) for row in first.rows]
    prepared = build_run(config, table, data_dir=data_dir)
    resumed = run(prepared.searcher, prepared.oracle, config, tmp_path, run_info=prepared.run_info,
                  space=prepared.space)  # fmt: skip
    assert resumed.replayed == 6 and len(resumed.rows) == 12
    stored = json.loads((tmp_path / "config.json").read_text())
    assert stored["config"]["constraints"] == limits and stored["search_space"]["cells"] == len(prepared.space)


def test_a_search_on_a_partial_table_proposes_only_the_cells_it_holds(table_path, tmp_path, data_dir):
    from tnas.oracles import NB201Table

    with open(table_path) as file:
        lines = [next(file) for _ in range(301)]
    partial = tmp_path / "partial.csv"
    partial.write_text("".join(lines))
    small = NB201Table.from_csv(partial, use_cache=False)
    for method in ("rs", "re", "ls", "bananas", "reinforce"):
        config = RunConfig(method=method, dataset="cifar100", seed=0, budget=40, fidelity=200, observe="mean")
        prepared = build_run(config, small, data_dir=data_dir)
        result = run(prepared.searcher, prepared.oracle, config, space=prepared.space)
        assert len(prepared.space) == 300 and all(row.index < 15625 and small.present[row.index]
                                                  for row in result.rows)  # fmt: skip


# ---------------------------------------------------------------------- command line
def test_the_cli_searches_under_a_latency_limit_and_says_so(data_dir, tmp_path, capsys):
    from tnas.search.cli import main

    out = tmp_path / "run"
    assert main(["--dataset", "cifar100", "--method", "re", "--budget", "15", "--max-latency-ms", "5",
                 "--latency-device", "fpga", "--max-params", "0.8", "--data-dir", str(data_dir), "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "constraints  latency <= 5 ms on fpga, params <= 0.8 M:" in text and "feasible cells" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recommended_latency_ms"] <= 5 and summary["recommended_params_mb"] <= 0.8


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--max-latency-ms", "5"], "needs both"),
        (["--max-latency-ms", "5", "--latency-device", "tpu"], "no latency measurements for device 'tpu'"),
        (["--max-flops", "-3"], "positive number"),
        (["--max-latency-ms", "0.001", "--latency-device", "fpga"], "no cell meets"),
    ],
)
def test_the_cli_exits_2_with_one_line_on_bad_constraints(data_dir, tmp_path, capsys, arguments, message):
    from tnas.search.cli import main

    code = main(["--dataset", "cifar100", "--method", "rs", "--budget", "5", "--data-dir", str(data_dir),
                 "--out", str(tmp_path / "run"), "--no-progress", *arguments])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err


def test_the_api_finds_the_search_space_of_a_constrained_config_by_itself(table):
    config = RunConfig(method="rs", dataset="cifar10-valid", seed=0, budget=12, fidelity=200, observe="mean",
                       constraints=EYERISS_3MS)  # fmt: skip
    result = run(make_searcher(config), TableOracle(table, "cifar10-valid"), config)
    assert all(row.latency_ms <= 3 for row in result.rows) and result.summary["feasible_cells"] < 15625
    assert np.int64(3) in SearchSpace() and 3 in SearchSpace()


def test_the_source_average_rank_counts_the_feasible_cells_above_the_best_one(table, data_dir):
    from benchmarks.constrained import HELP_SETTINGS, source_ranks
    from tnas.search.methods.zero_shot import source_average

    setting = next(one for one in HELP_SETTINGS if one.name == "fpga-4ms")
    [(name, feasible, rank)] = source_ranks(table, [setting], data_dir)
    latency = constrained_space(setting.constraints, None, data_dir=data_dir).quantities["latency_ms"]
    mask = latency <= 4
    valid = TableOracle(table, "cifar100").valid_values(200)
    best = int(np.argmax(np.where(mask, valid, -np.inf)))
    prior = source_average(table, ("cifar10-valid", "imagenet16-120"))
    above = [index for index in np.flatnonzero(mask) if prior[index] > prior[best]]
    assert (name, feasible, rank) == ("fpga-4ms", int(mask.sum()), len(above))
    assert prior.shape == (NUM_CELLS,) and abs(float(prior.mean())) < 1e-9  # standardised sources


def test_a_latency_table_with_a_byte_order_mark_reads(data_dir, tmp_path):
    lines = _latency_lines(data_dir)
    path = tmp_path / "latency.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(lines).encode())
    table = LatencyTable.load(path, use_cache=False)
    assert "fpga" in table.devices
