"""Field types of configuration dataclasses, checked when they are built.

Settings also arrive from JSON and from ``--set METHOD:OPTION=VALUE``, where ``"5"``,
``true``, ``2.5`` or ``NaN`` can land in an integer or float field; a dataclass whose
``__post_init__`` calls :func:`check_field_types` refuses them in one line instead of
failing later inside a search.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields
from typing import Any

from tnas.errors import ConfigError


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an int and not a bool (JSON's ``true`` is not a count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_plain_name(value: Any) -> bool:
    """Whether ``value`` can name a folder and fit on a line: a non-blank printable string
    without path separators, other than ``.`` and ``..``."""
    return (isinstance(value, str) and value.strip() != "" and value.isprintable() and "/" not in value
            and "\\" not in value and value not in (".", ".."))  # fmt: skip


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (not a bool), and finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _accepts(kind: Any, value: Any) -> bool:
    """Whether ``value`` is of ``kind`` (``int``, ``float``, ``str``, ``bool``, ``None`` or a
    union of them; other kinds are not checked). A float is finite; an int is not a bool."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return any(_accepts(member, value) for member in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return is_integer(value)
    if kind is float:
        return is_finite_number(value)
    if kind is str:
        return isinstance(value, str)
    return True


_KIND_WORDS: dict[Any, str] = {int: "an integer", float: "a finite number", str: "a string",
                               bool: "true or false", type(None): "None (null)"}


def _describe(kind: Any) -> str:
    """``int | None`` as ``an integer or None (null)``: what a field's annotation asks for."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return " or ".join(_describe(member) for member in typing.get_args(kind))
    return _KIND_WORDS.get(kind, getattr(kind, "__name__", str(kind)))


def check_field_types(instance: Any) -> None:
    """Raise :class:`ConfigError` naming the first field of dataclass ``instance`` whose value
    is not of its annotated type (floats must be finite numbers), e.g. ``budget must be an
    integer, got 10.0``."""
    hints = typing.get_type_hints(type(instance))
    for item in fields(instance):
        value = getattr(instance, item.name)
        if not _accepts(hints[item.name], value):
            raise ConfigError(f"{item.name} must be {_describe(hints[item.name])}, got {value!r}")
