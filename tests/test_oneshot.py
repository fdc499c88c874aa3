"""The weight-sharing supernet and DARTS-V1 / DARTS-V2 / GDAS on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tnas.datasets.splits import get_splits
from tnas.errors import ConfigError
from tnas.search.cli import main as search_main
from tnas.space import NUM_EDGES, NUM_OPS, OPERATIONS, Cell
from tnas.train.network import NetworkConfig
from tnas.train.oneshot import (
    OneShotConfig,
    OneShotStateError,
    _first_order_architecture_step,
    _fresh_state,
    search,
    unrolled_alpha_gradient,
)
from tnas.train.supernet import MixedOperation, SuperCell, SuperNetwork, derive_cell, gumbel_sample

TINY = {"channels": 4, "cells_per_stage": 1, "batch_size": 64, "train_subset": 256}


@pytest.fixture(scope="module")
def digits():
    return get_splits("digits")


def _tiny(algorithm, epochs=2):
    return OneShotConfig.for_protocol(algorithm, epochs=epochs, **TINY)


def test_the_mixed_operation_is_the_softmax_weighted_sum_of_the_five_operations():
    torch.manual_seed(0)
    edge = MixedOperation(6).eval()
    x = torch.randn(2, 6, 5, 5)
    weights = torch.softmax(torch.randn(NUM_OPS), dim=0)
    expected = sum(w * op(x) for w, op in zip(weights, edge.ops))
    assert torch.allclose(edge(x, weights), expected)
    assert type(edge.ops[0]).__name__ == "_Zero" and len(edge.ops) == len(OPERATIONS)
    one_hot = torch.zeros(NUM_OPS)
    one_hot[3] = 1.0  # all weight on nor_conv_3x3: exactly that operation's output
    assert torch.allclose(edge(x, one_hot), edge.ops[3](x))


def test_the_derived_cell_is_the_per_edge_argmax():
    logits = torch.zeros(NUM_EDGES, NUM_OPS)
    ops = (3, 1, 0, 4, 2, 3)
    logits[torch.arange(NUM_EDGES), torch.tensor(ops)] = 1.0
    assert derive_cell(logits) == Cell(ops)
    with pytest.raises(ValueError):
        derive_cell(torch.zeros(5, 5))


def test_gdas_runs_exactly_one_operation_per_edge_and_its_sample_is_straight_through():
    cell = SuperCell(4)
    calls = {id(op): 0 for edge in cell.edges for op in edge.ops}

    def count(module, inputs, output):
        calls[id(module)] += 1

    for edge in cell.edges:
        for op in edge.ops:
            op.register_forward_hook(count)
    logits = torch.randn(NUM_EDGES, NUM_OPS, requires_grad=True)
    weights, chosen = gumbel_sample(logits, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(weights.detach().sum(dim=1), torch.ones(NUM_EDGES))
    assert weights.detach().max(dim=1).values.eq(1).all()
    out = cell(torch.randn(2, 4, 6, 6), weights, chosen)
    for edge, op_id in zip(cell.edges, chosen):
        assert [calls[id(op)] for op in edge.ops] == [1 if i == op_id else 0 for i in range(NUM_OPS)]
    out.pow(2).mean().backward()
    assert logits.grad is not None and (logits.grad != 0).any()  # soft backward reaches the logits


def test_a_first_order_darts_step_moves_alpha_against_the_validation_gradient(digits):
    config = _tiny("darts-v1")
    state = _fresh_state(config, digits, 0, "cpu")
    from tnas.train.trainer import images_to_tensor

    images = images_to_tensor(digits.valid[0][:64])
    labels = torch.from_numpy(digits.valid[1][:64].astype(np.int64))
    before = state.logits.detach().clone()
    loss = F.cross_entropy(state.network(images, torch.softmax(state.logits, dim=-1)), labels)
    (gradient,) = torch.autograd.grad(loss, [state.logits])
    _first_order_architecture_step(state, images, labels, "cpu")
    step = state.logits.detach() - before
    assert float((step * gradient).sum()) < 0
    large = gradient.abs() > 1e-3 * gradient.abs().max()
    assert torch.equal(torch.sign(step[large]), -torch.sign(gradient[large]))  # Adam's first step: -lr * sign
    assert all(p.grad is None for p in state.network.parameters())  # the weights are not touched


def test_the_unrolled_gradient_is_the_first_order_one_when_the_virtual_step_is_zero(digits):
    state = _fresh_state(_tiny("darts-v2"), digits, 0, "cpu")
    from tnas.train.trainer import images_to_tensor

    batch = (images_to_tensor(digits.train[0][:32]), torch.from_numpy(digits.train[1][:32].astype(np.int64)))
    valid = (images_to_tensor(digits.valid[0][:32]), torch.from_numpy(digits.valid[1][:32].astype(np.int64)))
    state.network.eval()  # fixed BatchNorm statistics: the two gradients see the same function
    logits = state.logits.detach().clone().requires_grad_()
    loss = F.cross_entropy(state.network(valid[0], torch.softmax(logits, dim=-1)), valid[1])
    (first_order,) = torch.autograd.grad(loss, [logits])
    state.w_optimizer.param_groups[0]["lr"] = 0.0
    assert torch.allclose(unrolled_alpha_gradient(state.network, state.logits, state.w_optimizer, batch, valid),
                          first_order, atol=1e-6)  # fmt: skip
    state.w_optimizer.param_groups[0]["lr"] = 0.5
    assert not torch.allclose(unrolled_alpha_gradient(state.network, state.logits, state.w_optimizer, batch, valid),
                              first_order, atol=1e-6)  # fmt: skip


def test_protocols_give_the_papers_settings_and_bad_settings_are_refused():
    paper = OneShotConfig.for_protocol("gdas", "nb201")
    assert (paper.channels, paper.cells_per_stage, paper.epochs, paper.batch_size) == (16, 5, 250, 64)
    assert (paper.w_lr, paper.a_lr, paper.a_betas, paper.tau_max, paper.tau_min) == (0.025, 3e-4, (0.5, 0.999), 10, 0.1)
    assert OneShotConfig.for_protocol("darts-v2", "nb201").epochs == 50
    assert paper.tau(0) == 10 and paper.tau(249) == pytest.approx(0.1)
    for bad in ({"algorithm": "enas"}, {"epochs": 0}, {"tau_min": 0.0}, {"w_lr_min": 1.0}):
        with pytest.raises(ConfigError):
            OneShotConfig(**bad)
    with pytest.raises(ConfigError):
        OneShotConfig.for_protocol("darts-v1", "gpu")


def test_the_supernet_shapes_follow_the_nb201_network():
    network = SuperNetwork(NetworkConfig(channels=4, cells_per_stage=2, num_classes=7, in_channels=1))
    out = network(torch.randn(3, 1, 8, 8), torch.full((NUM_EDGES, NUM_OPS), 0.2))
    assert out.shape == (3, 7)


class _Killed(Exception):
    pass


@pytest.mark.parametrize("algorithm", ["darts-v1", "darts-v2", "gdas"])
def test_a_tiny_search_on_digits_runs_end_to_end_and_resumes_after_a_kill(digits, tmp_path, algorithm):
    config = _tiny(algorithm)
    whole = search(config, digits, seed=3, state_dir=tmp_path / "whole")
    assert len(whole.history) == 2 and whole.cell == whole.history[-1].derived and whole.seconds > 0
    assert whole.cell == derive_cell(torch.tensor(whole.history[-1].probabilities).log())

    def kill_after_first(record):
        if record.epoch == 1:
            raise _Killed

    with pytest.raises(_Killed):
        search(config, digits, seed=3, state_dir=tmp_path / "killed", on_epoch=kill_after_first)
    assert not (tmp_path / "killed" / "search.json").exists()
    resumed = search(config, digits, seed=3, state_dir=tmp_path / "killed")
    assert resumed.resumed_from_epoch == 1
    assert [r.probabilities for r in resumed.history] == [r.probabilities for r in whole.history]
    assert resumed.cell == whole.cell
    epochs = (tmp_path / "killed" / "epochs.csv").read_text().splitlines()
    assert len(epochs) == 3 and epochs[0].startswith("epoch,seconds,train_loss")
    alphas = (tmp_path / "killed" / "alphas.csv").read_text().splitlines()
    assert len(alphas) == 1 + 2 * NUM_EDGES
    again = search(config, digits, seed=3, state_dir=tmp_path / "killed")  # finished: read back, not searched
    assert again.cell == whole.cell and again.seconds == resumed.seconds


def test_a_state_folder_of_another_search_or_a_damaged_one_is_refused(digits, tmp_path):
    config = _tiny("gdas", epochs=1)
    with pytest.raises(_Killed):
        search(config, digits, seed=0, state_dir=tmp_path, on_epoch=lambda record: (_ for _ in ()).throw(_Killed()))
    with pytest.raises(OneShotStateError, match="another search"):
        search(config, digits, seed=1, state_dir=tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"\x00garbage")
    with pytest.raises(OneShotStateError, match="damaged"):
        search(config, digits, seed=0, state_dir=tmp_path)


def test_the_search_command_runs_a_one_shot_method_as_one_query_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--dataset", "digits", "--method", "darts-v1", "--search-epochs", "1", "--epochs", "1", "--channels", "4",
            "--cells-per-stage", "1", "--device", "cpu", "--out", str(out), "--results-cache", str(tmp_path / "cache"),
            "--no-progress"]  # fmt: skip
    assert search_main(argv) == 0
    printed = capsys.readouterr().out
    assert "1 queries" in printed and "supernet     darts-v1" in printed
    summary = json.loads((out / "summary.json").read_text())
    result = json.loads((out / "oneshot" / "search.json").read_text())
    assert summary["queries"] == 1 and summary["best_index"] == result["derived_index"]
    config = json.loads((out / "config.json").read_text())
    assert config["one_shot"]["search_data"]["dataset"] == "digits"
    assert search_main(argv) == 0
    assert "1 replayed" in capsys.readouterr().out
    other = [*argv[: argv.index("--out")], "--out", str(tmp_path / "other"), "--budget", "3"]
    assert search_main(other) == 2
    assert "--budget 1" in capsys.readouterr().err
    assert search_main(["--dataset", "cifar10", "--method", "rs", "--search-epochs", "2"]) == 2
