"""Trainer callbacks: hooks at epoch boundaries, and early stopping on a logged value."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from pyg_em.train.trainer import Trainer

__all__ = ["Callback", "EarlyStopping", "LambdaCallback"]


class Callback:
    """Base class: override any hook. ``on_epoch_end`` may return ``True`` to stop training.

    ``logs`` holds Python floats for the loss components and any evaluation metrics; it is only filled on
    logging epochs (every ``log_every`` epochs and the last), so hooks that read it must tolerate gaps.
    """

    def on_fit_start(self, trainer: Trainer) -> None:
        """Called once before the first epoch of :meth:`Trainer.fit`."""
        pass

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Called before every epoch (``epoch`` counts from 0)."""
        pass

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> bool | None:
        """Called after every epoch with its logged values; return ``True`` to stop training."""
        return None

    def on_fit_end(self, trainer: Trainer) -> None:
        """Called once after the last epoch."""
        pass

    def state_dict(self) -> dict:
        """The callback's state, saved in checkpoints (empty by default)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (when resuming from a checkpoint)."""
        pass


class LambdaCallback(Callback):
    """Wrap plain functions as hooks: ``LambdaCallback(on_epoch_start=lambda trainer, epoch: ...)``."""

    def __init__(
        self,
        on_epoch_start: Callable[[Trainer, int], None] | None = None,
        on_epoch_end: Callable[[Trainer, int, dict], bool | None] | None = None,
    ) -> None:
        self._start, self._end = on_epoch_start, on_epoch_end

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Call the ``on_epoch_start`` function, if given."""
        if self._start is not None:
            self._start(trainer, epoch)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> bool | None:
        """Call the ``on_epoch_end`` function, if given; its return value stops training when true."""
        return self._end(trainer, epoch, logs) if self._end is not None else None


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` logged epochs.

    Args:
        monitor (str): Key in the logs, e.g. ``'total'`` or ``'val_auc'``. (default: :obj:`'total'`)
        mode (str): ``'min'`` or ``'max'``. (default: :obj:`'min'`)
        patience (int): Logged epochs without improvement before stopping. (default: :obj:`10`)
        min_delta (float): Smallest change that counts as an improvement. (default: :obj:`0.0`)
        restore_best (bool): Load the best model weights when training ends. (default: :obj:`True`)
    """

    def __init__(
        self,
        monitor: str = "total",
        mode: str = "min",
        patience: int = 10,
        min_delta: float = 0.0,
        restore_best: bool = True,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best = min_delta, restore_best
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self.wait = 0
        self._best_state: dict | None = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> bool | None:
        """Track the monitored value; ``True`` (stop) after ``patience`` epochs without improvement."""
        if self.monitor not in logs:
            return None
        value = logs[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self._best_state = copy.deepcopy(trainer.model.state_dict())
            return None
        self.wait += 1
        return self.wait >= self.patience

    def on_fit_end(self, trainer: Trainer) -> None:
        """Restore the best weights when ``restore_best`` is set."""
        if self.restore_best and self._best_state is not None:
            trainer.model.load_state_dict(self._best_state)

    def state_dict(self) -> dict:
        """Best value, best epoch, wait counter (and best weights), for checkpoints."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "best_state": self._best_state}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`."""
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self._best_state = state["best_state"]
