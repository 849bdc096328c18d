"""The one training loop of the package: full batch or loader-driven mini-batches, single process or DDP."""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from pyg_em.models.base import LossOutput, as_loss_output
from pyg_em.train.callbacks import Callback
from pyg_em.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_state,
    remove_orphans,
    save_checkpoint,
)
from pyg_em.train.distributed import process_rank as _rank
from pyg_em.train.utils import rng_state, select_device, set_rng_state
from pyg_em.validation import check_graph, check_positive_int, validation_disabled

__all__ = ["Trainer"]

StepFn = Callable[[torch.nn.Module, Any], "LossOutput | Tensor"]


def _default_full_step(model: torch.nn.Module, data: Any) -> LossOutput:
    return model.loss(data)


def _default_batch_step(model: torch.nn.Module, batch: Any) -> LossOutput:
    return model.loss_batch(batch)


class _StepModule(torch.nn.Module):
    """Routes a loss method through ``forward`` so that DistributedDataParallel can hook the backward pass."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.step_fn: StepFn = _default_full_step

    def forward(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        out = as_loss_output(self.step_fn(self.model, batch))
        return out.total, out.components


def _distributed_world() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _gather(value: Any) -> list[Any]:
    """``value`` from every rank, in rank order (a one-element list in a single process)."""
    if _distributed_world() == 1:
        return [value]
    values: list[Any] = [None] * _distributed_world()
    torch.distributed.all_gather_object(values, value)
    return values


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (RuntimeError, TypeError, ValueError):  # e.g. tensors of different shapes
        return False


class Trainer:
    r"""Train any :class:`~pyg_em.models.BaseModel` (or any module with a loss method).

    Full batch: ``trainer.fit(data)`` calls ``step_fn(model, data)`` (default ``model.loss(data)``) once per
    epoch. Mini-batch: ``trainer.fit(loader=loader)`` calls ``batch_step_fn(model, batch)`` (default
    ``model.loss_batch(batch)``) for every batch. Loss components stay on the device during the epoch and
    are copied to the host once per logging interval, so a training step never synchronises.

    When ``torch.distributed`` is initialised with more than one process the model is wrapped in
    :class:`~torch.nn.parallel.DistributedDataParallel` (gloo on CPU, nccl on CUDA), and each rank must be
    given its own shard of the data (see :func:`pyg_em.train.shard_indices`).

    Args:
        model (torch.nn.Module): The model to train.
        epochs (int): Number of epochs. (default: :obj:`100`)
        lr (float): Learning rate of the default Adam optimiser. (default: :obj:`0.01`)
        weight_decay (float): Weight decay of the default optimiser. (default: :obj:`0.0`)
        optimizer (torch.optim.Optimizer, optional): Use this optimiser instead of Adam.
            (default: :obj:`None`)
        step_fn (callable, optional): ``step_fn(model, data) -> LossOutput`` for full-batch training.
            (default: ``model.loss``)
        batch_step_fn (callable, optional): ``batch_step_fn(model, batch) -> LossOutput`` for mini-batches.
            (default: ``model.loss_batch``)
        device (str or torch.device, optional): ``None``/``'auto'`` picks CUDA when available.
            (default: :obj:`None`)
        callbacks (sequence of Callback): Epoch hooks, e.g. :class:`~pyg_em.train.EarlyStopping`.
            (default: :obj:`()`)
        eval_fn (callable, optional): ``eval_fn(model, data) -> dict[str, float]`` run under
            ``torch.no_grad()`` in eval mode on logging epochs; its keys join the logs. (default: :obj:`None`)
        eval_every (int): Evaluate every this many epochs (and at the last). (default: :obj:`1`)
        log_every (int): Copy losses to the host every this many epochs. (default: :obj:`1`)
        grad_clip (float, optional): Clip the gradient norm to this value. (default: :obj:`None`)
        progress (bool, optional): Show a tqdm bar over the epochs (and, with a loader, one over each epoch's
            batches), both with an ETA; ``None`` shows them only on a TTY. (default: :obj:`None`)
        desc (str): Progress-bar label. (default: :obj:`'train'`)
        checkpoint_path (str or Path, optional): Write an atomic checkpoint here. (default: :obj:`None`)
        checkpoint_every (int): Checkpoint every this many epochs (and at the end). (default: :obj:`1`)
        ddp_kwargs (dict, optional): Extra keyword arguments for DistributedDataParallel.
            (default: :obj:`None`)

    Resuming (``fit(..., resume=True)``) restores the weights (data-sized buffers such as a DEC target load into a
    freshly built model), the optimiser state, the epoch, the history and the random generators — under DDP,
    each rank's own. The settings given to this trainer win over the checkpoint's: ``epochs`` is the new total,
    and the optimiser's hyper-parameters (``lr``, ``weight_decay``, ...) replace the saved ones, with a
    ``UserWarning`` listing each difference (the run then differs from an uninterrupted one). What cannot
    work is refused with an error: ``epochs`` below the saved epoch, another optimiser class, another number of
    ranks, a checkpoint that does not fit the model, or a damaged file.

    A non-finite loss (or non-finite parameters) stops training with ``FloatingPointError`` naming the first
    bad epoch, the last finite loss and a hint. It is detected on the values copied to the host every
    ``log_every`` epochs, so it adds no synchronisation to the training steps.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        epochs: int = 100,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        optimizer: torch.optim.Optimizer | None = None,
        step_fn: StepFn | None = None,
        batch_step_fn: StepFn | None = None,
        device: str | torch.device | None = None,
        callbacks: Sequence[Callback] = (),
        eval_fn: Callable[[torch.nn.Module, Any], dict[str, float]] | None = None,
        eval_every: int = 1,
        log_every: int = 1,
        grad_clip: float | None = None,
        progress: bool | None = None,
        desc: str = "train",
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
        ddp_kwargs: dict | None = None,
    ) -> None:
        check_positive_int(epochs, "epochs")
        check_positive_int(eval_every, "eval_every")
        check_positive_int(log_every, "log_every")
        check_positive_int(checkpoint_every, "checkpoint_every")
        self.device = select_device(device)
        self.model = model.to(self.device)
        self.epochs = epochs
        self.optimizer = optimizer or torch.optim.Adam(
            [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay
        )
        self.step_fn = step_fn or _default_full_step
        self.batch_step_fn = batch_step_fn or _default_batch_step
        self.callbacks = list(callbacks)
        self.eval_fn, self.eval_every, self.log_every = eval_fn, eval_every, log_every
        self.grad_clip = grad_clip
        self.progress, self.desc = progress, desc
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.checkpoint_every = checkpoint_every
        self.ddp_kwargs = ddp_kwargs or {}
        self.history: dict[str, list[float]] = {}
        self.epoch = 0  # next epoch to run
        self._engine = _StepModule(self.model)
        if _distributed_world() > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index or 0] if self.device.type == "cuda" else None
            self._engine = DistributedDataParallel(self._engine, device_ids=ids, **self.ddp_kwargs)

    # -- public API ------------------------------------------------------------------------------------
    def fit(self, data: Any = None, loader: Iterable | None = None, resume: bool = False) -> dict[str, list[float]]:
        """Train for the remaining epochs; returns the per-epoch history of every logged value.

        Args:
            data: A :class:`~torch_geometric.data.Data` for full-batch training (also passed to ``eval_fn``).
            loader: An iterable of mini-batches; when given, training is mini-batch.
            resume (bool): Continue from ``checkpoint_path`` if that file exists. (default: :obj:`False`)
        """
        if data is None and loader is None:
            raise ValueError("fit() needs data (full batch) or loader (mini-batch)")
        if resume and self.checkpoint_path is not None:
            remove_orphans(self.checkpoint_path)  # left by a writer killed mid-write, even before a first save
        if resume and self.checkpoint_path is not None and self.checkpoint_path.is_file():
            state = load_checkpoint(self.checkpoint_path, map_location=self.device)
            self.load_state(state, source=f"checkpoint {str(self.checkpoint_path)!r}")
        if data is not None:
            self._validate(data)
            data = data.to(self.device)
        for cb in self.callbacks:
            cb.on_fit_start(self)
        bar = tqdm(
            range(self.epoch, self.epochs), desc=self.desc, initial=self.epoch, total=self.epochs,
            disable=not self._show_progress(), leave=False,
        )
        pending: list[dict[str, Tensor]] = []
        with validation_disabled():
            for epoch in bar:
                for cb in self.callbacks:
                    cb.on_epoch_start(self, epoch)
                pending.append(self._run_epoch(data, loader))
                self.epoch = epoch + 1
                last = self.epoch == self.epochs
                logs: dict[str, float] = {}
                if last or self.epoch % self.log_every == 0:
                    logs = self._flush(pending, epoch, data, evaluate=last or self.epoch % self.eval_every == 0)
                    pending = []
                    bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()}, refresh=False)
                stop = any(bool(cb.on_epoch_end(self, epoch, logs)) for cb in self.callbacks)
                if self.checkpoint_path is not None and (stop or last or self.epoch % self.checkpoint_every == 0):
                    if pending:
                        self._flush(pending, epoch, data, evaluate=False)
                        pending = []
                    self.save()
                if stop:
                    break
        if pending:
            self._flush(pending, self.epoch - 1, data, evaluate=True)
        bar.close()
        for cb in self.callbacks:
            cb.on_fit_end(self)
        return self.history

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit-exactly: weights, optimiser, epoch, history, RNG and callbacks.

        Under DDP this is a collective: every rank must call it, and each rank's random generators and history
        are gathered (``rng_per_rank``, ``history_per_rank``), since ranks draw different samples.
        """
        rngs, histories = _gather(rng_state()), _gather(self.history)
        return {
            "format": "pyg_em.trainer/1",
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "history": self.history,
            "history_per_rank": histories,
            "rng": rngs[0],
            "rng_per_rank": rngs,
            "settings": {"epochs": self.epochs, "optimizer": type(self.optimizer).__name__,
                         "world_size": _distributed_world()},
            "callbacks": [cb.state_dict() for cb in self.callbacks],
        }

    def load_state(self, state: dict[str, Any], source: str = "checkpoint") -> None:
        """Restore a :meth:`state_dict`; ``source`` names it in errors (see the class notes on what wins)."""
        self._check_resumable(state, source)
        load_model_state(self.model, state["model"], source=source)
        wanted = [{k: v for k, v in group.items() if k != "params"} for group in self.optimizer.param_groups]
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, RuntimeError, TypeError) as error:
            raise CheckpointError(f"{source}: its optimiser state does not fit this model's parameters ({error}); "
                                  "resume with the model and optimiser that wrote it, or start a new run") from None
        changed = set()
        for group, values in zip(self.optimizer.param_groups, wanted):
            for key, value in values.items():
                if key in group and not _same(group[key], value):
                    changed.add(f"{key}: {group[key]!r} in the checkpoint, {value!r} now")
                group[key] = value
        if changed:
            warnings.warn(f"resuming from {source} with changed settings ({'; '.join(sorted(changed))}): the new "
                          f"values are used from epoch {state['epoch']} on, so the run differs from an "
                          "uninterrupted one", UserWarning, stacklevel=2)
        rank = _rank()
        self.epoch = state["epoch"]
        history = state.get("history_per_rank", [state["history"]])[rank]
        self.history = {k: list(v) for k, v in history.items()}
        set_rng_state(state.get("rng_per_rank", [state["rng"]])[rank])
        for cb, cb_state in zip(self.callbacks, state.get("callbacks", [])):
            cb.load_state_dict(cb_state)

    def _check_resumable(self, state: dict[str, Any], source: str) -> None:
        """Refuse what cannot be resumed, with the reason and a fix, before anything is changed."""
        for key, kind in (("model", dict), ("optimizer", dict), ("epoch", int), ("history", dict), ("rng", dict)):
            value = state.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise CheckpointError(f"{source} is not a Trainer checkpoint: {key!r} is missing or not a "
                                      f"{kind.__name__} (was it written by Trainer.save?)")
        epoch = state["epoch"]
        if epoch < 0:
            raise CheckpointError(f"{source} holds epoch {epoch}: a saved epoch is never negative, so the file is "
                                  "not a valid checkpoint")
        if epoch > self.epochs:
            raise ValueError(f"{source} is at epoch {epoch} but this Trainer has epochs={self.epochs}, so nothing "
                             f"would be trained: epochs counts from the start of the run; pass epochs >= {epoch}")
        settings = state.get("settings", {})
        saved, current = settings.get("optimizer"), type(self.optimizer).__name__
        if saved is not None and saved != current:
            raise ValueError(f"{source} was written with the {saved} optimiser but this Trainer uses {current}: "
                             f"its state cannot be carried over; resume with {saved}, or start a new run "
                             "(resume=False or another checkpoint_path)")
        saved_world, world = settings.get("world_size", 1), _distributed_world()
        per_rank = len(state.get("rng_per_rank", [None]))
        if saved_world != world or per_rank != world:
            raise ValueError(f"{source} was written by {saved_world} process(es) but this run has {world}: each "
                             "rank resumes its own random state, so resume with the same number of ranks")

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write an atomic, checksummed checkpoint.

        Under DDP every rank must call it (the ranks' random states are gathered); only rank 0 writes.
        """
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("no checkpoint path: pass path= or set checkpoint_path in the Trainer")
        state = self.state_dict()
        if _rank() != 0:
            return path
        return save_checkpoint(state, path)

    # -- internals -------------------------------------------------------------------------------------
    def _show_progress(self) -> bool:
        if self.progress is not None:
            return self.progress
        return sys.stderr.isatty()

    @staticmethod
    def _validate(data: Any) -> None:
        x, edge_index = getattr(data, "x", None), getattr(data, "edge_index", None)
        if edge_index is not None:
            check_graph(x, edge_index, getattr(data, "edge_weight", None), num_nodes=getattr(data, "num_nodes", None))

    def _step(self, step_fn: StepFn, batch: Any) -> dict[str, Tensor]:
        engine = self._engine.module if hasattr(self._engine, "module") else self._engine
        engine.step_fn = step_fn
        self.optimizer.zero_grad(set_to_none=True)
        total, components = self._engine(batch)
        total.backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        parts = {"total": total.detach()}
        parts.update({k: v.detach() for k, v in components.items()})
        return parts

    def _run_epoch(self, data: Any, loader: Iterable | None) -> dict[str, Tensor]:
        self.model.train()
        if loader is None:
            return self._step(self.step_fn, data)
        sums: dict[str, Tensor] = {}
        count = 0
        if self._show_progress():  # an epoch over a large graph takes minutes: its batches get a bar with an ETA
            total = len(loader) if hasattr(loader, "__len__") else None
            loader = tqdm(loader, total=total, desc=f"{self.desc} epoch {self.epoch + 1}/{self.epochs}",
                          leave=False, unit="batch")
        for batch in loader:
            batch = batch.to(self.device, non_blocking=True)
            for key, value in self._step(self.batch_step_fn, batch).items():
                sums[key] = sums[key] + value if key in sums else value.clone()
            count += 1
        if count == 0:
            raise ValueError("loader yielded no batches: check its input nodes/edges and batch size")
        return {k: v / count for k, v in sums.items()}

    def _flush(self, pending: list[dict[str, Tensor]], epoch: int, data: Any, evaluate: bool) -> dict[str, float]:
        """Copy the pending epochs' losses to the host in one transfer and append them to the history."""
        keys = list(pending[0].keys())
        table = torch.stack([torch.stack([p[k].reshape(()).double() for k in keys]) for p in pending])
        # Parameters can turn non-finite in the last step, after a finite loss: one fused check per flush.
        params = [p.detach().reshape(-1) for p in self.model.parameters()]
        finite = torch.stack([torch.isfinite(table).all()] + [torch.isfinite(p).all() for p in params if p.numel()])
        table, finite = table.cpu(), finite.cpu()
        first_epoch = epoch - len(pending) + 1
        if not bool(finite.all()):
            self._report_divergence(table, keys, first_epoch)
        for col, key in enumerate(keys):
            self.history.setdefault(key, []).extend(table[:, col].tolist())
        logs = dict(zip(keys, table[-1].tolist()))
        if evaluate and self.eval_fn is not None:
            self.model.eval()
            with torch.no_grad():
                metrics = {k: float(v) for k, v in self.eval_fn(self.model, data).items()}
            self.model.train()
            for key, value in metrics.items():
                self.history.setdefault(key, []).append(value)
            self.history.setdefault("eval_epoch", []).append(float(epoch))
            logs.update(metrics)
        return logs

    def _report_divergence(self, table: Tensor, keys: list[str], first_epoch: int) -> None:
        rows = torch.isfinite(table).all(dim=1).tolist()
        bad_row = rows.index(False) if False in rows else len(rows) - 1
        earlier = [v for v in self.history.get(keys[0], []) if math.isfinite(v)]
        earlier += [float(table[r, 0]) for r in range(bad_row) if rows[r]]
        last = f"{earlier[-1]:.6g}" if earlier else "none (the first logged loss is already non-finite)"
        if False in rows:
            what = f"non-finite loss at epoch {first_epoch + bad_row} ({dict(zip(keys, table[bad_row].tolist()))})"
        else:
            what = f"non-finite parameters after the step of epoch {first_epoch + bad_row} (its loss was finite)"
        lr = self.optimizer.param_groups[0].get("lr") if self.optimizer.param_groups else None
        raise FloatingPointError(
            f"training diverged: {what}; last finite loss: {last}. Lower the learning rate (lr={lr}), set "
            "grad_clip, or check the inputs for extreme values"
        )
