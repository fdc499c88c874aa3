"""Shared fixtures. The real NAS-Bench-201 table is found through the usual data-dir lookup.

Without data the data-dependent tests are skipped on a developer machine and fail in CI
(where ``CI`` is set), so a CI run never passes by skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tnas.cli_common import prefer_huge_pages
from tnas.errors import DataNotFoundError
from tnas.oracles import TABLE_FILE, NB201Table
from tnas.paths import find_data_file

prefer_huge_pages()  # as the command lines do, before any test allocates a large tensor


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["TNAS_CACHE_DIR"] = str(tmp_path_factory.mktemp("tnas-cache"))


@pytest.fixture(scope="session")
def table_path(_isolated_cache: None) -> Path:
    try:
        return find_data_file(TABLE_FILE)
    except DataNotFoundError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"NAS-Bench-201 table not available: {error}")


@pytest.fixture(scope="session")
def table(table_path: Path) -> NB201Table:
    return NB201Table.from_csv(table_path)


@pytest.fixture(scope="session")
def data_dir(table_path: Path) -> Path:
    return table_path.parents[1]
