"""Options a benchmark command line accepted but did not act on: refused in one line, or passed on."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_source_ranks_refuses_the_options_it_would_ignore(data_dir, tmp_path, capsys):
    from benchmarks.constrained import main

    page = tmp_path / "x.md"
    code = main(["--source-ranks", "--settings", "eyeriss-5ms", "--set", "rs:nonsense=1", "--page", str(page),
                 "--seeds", "3", "--data-dir", str(data_dir)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--seeds, --set, --page would be ignored; leave them out or drop --source-ranks" in err
    assert not page.exists()
    assert main(["--source-ranks", "--settings", "eyeriss-5ms", "--data-dir", str(data_dir)]) == 0
    assert "eyeriss-5ms" in capsys.readouterr().out


def test_the_foundation_overhead_searchers_read_the_data_dir_given(table_path, data_dir, tmp_path, monkeypatch):
    """With nothing at the default lookup, the zero-shot method finds its source tables in --data-dir."""
    import tnas.search
    from benchmarks.foundation import measure_overhead

    monkeypatch.setenv("TNAS_DATA_DIR", str(tmp_path / "nothing-here"))
    monkeypatch.setattr(tnas.search, "METHODS", {name: tnas.search.METHODS[name] for name in ("rs", "zero-shot")})
    figures = measure_overhead(data_dir, seeds=1, budget=3, dataset="cifar100")
    assert set(figures) == {"rs", "zero-shot"} and figures["zero-shot"]["total_per_run_ms"] >= 0


@pytest.mark.parametrize(("args", "message"), [(["--data-dir", ""], "--data-dir: an empty path"),
                                               (["--repeats", "0"], "--repeats: 0 is below 1"),
                                               (["--seeds", "0"], "--seeds: 0 is below 1")])  # fmt: skip
def test_the_foundation_command_refuses_an_empty_data_dir_and_zero_counts(args, message, capsys):
    from benchmarks.foundation import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and message in err


def test_the_constrained_page_reports_only_runs_of_its_settings(data_dir, tmp_path, capsys):
    import json

    from benchmarks.constrained import main

    out, page = tmp_path / "runs", tmp_path / "page.md"
    common = ["--methods", "rs", "--seeds", "1", "--budget", "3", "--settings", "fpga-4ms", "--out", str(out),
              "--page", str(page), "--data-dir", str(data_dir), "--no-progress"]  # fmt: skip
    assert main(common) == 0
    assert "| rs | " in page.read_text() and "not run" not in page.read_text()
    config_path = out / "fpga-4ms" / "rs" / "seed0" / "config.json"
    record = json.loads(config_path.read_text())
    record["config"]["constraints"]["max_latency_ms"] = 6.0  # a run of another limit in this folder
    config_path.write_text(json.dumps(record))
    assert main([*common, "--report-only"]) == 0
    text = page.read_text()
    assert "| rs | runs of other settings, left out |" in text and "other settings than this command's" in text
    capsys.readouterr()
    code = main([*common, "--methods", "gp", "--set", "gp:pending=x_pending", "--report-only"])
    assert code == 2 and "--set gp:pending cannot change a gp run of this grid" in capsys.readouterr().err


def test_the_constrained_page_names_runs_searched_with_other_settings_than_this_codes(data_dir, tmp_path):
    import json

    from benchmarks.constrained import main

    out, page = tmp_path / "runs", tmp_path / "page.md"
    common = ["--methods", "re", "--seeds", "1", "--budget", "3", "--settings", "fpga-4ms", "--out", str(out),
              "--page", str(page), "--data-dir", str(data_dir), "--no-progress"]  # fmt: skip
    assert main(common) == 0 and "stale" not in page.read_text()
    config_path = out / "fpga-4ms" / "re" / "seed0" / "config.json"
    record = json.loads(config_path.read_text())
    record["method_settings"]["population_size"] = 20  # as if made under another default
    config_path.write_text(json.dumps(record))
    assert main([*common, "--report-only"]) == 0
    assert "- stale: fpga-4ms re seeds 0: population_size: 20 -> 10" in page.read_text()


def test_the_history_page_finds_a_run_whatever_the_spelling_of_its_out_folder(tmp_path, monkeypatch):
    from benchmarks.history import holds_search, search_config
    from tnas.rundir import RunDirectory

    monkeypatch.chdir(tmp_path)
    made = search_config("cifar100", 1, Path("work") / "surrogates" / "history" / "seed1", 100)
    RunDirectory(tmp_path / "run").write_config({"format": 1, "config": made.to_dict()})
    absolute = search_config("cifar100", 1, tmp_path / "work" / "surrogates" / "history" / "seed1", 100)
    other_draw = search_config("cifar100", 1, tmp_path / "work" / "surrogates" / "history" / "seed0", 100)
    assert holds_search(tmp_path / "run", absolute) and not holds_search(tmp_path / "run", other_draw)


def test_the_history_page_leaves_out_a_run_searched_under_a_default_since_changed():
    from benchmarks.history import is_search, search_config
    from tnas.search.methods import get_method

    config = search_config("cifar100", 1, Path("/surrogates/history/seed1"), 100)
    current = {"config": config.to_dict(), "method_settings": get_method("tnas").settings}
    assert is_search(current, config)
    # its record spells out finetune_steps 77, the default of its day: the same run, but stale
    then = {"config": {**config.to_dict(), "options": {**config.options, "finetune_steps": 77}},
            "method_settings": {**get_method("tnas").settings, "finetune_steps": 77}}  # fmt: skip
    assert not is_search(then, config)
