"""Architecture encoder psi: a bidirectional GRU over the DAG view of a cell (D-VAE style).

Following D-VAE (Zhang et al., NeurIPS 2019) and MetaD2A (Lee et al., ICLR 2021): each
node's type is embedded; a forward pass visits the nodes in topological order and feeds
every node's GRU cell with the gated sum of its predecessors' hidden states,

    m_v = sum_{u -> v} sigmoid(W_g h_u + b_g) * (W_m h_u),    h_v = GRU(embed(type_v), m_v),

a backward pass does the same with a second GRU over the reversed DAG, and a linear layer
maps [forward state of the output node, backward state of the input node] to the code.

Graphs come as a torch-geometric ``Batch``: all nodes of one topological level (over the
whole batch) are updated at once, so encoding the 15,625 NAS-Bench-201 cells is 2 x 8
batched GRU steps. By the D-VAE convention the first node of each graph is its input and
the last node its output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tnas.errors import ConfigError
from tnas.space import Cell
from tnas.space.graph import DAG_EDGES, INPUT_TYPE, NUM_DAG_NODES, NUM_NODE_TYPES, OP_TYPE_OFFSET, OUTPUT_TYPE


@dataclass(frozen=True)
class ArchEncoderConfig:
    """Sizes of the architecture encoder.

    Attributes:
        code_dim: L, size of the architecture code.
        hidden_dim: GRU hidden size.
        embed_dim: node-type embedding size.
        num_node_types: number of node types (7 for NAS-Bench-201, see ``tnas.space.graph``).
    """

    code_dim: int = 32
    hidden_dim: int = 64
    embed_dim: int = 16
    num_node_types: int = NUM_NODE_TYPES

    def __post_init__(self) -> None:
        for name in ("code_dim", "hidden_dim", "embed_dim", "num_node_types"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ArchEncoderConfig.{name} must be positive, got {getattr(self, name)}")


class _DirectionalGRU(nn.Module):
    """One pass of gated-sum message passing plus a GRU cell, in topological order."""

    def __init__(self, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(embed_dim, hidden_dim)
        self.gate = nn.Linear(hidden_dim, hidden_dim)
        self.mapper = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.hidden_dim = hidden_dim

    def forward(self, embedded: Tensor, edge_index: Tensor) -> Tensor:
        """Hidden state of every node.

        Args:
            embedded: ``num_nodes x embed_dim`` node-type embeddings.
            edge_index: ``2 x num_edges`` (source, target) of a DAG.

        Returns:
            ``num_nodes x hidden_dim`` hidden states.
        """
        num_nodes = embedded.shape[0]
        levels = topological_levels(edge_index, num_nodes)
        source, target = edge_index
        position = torch.empty(num_nodes, dtype=torch.long, device=embedded.device)
        hidden = embedded.new_zeros(num_nodes, self.hidden_dim)
        for level in range(int(levels.max()) + 1 if num_nodes else 0):
            nodes = torch.nonzero(levels == level).squeeze(1)
            position[nodes] = torch.arange(nodes.numel(), device=embedded.device)
            messages = embedded.new_zeros(nodes.numel(), self.hidden_dim)
            incoming = torch.nonzero(levels[target] == level).squeeze(1)
            if incoming.numel():
                state = hidden[source[incoming]]
                gated = torch.sigmoid(self.gate(state)) * self.mapper(state)
                messages = messages.index_add(0, position[target[incoming]], gated)
            # in place: earlier reads of `hidden` were gathers, whose backward needs only indices
            hidden.index_copy_(0, nodes, self.cell(embedded[nodes], messages))
        return hidden


class ArchEncoder(nn.Module):
    """psi: maps a batch of cell DAGs to ``code_dim``-dimensional codes."""

    def __init__(self, config: ArchEncoderConfig = ArchEncoderConfig()) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.num_node_types, config.embed_dim)
        self.forward_pass = _DirectionalGRU(config.embed_dim, config.hidden_dim)
        self.backward_pass = _DirectionalGRU(config.embed_dim, config.hidden_dim)
        self.readout = nn.Linear(2 * config.hidden_dim, config.code_dim)

    def forward(self, batch) -> Tensor:
        """Encode a torch-geometric ``Batch`` of DAGs.

        Args:
            batch: ``Batch`` with ``x`` (``num_nodes`` long node types), ``edge_index``
                (``2 x num_edges``) and ``ptr`` (``num_graphs + 1`` node offsets).

        Returns:
            ``num_graphs x code_dim`` codes.
        """
        embedded = self.embedding(batch.x)
        forward_states = self.forward_pass(embedded, batch.edge_index)
        backward_states = self.backward_pass(embedded, batch.edge_index.flip(0))
        first, last = batch.ptr[:-1], batch.ptr[1:] - 1
        return self.readout(torch.cat([forward_states[last], backward_states[first]], dim=1))

    def encode_cells(self, cells: Sequence[Cell]) -> Tensor:
        """Encode cells of the search space: ``len(cells) x code_dim``."""
        return self(cells_to_batch(cells, device=self.readout.weight.device))


def topological_levels(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Longest-path depth of every node of a DAG (sources have level 0).

    Args:
        edge_index: ``2 x num_edges`` (source, target).
        num_nodes: number of nodes.

    Returns:
        ``num_nodes`` long tensor.

    Raises:
        ValueError: if the graph has a cycle.
    """
    levels = torch.zeros(num_nodes, dtype=torch.long, device=edge_index.device)
    if edge_index.numel() == 0:
        return levels
    source, target = edge_index
    for _ in range(num_nodes + 1):
        proposed = levels.scatter_reduce(0, target, levels[source] + 1, reduce="amax", include_self=True)
        if torch.equal(proposed, levels):
            return levels
        levels = proposed
    raise ValueError("the graph has a cycle: no topological order exists")


def cells_to_batch(cells: Sequence[Cell], device: torch.device | str | None = None):
    """A torch-geometric ``Batch`` of the DAG views of ``cells``, built in one step.

    Equal to ``Batch.from_data_list([to_pyg_data(c) for c in cells])`` (the tests check
    it) but vectorised, since every cell shares the same DAG: about 100x faster for the
    whole space.
    """
    from torch_geometric.data import Batch

    count = len(cells)
    ops = torch.tensor([cell.ops for cell in cells], dtype=torch.long).reshape(count, -1)
    types = torch.empty(count, NUM_DAG_NODES, dtype=torch.long)
    types[:, 0], types[:, -1], types[:, 1:-1] = INPUT_TYPE, OUTPUT_TYPE, ops + OP_TYPE_OFFSET
    types = types.reshape(-1)
    edges = torch.tensor(DAG_EDGES, dtype=torch.long).t()
    offsets = (torch.arange(count) * NUM_DAG_NODES).repeat_interleave(edges.shape[1])
    edge_index = edges.repeat(1, count) + offsets
    batch = Batch(
        x=types,
        edge_index=edge_index,
        cell_id=torch.tensor([cell.index for cell in cells], dtype=torch.long),
        batch=torch.arange(count).repeat_interleave(NUM_DAG_NODES),
        ptr=torch.arange(count + 1) * NUM_DAG_NODES,  # Batch.num_graphs reads it
    )
    return batch.to(device) if device is not None else batch
