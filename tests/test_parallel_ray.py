"""The ``ray`` backend on a local Ray cluster started here: real trainings of tiny cells,
a worker killed mid-training, and a driver killed and resumed."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fakes import kill_driver_after
from tnas.search import RunDirectory

ray = pytest.importorskip("ray")  # installed by the test command (pip install -e ".[dev,ray]")
pytestmark = pytest.mark.slow  # a Ray cluster started and stopped, real trainings

BUDGET = 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """``ray start --head`` with 4 CPUs and token authentication (Ray's default for local
    clusters since 2.59); yields its address and the environment a driver needs to join it.
    Stopped after the module's tests."""
    port = _free_port()
    ray_bin = Path(sys.executable).parent / "ray"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32)}  # fmt: skip
    subprocess.run([str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=4", "--include-dashboard=false",
                    "--disable-usage-stats", "--node-ip-address=127.0.0.1"], check=True, capture_output=True,
                   env=env, timeout=120)  # fmt: skip
    yield f"127.0.0.1:{port}", env
    subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True, env=env, timeout=120, check=False)


def _command(address: str, tmp_path: Path, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "tnas.search", "--dataset", "mnist", "--method", "rs", "--budget", str(BUDGET),
            "--epochs", "1", "--train-subset", "2000", "--channels", "4", "--cells-per-stage", "1",
            "--device", "cpu", "--workers", "2", "--backend", "ray", "--ray-address", address,
            "--results-cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"), "--no-progress",
            "--data-dir", str(data_dir)]  # fmt: skip


def _actor_pids_training() -> list[int]:
    """Processes of Ray actors running ``EvaluationWorker.evaluate`` (by their process title)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "EvaluationWorker.evaluate" in title:
                pids.append(int(entry.name))
    return pids


def _trainings(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache").rglob("cell*-seed*.json"))


def test_ray_workers_train_cells_and_survive_a_worker_killed_mid_training(cluster, tmp_path, data_dir):
    killed: list[int] = []
    finished = threading.Event()

    def kill_one_training() -> None:  # watches for as long as the search runs (a loaded machine is slow)
        while not finished.is_set() and not killed:
            if _trainings(tmp_path):  # after the first training finished, kill the next one mid-way
                for pid in _actor_pids_training():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.02)

    address, env = cluster
    killer = threading.Thread(target=kill_one_training)
    killer.start()
    try:
        done = subprocess.run(_command(address, tmp_path, data_dir), capture_output=True, text=True, timeout=600,
                              env=env, check=False)  # fmt: skip
    finally:
        finished.set()
        killer.join()
    assert done.returncode == 0, done.stderr
    assert killed, "no training was running to be killed"
    rows = RunDirectory(tmp_path / "run").read_trajectory()
    assert len(rows) == BUDGET == len({row.index for row in rows})  # retried by Ray, nothing lost
    assert not any(row.failure for row in rows)
    assert {row.worker for row in rows} == {0, 1}
    assert len(_trainings(tmp_path)) == BUDGET  # at least 4 tiny cells trained by the training oracle


def test_a_killed_ray_driver_resumes_without_evaluating_a_cell_twice(cluster, tmp_path, data_dir):
    address, env = cluster
    command = _command(address, tmp_path, data_dir)
    directory = RunDirectory(tmp_path / "run")
    before = kill_driver_after(command, directory.path, rows=2, env=env)
    assert 2 <= len(before) < BUDGET
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(before)} replayed" in resumed.stdout
    rows = directory.read_trajectory()
    assert rows[: len(before)] == before  # finished evaluations kept as they were
    assert len(rows) == BUDGET == len({row.index for row in rows})


def test_an_evaluation_the_cluster_can_never_hold_is_refused_instead_of_waited_for(cluster, tmp_path, data_dir):
    address, env = cluster  # 4 CPUs, no GPU
    base = [part for part in _command(address, tmp_path, data_dir) if part not in ("--device", "cpu")]
    for extra, message in ((["--gpus-per-trial", "1"], "the Ray cluster has 0 GPU(s)"),
                           (["--threads-per-worker", "8"], "the Ray cluster has 4 CPU(s)")):  # fmt: skip
        done = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=300, env=env, check=False)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not RunDirectory(tmp_path / "run").trajectory_path.exists()
