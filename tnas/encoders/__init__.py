"""Encoders of TNAS's deep kernel.

- :class:`ArchEncoder` (psi): bidirectional GRU over the DAG view of a cell;
- :class:`DatasetEncoder` (phi): two-stage Set Transformer over per-class image features;
- :class:`ImageFeaturizer`: 1,280-d EfficientNet-Lite0 features, cached on disk;
- :func:`dataset_inputs`: a dataset's per-class feature sample, ready for phi.
"""

from tnas.encoders.arch import ArchEncoder, ArchEncoderConfig, cells_to_batch, topological_levels
from tnas.encoders.dataset import DatasetEncoder, DatasetEncoderConfig, pad_classes, stack_datasets
from tnas.encoders.features import FEATURE_DIM, FeaturizerConfig, FeaturizerError, ImageFeaturizer
from tnas.encoders.inputs import DEFAULT_SAMPLES_PER_CLASS, dataset_features, dataset_inputs

__all__ = [
    "DEFAULT_SAMPLES_PER_CLASS",
    "FEATURE_DIM",
    "ArchEncoder",
    "ArchEncoderConfig",
    "DatasetEncoder",
    "DatasetEncoderConfig",
    "FeaturizerConfig",
    "FeaturizerError",
    "ImageFeaturizer",
    "cells_to_batch",
    "dataset_features",
    "dataset_inputs",
    "pad_classes",
    "stack_datasets",
    "topological_levels",
]
