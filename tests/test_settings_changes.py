"""A run searched with other settings than this code's is never resumed or reused silently."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tnas.errors import RunDirectoryError
from tnas.oracles import TableOracle
from tnas.search import RunConfig, RunDirectory, get_method, make_searcher, run
from tnas.search.cli import main
from tnas.search.methods import command_config, run_differences, same_run, stale_settings
from tnas.search.settings_changes import settings_changes


def _tnas(observe="mean", workers=1, **options):
    return RunConfig(method="tnas", dataset="cifar100", seed=0, budget=10, fidelity=200, observe=observe,
                     options=options, workers=workers)  # fmt: skip


def _record_of(method, **changes):
    """A method's settings as this version records them, changed or (value ``...``) left out."""
    settings = dict(get_method(method).settings)
    for name, value in changes.items():
        if value is ...:
            del settings[name]
        else:
            settings[name] = value
    return {"method_settings": json.loads(json.dumps(settings))}


def _record(**changes):
    return _record_of("tnas", **changes)


def test_a_changed_default_makes_a_run_stale_unless_its_options_fixed_the_value():
    assert settings_changes({"a": 1, "b": 2}, {"a": 1, "b": 3}, {}, legacy={}) == ["b: 2 -> 3"]
    assert settings_changes({"a": 1, "b": 2}, {"a": 1, "b": 3}, {"b": 5}, legacy={}) == []
    assert settings_changes({"a": (1, 2)}, {"a": (1, 2)}, {}, legacy={}) == []  # as JSON stores it
    assert settings_changes({"a": 1}, {"a": 2}, {}, legacy={}, inert=frozenset({"a"})) == []


def test_a_setting_added_later_is_compared_through_its_legacy_value():
    assert settings_changes({"a": 1}, {"a": 1, "new": 0.0}, {}, legacy={"new": 0.0}) == []
    assert settings_changes({"a": 1}, {"a": 1, "new": 0.25}, {}, legacy={"new": 0.0}) == ["new: 0.0 -> 0.25"]
    assert settings_changes({"a": 1}, {"a": 1, "new": 0.25}, {"new": 0.0}, legacy={"new": 0.0}) == []
    assert settings_changes({"a": 1}, {"a": 1, "new": 0.25}, {}, legacy={}) == ["new: not recorded, now 0.25"]


def test_tnas_runs_recorded_before_a_setting_existed_keep_their_identity_where_it_changes_nothing():
    before_source_term = _record(source_weight=..., feature_patience=..., pending=...)
    assert stale_settings(_tnas(), before_source_term) == []
    assert stale_settings(_tnas(observe="seed"), before_source_term) == []
    assert stale_settings(_tnas(source_weight=0.25), _record()) == []  # given, as recorded in its options
    # the plausibility guard of the recommendation changes only runs with noisy observations
    before_guard = _record(recommend_plausible=...)
    assert stale_settings(_tnas(), before_guard) == []
    assert stale_settings(_tnas(observe="seed"), before_guard) == ["recommend_plausible: null -> 3.0"]
    # how pending cells are treated changes only parallel runs
    assert stale_settings(_tnas(), _record(pending="x_pending")) == []
    assert stale_settings(_tnas(workers=4), _record(pending="x_pending")) == ['pending: "x_pending" -> "believer"']
    assert stale_settings(_tnas(), _record(finetune_steps=50)) == ["finetune_steps: 50 -> 100"]
    assert stale_settings(_tnas(), {"config": {}}) == []  # no settings recorded: nothing to judge by


def test_a_constrained_tnas_run_has_its_own_defaults_and_older_constrained_runs_are_stale():
    limits = {"max_latency_ms": 5.0, "latency_device": "fpga"}
    constrained = dataclasses.replace(_tnas(), constraints=limits)
    tnas = get_method("tnas")
    assert tnas.settings_for(_tnas()) == tnas.settings  # unconstrained: the defaults
    assert {name: tnas.settings_for(constrained)[name] for name in ("source_weight", "feature_patience")} == {
        "source_weight": 0.25, "feature_patience": 13}  # fmt: skip
    # a constrained run recorded under the unconstrained defaults is searched otherwise now...
    assert stale_settings(constrained, _record()) == ["feature_patience: null -> 13", "source_weight: 0.0 -> 0.25"]
    # ...unless its options fixed them, and one recorded under the constrained defaults is not
    fixed = dataclasses.replace(constrained, options={"source_weight": 0.0, "feature_patience": None})
    assert stale_settings(fixed, _record()) == []
    assert stale_settings(constrained, {"method_settings": tnas.settings_for(constrained)}) == []
    # each ablation takes the constrained defaults it can act on
    prior = dataclasses.replace(constrained, method="tnas-prior")
    assert get_method("tnas-prior").settings_for(prior) == {"source_weight": 0.25}
    untrained = get_method("tnas-untrained").settings_for(dataclasses.replace(constrained, method="tnas-untrained"))
    assert untrained["feature_patience"] == 13 and untrained["source_weight"] == 0.0
    assert get_method("re").settings_for(dataclasses.replace(constrained, method="re")) == get_method("re").settings


