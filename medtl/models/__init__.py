"""Pretrained networks for transfer learning: which architectures, which weights, how they are adapted.

- :mod:`medtl.models.registry`: the architectures (MONAI networks and EfficientNet-Lite0), each with
  its split into backbone stages and head.
- :mod:`medtl.models.spec`: :class:`~medtl.models.spec.ModelSpec` (what to build, JSON round-trip)
  and :func:`~medtl.models.spec.build_model`.
- :mod:`medtl.models.weights`: where pretrained weights come from (files, bundles, packages, runs, URLs).
- :mod:`medtl.models.adapt`: fitting foreign weights into a model, reported as a ``LoadReport``.
- :mod:`medtl.models.strategy`: what is trained, and at which learning rate (freezing strategies).

Importing this package (and ``registry``/``spec``) does not import torch; building a model does.
"""
