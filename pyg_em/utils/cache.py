"""Memoisation keyed on tensor identity and version, so that a cached value can never go stale."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

__all__ = ["TensorKeyedCache", "is_sparse_tensor"]


def is_sparse_tensor(obj: Any) -> bool:
    """Whether ``obj`` is a ``torch_sparse.SparseTensor`` (checked by name: torch_sparse is optional)."""
    return type(obj).__name__ == "SparseTensor"


def _fingerprint(tensor: Any) -> tuple:
    """What identifies the *contents* of a graph tensor: the object itself plus its in-place version counter."""
    if tensor is None:
        return (None,)
    if is_sparse_tensor(tensor):  # torch_sparse.SparseTensor: fingerprint its index and value storage
        return (_fingerprint(tensor.storage.col()), _fingerprint(tensor.storage.value()), tuple(tensor.sizes()))
    return (tensor._version, tuple(tensor.shape), tensor.device)


class TensorKeyedCache:
    """Memoises values computed from some tensors, for the ``capacity`` most recently used tensor groups.

    The key is the *identity* of each tensor (held through a weak reference, so a freed tensor whose memory is
    reused by a new one never matches) plus its in-place version counter and shape, so a new or modified
    tensor always triggers a recomputation. A capacity above one lets a training graph and a validation graph
    alternate without recomputing.

    Args:
        capacity (int): Number of entries kept, least recently used evicted first. (default: :obj:`2`)
    """

    def __init__(self, capacity: int = 2) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.clear()

    def clear(self) -> None:
        """Forget the cached value (the next ``get`` computes it again)."""
        self._entries: list[tuple[tuple, tuple, Any]] = []

    @staticmethod
    def _same_objects(refs: tuple, tensors: Sequence[Any]) -> bool:
        if len(refs) != len(tensors):
            return False
        return all((ref is None and t is None) or (ref is not None and ref() is t) for ref, t in zip(refs, tensors))

    def get(self, tensors: Sequence[Any], compute, extra: tuple = ()) -> Any:
        """Return the cached value for ``tensors`` (and hashable ``extra``), computing it when they changed."""
        key = tuple(_fingerprint(t) for t in tensors) + tuple(extra)
        for i, (refs, entry_key, value) in enumerate(self._entries):
            if entry_key == key and self._same_objects(refs, tensors):
                self._entries.insert(0, self._entries.pop(i))
                return value
        value = compute()
        refs = tuple(None if t is None else weakref.ref(t) for t in tensors)
        self._entries = [(refs, key, value), *self._entries[: self.capacity - 1]]
        return value
