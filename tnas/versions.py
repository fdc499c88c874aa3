"""Versions of the packages a result depends on, read without importing them."""

from __future__ import annotations

import platform
from importlib import metadata

_PACKAGES = ("tnas", "numpy", "torch", "gpytorch", "botorch", "torch-geometric", "nas-bench-201")


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of tnas's dependencies (``"not installed"`` where absent)."""
    versions = {"python": platform.python_version()}
    for name in (*_PACKAGES, *extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
