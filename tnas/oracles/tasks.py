"""The NAS-Bench-201 tasks: which table columns are observed and which are reported.

Following the NAS-Bench-201 paper, a search *observes* validation accuracy and the
report quotes the *test* accuracy of the cell it returns. For ``cifar10`` the observed
numbers come from the ``cifar10-valid`` runs (trained on 25k images, validated on the
other 25k) and the reported ones from the runs trained on all 50k training images and
tested on the official test set.

At low fidelity the search observes the 12-epoch validation accuracy, and the report
still quotes the **200-epoch** test accuracy of the returned cell: search cheaply, deploy
fully, as NATS-Bench's black-box protocol does (``hp="12"`` to search, ``hp="200"`` to
report). The 12-epoch test accuracies stay in the table but are never reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tnas.errors import ConfigError


@dataclass(frozen=True)
class TableTask:
    """Column names of one task in ``nb201_merged.csv``.

    Attributes:
        name: task name used on the command line.
        description: one line for ``--help``.
        valid: fidelity -> column of the seed-mean validation accuracy (observed).
        valid_seeds: per-seed 200-epoch validation columns, one per seed slot.
        test: column of the 200-epoch test accuracy (reported, whatever the fidelity).
        train_time_200: column of the 200-epoch training time in seconds.
        params: column of the parameter count in millions.
    """

    name: str
    description: str
    valid: Mapping[int, str]
    valid_seeds: tuple[str, ...]
    test: str
    train_time_200: str
    params: str
    aliases: tuple[str, ...] = field(default=())


def _seed_columns(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}_valid_200_seed{slot}" for slot in range(3))


TASKS: dict[str, TableTask] = {
    task.name: task
    for task in (
        TableTask(
            name="cifar10",
            description="observe cifar10-valid validation, report CIFAR-10 test (NB201 protocol)",
            valid={200: "c10v_valid_200", 12: "c10v_valid_12"},
            valid_seeds=_seed_columns("c10v"),
            test="c10_test_200",
            train_time_200="c10v_train_time_200_s",
            params="c10v_params_MB",
        ),
        TableTask(
            name="cifar10-valid",
            description="observe cifar10-valid validation, report its test on the same runs",
            valid={200: "c10v_valid_200", 12: "c10v_valid_12"},
            valid_seeds=_seed_columns("c10v"),
            test="c10v_test_200",
            train_time_200="c10v_train_time_200_s",
            params="c10v_params_MB",
        ),
        TableTask(
            name="cifar100",
            description="observe CIFAR-100 validation, report CIFAR-100 test",
            valid={200: "c100_valid_200", 12: "c100_valid_12"},
            valid_seeds=_seed_columns("c100"),
            test="c100_test_200",
            train_time_200="c100_train_time_200_s",
            params="c100_params_MB",
        ),
        TableTask(
            name="imagenet16-120",
            description="observe ImageNet16-120 validation, report ImageNet16-120 test",
            valid={200: "in16_valid_200", 12: "in16_valid_12"},
            valid_seeds=_seed_columns("in16"),
            test="in16_test_200",
            train_time_200="in16_train_time_200_s",
            params="in16_params_MB",
            aliases=("ImageNet16-120", "in16"),
        ),
    )
}


def get_task(name: str) -> TableTask:
    """The task called ``name`` (case-insensitive; aliases such as ``ImageNet16-120``)."""
    for task in TASKS.values():
        if name.lower() in (task.name, *(alias.lower() for alias in task.aliases)):
            return task
    raise ConfigError(f"unknown dataset {name!r}; table datasets: {', '.join(TASKS)}")
