"""The NAS-Bench-201 search space: cells, their DAG view, sampling and mutations."""

from tnas.space.cell import (
    EDGES,
    NUM_CELLS,
    NUM_EDGES,
    NUM_OPS,
    OPERATIONS,
    Cell,
    all_cells,
    as_cell,
    official_index_order,
)
from tnas.space.graph import adjacency, node_types, to_pyg_data
from tnas.space.moves import mutate, neighbours, permuted_cells, sample_cell, sample_unseen
from tnas.space.search_space import FULL_SPACE, SearchSpace

__all__ = [
    "EDGES",
    "FULL_SPACE",
    "NUM_CELLS",
    "NUM_EDGES",
    "NUM_OPS",
    "OPERATIONS",
    "Cell",
    "SearchSpace",
    "adjacency",
    "all_cells",
    "as_cell",
    "mutate",
    "neighbours",
    "node_types",
    "official_index_order",
    "permuted_cells",
    "sample_cell",
    "sample_unseen",
    "to_pyg_data",
]
