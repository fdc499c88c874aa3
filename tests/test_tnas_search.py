from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from gpytorch.mlls import ExactMarginalLogLikelihood

from tests.synthetic_meta import FEATURES, small_config, synthetic_meta
from tests.test_runner import CountingOracle
from tnas.errors import ConfigError
from tnas.meta_train import meta_train
from tnas.models import DeepKernel
from tnas.oracles import TableOracle
from tnas.search import RunConfig, RunDirectory, run
from tnas.search.cli import main
from tnas.search.methods.tnas import TNASConfig, TNASSearcher
from tnas.search.surrogates import ContaminatedSurrogateError, resolve_surrogate
from tnas.space import Cell


def _searcher(seed=0, source_order=None, **settings) -> TNASSearcher:
    torch.manual_seed(0)
    kernel = DeepKernel(small_config().kernel)
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(1, 4, 3, FEATURES, generator=generator)
    return TNASSearcher(kernel, features, torch.ones(1, 4, 3, dtype=torch.bool), np.random.default_rng(seed),
                        TNASConfig(**settings), source_order=source_order)  # fmt: skip


def _source_order(table) -> torch.Tensor:
    """The zero-shot order of a CIFAR-100 search: ``15625`` source averages."""
    from tnas.search.methods.zero_shot import source_average, zero_shot_sources

    return torch.as_tensor(source_average(table, zero_shot_sources("cifar100")))


def _config(budget=25, **changes):
    base = RunConfig(method="tnas", dataset="cifar100", seed=0, budget=budget, fidelity=200, observe="mean")
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def oracle(table):
    return TableOracle(table, "cifar100")


@pytest.mark.parametrize("acquisition", ["logei", "ucb", "ts"])
def test_never_repeats_a_cell_and_records_its_predictions(oracle, acquisition):
    result = run(_searcher(acquisition=acquisition, finetune_steps=3), oracle, _config(budget=25))
    indexes = [row.index for row in result.rows]
    assert len(set(indexes)) == 25 and result.summary["repeats_answered_from_cache"] == 0
    model_rows = result.rows[5:]
    assert all(row.pred_mean is not None and row.pred_std is not None and row.pred_std >= 0 for row in model_rows)
    assert all(row.acquisition is not None for row in result.rows)
    assert all(row.pred_mean is None for row in result.rows[:5])  # the initial design


def test_the_initial_design_is_the_top_of_the_prior_mean(oracle):
    searcher = _searcher()
    top = torch.argsort(searcher.prior_mean, descending=True)[:5]
    expected = {int(i) for i in top}  # feature rows are official indexes
    result = run(searcher, oracle, _config(budget=5))
    assert {row.index for row in result.rows} == expected
    random_rows = run(_searcher(init="random"), oracle, _config(budget=5)).rows
    assert {row.index for row in random_rows} != expected


def test_the_sources_initial_design_is_the_top_of_the_source_average_then_bo(oracle, table):
    order = _source_order(table)
    rows = run(_searcher(init="sources", finetune_steps=2, source_order=order), oracle, _config(budget=7)).rows
    assert [row.index for row in rows[:5]] == torch.argsort(order, descending=True)[:5].tolist()
    assert all(row.pred_mean is not None for row in rows[5:])  # then the GP proposes
    with pytest.raises(ConfigError, match="one source score per cell"):
        _searcher(init="sources")


