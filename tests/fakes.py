"""Test doubles and process helpers shared by the runner and parallel-search tests."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from tnas.search import RunDirectory, TrajectoryRow


class CountingOracle:
    """Wraps an oracle; records the cells it evaluates and can simulate a kill (a
    ``KeyboardInterrupt``) once ``fail_after`` evaluations have been made."""

    def __init__(self, oracle, fail_after=None):
        self.oracle, self.fail_after, self.evaluated = oracle, fail_after, []
        self.name = oracle.name

    @property
    def calls(self) -> int:
        return len(self.evaluated)

    def seeds(self, cell, *, fidelity):
        return self.oracle.seeds(cell, fidelity=fidelity)

    def evaluate(self, cell, *, fidelity, seed):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.evaluated.append(cell.index)
        return self.oracle.evaluate(cell, fidelity=fidelity, seed=seed)


def kill_driver_after(command: list[str], run_dir: Path, rows: int, env: dict[str, str] | None = None,
                      timeout_s: float = 300) -> list[TrajectoryRow]:  # fmt: skip
    """Start a search command, SIGKILL it once ``run_dir`` holds ``rows`` finished queries,
    and return the rows it left."""
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    directory = RunDirectory(run_dir)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and len(directory.read_trajectory()) < rows:
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=60)
    return directory.read_trajectory()
