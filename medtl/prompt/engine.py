"""`PromptModel`: LiteMedSAM with its embedding cache. ``embed`` runs the image encoder once per slice;
``segment`` turns a prompt into a mask with the prompt encoder and mask decoder only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from medtl.prompt.embedding import EmbeddingCache, SliceEmbedding, SliceKey
from medtl.prompt.preprocessing import IntensityWindow, encoder_input, input_scale, mask_on_slice
from medtl.prompt.request import PromptRequest

if TYPE_CHECKING:  # pragma: no cover
    import torch


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
        """The mask the prompt asks for, on the embedded slice's grid (the decoder only: tens of milliseconds)."""
        import torch

        if request.slice_shape != embedding.shape:
            from medtl.errors import InvalidRequest

            raise InvalidRequest("box", f"the prompt was drawn on a slice of {request.slice_shape}, but the embedding is of a {embedding.shape} slice")
        scale = input_scale(embedding.shape)
        with torch.inference_mode():
            boxes = torch.tensor([request.box], dtype=torch.float32) * scale
            points = None
            if request.points:
                coordinates = torch.tensor([[(p.x, p.y) for p in request.points]], dtype=torch.float32) * scale
                points = (coordinates, torch.tensor([[int(p.positive) for p in request.points]], dtype=torch.int64))
            prompt_encoder = self.network.prompt_encoder
            sparse, dense = prompt_encoder(points=points, boxes=boxes, masks=None)
            if self._dense_pe is None:  # the positional encoding of the 64 x 64 grid: the same for every prompt (~10 ms)
                self._dense_pe = prompt_encoder.get_dense_pe()
            logits, iou = self.network.mask_decoder(
                image_embeddings=embedding.features,
                image_pe=self._dense_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            return PromptResult(mask_on_slice(logits, embedding.shape), float(iou[0, 0]))