def test_the_source_term_blends_the_prior_and_its_weights_are_fitted(oracle, table):
    from tnas.search.methods.tnas import source_term_table

    order = _source_order(table)

    def searcher(weight, steps=0):
        return _searcher(source_weight=weight, finetune_steps=steps, source_order=order)

    meta = searcher(0.0).prior_mean
    table_term = source_term_table(meta, order)
    assert torch.isclose(table_term.std(), meta.double().std()) and abs(float(table_term.mean())) < 1e-9
    blended = searcher(0.75)
    assert torch.allclose(blended.prior_mean, 0.25 * meta + 0.75 * table_term)
    # w = 1 walks the sources' order: the initial design is the sources' best cells
    rows = run(searcher(1.0), oracle, _config(budget=5)).rows
    assert [row.index for row in rows] == torch.argsort(order, descending=True)[:5].tolist()
    # the GP's mean starts as the blended prior (offset 0), and fine-tuning fits both weights
    fitted, unfitted = searcher(0.75, steps=20), searcher(0.75)
    for index in torch.argsort(blended.prior_mean, descending=True)[:6].tolist():
        for observer in (fitted, unfitted):
            observer.tell(Cell.from_index(index), oracle.evaluate(Cell.from_index(index), fidelity=200, seed=None))
    start, _, _ = unfitted.surrogate()
    assert torch.allclose(start.prior_mean(), blended.prior_mean)
    assert start.source_mean.weight.detach().item() == pytest.approx(0.75)
    model, _, _ = fitted.surrogate()
    assert model.source_mean.weight.detach().item() != pytest.approx(0.75, abs=1e-4)
    assert model.mean_module.scale.detach().item() != pytest.approx(0.25, abs=1e-4)
    with pytest.raises(ConfigError, match="one source score per cell"):
        _searcher(source_weight=0.5)
    with pytest.raises(ConfigError, match="source_weight must be in"):
        TNASConfig(source_weight=1.5)


@pytest.mark.filterwarnings("error::linear_operator.utils.warnings.NumericalWarning")  # jitter is expected, not shown
def test_q_batch_proposes_q_distinct_cells(oracle):
    searcher = _searcher(batch_size=3, finetune_steps=2)
    result = run(searcher, oracle, _config(budget=11))
    indexes = [row.index for row in result.rows]
    assert len(set(indexes)) == 11
    fresh = _searcher(batch_size=3, finetune_steps=2)
    for index in indexes[:5]:
        fresh.tell(Cell.from_index(index), oracle.evaluate(Cell.from_index(index), fidelity=200, seed=None))
    batch = [fresh.ask() for _ in range(3)]  # one acquisition of q = 3, handed out one by one
    assert len({cell.index for cell in batch}) == 3 and not {cell.index for cell in batch} & set(indexes[:5])


def test_q_batch_is_seeded_by_the_run_and_leaves_the_global_generator_alone(oracle):
    searchers = [_searcher(seed=0, batch_size=3, finetune_steps=2) for _ in range(2)]
    for searcher in searchers:
        for index in (1, 2, 3, 4, 5):
            searcher.tell(Cell.from_index(index), oracle.evaluate(Cell.from_index(index), fidelity=200, seed=None))
    batches = []
    for searcher in searchers:
        torch.manual_seed(123 + len(batches))  # a different global state each time
        expected_next = torch.rand(1)
        torch.manual_seed(123 + len(batches))
        batches.append([searcher.ask().index for _ in range(3)])
        assert torch.equal(torch.rand(1), expected_next)
    assert batches[0] == batches[1]


def _observing_30_cells(oracle, **settings) -> TNASSearcher:
    """A searcher that observed 30 random cells (its GP not fitted yet)."""
    searcher = _searcher(**settings)
    for index in np.random.default_rng(3).choice(15625, 30, replace=False):
        cell = Cell.from_index(int(index))
        searcher.tell(cell, oracle.evaluate(cell, fidelity=200, seed=None))
    return searcher


def _head_after_fit(oracle, **settings) -> tuple[float, float]:
    """Log marginal likelihood per point and output scale of the GP fitted to 30 observed cells."""
    model, _, _ = _observing_30_cells(oracle, **settings).surrogate()
    model.train()
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with torch.no_grad():
        value = float(mll(model(*model.train_inputs), model.train_targets))
    return value, float(model.covar_module.outputscale.detach())


@pytest.mark.parametrize("feature_lr", [0.0, 0.01])
def test_finetuning_moves_the_gp_towards_the_observations_without_collapsing_the_kernel(oracle, feature_lr):
    untouched = _head_after_fit(oracle, finetune_steps=0)
    tuned = _head_after_fit(oracle, finetune_steps=20, finetune_feature_lr=feature_lr)
    assert tuned[0] > untouched[0]  # a better marginal likelihood ...
    assert tuned[1] > 0.1 * untouched[1]  # ... with the kernel's output scale still in place


