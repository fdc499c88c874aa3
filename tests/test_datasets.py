from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from tnas.datasets import DatasetNotFoundError, get_dataset
from tnas.encoders import ImageFeaturizer, dataset_inputs


@pytest.mark.parametrize(
    ("name", "count", "classes", "shape"),
    [
        ("cifar10", 3000, 10, (32, 32, 3)),
        ("cifar10-valid", 3000, 10, (32, 32, 3)),
        ("cifar100", 10000, 100, (32, 32, 3)),
        ("imagenet16-120", 120, 120, (16, 16, 3)),
        ("imagenet-sample", 1000, 1000, (32, 32, 3)),
        ("fashion-mnist", 10000, 10, (28, 28, 1)),
        ("mnist", 10000, 10, (28, 28, 1)),
        ("digits", 1797, 10, (8, 8, 1)),
        ("metad2a-task-0", 20, 20, (32, 32, 3)),
    ],
)
def test_registered_samples_load(data_dir, name, count, classes, shape):
    dataset = get_dataset(name, data_dir=data_dir)
    assert dataset.images.shape == (count, *shape) and dataset.images.dtype == np.uint8
    assert dataset.num_classes == classes
    assert sorted(set(dataset.labels.tolist())) == list(range(classes))


def test_known_classes(data_dir):
    assert get_dataset("cifar10", data_dir=data_dir).class_names[:2] == ("airplane", "automobile")
    task = get_dataset("metad2a-task-0", data_dir=data_dir)
    assert task.class_names[:2] == ("n03720891 maraca", "n03662601 lifeboat")  # labels 338 and 238
    imagenet16 = get_dataset("imagenet16-120", data_dir=data_dir)
    assert imagenet16.class_names[0] == "n02119789 kit_fox"  # label 1 of map_clsloc
    assert get_dataset("mnist", data_dir=data_dir).labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert get_dataset("cifar10", split="test", data_dir=data_dir).images.shape[0] == 1000


def test_unknown_and_missing_datasets_say_what_to_do(data_dir, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="unknown dataset 'imagenet1k'; known: cifar10"):
        get_dataset("imagenet1k", data_dir=data_dir)
    with pytest.raises(DatasetNotFoundError, match="train_32x32.mat"):
        get_dataset("svhn", data_dir=data_dir)
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "cifar-10-batches-py")):
        get_dataset("cifar10", data_root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "nb")):
        get_dataset("cifar100", data_dir=tmp_path / "nb")
    with pytest.raises(DatasetNotFoundError, match="no 'test' split"):
        get_dataset("cifar100", split="test", data_dir=data_dir)
    with pytest.raises(DatasetNotFoundError, match="tasks 0..4999"):
        get_dataset("metad2a-task-5000", data_dir=data_dir)
    with pytest.raises(DatasetNotFoundError, match="not a folder"):
        get_dataset("svhn", data_root=tmp_path / "absent")


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


def test_full_datasets_under_a_data_root(tmp_path):
    rng = np.random.default_rng(0)
    # torchvision's CIFAR-10 layout
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 9]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}))
    cifar = get_dataset("cifar10", data_root=tmp_path)
    assert cifar.images.shape == (20, 32, 32, 3) and cifar.class_names[9] == "c9"
    raw = pickle.loads((folder / "data_batch_1").read_bytes())[b"data"][0]
    assert np.array_equal(cifar.images[0], raw.reshape(3, 32, 32).transpose(1, 2, 0))
    # MNIST IDX files
    raw_dir = tmp_path / "MNIST" / "raw"
    raw_dir.mkdir(parents=True)
    _write_idx(raw_dir / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (6, 28, 28)))
    _write_idx(raw_dir / "t10k-labels-idx1-ubyte.gz", np.arange(6))
    mnist = get_dataset("mnist", split="test", data_root=tmp_path)
    assert mnist.images.shape == (6, 28, 28, 1) and mnist.labels.tolist() == list(range(6))
    # SVHN .mat files (label 10 is digit 0)
    from scipy.io import savemat

    savemat(tmp_path / "train_32x32.mat", {"X": rng.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8),
                                           "y": np.array([[10], [1], [2], [3], [10]])})  # fmt: skip
    svhn = get_dataset("svhn", data_root=tmp_path)
    assert svhn.images.shape == (5, 32, 32, 3) and svhn.labels.tolist() == [0, 1, 2, 3, 0]
    # an image folder (Pets / Aircraft)
    from PIL import Image

    for label in ("abyssinian", "beagle"):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8)).save(tmp_path / "train" / label / f"{i}.png")
    pets = get_dataset("pets", data_root=tmp_path)
    assert pets.images.shape == (4, 32, 32, 3) and pets.class_names == ("abyssinian", "beagle")


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_the_complete_fashion_mnist_from_debian():
    train = get_dataset("fashion-mnist", data_root="/usr/share/datasets/fashion-mnist")
    test = get_dataset("fashion-mnist", split="test", data_root="/usr/share/datasets/fashion-mnist")
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    assert np.bincount(train.labels).tolist() == [6000] * 10


