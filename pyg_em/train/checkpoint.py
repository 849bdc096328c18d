"""Checksummed, atomic checkpoint files that load without running pickled code.

Layout of a file: a 16-byte magic header, the SHA-256 of the body (32 bytes), the body length (8 bytes,
little endian), then the body written by ``torch.save``. Loading checks all three before
``torch.load`` runs with ``weights_only=True``, so

- a truncated, empty or garbage file, or one written by another program, is refused with an error naming it;
- any changed byte (a bit flip on disk or in transit) fails the checksum, instead of loading changed tensors;
- a hostile file cannot execute code: only tensors, numbers, strings and containers are ever unpickled.

Writes go to a temporary file in the same folder, are fsynced, then renamed over the target; a crash while
writing leaves the previous checkpoint intact, because ``os.replace`` is atomic on POSIX and Windows when
source and target are on the same file system. Temporary files orphaned by a killed writer are removed by the
next write or load of the same checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["save_checkpoint", "load_checkpoint", "load_model_state", "remove_orphans", "CheckpointError"]

_MAGIC = b"PYG_EM-CKPT-v1\n\0"
_HEADER = len(_MAGIC) + 32 + 8


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: truncated, corrupted, foreign, or not matching the run."""


def _orphans(path: Path) -> list[Path]:
    return list(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.is_dir() else []


def remove_orphans(path: str | os.PathLike) -> int:
    """Delete temporary files left next to ``path`` by writers that were killed; returns how many.

    Only one process may write a given checkpoint at a time (under DDP, rank 0 does), so any such file is an
    orphan once a new write or a load starts.
    """
    removed = 0
    for orphan in _orphans(Path(path)):
        try:
            orphan.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Save ``state`` with ``torch.save``, checksummed and atomically; returns the final path.

    ``state`` must hold only what ``torch.load(weights_only=True)`` accepts: tensors, numbers, strings,
    ``None`` and lists/tuples/dicts of those (an error is raised at save time otherwise, not at resume).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    body = buffer.getvalue()
    _check_loadable(body, path)
    header = _MAGIC + hashlib.sha256(body).digest() + struct.pack("<Q", len(body))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(header)
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    _fsync_folder(path.parent)
    return path


def _check_loadable(body: bytes, path: Path) -> None:
    try:
        torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as error:
        raise TypeError(
            f"cannot checkpoint to {str(path)!r}: the state holds objects that a safe load "
            f"(weights_only=True) refuses; store tensors, numbers, strings and containers only ({error})"
        ) from None


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, verifying its checksum.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: (a ``ValueError``) if the file is empty, truncated, corrupted or not a ``pyg_em``
            checkpoint; the message names the file.
        PermissionError: If the file cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    remove_orphans(path)
    try:
        blob = path.read_bytes()
    except OSError as error:
        raise PermissionError(f"cannot read checkpoint {str(path)!r}: {error.strerror or error}") from error
    where = f"checkpoint {str(path)!r}"
    if not blob:
        raise CheckpointError(f"{where} is empty (0 bytes): it was never completely written; delete it")
    if not blob.startswith(_MAGIC):
        raise CheckpointError(f"{where} is not a pyg_em checkpoint (no pyg_em header: a file from another program, "
                              "an older pyg_em, or a damaged start); delete it or point to the right file")
    if len(blob) < _HEADER:
        raise CheckpointError(f"{where} is truncated ({len(blob)} bytes, shorter than its header); delete it")
    digest, (length,) = blob[len(_MAGIC):len(_MAGIC) + 32], struct.unpack("<Q", blob[len(_MAGIC) + 32:_HEADER])
    body = blob[_HEADER:]
    if len(body) != length:
        kind = "truncated" if len(body) < length else "longer than written"
        raise CheckpointError(f"{where} is {kind}: its body has {len(body)} bytes, {length} were written; "
                              "delete it and resume from another checkpoint or start again")
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointError(f"{where} is corrupted: its SHA-256 checksum does not match the content; delete it "
                              "and resume from another checkpoint or start again")
    try:
        state = torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    except Exception as error:  # a checksummed body that torch cannot read: written by something else
        raise CheckpointError(f"{where} cannot be read safely ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{where} holds {type(state).__name__}, expected a dict of state")
    return state


def load_model_state(model: torch.nn.Module, state_dict: dict[str, Any], source: str = "state_dict") -> None:
    """``model.load_state_dict(state_dict)`` that also fits buffers sized by the data into a fresh model.

    Buffers such as a DEC target (``N x K`` after training, ``0 x K`` when built) or k-means centres (``None``
    until initialised) are given the saved shape first; parameters must match exactly. A mismatch raises
    :class:`CheckpointError` naming ``source``.
    """
    for prefix, module in model.named_modules():
        for name, buffer in list(module._buffers.items()):
            key = f"{prefix}.{name}" if prefix else name
            saved = state_dict.get(key)
            if name in module._non_persistent_buffers_set or not isinstance(saved, torch.Tensor):
                continue
            if buffer is None or buffer.shape != saved.shape:
                device = buffer.device if buffer is not None else _module_device(model)
                module._buffers[name] = torch.empty(saved.shape, dtype=saved.dtype, device=device)
    try:
        model.load_state_dict(state_dict)
    except (RuntimeError, KeyError, TypeError) as error:
        raise CheckpointError(f"{source} does not fit this {type(model).__name__}: {error}") from None


def _module_device(model: torch.nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")
