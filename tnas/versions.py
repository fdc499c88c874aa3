"""Versions of the packages a result depends on, read without importing them, and the
source revision of tnas when it runs from a git checkout."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

_PACKAGES = ("tnas", "numpy", "torch", "gpytorch", "botorch", "torch-geometric", "nas-bench-201")

_SOURCE_ROOT = Path(__file__).resolve().parents[1]
_CODE_PATHS = ("tnas", "benchmarks/*.py", "pyproject.toml")


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of tnas's dependencies (``"not installed"`` where absent), and
    ``tnas-revision``, the commit of the tnas source a result came from, when known
    (:func:`source_revision`)."""
    versions = {"python": platform.python_version()}
    for name in (*_PACKAGES, *extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    revision = source_revision()
    if revision is not None:
        versions["tnas-revision"] = revision
    return versions


@lru_cache(maxsize=1)
def source_revision(root: Path = _SOURCE_ROOT) -> str | None:
    """The short commit of the git checkout tnas runs from, ``+modified`` when its tracked
    code (``tnas/``, ``benchmarks/*.py``, ``pyproject.toml``; not the results pages the
    harness rewrites) differs from that commit; ``None`` for an installed copy (no ``.git``
    beside the package) or when git is missing or fails."""
    if not (root / ".git").exists():
        return None
    try:
        git = ["git", "--no-optional-locks", "-C", str(root)]  # reads only: no index lock beside running searches
        commit = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()  # fmt: skip
        modified = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "--", *_CODE_PATHS],
                                  capture_output=True, text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+modified" if modified else commit or None
