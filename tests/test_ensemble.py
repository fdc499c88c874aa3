"""Ensembles of meta-trained surrogates: training, loading, and the averaged GP."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from tests.synthetic_meta import FEATURES, small_config, synthetic_meta
from tnas.meta_train import CheckpointError
from tnas.meta_train.ensemble import ENSEMBLE_FILE, load_surrogate, meta_train_ensemble
from tnas.models import DeepKernel
from tnas.models.ensemble import ensemble_parts
from tnas.models.surrogate import TNASSurrogate, all_cell_inputs
from tnas.oracles import TableOracle
from tnas.search import RunConfig, run
from tnas.search.methods.tnas import TNASConfig, TNASSearcher, codes_and_prior


def _kernels(count: int) -> list[DeepKernel]:
    kernels = []
    for seed in range(count):
        torch.manual_seed(seed)
        kernels.append(DeepKernel(small_config().kernel).eval())
    return kernels


def _dataset() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(1, 4, 3, FEATURES, generator=generator), torch.ones(1, 4, 3, dtype=torch.bool)


def test_the_ensemble_gp_averages_the_members_prior_means_and_kernels():
    kernels = _kernels(3)
    features, mask = _dataset()
    codes, prior = codes_and_prior(kernels, features, mask)
    singles = [codes_and_prior([kernel], features, mask) for kernel in kernels]
    assert codes.shape == (15625, 3 * singles[0][0].shape[1])
    assert torch.allclose(prior, torch.stack([p for _, p in singles]).mean(dim=0))
    feature_map, mean, covar, likelihood = ensemble_parts(kernels)
    with torch.no_grad():
        deep = feature_map(codes[:7].float()).double()
        assert torch.allclose(mean(deep), prior[:7])
        members = []
        for kernel, (code, _) in zip(kernels, singles):
            member_features = kernel.feature_map(code[:7].float()).double()
            members.append(kernel.covar_module(member_features).to_dense())
        assert torch.allclose(covar(deep).to_dense(), torch.stack(members).mean(dim=0))
    noises = torch.stack([kernel.likelihood.noise for kernel in kernels])
    assert torch.allclose(likelihood.noise, noises.mean(dim=0))


def test_the_ensemble_surrogate_conditions_like_one_gp_and_never_touches_its_members():
    kernels = _kernels(2)
    features, mask = _dataset()
    codes, _ = codes_and_prior(kernels, features, mask)
    snapshot = [{k: v.clone() for k, v in kernel.state_dict().items()} for kernel in kernels]
    train_X = torch.tensor([[5.0], [600.0], [9930.0]], dtype=torch.float64)
    train_Y = torch.tensor([[0.5], [-1.0], [1.5]], dtype=torch.float64)
    model = TNASSurrogate(kernels, features, mask, train_X, train_Y, codes_table=codes).eval()
    with torch.no_grad():
        fast = model.posterior(all_cell_inputs()[:50].unsqueeze(-2))
        slow = model.posterior(all_cell_inputs()[:50])  # gpytorch's joint posterior
    assert torch.allclose(fast.mean.reshape(-1), slow.mean.reshape(-1), atol=1e-6)
    assert torch.allclose(fast.variance.reshape(-1), slow.variance.reshape(-1), atol=1e-6)
    for kernel, state in zip(kernels, snapshot):
        for name, value in kernel.state_dict().items():
            assert torch.equal(value, state[name])
    with pytest.raises(ValueError, match="codes_table"):
        TNASSurrogate(kernels, features, mask, train_X, train_Y)


def test_tnas_with_an_ensemble_searches_without_repeats(table):
    features, mask = _dataset()
    searcher = TNASSearcher(_kernels(2), features, mask, np.random.default_rng(0), TNASConfig(finetune_steps=3))
    config = RunConfig(method="tnas", dataset="cifar100", seed=0, budget=12, fidelity=200, observe="mean")
    result = run(searcher, TableOracle(table, "cifar100"), config)
    assert len({row.index for row in result.rows}) == 12
    assert all(row.pred_std is not None for row in result.rows[5:])


def test_an_ensemble_trains_its_members_with_consecutive_seeds_and_resumes(tmp_path):
    meta = synthetic_meta()
    config = small_config(epochs=1, seed=4)
    out = tmp_path / "ensemble"
    results = meta_train_ensemble(config, out, 2, meta=meta)
    assert [result.resumed_from for result in results] == [0, 0]
    record = json.loads((out / ENSEMBLE_FILE).read_text())
    assert record["seeds"] == [4, 5] and record["members"] == ["member0", "member1"]
    surrogate = load_surrogate(out)
    assert len(surrogate.members) == 2 and surrogate.exclude == ("cifar100",)
    assert [member.settings["seed"] for member in surrogate.members] == [4, 5]
    first = surrogate.kernels[0].state_dict()
    assert any(not torch.equal(value, surrogate.kernels[1].state_dict()[name]) for name, value in first.items())
    again = meta_train_ensemble(config, out, 2, meta=meta)  # finished: nothing is trained again
    assert [result.resumed_from for result in again] == [1, 1]
    with pytest.raises(CheckpointError, match="other members"):
        meta_train_ensemble(config, out, 3, meta=meta)
    (out / "member1" / "model.pt").unlink()
    with pytest.raises(CheckpointError, match="lacks its member member1"):
        load_surrogate(out)
    for damage in (b"{not json", b"\xff\xfe\x00binary", b""):
        (out / ENSEMBLE_FILE).write_bytes(damage)
        with pytest.raises(CheckpointError, match="unreadable"):
            load_surrogate(out)
    for members in ([0, 1], [None], "member0", ["../elsewhere"]):
        (out / ENSEMBLE_FILE).write_text(json.dumps({**record, "members": members}))
        with pytest.raises(CheckpointError, match="members must be a list of member folder names"):
            load_surrogate(out)


def test_members_meta_trained_in_parallel_processes_equal_one_thread_runs(tmp_path, capsys, caplog):
    meta = synthetic_meta()
    config = small_config(epochs=1)
    with caplog.at_level(logging.INFO, logger="tnas"):
        parallel = meta_train_ensemble(config, tmp_path / "parallel", 2, jobs=2, meta=meta, progress=True)
    shown = capsys.readouterr().err  # one bar over the members' epochs, then a log record per member
    assert "meta-training 2 members" in shown and "2/2" in shown
    assert "member member1 (seed 1) meta-trained" in caplog.text
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = meta_train_ensemble(config, tmp_path / "serial", 2, meta=meta)
    finally:
        torch.set_num_threads(threads)
    assert [r.metrics for r in parallel] == [r.metrics for r in serial]
    for left, right in zip(load_surrogate(tmp_path / "parallel").kernels, load_surrogate(tmp_path / "serial").kernels):
        for name, value in left.state_dict().items():
            assert torch.equal(value, right.state_dict()[name]), name


def test_a_frozen_prior_mean_ignores_the_fine_tuned_features():
    kernels = _kernels(2)
    features, mask = _dataset()
    codes, prior = codes_and_prior(kernels, features, mask)
    train_X = torch.tensor([[5.0], [600.0], [9930.0]], dtype=torch.float64)
    train_Y = torch.tensor([[0.5], [-1.0], [1.5]], dtype=torch.float64)
    model = TNASSurrogate(kernels, features, mask, train_X, train_Y, codes_table=codes, prior_table=prior)
    with torch.no_grad():
        model.mean_module.offset.fill_(0.3)
        for parameter in model.feature_map.parameters():
            parameter.add_(1.0)  # fine-tuning moved xi far ...
    model.eval()
    assert torch.allclose(model.prior_mean(), 0.3 + prior.double())  # ... the mean stays the calibrated prior
    with torch.no_grad():
        fast = model.posterior(all_cell_inputs()[:40].unsqueeze(-2))
        slow = model.posterior(all_cell_inputs()[:40])
    assert torch.allclose(fast.mean.reshape(-1), slow.mean.reshape(-1), atol=1e-6)


def test_a_killed_meta_training_is_not_finished_although_it_has_a_model(tmp_path):
    from tnas.meta_train import checkpoint, meta_train
    from tnas.meta_train.checkpoint import is_finished

    out = tmp_path / "run"
    meta_train(small_config(epochs=1), out, meta=synthetic_meta())
    assert is_finished(out)
    state = checkpoint.load(out / checkpoint.CHECKPOINT_FILE, "checkpoint")
    state["config"]["epochs"] = 3  # as if killed after the first of three epochs
    checkpoint.save(out / checkpoint.CHECKPOINT_FILE, state)
    assert (out / checkpoint.MODEL_FILE).is_file() and not is_finished(out)
    (out / checkpoint.CHECKPOINT_FILE).unlink()
    assert is_finished(out)  # a model without a checkpoint: a copied, finished model
    assert not is_finished(tmp_path / "nothing")


def test_an_ensemble_record_naming_a_member_twice_is_refused(tmp_path):
    from tnas.meta_train.ensemble import ENSEMBLE_FORMAT

    (tmp_path / ENSEMBLE_FILE).write_text(json.dumps({"format": ENSEMBLE_FORMAT, "members": ["member0", "member0"]}))
    with pytest.raises(CheckpointError, match="names a member twice"):
        load_surrogate(tmp_path)