@pytest.mark.slow
def test_dataset_inputs_shapes_and_shared_parent_features(data_dir):
    featurizer = ImageFeaturizer()  # the session's cache: the ImageNet sample is featurised once per session
    rng = np.random.default_rng(0)
    features, mask = dataset_inputs(get_dataset("digits", data_dir=data_dir), featurizer, rng, samples_per_class=3)
    assert features.shape == (10, 3, 1280) and mask.all()
    imagenet = get_dataset("imagenet-sample", data_dir=data_dir)
    task = get_dataset("metad2a-task-3", data_dir=data_dir)
    task_features, task_mask = dataset_inputs(task, featurizer, rng)
    assert task_features.shape == (20, 1, 1280) and task_mask.all()
    all_imagenet = featurizer.features(imagenet.images)  # computed once for the parent, now cached
    np.testing.assert_allclose(task_features[:, 0].numpy(), all_imagenet[task.parent_rows], atol=1e-6)
    assert (featurizer.cache_dir / f"{featurizer.cache_key(imagenet.images)}.npy").is_file()


_SAMPLE_FILES = {
    "mnist": ["images/mnist_test/t10k-images-idx3-ubyte.gz", "images/mnist_test/t10k-labels-idx1-ubyte.gz"],
    "cifar10": ["images/cifar10_subset/cifar10_jpeg_300train_100test_per_class.npz"],
    "fashion-mnist": ["images/fashion_mnist_sample/fashion_mnist_train1000pc_test10k.npz"],
    "cifar100": ["images/cifar100_sample/cifar100_train_100_per_class.npz"],
    "imagenet16-120": ["images/imagenet_sample/imagenet_1per_class_16_32.npz"],
}


@pytest.mark.parametrize(("name", "damage"), [(name, damage) for name in sorted(_SAMPLE_FILES)
                                              for damage in ("truncated", "empty", "garbage")]
                         + [("mnist", "payload cut inside a valid file")])  # an npz checks its own members
def test_a_damaged_sample_file_gives_a_one_line_error(data_dir, tmp_path, name, damage):
    import os
    import shutil

    from tnas.datasets import get_dataset
    from tnas.errors import TnasError

    for relative in _SAMPLE_FILES[name]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / relative, tmp_path / relative)
    target = tmp_path / _SAMPLE_FILES[name][0]
    good = target.read_bytes()
    if damage == "payload cut inside a valid file":  # a well-formed gzip of fewer bytes than the IDX header says
        import gzip

        target.write_bytes(gzip.compress(gzip.decompress(good)[:5000]))
    else:
        target.write_bytes({"truncated": good[: len(good) // 2], "empty": b"", "garbage": os.urandom(2000)}[damage])
    with pytest.raises(TnasError) as error:
        get_dataset(name, data_dir=tmp_path)
    assert str(target) in str(error.value) and "\n" not in str(error.value)


def test_an_npz_sample_lacking_an_array_is_a_clear_error(tmp_path):
    import numpy as np

    from tnas.datasets import get_dataset
    from tnas.errors import DataFileError

    path = tmp_path / "images/cifar100_sample/cifar100_train_100_per_class.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, x=np.zeros((2, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(DataFileError, match="lacks the array 'y'"):
        get_dataset("cifar100", data_dir=tmp_path)