def test_options_that_restate_the_runs_defaults_leave_its_identity_and_its_record_decides_staleness():
    limits = {"max_latency_ms": 5.0, "latency_device": "fpga"}
    constrained = dataclasses.replace(_tnas(), constraints=limits)
    spelt_out = dataclasses.replace(constrained, options={"source_weight": 0.25, "feature_patience": 13})
    assert same_run(spelt_out, constrained) and same_run(constrained, spelt_out)
    assert not same_run(dataclasses.replace(_tnas(), options={"source_weight": 0.25}), _tnas())  # not the default there
    other = dataclasses.replace(constrained, options={"source_weight": 0.5}, seed=3)
    assert run_differences(spelt_out, other) == ["seed: 0 -> 3", "options.source_weight: 0.25 -> 0.5"]
    # spelt out under the old defaults: searched with 0.25 and 13, as this code searches `constrained`
    old_record = {"config": spelt_out.to_dict(), **_record()}
    assert stale_settings(constrained, old_record) == []
    # left to the old defaults: searched with 0 and no patience, so it is stale
    assert stale_settings(constrained, {"config": constrained.to_dict(), **_record()}) == [
        "feature_patience: null -> 13", "source_weight: 0.0 -> 0.25"]  # fmt: skip


def test_a_recorded_option_that_restated_the_default_of_its_day_follows_the_default():
    """The command line records some defaults as options (``finetune_steps``...). When such a
    default changes, the run made before is the same run as the command without the flag, and
    stale; with the flag given at the old value it is the same run, searched as recorded."""
    then = _record(finetune_steps=77)  # as if the default had been 77 when it ran
    stored = _tnas(finetune_steps=77)
    record = {"config": stored.to_dict(), **then}
    assert same_run(stored, _tnas(), then["method_settings"])
    assert stale_settings(_tnas(), record) == ["finetune_steps: 77 -> 100"]
    assert same_run(stored, _tnas(finetune_steps=77), then["method_settings"])
    assert stale_settings(_tnas(finetune_steps=77), record) == []
    assert run_differences(stored, _tnas(finetune_steps=50), then["method_settings"]) == [
        "options.finetune_steps: 77 -> 50"]  # fmt: skip
    # without the record's defaults, 77 is a choice: another run than the default's
    assert not same_run(stored, _tnas())


def test_a_command_that_spells_out_what_the_stored_run_searched_with_continues_it():
    limits = {"max_latency_ms": 5.0, "latency_device": "fpga"}
    constrained = dataclasses.replace(_tnas(), constraints=limits)
    before = _record()["method_settings"]  # recorded under the unconstrained defaults: no patience, no source term
    told = dataclasses.replace(constrained, options={"feature_patience": None, "source_weight": 0.0})
    assert same_run(constrained, told, before)
    assert stale_settings(told, {"config": constrained.to_dict(), "method_settings": before}) == []


def test_options_a_method_ignores_do_not_make_another_run():
    prior = dataclasses.replace(_tnas(finetune_steps=77, acquisition="ucb"), method="tnas-prior")  # BO settings
    assert same_run(prior, dataclasses.replace(prior, options={"finetune_steps": 100}))
    untrained = dataclasses.replace(_tnas(candidate_pool=500), method="tnas-untrained")  # forced to 0
    assert same_run(untrained, dataclasses.replace(untrained, options={"candidate_pool": 300}))
    assert not same_run(untrained, dataclasses.replace(untrained, options={"finetune_steps": 3}))


def test_a_run_judged_by_its_own_record_follows_the_default_of_its_day_it_spelt_out():
    stored = _tnas(finetune_steps=77)
    then = _record(finetune_steps=77)["method_settings"]
    record = {"config": stored.to_dict(), "method_settings": then}
    assert stale_settings(stored, record) == []  # judged by its own options it looks current...
    assert stale_settings(command_config(stored, then), record) == ["finetune_steps: 77 -> 100"]  # ...it is not
    chosen = _tnas(finetune_steps=50)  # a choice, not the default of its day
    assert command_config(chosen, then) == chosen


def test_every_tnas_setting_has_a_legacy_value_or_was_recorded_from_the_start():
    """A TNASConfig field added from now on needs an entry in TNAS_LEGACY_SETTINGS: the
    fields of the first recorded runs (benchmarks/RESULTS.md's settings) plus the legacy ones
    must be every field."""
    first_recorded = {"acquisition", "batch_size", "candidate_pool", "finetune_feature_lr", "finetune_lr",
                      "finetune_steps", "init", "init_size", "prior_mean", "recommend", "refit_growth",
                      "ucb_beta", "warm_steps"}  # fmt: skip
    method = get_method("tnas")
    assert set(method.settings) == first_recorded | set(method.legacy_settings)


