"""What every tnas command line shares: user errors are one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
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


def run_command(prog: str, body: Callable[[], int], *, on_interrupt: str = "run the same command again to resume") -> int:
    """``body()``, with a user error as one line on stderr (exit 2) and Ctrl-C as a hint (exit 130)."""
    try:
        return body()
    except TnasError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; {on_interrupt}", file=sys.stderr)
        return 130
