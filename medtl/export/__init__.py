"""Writing predictions and models for other tools.

- :mod:`medtl.export.prediction_outputs`: all of a prediction's files (what ``medtl predict`` writes).
- :mod:`medtl.export.nifti`: a mask, heatmap or uncertainty map as NIfTI (atomic).
- :mod:`medtl.export.dicom_seg`: a mask as DICOM Segmentation (highdicom) referencing its source series.
- :mod:`medtl.export.overlay`: a PNG of the middle slice with a heatmap blended over it.
- :mod:`medtl.export.bundle`: a run's model as a MONAI bundle folder.
- :mod:`medtl.export.torchscript`: a run's model as TorchScript, checked against the eager model.
"""