def test_finetuning_adapts_a_copy_of_the_feature_mlp_and_never_the_meta_trained_kernel(oracle):
    searcher = _observing_30_cells(oracle, finetune_steps=10, finetune_feature_lr=0.01)
    meta_trained = {name: value.clone() for name, value in searcher.kernel.state_dict().items()}
    model, _, _ = searcher.surrogate()
    for name, value in searcher.kernel.state_dict().items():
        assert torch.equal(value, meta_trained[name]), name
    original = searcher.kernel.feature_map(searcher._codes[:50]).double()
    tuned = model.all_features()[:50]
    assert not torch.allclose(tuned, original)  # xi moved ...
    assert torch.allclose(tuned, model._map(searcher._codes[:50]))  # ... and is what the GP uses
    frozen, _, _ = _observing_30_cells(oracle, finetune_steps=10, finetune_feature_lr=0.0).surrogate()
    assert torch.allclose(frozen.all_features()[:50], original)


def test_feature_patience_fine_tunes_the_feature_mlp_only_once_the_best_observation_stalls(oracle):
    cells = [Cell.from_index(int(index)) for index in np.random.default_rng(3).choice(15625, 12, replace=False)]
    evaluations = [(oracle.evaluate(cell, fidelity=200, seed=None), cell.index) for cell in cells]

    def features_after(order, told):
        searcher = _searcher(finetune_steps=10, feature_patience=4)
        for evaluation, index in order[:told]:
            searcher.tell(Cell.from_index(index), evaluation)
        model, _, _ = searcher.surrogate()
        original = searcher.kernel.feature_map(searcher._codes[:50]).double()
        return torch.allclose(model.all_features()[:50], original)

    improving = sorted(evaluations, key=lambda pair: pair[0].valid)
    assert features_after(improving, 12)  # every observation a new best: the head alone
    stalling = improving[::-1]
    assert features_after(stalling, 4)  # 3 observations since the best: not yet
    assert not features_after(stalling, 5)  # 4 since the best: xi fine-tuned too
    with pytest.raises(ConfigError, match="feature_patience"):
        TNASConfig(feature_patience=-1)


def test_feature_patience_is_recorded_only_when_given():
    from tnas.search.cli import build_parser, run_config_of

    def options(*argv):
        return run_config_of(build_parser().parse_args(argv)).options

    base = ["--dataset", "cifar10", "--method", "tnas"]
    assert "feature_patience" not in options(*base)  # run identity kept
    assert options(*base, "--feature-patience", "13")["feature_patience"] == 13
    assert "feature_patience" not in options(*base, "--feature-patience", "0")  # 0: from the first fit, the default
    # a constrained run's defaults are 13 and a source weight of 0.25: recorded only when another value is given
    limit = [*base, "--max-params", "0.5"]
    for extra, recorded in ((["--feature-patience", "13", "--source-weight", "0.25"], {}),
                            (["--feature-patience", "0", "--source-weight", "0"],
                             {"feature_patience": None, "source_weight": 0.0}),
                            (["--feature-patience", "5"], {"feature_patience": 5})):  # fmt: skip
        given = options(*limit, *extra)
        assert {name: given[name] for name in ("feature_patience", "source_weight") if name in given} == recorded


def test_resume_equals_an_uninterrupted_run(oracle, tmp_path):
    config = _config(budget=14)
    reference = run(_searcher(finetune_steps=4), oracle, config, tmp_path / "reference")
    with pytest.raises(KeyboardInterrupt):
        run(_searcher(finetune_steps=4), CountingOracle(oracle, fail_after=9), config, tmp_path / "resumed")
    counting = CountingOracle(oracle)
    resumed = run(_searcher(finetune_steps=4), counting, config, tmp_path / "resumed")
    assert counting.calls == 5
    strip = lambda rows: [dataclasses.replace(row, overhead_s=0.0) for row in rows]
    assert strip(RunDirectory(tmp_path / "resumed").read_trajectory()) == strip(reference.rows)
    assert resumed.summary["best_index"] == reference.summary["best_index"]


