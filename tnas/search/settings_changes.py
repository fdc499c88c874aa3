"""Whether a recorded run was made with the settings this code would search it with.

A run's identity (:class:`~tnas.search.config.RunConfig`) holds the options given to it,
not the defaults it inherited, so that a run keeps its identity when a new option appears;
an option that restates a default (now, or the one recorded with the run) is no option there
(:func:`tnas.search.methods.run_differences`).
Its ``config.json`` also records the method's default settings of the code that made it
(``method_settings``). A run is *stale* when its effective settings (those defaults,
overridden by its options) differ from what this code would use for the same options: a
changed default, or a setting that did not exist then and whose value now changes the
search. Resuming a stale run would mix two searches in one trajectory, and skipping it as
finished would report figures this code no longer produces.

A setting the record lacks is compared through its *legacy* value, the value that runs made
before the setting existed effectively used (e.g. TNAS's ``source_weight`` 0, no source
term); one without a legacy value counts as changed. Settings that cannot change a given
run (*inert*: e.g. how to treat pending cells when one worker never leaves any) are left
out of the comparison.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tnas.search.config import RunConfig

__all__ = ["best_reading_returned", "effective_settings", "parallel_only", "plain", "settings_changes"]


def effective_settings(defaults: Mapping[str, Any], options: Mapping[str, Any],
                       forced: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The method's ``defaults`` overridden by the run's ``options`` that name one of them,
    and those by the settings the method ``forced`` whatever the options say."""
    forced = forced or {}
    return {name: forced.get(name, options.get(name, value)) for name, value in defaults.items()}


def settings_changes(
    recorded: Mapping[str, Any] | None,
    current: Mapping[str, Any],
    options: Mapping[str, Any],
    *,
    legacy: Mapping[str, Any],
    inert: frozenset[str] = frozenset(),
    forced: Mapping[str, Any] | None = None,
    recorded_options: Mapping[str, Any] | None = None,
) -> list[str]:
    """How a run recorded with default settings ``recorded`` would be searched differently now.

    Args:
        recorded: the ``method_settings`` of the run's ``config.json`` (``None``: none
            recorded, as in runs made before they were).
        current: this code's default settings of the method.
        options: the run's options (``RunConfig.options``), which override both.
        legacy: setting -> the value runs made before it existed used.
        inert: settings that change nothing for this run.
        forced: settings the method imposes whatever the options say (``tnas-untrained``'s
            candidate pool); ``current`` and ``recorded`` hold them as imposed now and then.
        recorded_options: the options the run was searched with, when its record spells
            out a default that ``options`` leaves to it (the same run, see
            :func:`~tnas.search.methods.same_run`); default ``options``.

    Returns:
        One ``name: then -> now`` line per setting whose effective value differs (values as
        JSON), or ``name: not recorded, now V`` for a setting without a legacy value; empty
        when the run is searched exactly as recorded.
    """
    recorded, forced = recorded or {}, forced or {}
    recorded_options = options if recorded_options is None else recorded_options
    changes: list[str] = []
    for name, default in current.items():
        if name in inert:
            continue
        # a forced setting ignores the options, then and now
        given, given_then = ({}, {}) if name in forced else (options, recorded_options)
        now = plain(forced.get(name, given.get(name, default)))
        if name in recorded:
            then = plain(given_then.get(name, recorded[name]))
        elif name in legacy:
            then = plain(given_then.get(name, legacy[name]))
        else:
            changes.append(f"{name}: not recorded, now {json.dumps(now)}")
            continue
        if then != now:
            changes.append(f"{name}: {json.dumps(then)} -> {json.dumps(now)}")
    return changes


def parallel_only(config: RunConfig, *names: str) -> frozenset[str]:
    """``names``, settings about pending evaluations, when ``config`` leaves none (one worker)."""
    return frozenset(names) if config.workers == 1 else frozenset()


def best_reading_returned(config: RunConfig, settings: Mapping[str, Any]) -> frozenset[str]:
    """``recommend`` when ``auto`` and ``observed`` both return the best reading: exact
    observations (the runner tells no seed slot under ``observe="mean"``)."""
    exact = config.observe == "mean" and settings.get("recommend") in ("auto", "observed")
    return frozenset({"recommend"}) if exact else frozenset()


def plain(value: Any) -> Any:
    """``value`` as ``config.json`` stores it (tuples as lists), for comparison."""
    return json.loads(json.dumps(value))
