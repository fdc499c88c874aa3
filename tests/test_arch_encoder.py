from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from tnas.encoders import ArchEncoder, ArchEncoderConfig, cells_to_batch, topological_levels
from tnas.errors import ConfigError
from tnas.space import NUM_CELLS, Cell, all_cells, neighbours, to_pyg_data


def _encoder(seed=0, **sizes) -> ArchEncoder:
    torch.manual_seed(seed)
    return ArchEncoder(ArchEncoderConfig(**sizes))


def test_batch_builder_equals_pyg_batching():
    cells = [Cell.from_index(i) for i in (0, 6111, 15624, 42)]
    reference = Batch.from_data_list([to_pyg_data(cell) for cell in cells])
    built = cells_to_batch(cells)
    for key in ("x", "edge_index", "batch", "ptr", "cell_id"):
        assert torch.equal(getattr(reference, key), getattr(built, key)), key
    assert built.num_graphs == reference.num_graphs == 4


def test_shapes_and_dtypes_for_the_whole_space():
    encoder = _encoder(code_dim=12).eval()
    with torch.no_grad():
        codes = encoder.encode_cells(all_cells())
    assert codes.shape == (NUM_CELLS, 12) and codes.dtype == torch.float32
    assert torch.isfinite(codes).all()


def test_batched_encoding_equals_one_by_one():
    encoder = _encoder().eval()
    cells = [Cell.from_index(i) for i in range(0, 15625, 1500)]
    with torch.no_grad():
        batched = encoder.encode_cells(cells)
        single = torch.cat([encoder.encode_cells([cell]) for cell in cells])
        via_pyg = encoder(Batch.from_data_list([to_pyg_data(cell) for cell in cells]))
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched, via_pyg, atol=1e-5, rtol=1e-5)


def test_gradients_reach_every_parameter():
    encoder = _encoder()
    encoder.encode_cells([Cell.from_index(i) for i in range(20)]).pow(2).sum().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_cells_one_edge_apart_get_different_codes():
    encoder = _encoder().eval()
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for index in rng.choice(NUM_CELLS, size=10, replace=False):
            cell = Cell.from_index(int(index))
            codes = encoder.encode_cells([cell, *neighbours(cell)])
            distances = (codes[1:] - codes[0]).norm(dim=1)
            assert distances.min() > 1e-4


def test_all_cells_get_distinct_codes():
    encoder = _encoder().eval()
    with torch.no_grad():
        codes = encoder.encode_cells(all_cells())
    assert torch.unique(codes.round(decimals=5), dim=0).shape[0] == NUM_CELLS


def test_determinism_under_a_seed():
    cells = [Cell.from_index(i) for i in range(50)]
    with torch.no_grad():
        first = _encoder(seed=7).encode_cells(cells)
        again = _encoder(seed=7).encode_cells(cells)
        other = _encoder(seed=8).encode_cells(cells)
    assert torch.equal(first, again) and not torch.allclose(first, other)


def test_matches_a_dense_reference_implementation():
    """Forward and gradients equal a plain per-node loop over the DAG (float64)."""
    from tnas.space.graph import adjacency, node_types

    encoder = _encoder(hidden_dim=8, code_dim=4).double()
    cells = [Cell.from_index(i) for i in (3, 999, 6111)]
    batched = encoder.encode_cells(cells)
    matrix = torch.as_tensor(adjacency())

    def one_pass(direction, embedded, adjacency_matrix, order):
        hidden = [None] * 8
        for node in order:
            message = torch.zeros(direction.hidden_dim, dtype=torch.float64)
            for source in range(8):
                if adjacency_matrix[source, node]:
                    state = hidden[source]
                    message = message + torch.sigmoid(direction.gate(state)) * direction.mapper(state)
            hidden[node] = direction.cell(embedded[node : node + 1], message[None])[0]
        return hidden

    codes = []
    for cell in cells:
        embedded = encoder.embedding(torch.as_tensor(node_types(cell)))
        forward = one_pass(encoder.forward_pass, embedded, matrix, range(8))
        backward = one_pass(encoder.backward_pass, embedded, matrix.t(), reversed(range(8)))
        codes.append(encoder.readout(torch.cat([forward[7], backward[0]])))
    torch.testing.assert_close(batched, torch.stack(codes), atol=1e-12, rtol=1e-12)


def test_topological_levels_and_cycles():
    edges = torch.tensor([[0, 1, 0], [1, 2, 2]])
    assert topological_levels(edges, 4).tolist() == [0, 1, 2, 0]
    with pytest.raises(ValueError, match="cycle"):
        topological_levels(torch.tensor([[0, 1], [1, 0]]), 2)


def test_bad_sizes_are_refused():
    with pytest.raises(ConfigError):
        ArchEncoderConfig(code_dim=0)
