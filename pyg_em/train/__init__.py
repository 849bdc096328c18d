"""One trainer for full-batch, mini-batch and distributed training, with atomic checkpoints."""

from pyg_em.train.callbacks import Callback, EarlyStopping, LambdaCallback
from pyg_em.train.checkpoint import CheckpointError, load_checkpoint, load_model_state, save_checkpoint
from pyg_em.train.distributed import (
    DEFAULT_TIMEOUT_S,
    default_backend,
    init_distributed,
    process_rank,
    shard_indices,
    share_across_local_ranks,
    shutdown_distributed,
)
from pyg_em.train.trainer import Trainer
from pyg_em.train.utils import seed_everything, select_device

__all__ = [
    "Trainer",
    "Callback",
    "EarlyStopping",
    "LambdaCallback",
    "save_checkpoint",
    "load_checkpoint",
    "load_model_state",
    "CheckpointError",
    "seed_everything",
    "select_device",
    "shard_indices",
    "default_backend",
    "init_distributed",
    "shutdown_distributed",
    "process_rank",
    "share_across_local_ranks",
    "DEFAULT_TIMEOUT_S",
]
