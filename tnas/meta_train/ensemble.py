"""Ensembles of meta-trained surrogates: independent REPTILE runs searched as one GP.

An ensemble directory holds ``ensemble.json`` and one ordinary meta-training output per
member (``member0/``, ``member1/``, ...), member ``j`` meta-trained with seed
``seed + j`` and otherwise the same settings. Every member resumes on its own, so a killed
ensemble run continues with the unfinished members. :func:`load_surrogate` reads an
ensemble directory or a single meta-training directory alike; the search turns the
members into one GP (:mod:`tnas.models.ensemble`).

Why: the ranking that a meta-trained prior gives a new dataset's best cells moves a lot
from one meta-training run to another (seed, thread count), and so does the search that
starts from it; the average of a few independent runs is far steadier (see the README's
*Why an ensemble*).
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tnas.io import atomic_write_json, describe_entries, foreign_entries, parse_json
from tnas.meta_train.checkpoint import (
    MODEL_FILE,
    CheckpointError,
    MetaTrainedModel,
    is_finished,
    load_model,
    recorded_epochs,
)
from tnas.meta_train.config import MetaTrainConfig
from tnas.meta_train.sources import source_datasets
from tnas.meta_train.trainer import MetaTrainResult, check_request, epoch_dir, meta_train

logger = logging.getLogger(__name__)

ENSEMBLE_FILE = "ensemble.json"
ENSEMBLE_FORMAT = 1


def member_name(position: int) -> str:
    return f"member{position}"


def _is_member_name(name: str) -> bool:
    return name.startswith("member") and name[len("member"):].isdigit()


def member_dir(out: str | Path, position: int, members: int) -> Path:
    """Where member ``position`` of a surrogate of ``members`` lives: ``out/member<j>/``, or
    ``out`` itself for a single model."""
    return Path(out) / member_name(position) if members > 1 else Path(out)


def members_finished(out: str | Path, members: int) -> bool:
    """Whether every member of the surrogate in ``out`` is meta-trained to its last epoch
    (see :func:`~tnas.meta_train.checkpoint.is_finished`)."""
    return all(is_finished(member_dir(out, j, members)) for j in range(members))


def meta_train_ensemble(config: MetaTrainConfig, out: str | Path, members: int, *, jobs: int = 1,
                        **options: Any) -> list[MetaTrainResult]:  # fmt: skip
    """Meta-train ``members`` surrogates with seeds ``config.seed + j`` into ``out``.

    Args:
        jobs: members meta-trained at once, each in its own process on one thread (on a
            small machine this is faster than one process on all threads, and a member's
            result then does not depend on the machine's core count); 1 trains them one
            after the other in this process, with torch's threads.
        options: passed to :func:`~tnas.meta_train.meta_train` (``data_dir``, ``device``,
            ``progress``, ``meta``, ``keep_epochs``).

    Raises:
        CheckpointError: ``out`` holds an ensemble of other settings or size.
        ConfigError: a member cannot do what was asked (fewer epochs than it holds,
            ``keep_epochs`` on a finished member that did not keep them); checked for
            every member before any is trained.
    """
    out = Path(out)
    record = write_ensemble_record(out, config, members)
    plan = [(replace(config, seed=seed), out / name) for name, seed in zip(record["members"], record["seeds"])]
    for member, directory in plan:
        check_request(member, directory, keep_epochs=bool(options.get("keep_epochs", False)))
    if jobs <= 1:
        return [meta_train(member, directory, **options) for member, directory in plan]
    progress = bool(options.pop("progress", False))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_one_thread) as pool:
        futures = [pool.submit(meta_train, member, directory, **options) for member, directory in plan]
        if progress:
            _follow_epochs(futures, [directory for _, directory in plan], config.epochs)
        results = []
        for (member, directory), future in zip(plan, futures):
            results.append(future.result())
            logger.info("  member %s (seed %d) meta-trained in %.0f s", directory.name, member.seed, results[-1].seconds)
    return results


def _follow_epochs(futures: list[Future], directories: list[Path], epochs: int, poll_s: float = 2.0) -> None:
    """One progress bar (stderr) over the epochs that the members running in other processes
    have finished, read from their ``metrics.csv``, until every member has returned."""
    from tnas.progress import progress_bar

    with progress_bar(total=epochs * len(directories), desc=f"meta-training {len(directories)} members",
                      unit="epoch") as bar:  # fmt: skip
        while True:
            _, running = wait(futures, timeout=poll_s)
            bar.update(sum(min(recorded_epochs(directory), epochs) for directory in directories) - bar.n)
            if not running:
                return


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def write_ensemble_record(out: Path, config: MetaTrainConfig, members: int) -> dict[str, Any]:
    """Write ``out/ensemble.json`` for ``members`` members of ``config`` (seeds ``config.seed + j``).

    Raises:
        CheckpointError: ``out`` already records other members, or holds something other
            than an ensemble's members (a single model's run, a search's run directory).
    """
    record = {"format": ENSEMBLE_FORMAT, "members": [member_name(j) for j in range(members)],
              "seeds": [config.seed + j for j in range(members)], "config": config.to_dict()}  # fmt: skip
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out} is a file, not a meta-training folder; choose another --out")
    others = [name for name in foreign_entries(out, [ENSEMBLE_FILE]) if not _is_member_name(name)]
    if others:  # a single model's run, a search's run directory, other files
        raise CheckpointError(f"{out} holds {describe_entries(others)}, which is not a meta-trained ensemble; "
                              "meta-train into a new or empty --out")  # fmt: skip
    existing = _read_record(out) if (out / ENSEMBLE_FILE).is_file() else None
    if existing is not None and [existing.get("members"), existing.get("seeds")] != [record["members"], record["seeds"]]:
        raise CheckpointError(f"{out} holds an ensemble of other members ({existing.get('seeds')}); choose another --out")
    atomic_write_json(out / ENSEMBLE_FILE, record)
    return record


def _read_record(directory: Path) -> dict[str, Any]:
    try:
        record = parse_json((directory / ENSEMBLE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{directory / ENSEMBLE_FILE} is unreadable ({error}); delete the directory and meta-train again") from None
    if not isinstance(record, dict) or record.get("format") != ENSEMBLE_FORMAT or not record.get("members"):
        raise CheckpointError(f"{directory / ENSEMBLE_FILE} is not a tnas ensemble of format {ENSEMBLE_FORMAT}")
    members = record["members"]
    if not isinstance(members, list) or not all(isinstance(name, str) and name and Path(name).name == name
                                                for name in members):  # fmt: skip
        raise CheckpointError(f"{directory / ENSEMBLE_FILE}: members must be a list of member folder names, got "
                              f"{members!r}; delete the directory and meta-train again")  # fmt: skip
    if len(set(members)) != len(members):
        raise CheckpointError(f"{directory / ENSEMBLE_FILE} names a member twice ({members!r}); delete the directory "
                              "and meta-train again")  # fmt: skip
    return record


@dataclass(frozen=True)
class Surrogate:
    """One meta-trained surrogate or an ensemble of them, as a search uses it.

    Attributes:
        members: the meta-trained models (one for a single surrogate).
        path: the directory it was loaded from.
    """

    members: tuple[MetaTrainedModel, ...]
    path: Path

    @property
    def kernels(self) -> list:
        return [member.kernel for member in self.members]

    @property
    def exclude(self) -> tuple[str, ...]:
        """Sources that no member saw (an ensemble excludes only what all members exclude)."""
        common = set(self.members[0].exclude).intersection(*(member.exclude for member in self.members[1:]))
        return tuple(sorted(common))

    @property
    def seen_datasets(self) -> set[str]:
        """Datasets whose observations some member saw through an extra source (a table of
        your own, an earlier search), whatever ``exclude`` says of the shipped tables."""
        return source_datasets(tuple(text for member in self.members for text in member.settings.get("sources", ())))

    @property
    def samples_per_class(self) -> int:
        return self.members[0].samples_per_class

    @property
    def statistics(self) -> dict[str, dict[str, float]]:
        """Standardisation statistics per source, averaged over the members."""
        names = self.members[0].statistics
        return {name: {key: float(np.mean([m.statistics[name][key] for m in self.members])) for key in names[name]}
                for name in names}  # fmt: skip

    @property
    def settings(self) -> dict[str, Any]:
        """The meta-training settings (member 0's: the others differ only in their seeds)."""
        return self.members[0].settings


def load_surrogate(directory: str | Path) -> Surrogate:
    """Load a meta-trained surrogate: an ensemble directory or a single meta-training output.

    Raises:
        CheckpointError: the directory, a member or its model is missing, corrupt or
            incompatible, or members disagree on what they were meta-trained on.
    """
    directory = Path(directory)
    if not (directory / ENSEMBLE_FILE).is_file():
        return Surrogate((load_model(directory),), directory)
    record = _read_record(directory)
    members = []
    for name in record["members"]:
        if not (directory / name / MODEL_FILE).is_file():
            raise CheckpointError(f"ensemble {directory} lacks its member {name}; run its meta-training again to finish it")
        members.append(load_model(directory / name))
    if len({member.samples_per_class for member in members}) > 1 or len({tuple(m.exclude) for m in members}) > 1:
        raise CheckpointError(f"the members of ensemble {directory} were meta-trained on different data")
    return Surrogate(tuple(members), directory)


def last_epochs(surrogate: Surrogate, count: int) -> Surrogate:
    """The same surrogate with each member replaced by its last ``count`` epochs' kernels
    (``M * count`` kernels searched as one GP, :mod:`tnas.models.ensemble`); ``count`` 0
    leaves each member's selected epoch (``model.pt``).

    The members must have been meta-trained with ``--keep-epochs``
    (:func:`~tnas.meta_train.trainer.epoch_dir`).

    Raises:
        CheckpointError: a member lacks one of those epochs.
    """
    if count == 0:
        return surrogate
    if count < 0:
        raise CheckpointError(f"the number of last epochs must be >= 0, got {count}")
    kernels = []
    for member in surrogate.members:
        epochs = int(member.settings.get("epochs", 0))
        for epoch in range(epochs - count + 1, epochs + 1):
            directory = epoch_dir(member.path, epoch)
            if epoch < 1 or not (directory / MODEL_FILE).is_file():
                raise CheckpointError(f"{member.path} keeps no kernel of epoch {epoch} (of {epochs}); meta-train it "
                                      "again with --keep-epochs to search with its last epochs")  # fmt: skip
            kernels.append(load_model(directory))
    return Surrogate(tuple(kernels), surrogate.path)
