"""Field types of configuration dataclasses (tnas.typecheck), and their use by the
searchers' settings: strings, booleans, fractions or NaN in the wrong field are one-line errors."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from tnas.errors import ConfigError
from tnas.search.methods import gp_config
from tnas.search.methods.tnas_setup import split_options
from tnas.typecheck import check_field_types


@dataclass(frozen=True)
class _Settings:
    count: int
    rate: float
    name: str
    limit: float | None = None
    flag: bool = False

    def __post_init__(self) -> None:
        check_field_types(self)


def test_the_message_says_in_words_what_the_field_takes():
    with pytest.raises(ConfigError, match=r"^limit must be a finite number or None \(null\), got 'x'$"):
        _Settings(3, 0.5, "a", "x")
    with pytest.raises(ConfigError, match="^flag must be true or false, got 1$"):
        _Settings(3, 0.5, "a", None, 1)


def test_values_of_the_annotated_types_pass_and_ints_serve_as_floats():
    assert _Settings(3, 1, "a", None, True).rate == 1
    assert _Settings(3, 0.5, "a", 2.0).limit == 2.0


@pytest.mark.parametrize(("changes", "field"), [({"count": "3"}, "count"), ({"count": 2.5}, "count"),
                                                ({"count": True}, "count"), ({"rate": math.nan}, "rate"),
                                                ({"rate": math.inf}, "rate"), ({"name": 5}, "name"),
                                                ({"limit": "x"}, "limit"), ({"flag": 1}, "flag")])  # fmt: skip
def test_a_value_of_another_type_names_its_field(changes, field):
    values = {"count": 3, "rate": 0.5, "name": "a", **changes}
    with pytest.raises(ConfigError, match=f"^{field} must be"):
        _Settings(**values)


@pytest.mark.parametrize("options", [{"init_size": "5"}, {"source_weight": "abc"}, {"init_size": 2.5},
                                     {"init_size": True}, {"finetune_feature_lr": math.inf},
                                     {"recommend_plausible": math.nan}, {"members": "two"}, {"surrogate_seed": -1},
                                     {"allow_target_in_meta_train": "yes"}])  # fmt: skip
def test_tnas_options_of_the_wrong_type_are_refused(options):
    with pytest.raises(ConfigError):
        split_options(options)


def test_gp_options_of_the_wrong_type_are_refused():
    with pytest.raises(ConfigError, match="num_init must be an integer, got '10'"):
        gp_config({"num_init": "10"})
