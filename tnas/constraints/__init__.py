"""Hardware and size constraints: latency tables, FLOPs and parameters from the cell, feasible spaces."""

from tnas.constraints.footprint import (
    TASK_GEOMETRY,
    NetworkGeometry,
    flops_m_of_all_cells,
    params_mb_of_all_cells,
)
from tnas.constraints.latency import LATENCY_FILE, LatencyTable
from tnas.constraints.spec import Constraints, constrained_space

__all__ = [
    "LATENCY_FILE",
    "TASK_GEOMETRY",
    "Constraints",
    "LatencyTable",
    "NetworkGeometry",
    "constrained_space",
    "flops_m_of_all_cells",
    "params_mb_of_all_cells",
]
