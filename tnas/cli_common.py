"""What every tnas command line shares: user errors are one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from typing import NoReturn

from tnas.errors import TnasError


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose user errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


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


def run_command(prog: str, body: Callable[[], int], *, on_interrupt: str = "run the same command again to resume") -> int:
    """``body()``, with a user error as one line on stderr (exit 2) and Ctrl-C as a hint (exit
    130); large tensors on huge pages (:func:`prefer_huge_pages`)."""
    prefer_huge_pages()
    try:
        return body()
    except TnasError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; {on_interrupt}", file=sys.stderr)
        return 130
