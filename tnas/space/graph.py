"""The 8-node DAG view of a cell used by D-VAE / MetaD2A style encoders.

Nodes: 0 is the cell input, nodes 1..6 are the 6 edge operations in arch-string order,
node 7 is the cell output. Node types follow MetaD2A:

    0 input, 1 output, 2 none, 3 skip_connect, 4 nor_conv_1x1, 5 nor_conv_3x3, 6 avg_pool_3x3

The adjacency is MetaD2A's fixed NAS-Bench-201 graph, the same for every cell (the
operations live in the node types): a chain 0 -> 1 -> ... -> 7 plus the data-flow links
between operations (1 -> 3, 1 -> 5, 2 -> 6, 3 -> 6). The tests check node types and
adjacency against all 4,630 records of MetaD2A's meta-training database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tnas.space.cell import NUM_EDGES, Cell

if TYPE_CHECKING:  # torch-geometric is imported only when a Data object is asked for
    from torch_geometric.data import Data

NUM_DAG_NODES = NUM_EDGES + 2
INPUT_TYPE = 0
OUTPUT_TYPE = 1
OP_TYPE_OFFSET = 2  # node type of operation id k is k + 2
NUM_NODE_TYPES = OP_TYPE_OFFSET + 5

# (source, target) pairs of MetaD2A's NAS-Bench-201 DAG, in topological order.
DAG_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1),
    (1, 2),
    (1, 3),
    (1, 5),
    (2, 3),
    (2, 6),
    (3, 4),
    (3, 6),
    (4, 5),
    (5, 6),
    (6, 7),
)


def node_types(cell: Cell) -> np.ndarray:
    """Node types of the DAG view.

    Returns:
        ``int64`` array of shape ``(8,)``.
    """
    types = [INPUT_TYPE, *(op + OP_TYPE_OFFSET for op in cell.ops), OUTPUT_TYPE]
    return np.asarray(types, dtype=np.int64)


def adjacency() -> np.ndarray:
    """Adjacency matrix of the DAG view (the same for every cell).

    Returns:
        ``int64`` array of shape ``(8, 8)``; entry ``[i, j]`` is 1 for an edge ``i -> j``.
    """
    matrix = np.zeros((NUM_DAG_NODES, NUM_DAG_NODES), dtype=np.int64)
    for source, target in DAG_EDGES:
        matrix[source, target] = 1
    return matrix


def to_pyg_data(cell: Cell) -> Data:
    """The DAG view as a torch-geometric ``Data`` object.

    Returns:
        ``Data`` with ``x`` (``long``, shape ``(8,)``: node types), ``edge_index``
        (``long``, shape ``(2, 11)``: source row, target row, topological order),
        ``num_nodes = 8`` and ``cell_id`` (``long``, shape ``(1,)``: official index; not
        named ``*index`` so that PyG batching does not offset it).
    """
    import torch
    from torch_geometric.data import Data

    edge_index = torch.tensor(DAG_EDGES, dtype=torch.long).t().contiguous()
    return Data(
        x=torch.from_numpy(node_types(cell)),
        edge_index=edge_index,
        num_nodes=NUM_DAG_NODES,
        cell_id=torch.tensor([cell.index], dtype=torch.long),
    )