@pytest.fixture(scope="module")
def synthetic_surrogates(tmp_path_factory):
    root = tmp_path_factory.mktemp("surrogates")
    meta = synthetic_meta()
    meta_train(small_config(exclude=("cifar100",), epochs=1), root / "no-cifar100", meta=meta)
    return root


def test_a_surrogate_that_saw_the_target_is_refused(synthetic_surrogates):
    surrogate = synthetic_surrogates / "no-cifar100"
    _, info = resolve_surrogate("cifar100", surrogate)
    assert info["exclude"] == ["cifar100"] and not info["target_in_meta_train"]
    with pytest.raises(ContaminatedSurrogateError, match="--exclude cifar10-valid"):
        resolve_surrogate("cifar10", surrogate)  # cifar10's observations are cifar10-valid's
    _, info = resolve_surrogate("cifar10", surrogate, allow_target=True)
    assert info["target_in_meta_train"]


def test_a_cached_surrogate_from_older_settings_is_named_so(synthetic_surrogates, tmp_path, monkeypatch, caplog):
    import dataclasses
    import logging
    import shutil

    from tnas.meta_train import MetaTrainConfig, load_model
    from tnas.meta_train.ensemble import Surrogate
    from tnas.search.surrogates import default_surrogate_dir, outdated_settings

    monkeypatch.setenv("TNAS_CACHE_DIR", str(tmp_path))
    shutil.copytree(synthetic_surrogates / "no-cifar100", default_surrogate_dir("cifar100", members=1))
    with caplog.at_level(logging.WARNING, logger="tnas"):
        _, info = resolve_surrogate("cifar100", None, members=1, progress=True)
    assert "epochs=1" in info["outdated_settings"]  # the synthetic run's settings are not the defaults
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "delete it to meta-train one with the current defaults" in caplog.text
    model = load_model(synthetic_surrogates / "no-cifar100")
    expected = MetaTrainConfig(exclude=("cifar100",), seed=7)
    current = Surrogate((dataclasses.replace(model, settings=expected.to_dict()),), tmp_path)
    assert outdated_settings(current, dataclasses.replace(expected, seed=0)) == []  # seeds aside
    _, info = resolve_surrogate("cifar100", synthetic_surrogates / "no-cifar100")
    assert "outdated_settings" not in info  # a surrogate named by --surrogate is the user's choice


def _meta_train_tiny(out, data_dir, *extra: str):
    """A real (tiny) surrogate meta-trained without cifar10-valid, 1 image per class."""
    from tnas.meta_train.cli import main as meta_main

    assert meta_main(["--exclude", "cifar10", "--out", str(out), "--data-dir", str(data_dir), "--epochs", "1",
                      "--steps-per-epoch", "2", "--inner-steps", "1", "--batch-size", "16",
                      "--samples-per-class", "1", "--widths", "8", "--arch-hidden-dim", "8",
                      "--dataset-hidden-dim", "8", "--no-progress", *extra]) == 0  # fmt: skip
    return out


@pytest.fixture(scope="module")
def tiny_surrogate(data_dir, tmp_path_factory):
    return _meta_train_tiny(tmp_path_factory.mktemp("tiny") / "no-cifar10", data_dir)


