"""Search: the ask/tell protocol, one runner for every method, the baselines, the CLI.

``python -m tnas.search --dataset cifar100 --method re --budget 100 --seed 0``
"""

from tnas.rundir import TRAJECTORY_COLUMNS, RunDirectory, TrajectoryRow
from tnas.search.config import OBSERVATION_POLICIES, RunConfig
from tnas.search.methods import METHODS, ONE_SHOT_METHODS, Method, SearchContext, get_method, make_searcher
from tnas.search.protocol import Searcher
from tnas.search.runner import RunResult, run, summarize

__all__ = [
    "METHODS",
    "OBSERVATION_POLICIES",
    "ONE_SHOT_METHODS",
    "TRAJECTORY_COLUMNS",
    "Method",
    "RunConfig",
    "RunDirectory",
    "RunResult",
    "SearchContext",
    "Searcher",
    "TrajectoryRow",
    "get_method",
    "make_searcher",
    "run",
    "summarize",
]
