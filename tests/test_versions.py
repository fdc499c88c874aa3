"""Provenance: package versions and the source revision a result came from."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tnas.versions import package_versions, source_revision

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@needs_git
def test_the_revision_is_the_checkouts_commit_marked_when_tracked_files_differ(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "tnas").mkdir()
    (tmp_path / "tnas" / "a.py").write_text("x = 1\n")
    (tmp_path / "RESULTS.md").write_text("a page the harness rewrites\n")
    _git(tmp_path, "add", "tnas/a.py", "RESULTS.md")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", "commit", "-q",
         "-m", "one")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--short=12", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    assert source_revision(tmp_path) == head
    (tmp_path / "notes.txt").write_text("untracked files do not count\n")
    (tmp_path / "RESULTS.md").write_text("nor do tracked files that are not code\n")
    source_revision.cache_clear()
    assert source_revision(tmp_path) == head
    (tmp_path / "tnas" / "a.py").write_text("x = 2\n")
    source_revision.cache_clear()
    assert source_revision(tmp_path) == f"{head}+modified"


def test_an_installed_copy_has_no_revision_and_the_versions_still_name_every_package(tmp_path):
    source_revision.cache_clear()
    assert source_revision(tmp_path) is None  # no .git: an installed copy
    versions = package_versions()
    assert {"python", "tnas", "torch", "gpytorch", "botorch"} <= set(versions)