def test_cli_runs_tnas_and_records_the_surrogate(tiny_surrogate, data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--dataset", "cifar10", "--method", "tnas", "--surrogate", str(tiny_surrogate), "--budget", "8",
            "--data-dir", str(data_dir), "--out", str(out), "--no-progress", "--finetune-steps", "2"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "surrogate" in text and "without cifar10-valid" in text
    config = json.loads((out / "config.json").read_text())
    assert config["surrogate"]["exclude"] == ["cifar10-valid"]
    assert config["config"]["options"]["acquisition"] == "logei"
    header = (out / "trajectory.csv").read_text().splitlines()[0]
    assert header.endswith("failure,recommended_index,recommended_test,start_s,end_s,worker,latency_ms,flops_m")
    assert main(args) == 0  # resumes the finished run


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--acquisition", "pi"], "invalid choice: 'pi'"),
        (["--surrogate", "/nonexistent/surrogate"], "does not exist"),
        (["--init", "best"], "invalid choice: 'best'"),
        (["--finetune-feature-lr", "-0.1"], "finetune_feature_lr must be >= 0"),
        (["--recommend-plausible", "-1"], "expected 'all' or a number >= 0"),
        (["--source-weight", "1.5"], "source_weight must be in [0, 1]"),
        (["--feature-patience", "-2"], "--feature-patience must be >= 0 observations (0: the feature MLP"),
    ],
)
def test_cli_error_paths(data_dir, tmp_path, capsys, extra, message):
    args = ["--dataset", "cifar10", "--method", "tnas", "--budget", "5", "--data-dir", str(data_dir),
            "--out", str(tmp_path / "r"), "--no-progress", *extra]  # fmt: skip
    try:
        code = main(args)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_refuses_a_corrupt_or_contaminated_surrogate(tiny_surrogate, data_dir, tmp_path, capsys):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.pt").write_bytes(b"not a checkpoint")
    base = ["--method", "tnas", "--budget", "5", "--data-dir", str(data_dir), "--no-progress"]
    assert main([*base, "--dataset", "cifar10", "--surrogate", str(corrupt), "--out", str(tmp_path / "a")]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert main([*base, "--dataset", "cifar100", "--surrogate", str(tiny_surrogate), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "meta-trained on cifar100" in err and err.count("\n") == 1


def test_cli_last_epochs_needs_kept_epochs(tiny_surrogate, data_dir, tmp_path, capsys):
    args = ["--dataset", "cifar10", "--method", "tnas", "--surrogate", str(tiny_surrogate), "--budget", "5",
            "--data-dir", str(data_dir), "--out", str(tmp_path / "r"), "--no-progress", "--last-epochs", "1"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--keep-epochs" in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def tiny_nodata_surrogate(data_dir, tmp_path_factory):
    """The tiny surrogate's settings, meta-trained without the dataset encoder."""
    return _meta_train_tiny(tmp_path_factory.mktemp("tiny-nodata") / "no-cifar10", data_dir, "--no-dataset-encoder")


def test_ablations_run_through_the_cli_and_say_what_they_are(tiny_surrogate, tiny_nodata_surrogate, data_dir,
                                                             tmp_path, capsys):  # fmt: skip
    common = ["--dataset", "cifar10", "--budget", "7", "--data-dir", str(data_dir), "--no-progress"]
    surrogates = {"tnas": tiny_surrogate, "tnas-prior": tiny_surrogate, "tnas-nodata": tiny_nodata_surrogate}
    runs = {}
    for method in ("tnas", "tnas-nodata", "tnas-prior", "tnas-untrained"):
        out = tmp_path / method
        extra = ["--surrogate", str(surrogates[method])] if method in surrogates else []
        extra += [] if method == "tnas-prior" else ["--finetune-steps", "2"]  # tnas-prior does no BO
        assert main([*common, "--method", method, "--out", str(out), *extra]) == 0
        runs[method] = (json.loads((out / "config.json").read_text()), RunDirectory(out).read_trajectory())
    assert runs["tnas-nodata"][0]["surrogate"]["variant"] == "no-dataset"
    assert runs["tnas-nodata"][0]["surrogate"]["uses_dataset_code"] is False
    assert runs["tnas-nodata"][0]["target_sample"]["images"] is False  # no sample featurised for it
    assert runs["tnas-untrained"][0]["surrogate"]["meta_trained"] is False
    assert runs["tnas-untrained"][0]["config"]["options"]["acquisition"] == "logei"
    indexes = {method: [row.index for row in rows] for method, (_, rows) in runs.items()}
    assert indexes["tnas"] != indexes["tnas-untrained"]
    assert indexes["tnas-prior"][:5] == indexes["tnas"][:5]  # TNAS's initial design is the prior's top 5 ...
    priors = [row.acquisition for row in runs["tnas-prior"][1]]
    assert priors == sorted(priors, reverse=True)  # ... and tnas-prior goes on down the same ranking
    assert main([*common, "--method", "tnas-nodata", "--surrogate", str(tiny_surrogate),
                 "--out", str(tmp_path / "wrong")]) == 2  # fmt: skip
    assert "meta-trained without the dataset encoder" in capsys.readouterr().err


def test_the_source_term_averages_the_tables_the_surrogate_meta_trained_on(tiny_surrogate, data_dir, tmp_path,
                                                                           capsys):  # fmt: skip
    common = ["--dataset", "cifar10", "--budget", "6", "--data-dir", str(data_dir), "--no-progress",
              "--source-weight", "0.5"]  # fmt: skip
    for method in ("tnas", "tnas-prior"):
        out = tmp_path / method
        steps = ["--finetune-steps", "2"] if method == "tnas" else []
        assert main([*common, "--method", method, "--surrogate", str(tiny_surrogate), "--out", str(out),
                     *steps]) == 0  # fmt: skip
        config = json.loads((out / "config.json").read_text())
        assert config["config"]["options"]["source_weight"] == 0.5
        assert config["source_term"] == {"source_weight": 0.5, "sources": ["cifar100", "imagenet16-120"]}
    prior_walk = [row.acquisition for row in RunDirectory(tmp_path / "tnas-prior").read_trajectory()]
    assert prior_walk == sorted(prior_walk, reverse=True)  # tnas-prior walks the blended prior
    tnas_design = [row.index for row in RunDirectory(tmp_path / "tnas").read_trajectory()][:5]
    assert tnas_design == [row.index for row in RunDirectory(tmp_path / "tnas-prior").read_trajectory()][:5]
    # a surrogate that meta-trained on no NAS-Bench-201 table adds none at search time
    no_tables = _meta_train_tiny(tmp_path / "no-tables", data_dir, "--exclude", "cifar100,imagenet16-120")
    out = tmp_path / "no-tables-run"
    assert main([*common, "--method", "tnas", "--surrogate", str(no_tables), "--out", str(out)]) == 0
    term = json.loads((out / "config.json").read_text())["source_term"]
    assert term["source_weight"] == 0.0 and term["requested"] == 0.5 and "no NAS-Bench-201 table" in term["why"]
    assert "source term  off (the surrogate meta-trained on no NAS-Bench-201 table; its weight would be 0.5)" in (
        capsys.readouterr().out)  # fmt: skip


@pytest.mark.parametrize("method", ["tnas", "tnas-prior"])
def test_tnas_and_its_prior_ranking_propose_only_feasible_cells(tiny_surrogate, data_dir, tmp_path, capsys, method):
    out = tmp_path / method
    bo = ["--finetune-steps", "2", "--candidate-pool", "20"] if method == "tnas" else []
    assert main(["--dataset", "cifar10", "--method", method, "--surrogate", str(tiny_surrogate), "--budget", "12",
                 *bo, "--max-latency-ms", "2.5", "--latency-device", "eyeriss", "--max-params", "0.3",
                 "--data-dir", str(data_dir), "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    rows = RunDirectory(out).read_trajectory()
    assert len(rows) == 12 and all(row.latency_ms <= 2.5 and row.params_mb <= 0.3 for row in rows)
    record = json.loads((out / "config.json").read_text())
    # a constrained run searches with the constrained defaults, and its record says so
    assert record["source_term"] == {"source_weight": 0.25, "sources": ["cifar100", "imagenet16-120"]}
    assert record["method_settings"]["source_weight"] == 0.25
    assert record["method_settings"].get("feature_patience") == (13 if method == "tnas" else None)  # prior: no BO
    assert "source_weight" not in record["config"]["options"]  # a default, not an option
    assert "source term  weight 0.25 on cifar100, imagenet16-120" in capsys.readouterr().out
    if method == "tnas-prior":  # the prior's ranking of the feasible cells, from the top
        priors = [row.acquisition for row in rows]
        assert priors == sorted(priors, reverse=True)


def test_a_constrained_run_told_no_source_term_searches_without_it(tiny_surrogate, data_dir, tmp_path):
    out = tmp_path / "run"
    assert main(["--dataset", "cifar10", "--method", "tnas", "--surrogate", str(tiny_surrogate), "--budget", "6",
                 "--finetune-steps", "2", "--max-params", "0.3", "--source-weight", "0", "--feature-patience", "0",
                 "--data-dir", str(data_dir), "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    record = json.loads((out / "config.json").read_text())
    assert "source_term" not in record
    assert record["config"]["options"]["source_weight"] == 0 and record["config"]["options"]["feature_patience"] is None


def test_a_surrogate_without_the_dataset_encoder_never_sees_a_dataset_code(tiny_nodata_surrogate):
    from tnas.meta_train import load_model
    from tnas.search.methods.tnas import codes_and_prior
    from tnas.search.methods.tnas_setup import _unseen_dataset_inputs

    kernel = load_model(tiny_nodata_surrogate).kernel
    features = torch.randn(1, 3, 2, kernel.config.dataset.feature_dim)
    assert kernel.config.use_dataset is False
    assert kernel.dataset_codes(features).abs().sum() == 0
    # so tnas-nodata searches with zero inputs exactly as with the target's features
    real = codes_and_prior([kernel], features, torch.ones(1, 3, 2, dtype=torch.bool))
    unseen = codes_and_prior([kernel], *_unseen_dataset_inputs(kernel, 2))
    assert all(torch.equal(a, b) for a, b in zip(real, unseen, strict=True))


def test_proposals_come_from_the_priors_top_cells_until_the_pool_is_spent(oracle):
    searcher = _searcher(candidate_pool=8, finetune_steps=2)
    pool = set(torch.argsort(searcher.prior_mean, descending=True)[:8].tolist())
    result = run(searcher, oracle, _config(budget=11))
    indexes = [row.index for row in result.rows]
    assert set(indexes[:8]) == pool and not set(indexes[8:]) & pool  # then the whole space


def test_fine_tuning_happens_only_when_the_observations_grew_enough(oracle, monkeypatch):
    steps = []
    original = TNASSearcher._finetune
    monkeypatch.setattr(TNASSearcher, "_finetune",
                        lambda self, model, count: (steps.append(len(model.train_targets)), original(self, model, count)))
    run(_searcher(refit_growth=0.5, finetune_steps=2), oracle, _config(budget=14))
    assert steps == [5, 8, 12]  # 5, then at least 1.5 x 5, then 1.5 x 8
    steps.clear()
    run(_searcher(refit_growth=0.0, finetune_steps=2), oracle, _config(budget=9))
    assert steps == [5, 6, 7, 8]


def test_a_fine_tuning_stopped_by_a_non_psd_covariance_is_counted_and_logged(oracle, monkeypatch, caplog):
    from linear_operator.utils.errors import NotPSDError

    import tnas.search.methods.tnas as tnas_module

    calls = {"n": 0}
    real_mll = tnas_module.ExactMarginalLogLikelihood

    class FailingOnThirdStep(real_mll):
        def forward(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise NotPSDError("Matrix not positive definite after repeatedly adding jitter")
            return super().forward(*args, **kwargs)

    monkeypatch.setattr(tnas_module, "ExactMarginalLogLikelihood", FailingOnThirdStep)
    with caplog.at_level("WARNING", logger="tnas.search.methods.tnas"):
        searcher = _observing_30_cells(oracle, finetune_steps=10)
        searcher.surrogate()
    assert searcher.finetune_failures == 1
    assert calls["n"] == 3  # the loop stopped at the failing step
    assert "stopped at step 2 of 10 with 30 observations" in caplog.text


def test_a_fine_tuning_that_turns_nan_goes_back_to_its_last_good_values(oracle, monkeypatch):
    import tnas.search.methods.tnas as tnas_module

    calls = {"n": 0}
    real_mll = tnas_module.ExactMarginalLogLikelihood

    class NanOnThirdStep(real_mll):
        def forward(self, *args, **kwargs):
            calls["n"] += 1
            value = super().forward(*args, **kwargs)
            return value * float("nan") if calls["n"] == 3 else value

    reference, _, _ = _observing_30_cells(oracle, finetune_steps=1).surrogate()  # the values after one step
    monkeypatch.setattr(tnas_module, "ExactMarginalLogLikelihood", NanOnThirdStep)
    searcher = _observing_30_cells(oracle, finetune_steps=10)
    model, _, _ = searcher.surrogate()
    assert searcher.finetune_failures == 1 and calls["n"] == 3
    fitted, expected = dict(model.named_parameters()), dict(reference.named_parameters())
    assert fitted.keys() == expected.keys()
    for name, value in fitted.items():
        assert torch.isfinite(value).all() and torch.equal(value, expected[name]), name
    assert torch.isfinite(model.posterior(model.train_inputs[0].unsqueeze(-2)).mean).all()  # still usable


def _noisy_run(oracle, **settings):
    """A TNAS run from a random initial design on one training seed per query (so it
    recommends by posterior mean, and finds better cells than its first ones)."""
    return run(_searcher(finetune_steps=3, init="random", **settings), oracle, _config(budget=10, observe="seed"))


def test_the_recommendation_can_be_kept_to_plausibly_best_observations(oracle):
    every = _noisy_run(oracle, recommend_plausible=None).rows
    assert any(row.recommended_index != row.incumbent_index for row in every[4:])  # the posterior overrules ...
    only_best = _noisy_run(oracle, recommend_plausible=0.0).rows
    assert [row.index for row in only_best] == [row.index for row in every]  # (proposals do not change)
    assert all(row.recommended_index == row.incumbent_index for row in only_best)  # ... unless kept to the best
    wide = _noisy_run(oracle, recommend_plausible=1e9).rows
    assert [row.recommended_index for row in wide] == [row.recommended_index for row in every]
    with pytest.raises(ConfigError, match="recommend_plausible"):
        TNASConfig(recommend_plausible=-1.0)


def test_a_constrained_run_that_spelled_out_todays_defaults_is_extended_by_the_same_command(
        tiny_surrogate, data_dir, tmp_path):  # fmt: skip
    """Before the constrained defaults, ``--source-weight 0.25 --feature-patience 13`` were
    recorded as options; the same command records nothing now (they are the defaults). The
    run is the same search, so the command extends it instead of calling it another run."""
    out = tmp_path / "run"
    args = ["--dataset", "cifar10", "--method", "tnas", "--surrogate", str(tiny_surrogate), "--budget", "6",
            "--finetune-steps", "2", "--max-params", "0.3", "--source-weight", "0.25", "--feature-patience", "13",
            "--data-dir", str(data_dir), "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    path = out / "config.json"
    record = json.loads(path.read_text())
    assert {"source_weight", "feature_patience"}.isdisjoint(record["config"]["options"])
    # as the code before the constrained defaults recorded the same command
    record["config"]["options"].update(source_weight=0.25, feature_patience=13)
    record["method_settings"].update(source_weight=0.0, feature_patience=None)
    path.write_text(json.dumps(record))
    before = (out / "trajectory.csv").read_text().splitlines()
    args[args.index("--budget") + 1] = "8"
    assert main(args) == 0
    after = (out / "trajectory.csv").read_text().splitlines()
    assert len(after) == len(before) + 2 and after[: len(before)] == before
    # and that run, had it been searched under the old defaults, would be stale: it is not
    assert main(args[: args.index("--source-weight")] + args[args.index("--feature-patience") + 2:]) == 0


def test_a_surrogate_whose_weights_give_no_finite_prior_is_refused_before_the_search():
    from tnas.meta_train.checkpoint import CheckpointError

    torch.manual_seed(0)
    kernel = DeepKernel(small_config().kernel)
    with torch.no_grad():
        for parameter in kernel.parameters():
            parameter.mul_(1e30)  # finite, as a damaged file can hold them, but every code overflows
    features = torch.randn(1, 4, 3, FEATURES, generator=torch.Generator().manual_seed(1))
    with pytest.raises(CheckpointError, match="NaN or infinite codes or prior means"):
        TNASSearcher(kernel, features, torch.ones(1, 4, 3, dtype=torch.bool), np.random.default_rng(0), TNASConfig())