@pytest.fixture
def finished_re_run(table, tmp_path):
    config = RunConfig(method="re", dataset="cifar100", seed=1, budget=5, fidelity=200, observe="mean")
    run(make_searcher(config), TableOracle(table, "cifar100"), config, tmp_path / "run")
    return config, tmp_path / "run"


def test_resuming_a_run_searched_with_other_settings_is_refused(table, finished_re_run):
    config, path = finished_re_run
    record = RunDirectory(path).read_config()
    assert record["method_settings"] == {"population_size": 10, "sample_size": 3}  # recorded without run_info
    record["method_settings"]["population_size"] = 20  # as if the default had been 20 when it ran
    RunDirectory(path).config_path.write_text(json.dumps(record))
    longer = dataclasses.replace(config, budget=8)
    with pytest.raises(RunDirectoryError, match=r"other re settings .*population_size: 20 -> 10"):
        run(make_searcher(longer), TableOracle(table, "cifar100"), longer, path)
    assert len(RunDirectory(path).read_trajectory()) == 5  # untouched


def test_the_command_line_says_so_in_one_line_with_exit_code_2(data_dir, tmp_path, capsys):
    args = ["--dataset", "cifar100", "--method", "re", "--budget", "5", "--seed", "1", "--data-dir", str(data_dir),
            "--out", str(tmp_path / "run"), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    record = RunDirectory(tmp_path / "run").read_config()
    record["method_settings"]["sample_size"] = 5
    RunDirectory(tmp_path / "run").config_path.write_text(json.dumps(record))
    capsys.readouterr()
    assert main([*args[:5], "8", *args[6:]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sample_size: 5 -> 3" in err and "choose another --out" in err


def _run(method, observe="mean", workers=1, **options):
    return RunConfig(method=method, dataset="cifar100", seed=0, budget=10, fidelity=200, observe=observe,
                     options=options, workers=workers)  # fmt: skip


def test_what_cannot_change_a_run_is_not_compared_for_every_method_that_has_such_settings():
    # real training observed as the seed mean: the runner tells no seed slot, the best reading is returned
    trained = RunConfig(method="tnas", dataset="cifar10", seed=0, budget=10, fidelity=12, observe="mean",
                        oracle="train")  # fmt: skip
    assert stale_settings(trained, _record(recommend_plausible=...)) == []
    assert stale_settings(_tnas(), _record(ucb_beta=5.0)) == []  # UCB's beta with LogEI
    assert stale_settings(_tnas(acquisition="ucb"), _record(ucb_beta=5.0)) == ["ucb_beta: 5.0 -> 2.0"]
    # GP-BO: pending cells only with workers, its posterior-mean return only with noisy readings
    assert stale_settings(_run("gp"), _record_of("gp", pending=..., recommend=...)) == []
    assert stale_settings(_run("gp", workers=4), _record_of("gp", pending="x_pending")) == [
        'pending: "x_pending" -> "believer"']
    assert stale_settings(_run("gp", observe="seed"), _record_of("gp", recommend=...)) == [
        'recommend: "observed" -> "auto"']
    assert stale_settings(_run("bananas", observe="seed"), _record_of("bananas", recommend="auto")) == []


def test_the_prior_walk_and_the_untrained_ablation_are_judged_by_what_they_search_with():
    assert stale_settings(_run("tnas-prior"), {"method_settings": {}}) == []  # recorded before its source term
    assert stale_settings(_run("tnas-prior"), {"method_settings": {"source_weight": 0.5}}) == [
        "source_weight: 0.5 -> 0.0"]
    # tnas-untrained imposes its candidate pool whatever the options say (the harness records 500)
    assert stale_settings(_run("tnas-untrained", candidate_pool=500), _record_of("tnas-untrained")) == []
    assert stale_settings(_run("tnas-untrained", candidate_pool=500), _record_of("tnas-untrained", candidate_pool=7)) == [
        "candidate_pool: 7 -> 0"]


def test_one_shot_runs_are_judged_by_their_protocols_settings():
    from tnas.search.methods.oneshot import one_shot_config

    config = RunConfig(method="darts-v1", dataset="cifar10", seed=0, budget=1, fidelity=200, observe="mean",
                       options={"protocol": "nb201"})  # fmt: skip
    recorded = one_shot_config("darts-v1", {"protocol": "nb201"}).to_dict()
    assert stale_settings(config, {"one_shot": {"settings": recorded}}) == []
    assert stale_settings(config, {"one_shot": {"settings": {**recorded, "epochs": 40}}}) == ["epochs: 40 -> 50"]
    assert stale_settings(config, {"method_settings": {}}) == []  # no one-shot record: nothing to judge by
