"""`PromptModel`: LiteMedSAM with its embedding cache. ``embed`` runs the image encoder once per slice;
``segment`` turns a prompt into a mask with the prompt encoder and mask decoder only: the box goes to the decoder, and
the clicks become box edits and mask logic (:mod:`medtl.prompt.clicks`), since LiteMedSAM was trained on boxes alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from medtl.prompt.embedding import EmbeddingCache, SliceEmbedding, SliceKey
from medtl.prompt.preprocessing import IntensityWindow, encoder_input, input_scale, logits_on_slice
from medtl.prompt.request import Box, Point, PromptRequest

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass(frozen=True, eq=False)
class Decoded:
    """One answer of the decoder on the slice's grid: its ``logits`` (float32, > 0 is the mask) and predicted IoU."""

    box: Box
    logits: np.ndarray
    predicted_iou: float

    @property
    def mask(self) -> np.ndarray:
        return self.logits > 0


@dataclass(frozen=True, eq=False)
class PromptResult:
    """A boolean ``mask`` on the slice's grid and the decoder's own estimate of its IoU with the true structure."""

    mask: np.ndarray
    predicted_iou: float


class PromptModel:
    """A LiteMedSAM network (``medtl.models.medsam.load_prompt_model``) in eval mode, with a cache of slice embeddings."""

    def __init__(self, network: torch.nn.Module, cache: EmbeddingCache | None = None) -> None:
        from medtl.models.medsam import inference_encoder

        self.network = network.eval()
        self.encoder = inference_encoder(self.network)
        """What :meth:`embed` runs: ``network``'s image encoder with batch norms folded, channels-last (a copy)."""
        self.cache = EmbeddingCache() if cache is None else cache
        self._dense_pe: torch.Tensor | None = None

    @classmethod
    def load(cls, source: str = "medsam", cache: EmbeddingCache | None = None) -> PromptModel:
        """The model a source names (``medsam`` or ``run:RUN``); MedtlError when it cannot be loaded."""
        from medtl.models.medsam import load_prompt_model

        return cls(load_prompt_model(source), cache)

    def embed(self, key: SliceKey, pixels: np.ndarray, window: IntensityWindow) -> SliceEmbedding:
        """The slice's embedding: from the cache, or computed by the image encoder (about a second on 2 CPU cores) and cached."""
        cached = self.cache.get(key, window)
        if cached is not None:
            return cached
        import torch

        from medtl.models.medsam import channels_last

        with torch.inference_mode():
            features = self.encoder(channels_last(encoder_input(pixels, window))).contiguous()
        embedding = SliceEmbedding(key, (int(pixels.shape[0]), int(pixels.shape[1])), window, features)
        self.cache.put(embedding)
        return embedding

    def segment(self, embedding: SliceEmbedding, request: PromptRequest) -> PromptResult:
        """The mask the prompt asks for, on the embedded slice's grid (the decoder only: tens of milliseconds per box).

        Each click is applied in turn by :func:`medtl.prompt.clicks.apply_click`; the mask always holds every
        including click and none of the excluding ones."""
        from medtl.prompt.clicks import refine

        self._check_shape(embedding, request.slice_shape)
        return refine(lambda box: self.decode(embedding, box)[0], request)

    def decode(self, embedding: SliceEmbedding, box: Box, points: tuple[Point, ...] = (), multimask: bool = False) -> list[Decoded]:
        """The decoder's answer to ``box`` (and ``points``, given to the decoder as SAM's point prompts): one, or SAM's
        three candidates with ``multimask``."""
        import torch

        scale = input_scale(embedding.shape)
        with torch.inference_mode():
            boxes = torch.tensor([box], dtype=torch.float32) * scale
            encoded_points = None
            if points:
                coordinates = torch.tensor([[(p.x, p.y) for p in points]], dtype=torch.float32) * scale
                encoded_points = (coordinates, torch.tensor([[int(p.positive) for p in points]], dtype=torch.int64))
            prompt_encoder = self.network.prompt_encoder
            sparse, dense = prompt_encoder(points=encoded_points, boxes=boxes, masks=None)
            if self._dense_pe is None:  # the positional encoding of the 64 x 64 grid: the same for every prompt (~10 ms)
                self._dense_pe = prompt_encoder.get_dense_pe()
            logits, iou = self.network.mask_decoder(
                image_embeddings=embedding.features,
                image_pe=self._dense_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
            )
            return [Decoded(box, logits_on_slice(logits[:, k : k + 1], embedding.shape), float(iou[0, k])) for k in range(logits.shape[1])]

    @staticmethod
    def _check_shape(embedding: SliceEmbedding, shape: tuple[int, int]) -> None:
        if shape != embedding.shape:
            from medtl.errors import InvalidRequest

            raise InvalidRequest("box", f"the prompt was drawn on a slice of {shape}, but the embedding is of a {embedding.shape} slice")
