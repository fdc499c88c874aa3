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
    files differ from that commit; ``None`` for an installed copy (no ``.git`` beside the
    package) or when git is missing or fails."""
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
        modified = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                  capture_output=True, text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+modified" if modified else commit or None
