"""Image datasets: a registry of named datasets with per-class samples of images."""

from tnas.datasets.base import DatasetNotFoundError, ImageDataset
from tnas.datasets.registry import (
    ALIASES,
    DATASETS,
    TASK_PREFIX,
    DatasetSpec,
    Sources,
    canonical_name,
    dataset_names,
    get_dataset,
    has_images,
    load_imagenet_sample,
    metad2a_task,
    metad2a_task_classes,
)

__all__ = [
    "ALIASES",
    "DATASETS",
    "TASK_PREFIX",
    "DatasetNotFoundError",
    "DatasetSpec",
    "ImageDataset",
    "Sources",
    "canonical_name",
    "dataset_names",
    "get_dataset",
    "has_images",
    "load_imagenet_sample",
    "metad2a_task",
    "metad2a_task_classes",
]
