"""Prediction with a trained run: masks, probabilities, Grad-CAM heatmaps and uncertainty on the input's own grid.

- :mod:`medtl.inference.predictor`: :class:`~medtl.inference.predictor.Predictor` (``from_run``, ``predict``).
- :mod:`medtl.inference.prediction`: what it gives, :class:`~medtl.inference.prediction.SegmentationPrediction`
  or :class:`~medtl.inference.prediction.ClassificationPrediction` (``Prediction`` is either).
- :mod:`medtl.inference.resample`: network-grid outputs back onto the input :class:`~medtl.dicom.volume.Volume` grid.
- :mod:`medtl.inference.gradcam`: Grad-CAM on the output of the network's last backbone stage.
- :mod:`medtl.inference.uncertainty`: test-time flips and MC dropout, predictive entropy.

Importing this package imports nothing heavy; the submodules import torch (``prediction`` does not).
"""
