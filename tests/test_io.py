"""tnas.io: strict JSON reading (every kind of damage is one ValueError)."""

from __future__ import annotations

import pytest

from tnas.io import parse_json


def test_well_formed_json_reads_as_json_does():
    assert parse_json('{"a": [1, 2.5, null], "b": {"c": "d"}}') == {"a": [1, 2.5, None], "b": {"c": "d"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [("{", "Expecting"), ("[" * 100_000 + "]" * 100_000, "nested too deeply"), ('{"a": 1, "a": 2}', "'a'"),
     ('{"a": {"b": 1, "b": 1}}', "more than once"), ('{"a": "\\ud800"}', "lone surrogate"),
     ('{"a": ' + "9" * 5000 + "}", "digits")],
)
def test_damage_of_every_kind_is_a_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_json(text)


def test_an_atomic_write_onto_a_folder_names_the_folder_not_its_temporary_file(tmp_path):
    from tnas.io import atomic_write_text

    (tmp_path / "page.md").mkdir()
    with pytest.raises(IsADirectoryError) as error:
        atomic_write_text(tmp_path / "page.md", "text")
    assert error.value.filename == str(tmp_path / "page.md") and list(tmp_path.iterdir()) == [tmp_path / "page.md"]
