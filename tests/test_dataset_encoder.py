from __future__ import annotations

import pytest
import torch

from tnas.encoders import DatasetEncoder, DatasetEncoderConfig, pad_classes, stack_datasets
from tnas.errors import ConfigError

FEATURES = 24


def _encoder(seed=0, **sizes) -> DatasetEncoder:
    torch.manual_seed(seed)
    return DatasetEncoder(DatasetEncoderConfig(feature_dim=FEATURES, **sizes)).eval()


def _data(batch=2, classes=5, samples=7, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, classes, samples, FEATURES, generator=generator)


@pytest.mark.parametrize("inducing", [0, 3])
def test_shapes_dtypes_and_gradients(inducing):
    encoder = _encoder(code_dim=9, num_inducing=inducing).train()
    codes = encoder(_data())
    assert codes.shape == (2, 9) and codes.dtype == torch.float32
    codes.pow(2).sum().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("inducing", [0, 3])
def test_invariant_to_sample_and_class_order(inducing):
    encoder = _encoder(num_inducing=inducing)
    data = _data()
    generator = torch.Generator().manual_seed(5)
    shuffled = data[:, torch.randperm(5, generator=generator)]  # classes
    shuffled = torch.stack([  # samples, independently within every class
        torch.stack([cls[torch.randperm(7, generator=generator)] for cls in dataset]) for dataset in shuffled
    ])
    with torch.no_grad():
        torch.testing.assert_close(encoder(data), encoder(shuffled), atol=1e-5, rtol=0)


def test_padding_neither_changes_the_code_nor_its_content_matters():
    encoder = _encoder()
    small = _data(batch=1, classes=3, samples=4)
    with torch.no_grad():
        alone = encoder(small)
        padded = torch.full((1, 5, 7, FEATURES), float("nan"))  # garbage in the padding
        padded[:, :3, :4] = small
        mask = torch.zeros(1, 5, 7, dtype=torch.bool)
        mask[:, :3, :4] = True
        torch.testing.assert_close(encoder(padded, mask), alone, atol=1e-5, rtol=0)


def test_unequal_class_sizes_in_one_batch():
    encoder = _encoder()
    generator = torch.Generator().manual_seed(2)
    first = pad_classes([torch.randn(n, FEATURES, generator=generator) for n in (3, 7, 1)])
    second = pad_classes([torch.randn(n, FEATURES, generator=generator) for n in (2, 2)])
    features, mask = stack_datasets([first, second])
    assert features.shape == (2, 3, 7, FEATURES) and mask.sum().item() == 15
    with torch.no_grad():
        together = encoder(features, mask)
        apart = torch.cat([encoder(f[None], m[None]) for f, m in (first, second)])
    torch.testing.assert_close(together, apart, atol=1e-5, rtol=0)


def test_datasets_differ_and_seeds_reproduce():
    with torch.no_grad():
        codes = _encoder(seed=3)(_data())
        again = _encoder(seed=3)(_data())
    assert torch.equal(codes, again)
    assert (codes[0] - codes[1]).norm() > 1e-3


def test_errors():
    with pytest.raises(ValueError, match="at least one real sample"):
        _encoder()(_data(batch=1), torch.zeros(1, 5, 7, dtype=torch.bool))
    with pytest.raises(ConfigError, match="divisible"):
        DatasetEncoderConfig(hidden_dim=10, num_heads=4)
    with pytest.raises(ValueError):
        pad_classes([])
