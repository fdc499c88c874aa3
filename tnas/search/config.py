"""Configuration of one search run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tnas.constraints import Constraints
from tnas.errors import ConfigError
from tnas.oracles import FIDELITIES
from tnas.space import NUM_CELLS
from tnas.typecheck import check_field_types, is_finite_number, is_plain_name

ORACLES: dict[str, str] = {
    "table": "look results up in the NAS-Bench-201 table (cifar10, cifar100, imagenet16-120)",
    "train": "really train each proposed cell on the dataset's images (any dataset of the registry)",
    "user": "look results up in your own table of cells (--table FILE, see the README for its schema)",
}

BACKENDS: dict[str, str] = {
    "simulated": "N virtual workers on a clock advanced by each query's recorded training time "
                 "(the default for table oracles: a parallel search on a table costs seconds)",
    "local": "N worker processes on this machine, one device each (the default for real training)",
    "ray": "N Ray actors scheduled by Ray on your cluster (pip install 'tnas[ray]')",
}  # fmt: skip


def default_backend(oracle: str) -> str:
    """``simulated`` for the table oracles, ``local`` for real training."""
    return "local" if oracle == "train" else "simulated"


OBSERVATION_POLICIES: dict[str, str] = {
    "mean": "the mean validation accuracy over the training seeds",
    "seed": "one training seed's validation accuracy, drawn per query (noisy, realistic)",
}


@dataclass(frozen=True)
class RunConfig:
    """What a run searches, how it observes, and how long it may go on.

    Attributes:
        method: search method name (see ``tnas.search.METHODS``).
        dataset: task name (see ``tnas.oracles.TASKS``).
        seed: seed of the searcher's generator and of the per-query seed draws.
        budget: maximum number of queries (distinct cells evaluated).
        fidelity: training epochs observed (200 or 12 with the table; the training
            epochs with the real-training oracle).
        observe: observation policy, a key of :data:`OBSERVATION_POLICIES`.
        max_sim_hours: optional limit on simulated training hours; a query starts only
            while the cumulative simulated cost is below it.
        options: method-specific settings (e.g. TNAS's surrogate and acquisition); part of
            the run's identity, so a resumed run must repeat them.
        oracle: what answers queries, a key of :data:`ORACLES`.
        oracle_options: the oracle's settings that decide its answers (training protocol,
            network size, training seeds); part of the run's identity.
        workers: evaluations running at once; part of the run's identity (with the
            simulated backend it decides the trajectory).
        backend: what runs the evaluations, a key of :data:`BACKENDS`; ``None`` is
            :func:`default_backend` of the oracle.
        constraints: known limits on the proposed cells (:class:`~tnas.constraints.Constraints`
            as a dict: ``max_latency_ms`` with ``latency_device``, ``max_params_mb``,
            ``max_flops_m``); empty for an unconstrained run. Part of the run's identity.
    """

    method: str
    dataset: str
    seed: int
    budget: int
    fidelity: int
    observe: str
    max_sim_hours: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    oracle: str = "table"
    oracle_options: dict[str, Any] = field(default_factory=dict)
    workers: int = 1
    backend: str | None = None
    constraints: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Any) -> RunConfig:
        """The configuration a run directory's ``config.json`` stores under ``config``.

        Raises:
            ConfigError: ``record`` is not such a configuration (not an object, unknown or
                missing fields, fields of the wrong type).
        """
        if not isinstance(record, dict):
            raise ConfigError(f"a run configuration is a JSON object, got {type(record).__name__}")
        try:
            return cls(**record)
        except TypeError as error:
            raise ConfigError(str(error)) from None

    def __post_init__(self) -> None:
        hours = self.max_sim_hours
        if hours is not None and not (is_finite_number(hours) and hours > 0):
            raise ConfigError(f"max_sim_hours must be a positive number of hours, got {hours!r}")
        check_field_types(self)  # names are strings, counts ints (not bools), hours a finite float or None
        for name in ("options", "oracle_options"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name} must be a dict of settings, got {getattr(self, name)!r}")
        if not isinstance(self.constraints, dict):
            raise ConfigError(f"constraints must be a dict of limits, got {self.constraints!r}")
        Constraints.from_dict(self.constraints)  # validates
        if self.workers < 1:
            raise ConfigError(f"workers must be a positive integer, got {self.workers!r}")
        if self.backend is not None and self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not 0 < self.budget <= NUM_CELLS:
            raise ConfigError(
                f"budget must be a positive number of queries up to {NUM_CELLS}, got {self.budget!r}"
            )
        if self.workers > self.budget:
            raise ConfigError(f"{self.workers} workers for a budget of {self.budget} queries: at most one evaluation "
                              "per query can run, so use at most as many workers as queries")  # fmt: skip
        if self.oracle not in ORACLES:
            raise ConfigError(f"oracle must be one of {', '.join(ORACLES)}, got {self.oracle!r}")
        if not is_plain_name(self.dataset):  # it names the run's folder (runs/DATASET/...)
            raise ConfigError(f"a dataset is a plain name (printable, one line, no / or \\, not . or ..), got "
                              f"{self.dataset!r}")  # fmt: skip
        table = self.oracle == "table"
        if table and self.fidelity not in FIDELITIES:
            raise ConfigError(
                f"fidelity must be one of {', '.join(map(str, FIDELITIES))} epochs, got {self.fidelity!r}"
            )
        if self.fidelity < 1:
            raise ConfigError(f"fidelity (training epochs) must be a positive integer, got {self.fidelity!r}")
        if self.observe not in OBSERVATION_POLICIES:
            raise ConfigError(
                f"observe must be one of {', '.join(OBSERVATION_POLICIES)}, got {self.observe!r}"
            )
        if table and self.observe == "seed" and self.fidelity != 200:
            raise ConfigError("--observe seed needs --fidelity 200: per-seed results exist only at 200 epochs")
        if self.oracle == "user" and self.observe != "mean":
            raise ConfigError("a table of your own holds one value per cell: search it with --observe mean")

    @property
    def limits(self) -> Constraints:
        """The run's constraints (inactive when it has none)."""
        return Constraints.from_dict(self.constraints)

    @property
    def resolved_backend(self) -> str:
        """The backend that runs the evaluations (the oracle's default when none was chosen)."""
        return self.backend or default_backend(self.oracle)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form; a one-worker run on its default backend leaves ``workers`` and
        ``backend`` out, and an unconstrained run ``constraints``, so that its identity is
        that of runs made before they existed."""
        values = asdict(self)
        if self.workers == 1 and self.backend is None:
            del values["workers"], values["backend"]
        if not self.constraints:
            del values["constraints"]
        return values

    def same_run_as(self, other: RunConfig) -> bool:
        """Whether ``other`` continues this run (equal except for the budget limits)."""
        return not self.differences(other)

    def differences(self, other: RunConfig) -> list[str]:
        """How ``other`` is another run than this one: ``name: mine -> theirs`` per differing
        field (per key of ``options`` and ``constraints``), the budget limits left out."""
        # compared as dicts: rebuilding one with the other's budget would validate the mix (16 workers
        # for a budget of 10) and raise instead of answering
        limits = ("budget", "max_sim_hours")
        mine, theirs = asdict(self), asdict(other)
        changes: list[str] = []
        for name in mine:
            if name in limits or mine[name] == theirs[name]:
                continue
            if isinstance(mine[name], dict) and isinstance(theirs[name], dict):
                keys = sorted({*mine[name], *theirs[name]})
                unset = "default" if name == "options" else "none"  # an option left out takes the default
                changes += [f"{name}.{key}: {_shown(mine[name], key, unset)} -> {_shown(theirs[name], key, unset)}"
                            for key in keys if mine[name].get(key, _UNSET) != theirs[name].get(key, _UNSET)]  # fmt: skip
            else:
                changes.append(f"{name}: {mine[name]!r} -> {theirs[name]!r}")
        return changes


_UNSET = object()


def _shown(values: dict[str, Any], key: str, unset: str) -> str:
    return repr(values[key]) if key in values else unset
