"""Meta-training of TNAS's deep-kernel GP with REPTILE: ``python -m tnas.meta_train``."""

from tnas.meta_train.checkpoint import CheckpointError, MetaTrainedModel, load_model
from tnas.meta_train.config import MetaTrainConfig
from tnas.meta_train.data import EXCLUDABLE, MetaDataset, build_meta_dataset
from tnas.meta_train.trainer import MetaTrainResult, meta_train

__all__ = [
    "EXCLUDABLE",
    "CheckpointError",
    "MetaDataset",
    "MetaTrainConfig",
    "MetaTrainResult",
    "MetaTrainedModel",
    "build_meta_dataset",
    "load_model",
    "meta_train",
]
