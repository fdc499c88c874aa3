"""NAS-Bench-201 cells: the arch string, the operations tuple and the official index.

A cell is a DAG on 4 nodes; each of its 6 edges ``j -> i`` (``j < i``) carries one of 5
operations. The arch string lists the edges node by node::

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|
     e(1<-0) e(2<-0) e(2<-1) e(3<-0) e(3<-1) e(3<-2)

and that edge order is the order of :attr:`Cell.ops` everywhere in tnas.

The official NAS-Bench-201 index (0..15624, the ``index`` column of the benchmark
tables) is the order in which NAS-Bench-201's generator enumerated the cells (edge 0
slowest, operations in :data:`OPERATIONS` order), shuffled once with Python's
``random.Random(88)``; :func:`official_index_order` rebuilds it and the tests check it
against the table row by row.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tnas.errors import CellFormatError

OPERATIONS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
"""The 5 operations, in NAS-Bench-201's order (operation id = position)."""

EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""The 6 edges as ``(to_node, from_node)``, in arch-string order."""

NUM_OPS = len(OPERATIONS)
NUM_EDGES = len(EDGES)
NUM_CELLS = NUM_OPS**NUM_EDGES  # 15,625

_NUM_INTERMEDIATE_NODES = 3
_OFFICIAL_SHUFFLE_SEED = 88  # NAS-Bench-201's generate_meta_info shuffles with this seed


@functools.cache
def official_index_order() -> tuple[int, ...]:
    """Codes of all cells in official NAS-Bench-201 index order.

    Returns:
        A tuple of length 15,625 whose entry ``i`` is the :attr:`Cell.code` of the cell
        with official index ``i``.
    """
    codes = list(range(NUM_CELLS))
    random.Random(_OFFICIAL_SHUFFLE_SEED).shuffle(codes)
    return tuple(codes)


@functools.cache
def _index_of_code() -> tuple[int, ...]:
    inverse = [0] * NUM_CELLS
    for index, code in enumerate(official_index_order()):
        inverse[code] = index
    return tuple(inverse)


@dataclass(frozen=True, order=True)
class Cell:
    """One NAS-Bench-201 cell, stored as its 6 operation ids in arch-string edge order.

    Build cells with :meth:`from_arch_str`, :meth:`from_ops`, :meth:`from_index` or
    :meth:`from_code`; each validates its input and raises :class:`CellFormatError` (a
    ``ValueError``) quoting the offending part.
    """

    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.ops, tuple) or len(self.ops) != NUM_EDGES:
            raise CellFormatError(
                f"a cell has {NUM_EDGES} edges, got {len(self.ops)} operations: {self.ops!r}"
            )
        for position, op in enumerate(self.ops):
            if not isinstance(op, int) or isinstance(op, bool) or not 0 <= op < NUM_OPS:
                raise CellFormatError(
                    f"operation id {op!r} on edge {position} is not in 0..{NUM_OPS - 1}"
                )

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_ops(cls, ops: Sequence[int | str]) -> Cell:
        """Cell from 6 operations, each an id (0..4) or a name from :data:`OPERATIONS`."""
        if isinstance(ops, str) or not isinstance(ops, Sequence):
            raise CellFormatError(f"expected a sequence of {NUM_EDGES} operations, got {ops!r}")
        if len(ops) != NUM_EDGES:
            raise CellFormatError(
                f"a cell has {NUM_EDGES} edges, got {len(ops)} operations: {tuple(ops)!r}"
            )
        return cls(tuple(_op_id(op) for op in ops))

    @classmethod
    def from_arch_str(cls, arch_str: str) -> Cell:
        """Cell from an arch string such as ``|nor_conv_3x3~0|+|...|+|...|``."""
        return cls(_parse_arch_str(arch_str))

    @classmethod
    def from_index(cls, index: int) -> Cell:
        """Cell with the given official NAS-Bench-201 index (0..15624)."""
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < NUM_CELLS:
            raise CellFormatError(f"cell index {index!r} is not in 0..{NUM_CELLS - 1}")
        return cls.from_code(official_index_order()[index])

    @classmethod
    def from_code(cls, code: int) -> Cell:
        """Cell from its base-5 code (edge 0 is the most significant digit)."""
        if not 0 <= code < NUM_CELLS:
            raise CellFormatError(f"cell code {code!r} is not in 0..{NUM_CELLS - 1}")
        digits = []
        for _ in range(NUM_EDGES):
            code, digit = divmod(code, NUM_OPS)
            digits.append(digit)
        return cls(tuple(reversed(digits)))

    # ----------------------------------------------------------------- views
    @property
    def code(self) -> int:
        """Base-5 number of the operation ids, edge 0 most significant (0..15624)."""
        value = 0
        for op in self.ops:
            value = value * NUM_OPS + op
        return value

    @property
    def index(self) -> int:
        """Official NAS-Bench-201 index of this cell."""
        return _index_of_code()[self.code]

    @property
    def op_names(self) -> tuple[str, ...]:
        """The 6 operation names in arch-string edge order."""
        return tuple(OPERATIONS[op] for op in self.ops)

    @property
    def arch_str(self) -> str:
        """The NAS-Bench-201 arch string."""
        nodes = []
        position = 0
        for node in range(1, _NUM_INTERMEDIATE_NODES + 1):
            edges = []
            for source in range(node):
                edges.append(f"{OPERATIONS[self.ops[position]]}~{source}")
                position += 1
            nodes.append("|" + "|".join(edges) + "|")
        return "+".join(nodes)

    def __str__(self) -> str:
        return self.arch_str


def all_cells() -> list[Cell]:
    """All 15,625 cells in official index order."""
    return [Cell.from_code(code) for code in official_index_order()]


def as_cell(value: Cell | str | int | Iterable[int | str]) -> Cell:
    """Coerce an arch string, an official index, an operations sequence or a cell to a cell."""
    if isinstance(value, Cell):
        return value
    if isinstance(value, str):
        return Cell.from_arch_str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return Cell.from_index(value)
    if isinstance(value, Iterable):
        return Cell.from_ops(list(value))
    raise CellFormatError(f"cannot read a cell from {value!r}")


def _op_id(op: int | str) -> int:
    if isinstance(op, str):
        if op not in OPERATIONS:
            raise CellFormatError(f"unknown operation {op!r}; known: {', '.join(OPERATIONS)}")
        return OPERATIONS.index(op)
    if isinstance(op, int) and not isinstance(op, bool) and 0 <= op < NUM_OPS:
        return op
    raise CellFormatError(f"operation {op!r} is neither a name nor an id in 0..{NUM_OPS - 1}")


def _parse_arch_str(arch_str: str) -> tuple[int, ...]:
    if not isinstance(arch_str, str):
        raise CellFormatError(f"an arch string must be a str, got {arch_str!r}")
    groups = arch_str.strip().split("+")
    if len(groups) != _NUM_INTERMEDIATE_NODES:
        raise CellFormatError(
            f"arch string {arch_str!r} has {len(groups)} node group(s) separated by '+', "
            f"expected {_NUM_INTERMEDIATE_NODES} like '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'"
        )
    ops: list[int] = []
    for node, group in enumerate(groups, start=1):
        if len(group) < 2 or not group.startswith("|") or not group.endswith("|"):
            raise CellFormatError(
                f"node {node} group {group!r} in {arch_str!r} must be written '|op~j|...|'"
            )
        entries = group[1:-1].split("|")
        if len(entries) != node:
            raise CellFormatError(
                f"node {node} group {group!r} has {len(entries)} edge(s), expected {node} "
                f"(one from each of nodes 0..{node - 1})"
            )
        by_source: dict[int, int] = {}
        for entry in entries:
            name, sep, source_text = entry.partition("~")
            if not sep or not source_text.isdigit():
                raise CellFormatError(
                    f"edge {entry!r} in {arch_str!r} must be written 'operation~node'"
                )
            source = int(source_text)
            if source >= node:
                raise CellFormatError(
                    f"edge {entry!r} of node {node} in {arch_str!r} names input node {source}; "
                    f"node {node} takes inputs from nodes 0..{node - 1}"
                )
            if source in by_source:
                raise CellFormatError(
                    f"edge {entry!r} of node {node} in {arch_str!r} repeats input node {source}"
                )
            by_source[source] = _op_id(name)
        ops.extend(by_source[source] for source in range(node))
    return tuple(ops)
