"""What every tnas command line shares: user errors are one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import NoReturn


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose user errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def help_listing(entries: Mapping[str, str], width: int = 16) -> str:
    """``name  description`` lines for a ``--help`` epilog, names padded to ``width``."""
    return "\n".join(f"  {name:<{width}} {text}" for name, text in entries.items())
