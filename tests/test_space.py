from __future__ import annotations

import csv

import numpy as np
import pytest

from tnas.errors import CellFormatError
from tnas.space import (
    NUM_CELLS,
    OPERATIONS,
    Cell,
    adjacency,
    all_cells,
    as_cell,
    mutate,
    neighbours,
    node_types,
    permuted_cells,
    sample_cell,
    sample_unseen,
    to_pyg_data,
)

BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_round_trip_of_every_cell_through_string_tuple_and_index():
    cells = all_cells()
    assert len(cells) == NUM_CELLS
    assert len({cell.code for cell in cells}) == NUM_CELLS
    for index, cell in enumerate(cells):
        assert cell.index == index
        assert Cell.from_arch_str(cell.arch_str) == cell
        assert Cell.from_ops(cell.ops) == cell
        assert Cell.from_ops(cell.op_names) == cell
        assert Cell.from_index(index) == cell


def test_index_matches_the_table_row_by_row(table_path):
    with open(table_path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == NUM_CELLS
    for row in rows:
        cell = Cell.from_index(int(row["index"]))
        assert cell.arch_str == row["arch_str"]
        assert "".join(map(str, cell.ops)) == row["ops"]
        assert Cell.from_arch_str(row["arch_str"]).index == int(row["index"])


def test_known_cell_views():
    cell = Cell.from_arch_str(BEST_C10)
    assert cell.index == 6111
    assert cell.op_names == (
        "nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_1x1",
    )  # fmt: skip
    assert cell.ops == (3, 3, 3, 1, 3, 2)
    assert str(cell) == BEST_C10
    assert as_cell(6111) == as_cell(BEST_C10) == as_cell((3, 3, 3, 1, 3, 2)) == cell


def test_inputs_may_be_listed_in_any_order():
    shuffled = "|nor_conv_3x3~0|+|nor_conv_3x3~1|nor_conv_3x3~0|+|nor_conv_1x1~2|skip_connect~0|nor_conv_3x3~1|"
    assert Cell.from_arch_str(shuffled).arch_str == BEST_C10


def test_dag_view_of_a_known_cell():
    cell = Cell.from_arch_str(BEST_C10)
    assert node_types(cell).tolist() == [0, 5, 5, 5, 3, 5, 4, 1]
    expected = np.zeros((8, 8), dtype=np.int64)
    for source, target in [(0, 1), (1, 2), (1, 3), (1, 5), (2, 3), (2, 6), (3, 4), (3, 6), (4, 5), (5, 6), (6, 7)]:
        expected[source, target] = 1
    assert (adjacency() == expected).all()
    assert np.triu(adjacency(), k=1).sum() == adjacency().sum()  # node order is topological


def test_dag_view_matches_metad2a_records(data_dir):
    records = np.load(data_dir / "metad2a_meta_train" / "metad2a_meta_train_nb201.npz", allow_pickle=False)
    for arch_str, types, adj in zip(records["arch_str"], records["node_types"], records["adj"]):
        cell = Cell.from_arch_str(str(arch_str))
        assert node_types(cell).tolist() == types.tolist()
        assert (adjacency() == adj).all()


def test_pyg_data_of_a_known_cell():
    data = to_pyg_data(Cell.from_index(6111))
    assert data.num_nodes == 8
    assert data.x.tolist() == [0, 5, 5, 5, 3, 5, 4, 1]
    assert data.edge_index.shape == (2, 11)
    dense = np.zeros((8, 8), dtype=np.int64)
    dense[data.edge_index[0].numpy(), data.edge_index[1].numpy()] = 1
    assert (dense == adjacency()).all()
    assert data.cell_id.tolist() == [6111]


def test_neighbours_differ_in_exactly_one_edge():
    cell = Cell.from_index(123)
    result = neighbours(cell)
    assert len(result) == 24 and len(set(result)) == 24
    for other in result:
        assert sum(a != b for a, b in zip(cell.ops, other.ops)) == 1


def test_mutation_is_one_edge_and_deterministic_under_a_seed():
    cell = Cell.from_index(42)
    first = [mutate(cell, np.random.default_rng(7)) for _ in range(1)]
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    children_a = [mutate(cell, rng_a) for _ in range(50)]
    children_b = [mutate(cell, rng_b) for _ in range(50)]
    assert children_a == children_b
    assert first == [mutate(cell, np.random.default_rng(7))]
    assert set(children_a) <= set(neighbours(cell))
    assert len(set(children_a)) > 10  # explores the neighbourhood


def test_sampling_is_deterministic_and_uniform_enough():
    draws_a = [sample_cell(np.random.default_rng(11)) for _ in range(3)]
    assert draws_a == [sample_cell(np.random.default_rng(11)) for _ in range(3)]
    rng = np.random.default_rng(0)
    ops = np.array([sample_cell(rng).ops for _ in range(5000)])
    counts = np.stack([(ops == op).mean(axis=0) for op in range(5)])
    assert np.allclose(counts, 0.2, atol=0.03)
    assert permuted_cells(np.random.default_rng(5)) == permuted_cells(np.random.default_rng(5))
    assert sorted(c.index for c in permuted_cells(np.random.default_rng(5))) == list(range(NUM_CELLS))


def test_sample_unseen_avoids_seen_cells_even_when_few_remain():
    rng = np.random.default_rng(1)
    seen = set(range(NUM_CELLS)) - {5, 77}
    assert {sample_unseen(rng, seen).index for _ in range(20)} == {5, 77}
    with pytest.raises(ValueError):
        sample_unseen(rng, set(range(NUM_CELLS)))


@pytest.mark.parametrize(
    ("arch_str", "quoted"),
    [
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "'conv_5x5'"),
        ("|none~0|+|none~0|none~1|", "2 node group"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "'|none~0|'"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|", "4 edge"),
        ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "'none~2'"),
        ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "repeats input node 0"),
        ("|none~x|+|none~0|none~1|+|none~0|none~1|none~2|", "'none~x'"),
        ("none~0+none~0|none~1+none~0|none~1|none~2", "'none~0'"),
        ("garbage", "'garbage'"),
        ("", "''"),
    ],
)
def test_malformed_arch_strings_raise_value_errors_quoting_the_part(arch_str, quoted):
    with pytest.raises(ValueError) as info:
        Cell.from_arch_str(arch_str)
    assert isinstance(info.value, CellFormatError)
    assert quoted in str(info.value)


@pytest.mark.parametrize(
    ("build", "quoted"),
    [
        (lambda: Cell.from_ops((0, 1, 2)), "got 3 operations"),
        (lambda: Cell.from_ops((0, 1, 2, 3, 4, 5)), "5"),
        (lambda: Cell.from_ops(("none",) * 5 + ("sep_conv",)), "'sep_conv'"),
        (lambda: Cell.from_ops("none"), "'none'"),
        (lambda: Cell.from_index(15625), "15625"),
        (lambda: Cell.from_index(-1), "-1"),
        (lambda: Cell((0, 0, 0, 0, 0, 9)), "9"),
        (lambda: as_cell(3.5), "3.5"),
    ],
)
def test_malformed_tuples_and_indexes_raise_value_errors(build, quoted):
    with pytest.raises(ValueError) as info:
        build()
    assert quoted in str(info.value)


def test_operations_are_nas_bench_201s():
    assert OPERATIONS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
