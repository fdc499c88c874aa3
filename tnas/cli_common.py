"""What every tnas command line shares: user errors are one line on stderr, exit code 2;
the library's log messages as plain lines on stderr."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from tqdm.auto import tqdm

from tnas.errors import ConfigError, TnasError

LIBRARY_LOGGER = "tnas"
"""The parent of every tnas module's logger (``logging.getLogger(__name__)``)."""


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose user errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def path_argument(text: str) -> Path:
    """An argparse ``type`` for a path: refuses the empty string (``Path("")`` is the current
    folder, where a run would be written without being asked for)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a folder or file name")
    return Path(text)


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} is below {least}")
    return value


def positive_int(text: str) -> int:
    """An argparse ``type`` for a count that must be at least 1."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse ``type`` for a count that may be 0."""
    return _whole_number(text, 0)


def cell_indexes(text: str) -> tuple[int, ...]:
    """An argparse ``type`` for comma-separated official NAS-Bench-201 cell indexes."""
    from tnas.space import NUM_CELLS

    indexes = tuple(_whole_number(part.strip(), 0) for part in text.split(","))
    beyond = [index for index in indexes if index >= NUM_CELLS]
    if beyond:
        raise argparse.ArgumentTypeError(f"cell index {beyond[0]} is not below {NUM_CELLS}")
    return indexes


def options_given(parser: argparse.ArgumentParser, args: argparse.Namespace,
                  dests: Iterable[str] | None = None) -> list[str]:  # fmt: skip
    """The options among ``dests`` (argparse destinations; ``None``: every option of
    ``parser``) that ``args`` sets to something other than ``parser``'s default: what a
    command line gave, to refuse the ones a run would ignore."""
    if dests is None:
        dests = [action.dest for action in parser._actions if action.option_strings and action.dest != "help"]
    return [dest for dest in dests if getattr(args, dest) != parser.get_default(dest)]


def option_names(parser: argparse.ArgumentParser, dests: Iterable[str]) -> list[str]:
    """The first option string of each argparse destination (``changes`` -> ``--set``)."""
    first = {action.dest: action.option_strings[0] for action in parser._actions if action.option_strings}
    return [first.get(dest, "--" + dest.replace("_", "-")) for dest in dests]


def help_listing(entries: Mapping[str, str], width: int = 16) -> str:
    """``name  description`` lines for a ``--help`` epilog, names padded to ``width``."""
    return "\n".join(f"  {name:<{width}} {text}" for name, text in entries.items())


HUGE_PAGES_VARIABLE = "THP_MEM_ALLOC_ENABLE"
"""Torch's switch for backing CPU tensors of 2 MB and more with transparent huge pages
(Linux; read at the process's first such tensor, inherited by the processes it starts)."""


def prefer_huge_pages() -> None:
    """Let torch back large CPU tensors with 2 MB pages unless the user set the variable.

    Featurising images allocates and frees tensors of tens of megabytes per batch; with 4 kB
    pages the kernel spends as long faulting them in as torch computes (a 2-core AMD EPYC:
    4.0 s of system time beside 3.1 s of user time for 128 images; with huge pages 2.7 s
    and 24x fewer page faults). The values computed do not change. ``THP_MEM_ALLOC_ENABLE=0``
    turns it off.
    """
    os.environ.setdefault(HUGE_PAGES_VARIABLE, "1")


class _ProgressAwareHandler(logging.Handler):
    """Writes each record as one line on stderr through ``tqdm.write``, so that a message
    appears above a running progress bar instead of breaking it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging's contract: a failing handler reports, never raises
            self.handleError(record)


@contextmanager
def library_messages(level: int = logging.INFO) -> Iterator[None]:
    """Show the tnas loggers' messages of ``level`` and above as plain lines on stderr while
    the block runs (a command line's view; the library itself only logs).

    A program that configured logging itself (a handler on the root logger) keeps its own
    configuration: then nothing is added.
    """
    logger = logging.getLogger(LIBRARY_LOGGER)
    if logging.getLogger().handlers or logger.handlers:
        yield
        return
    handler = _ProgressAwareHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


def path_problem(error: OSError) -> str:
    """One line for a file-system error on a path the user gave (what, where, what to do)."""
    where = f" {error.filename}" if error.filename else ""
    reason = error.strerror or type(error).__name__
    return f"cannot use{where}: {reason}; give a path to a folder or file that can be written there"


def run_command(prog: str, body: Callable[[], int], *, on_interrupt: str = "run the same command again to resume") -> int:
    """``body()``, with a user error as one line on stderr (exit 2) and Ctrl-C as a hint (exit
    130); the library's log messages on stderr (:func:`library_messages`); large tensors on
    huge pages (:func:`prefer_huge_pages`)."""
    prefer_huge_pages()
    try:
        with library_messages():
            return body()
    except TnasError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a path the user gave: a folder where a file goes, a file in the way, no permission
        print(f"{prog}: error: {path_problem(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; {on_interrupt}", file=sys.stderr)
        return 130


def resolve_device(requested: str | None) -> str:
    """``requested``, checked; by default CUDA when available, else the CPU."""
    import torch

    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {requested}: CUDA is not available here; use --device cpu")
    try:
        torch.device(requested)
    except RuntimeError:
        raise ConfigError(f"--device {requested!r} is not a torch device (cpu, cuda, cuda:1, mps)") from None
    return requested


def device_argument(text: str) -> str:
    """An argparse ``type`` for ``--device``: :func:`resolve_device`'s check as a usage error."""
    try:
        return resolve_device(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix(f"--device {text}: ")) from None
