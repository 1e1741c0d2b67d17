"""Interactive prompting: a box (and clicks) on one slice → a mask, with LiteMedSAM (no Qt).

The fast path beside the Trainer: a slice's image embedding is computed once by the image encoder
and cached (:class:`~medtl.prompt.embedding.EmbeddingCache`); each prompt then runs only the prompt
encoder and mask decoder (:meth:`~medtl.prompt.engine.PromptModel.segment`).

- :mod:`medtl.prompt.slicing`: the planes of a ``[z, y, x]`` volume and the slice a plane cuts;
- :mod:`medtl.prompt.preprocessing`: intensity window by modality, the encoder's 256×256 input, masks back on the slice's grid;
- :mod:`medtl.prompt.request`: :class:`PromptRequest` (a box and clicks, validated on creation);
- :mod:`medtl.prompt.embedding`: :class:`SliceEmbedding` and its byte-bounded LRU cache;
- :mod:`medtl.prompt.engine`: :class:`PromptModel`, the network with its cache: ``embed`` and ``segment``;
- :mod:`medtl.prompt.clicks`: clicks as box edits and mask logic (LiteMedSAM was trained on boxes only);
- :mod:`medtl.prompt.propagation`: :func:`propagate` a mask through the neighbouring slices.
"""
