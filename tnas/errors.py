"""Typed exceptions of tnas.

Every error a user can cause derives from :class:`TnasError`; command-line entry points
catch it, print its message on one line and exit with status 2. Messages say what was
wrong and what to do about it.
"""

from __future__ import annotations


class TnasError(Exception):
    """Base class of the errors a user can cause and fix."""


class CellFormatError(TnasError, ValueError):
    """A cell (arch string, operations tuple or index) is malformed."""


class ConfigError(TnasError, ValueError):
    """A configuration value is out of range or inconsistent."""


class DataNotFoundError(TnasError, FileNotFoundError):
    """A data file was not found in any of the places it is looked for."""


class DataFileError(TnasError, ValueError):
    """A data file exists but is damaged: truncated, empty, of another format, lacking content."""


class TableError(TnasError, ValueError):
    """A benchmark table is malformed, or cannot answer the query asked of it."""


class SeedNotAvailableError(TableError, LookupError):
    """A per-seed result was asked for a training seed the table does not hold."""


class RunDirectoryError(TnasError):
    """A run directory cannot be used (different configuration, corrupt files)."""


class SearcherError(TnasError, RuntimeError):
    """A searcher misbehaved (for example it keeps proposing evaluated cells)."""


def cause(error: BaseException) -> str:
    """The first line of ``error``'s message (its type's name when it has none): what a
    one-line error quotes of a lower-level exception (torch's can run over many lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
