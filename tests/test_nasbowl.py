"""NASBOWL: the Weisfeiler-Lehman kernel on known cell graphs, the candidate pool, the fit."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from tnas.errors import ConfigError
from tnas.oracles import TableOracle
from tnas.search.methods import METHODS
from tnas.search.methods.nasbowl import NASBOWL, NASBOWLConfig
from tnas.space import Cell, neighbours
from tnas.space.wl import cell_dag, wl_features, wl_histograms, wl_kernel

# input -> conv3 -> conv3 -> conv1 -> output, every other edge `none`
CHAIN = Cell.from_arch_str("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_1x1~2|")
# the same chain with a skip connection first
SKIP_CHAIN = Cell.from_arch_str("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_1x1~2|")


def test_the_dag_of_a_chain_is_the_chain_of_its_operations():
    labels, predecessors = cell_dag(CHAIN)
    assert labels == ("input", "nor_conv_3x3", "nor_conv_3x3", "nor_conv_1x1", "output")
    assert predecessors == ((), (0,), (1,), (2,), (3,))


def test_dead_branches_are_pruned_and_a_cell_without_a_path_is_input_and_output_alone():
    # node 1's output goes nowhere (edges 1->2, 1->3 are none): its conv is pruned
    branch = Cell.from_arch_str("|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|none~0|none~1|skip_connect~2|")
    assert cell_dag(branch) == (("input", "avg_pool_3x3", "skip_connect", "output"), ((), (0,), (1,), (2,)))
    dead = Cell.from_arch_str("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    assert cell_dag(dead) == (("input", "output"), ((), ()))
    assert cell_dag(Cell.from_ops(["none"] * 6)) == cell_dag(dead)


def test_a_node_fed_by_two_edges_lists_both():
    # node 2 sums edge 0->2 (pool) and edge 1->2 (conv1): the edge 2->3 op node has two predecessors
    cell = Cell.from_arch_str("|nor_conv_1x1~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|")
    labels, predecessors = cell_dag(cell)
    assert labels == ("input", "nor_conv_1x1", "avg_pool_3x3", "nor_conv_1x1", "skip_connect", "output")
    assert predecessors[labels.index("skip_connect")] == (2, 3)


def test_wl_kernel_values_of_known_graphs():
    # h = 0: label counts input 1, conv3 2, conv1 1, output 1 -> 1 + 4 + 1 + 1
    assert wl_kernel(CHAIN, CHAIN, 0) == 7
    # h = 1 adds five distinct (label, predecessor labels) pairs, once each
    assert wl_kernel(CHAIN, CHAIN, 1) == 12
    # shared with the skip chain: input, conv3 (2 x 1), conv1, output; then (input, ()),
    # (conv1, (conv3,)), (output, (conv1,))
    assert wl_kernel(CHAIN, SKIP_CHAIN, 0) == 5
    assert wl_kernel(CHAIN, SKIP_CHAIN, 1) == 8
    assert wl_kernel(CHAIN, SKIP_CHAIN, 2) == 8 + 2  # (input,()) again and (output,(conv1,(conv3,)))


def test_feature_rows_are_unit_vectors_and_give_the_normalised_kernel():
    features = wl_features(1)
    assert features.shape[0] == 15625 and torch.allclose(features.norm(dim=1), torch.ones(15625, dtype=torch.float64))
    a, b = CHAIN.index, SKIP_CHAIN.index
    assert float(features[a] @ features[b]) == pytest.approx(8 / np.sqrt(12 * wl_kernel(SKIP_CHAIN, SKIP_CHAIN, 1)))
    counts = wl_histograms([CHAIN, SKIP_CHAIN], 1)
    assert counts.sum(axis=1).tolist() == [10, 10]  # 5 nodes x 2 iterations


def test_registered_with_its_settings_and_bad_settings_are_refused():
    assert METHODS["nasbowl"].settings == asdict(NASBOWLConfig())
    for bad in ({"num_init": 1}, {"pool_size": 0}, {"wl_iterations": ()}, {"max_noise": 0.0}, {"recommend": "x"}):
        with pytest.raises(ConfigError):
            NASBOWLConfig(**bad)


def test_the_pool_mixes_mutations_of_the_best_cells_with_random_cells(table):
    oracle = TableOracle(table, "cifar100")
    searcher = NASBOWL(np.random.default_rng(0))
    for _ in range(12):
        cell = searcher.ask()
        searcher.tell(cell, oracle.evaluate(cell, fidelity=200, seed=None))
    pool = searcher.candidates()
    evaluated = set(searcher._valid)
    assert len(pool) == 100 and len({cell.index for cell in pool}) == 100 and not evaluated & {c.index for c in pool}
    best = sorted(evaluated, key=lambda i: -searcher._valid[i])[:10]
    near_best = [cell for cell in pool if any(n.index in best for n in neighbours(cell))]
    assert len(near_best) >= 50  # the mutation half (random cells may be near too)
    assert searcher.chosen_iterations in (1, 2)
