"""Oracles answer "how good is this cell on this dataset?".

- :class:`TableOracle` looks results up in the NAS-Bench-201 table (:class:`NB201Table`);
- ``python -m tnas.oracles.convert`` turns the official NAS-Bench-201 file into that table.
"""

from tnas.oracles.base import FIDELITIES, Evaluation, Oracle
from tnas.oracles.table import TABLE_COLUMNS, TABLE_FILE, NB201Table, TableOracle
from tnas.oracles.tasks import TASKS, TableTask, get_task

__all__ = [
    "FIDELITIES",
    "TABLE_COLUMNS",
    "TABLE_FILE",
    "TASKS",
    "Evaluation",
    "NB201Table",
    "Oracle",
    "TableOracle",
    "TableTask",
    "get_task",
]
