"""`SliceEmbedding`: what the image encoder made of one slice, and the LRU cache that keeps them, bounded by bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medtl.prompt.preprocessing import IntensityWindow

if TYPE_CHECKING:  # pragma: no cover
    import torch

DEFAULT_CACHE_BYTES = 512 << 20
"""About 128 slices: LiteMedSAM's embedding of a slice is 256 × 64 × 64 float32 (4 MiB)."""


@dataclass(frozen=True)
class SliceKey:
    """Which slice: a series (any stable key the caller chooses, never PHI), a plane and the slice index."""

    series: str
    plane: str
    index: int


@dataclass(frozen=True, eq=False)
class SliceEmbedding:
    """The encoder's ``features`` ``[1, 256, 64, 64]`` for a slice of ``shape`` (rows, columns) seen through ``window``."""

    key: SliceKey
    shape: tuple[int, int]
    window: IntensityWindow
    features: torch.Tensor

    @property
    def nbytes(self) -> int:
        return self.features.element_size() * self.features.nelement()


class EmbeddingCache:
    """Least-recently-used embeddings, at most ``max_bytes`` together; safe to share between a worker and the GUI thread.

    An entry answers only for the window it was computed with: after a change of window it is a miss.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[SliceKey, SliceEmbedding] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: SliceKey, window: IntensityWindow) -> SliceEmbedding | None:
        with self._lock:
            embedding = self._entries.get(key)
            if embedding is None or embedding.window != window:
                return None
            self._entries.move_to_end(key)
            return embedding

    def put(self, embedding: SliceEmbedding) -> None:
        """Keep ``embedding`` (replacing the slice's older one), dropping the least recently used beyond the bound."""
        with self._lock:
            old = self._entries.pop(embedding.key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[embedding.key] = embedding
            self._bytes += embedding.nbytes
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes

    def __contains__(self, key: SliceKey) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
